import pytest
from pydantic import ValidationError

from prunelab.config import RunConfig, describe_validation_error


def test_defaults_validate_and_round_trip() -> None:
    config = RunConfig()
    assert RunConfig.model_validate(config.model_dump(mode="json")) == config
    assert config.method.name == "baseline"


def test_method_union_picks_by_name() -> None:
    config = RunConfig.model_validate({"method": {"name": "slimming", "prune_ratio": 0.7}})
    assert config.method.prune_ratio == 0.7


@pytest.mark.parametrize(("raw", "field", "hint"), [
    ({"train": {"epochs": -1}}, "train.epochs", "greater than or equal to 1"),
    ({"data": {"dataset": "imagenet"}}, "data.dataset", "allowed: shapes"),
    ({"model": {"name": "alexnet"}}, "model.name", "allowed: vgg11"),
    ({"method": {"name": "slimming", "prune_ratio": 1.5}}, "prune_ratio", "less than 1"),
    ({"method": {"name": "nope"}}, "method", "baseline"),
    ({"train": {"lr": 0.1, "typo": 1}}, "train.typo", "Extra inputs"),
])
def test_bad_values_name_field_and_range(raw: dict, field: str, hint: str) -> None:
    with pytest.raises(ValidationError) as info:
        RunConfig.model_validate(raw)
    message = describe_validation_error(info.value)
    assert field in message and hint in message


def test_method_facts_are_read_from_the_field_metadata() -> None:
    from prunelab import config

    lam = config.METHOD_PARAMS["slimming"]["sparsity_lambda"]
    assert (lam.method, lam.label, lam.flag, lam.sweep_label, lam.aliases, lam.form) == (
        "slimming", "λ: L1 strength on BN γ", "--lambda", "l", ("lambda",), True)
    lr = config.METHOD_PARAMS["slimming"]["finetune_lr"]  # no facts given: its own flag, not swept, not in the form
    assert (lr.flag, lr.sweep_label, lr.aliases, lr.form, lr.sweepable) == ("--finetune-lr", None, (), False, False)
    assert config.PARAM_ALIASES["gamma"] == "gamma_sim" and config.SWEEP_PARAMS["gamma_c"].method == "manidp"
    assert "finetune_epochs" not in config.SWEEP_PARAMS  # a suite's F sets it (equal budgets)
    assert config.METHOD_FIELDS.index("sparsity_lambda") < config.METHOD_FIELDS.index("lambda_prime")


@pytest.mark.parametrize(("alias", "label"), [("lambda", "lp"), ("prune_ratio", "lp"), ("flr", "l")])
def test_ambiguous_sweep_names_are_refused(monkeypatch: pytest.MonkeyPatch, alias: str, label: str) -> None:
    """A duplicate alias, an alias that is a field's name, or a run-name label used twice in one method."""
    import dataclasses

    from prunelab import config

    config._check_sweep_names()  # the registered methods are unambiguous
    params = {name: dict(fields) for name, fields in config.METHOD_PARAMS.items()}
    clash = dataclasses.replace(params["slimming"]["finetune_lr"], sweep_label=label, aliases=(alias,))
    params["slimming"]["finetune_lr"] = clash
    monkeypatch.setattr(config, "METHOD_PARAMS", params)
    monkeypatch.setattr(config, "SWEEP_PARAMS", {**config.SWEEP_PARAMS, "finetune_lr": clash})
    with pytest.raises(ValueError, match="ambiguous sweep parameters"):
        config._check_sweep_names()

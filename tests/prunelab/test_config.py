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

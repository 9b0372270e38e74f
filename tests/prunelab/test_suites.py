"""Suite definitions: the demo suite, sweeps and their wiring into the job manager (configs only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from prunelab.config import RunConfig
from prunelab.jobs import JobManager
from prunelab.suites import (
    DEMO_EPOCHS,
    DEMO_FINETUNE_EPOCHS,
    MANIDP_LR_SCALE,
    SUITES,
    SWEEP_PARAMS,
    build_suite,
    format_value,
    parse_values,
    resolve_param,
    sweep,
)

BASE = RunConfig.model_validate({"data": {"train_size": 150, "test_size": 50}, "model": {"width": 0.25},
                                 "train": {"batch_size": 50, "lr": 0.05}})


def test_demo_suite_has_the_issue_runs() -> None:
    suite = build_suite("demo", BASE)
    assert suite.run_keys() == ["baseline", "slim-l0", "slim-l1e-4", "slim-l1e-3", "manidp-neither",
                            "manidp-complexity", "manidp-similarity", "manidp-both"]
    by_key = {run.key: run for run in suite.runs}
    assert [by_key[k].config.method.sparsity_lambda for k in ("slim-l0", "slim-l1e-4", "slim-l1e-3")] == \
        [0.0, 1e-4, 1e-3]
    flags = {k: (by_key[k].config.method.complexity, by_key[k].config.method.similarity)
             for k in suite.run_keys() if k.startswith("manidp")}
    assert flags == {"manidp-neither": (False, False), "manidp-complexity": (True, False),
                     "manidp-similarity": (False, True), "manidp-both": (True, True)}
    for run in suite.runs:
        assert run.config.suite == suite.suite_id and suite.suite_id.startswith("demo-")
        assert run.config.name == f"demo-{run.key}"
        assert run.config.data == BASE.data and run.config.model == BASE.model  # one shared dataset
        assert run.config.train.epochs == DEMO_EPOCHS
        # ManiDP fine-tunes the suite's baseline (half the lr, Nesterov); the others start fresh
        is_manidp = run.config.method.name == "manidp"
        assert run.init_from == ("baseline" if is_manidp else None)
        assert run.config.train.lr == pytest.approx(0.05 * (MANIDP_LR_SCALE if is_manidp else 1.0))
        assert run.config.train.nesterov == is_manidp
    assert all(by_key[k].config.method.finetune_epochs == DEMO_FINETUNE_EPOCHS for k in by_key if "slim" in k)


def test_epochs_override_sets_training_and_finetune_lengths() -> None:
    one = build_suite("demo", BASE, epochs=1)
    assert {run.config.train.epochs for run in one.runs} == {1}
    assert {run.config.method.finetune_epochs for run in one.runs if "slim" in run.key} == {1}
    six = build_suite("demo", BASE, epochs=6, finetune_epochs=4)
    assert {run.config.method.finetune_epochs for run in six.runs if "slim" in run.key} == {4}


def test_registered_suites_and_unknown_name() -> None:
    assert set(SUITES) >= {"demo", "slimming", "ablation"}
    assert build_suite("slimming", BASE).run_keys() == ["baseline", "slim-l0", "slim-l1e-4", "slim-l1e-3"]
    assert build_suite("ablation", BASE).run_keys()[1:] == ["manidp-neither", "manidp-complexity",
                                                        "manidp-similarity", "manidp-both"]
    with pytest.raises(ValueError, match=r"unknown suite 'nope'; allowed: demo"):
        build_suite("nope")


@pytest.mark.parametrize(("param", "values"), [
    ("sparsity_lambda", [0.0, 1e-5, 1e-4]), ("prune_ratio", [0.3, 0.5, 0.7]), ("lambda_prime", [0.5, 2.0]),
    ("gamma_sim", [0.0, 1.0]), ("target_density", [0.3, 0.6]),
])
def test_sweep_varies_exactly_one_parameter(param: str, values: list[float]) -> None:
    method = SWEEP_PARAMS[param][0]
    suite = sweep(method, param, values, BASE, epochs=2)
    swept = [run for run in suite.runs if run.config.method.name == method]
    assert [getattr(run.config.method, param) for run in swept] == values
    default = type(swept[0].config.method)()
    for run in swept:
        others = run.config.method.model_dump(exclude={param, "finetune_epochs", "init_from"})
        assert others == default.model_dump(exclude={param, "finetune_epochs", "init_from"})
        assert run.config.train.epochs == 2 and run.config.suite == suite.suite_id
    assert len({run.config.name for run in suite.runs}) == len(suite.runs)
    has_baseline = suite.runs[0].config.method.name == "baseline"
    assert has_baseline == (method == "manidp")  # ManiDP sweeps share one baseline checkpoint
    assert all(run.init_from == ("baseline" if has_baseline else None) for run in swept)


def test_sweep_names_aliases_and_errors() -> None:
    suite = sweep(None, "lambda", [0, 1e-4, 1e-3], BASE)
    names = [run.config.name for run in suite.runs]
    assert names == ["sweep-slim-l0", "sweep-slim-l1e-4", "sweep-slim-l1e-3"]
    assert resolve_param("gamma") == "gamma_sim" and resolve_param("density") == "target_density"
    with pytest.raises(ValueError, match="unknown sweep parameter 'lr'; allowed: sparsity_lambda"):
        sweep(None, "lr", [0.1])
    with pytest.raises(ValueError, match="does not apply to method 'slimming'"):
        sweep("slimming", "gamma_sim", [1.0])
    with pytest.raises(ValueError, match="prune_ratio"):  # pydantic range check names the field
        sweep("slimming", "prune_ratio", [0.5, 1.5])
    with pytest.raises(ValueError, match="repeat"):
        sweep("slimming", "prune_ratio", [0.5, 0.5])


def test_parse_and_format_values() -> None:
    assert parse_values("0, 1e-4,1e-3") == [0.0, 1e-4, 1e-3]
    with pytest.raises(ValueError, match="'x' is not a number"):
        parse_values("0,x")
    with pytest.raises(ValueError, match="empty"):
        parse_values(" , ")
    texts = [format_value(v) for v in (0.0, 1e-4, 2.5e-4, 0.5, 2.0, 0.125)]
    assert texts == ["0", "1e-4", "2.5e-4", "0.5", "2", "0.125"]


def test_submit_suite_wires_init_from_and_dependencies(tmp_path: Path) -> None:
    manager = JobManager(tmp_path / "runs", autostart=False)  # nothing runs: only the submission is checked
    suite = build_suite("ablation", BASE, epochs=1)
    run_ids = manager.submit_suite(suite)
    assert [job.state for job in manager.jobs()] == ["queued"] * 5
    manager.shutdown()
    baseline_id, *manidp_ids = run_ids
    assert len(run_ids) == 5 and baseline_id.endswith("ablation-baseline")
    for run_id in manidp_ids:
        run = manager.store.open(run_id)
        config = run.read_config()
        assert config.method.init_from == str((tmp_path / "runs" / baseline_id).resolve())
        assert run.read_status()["depends_on"] == [baseline_id] and run.state == "cancelled"  # by shutdown
        assert manager.job(run_id).depends_on == (baseline_id,)

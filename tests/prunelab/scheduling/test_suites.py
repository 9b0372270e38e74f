"""Suite definitions: the demo suite, sweeps and their wiring into the job manager (configs only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from prunelab.config import MAX_EPOCHS, SWEEP_PARAMS, RunConfig
from prunelab.scheduling.jobs import JobManager
from prunelab.scheduling.limits import SEEDS, SUITE_RUNS, SWEEP_VALUES
from prunelab.scheduling.suites import (
    CONTROLS_LAMBDAS,
    DEMO_EPOCHS,
    DEMO_FINETUNE_EPOCHS,
    MANIDP_LR_SCALE,
    SLIMMING_LAMBDAS,
    SUITES,
    Suite,
    build_suite,
    demo_suite,
    format_value,
    parse_values,
    resolve_param,
    sweep,
)

BASE = RunConfig.model_validate({"data": {"train_size": 150, "test_size": 50}, "model": {"width": 0.25},
                                 "train": {"batch_size": 50, "lr": 0.05}})


def test_demo_suite_has_the_issue_runs_at_equal_budgets() -> None:
    suite = build_suite("demo", BASE)
    assert suite.run_keys() == ["baseline", "slim-l0", "slim-l4e-3", "slim-l8e-3", "pretrain", "manidp-neither",
                                "manidp-complexity", "manidp-similarity", "manidp-both"]
    by_key = {run.key: run for run in suite.runs}
    assert [by_key[f"slim-l{format_value(lam)}"].config.method.sparsity_lambda for lam in SLIMMING_LAMBDAS] == \
        list(SLIMMING_LAMBDAS)
    flags = {k: (by_key[k].config.method.complexity, by_key[k].config.method.similarity)
             for k in suite.run_keys() if k.startswith("manidp")}
    assert flags == {"manidp-neither": (False, False), "manidp-complexity": (True, False),
                     "manidp-similarity": (False, True), "manidp-both": (True, True)}
    e, f = DEMO_EPOCHS, DEMO_FINETUNE_EPOCHS
    budget = {}
    for run in suite.runs:
        assert run.config.suite == suite.suite_id and suite.suite_id.startswith("demo-")
        assert run.config.name == f"demo-{run.key}"
        assert run.config.data == BASE.data and run.config.model == BASE.model  # one shared dataset
        # ManiDP fine-tunes this suite's pretrain run (half the lr, Nesterov); the others start fresh
        is_manidp = run.config.method.name == "manidp"
        assert run.init_from == ("pretrain" if is_manidp else None)
        assert run.config.train.lr == pytest.approx(0.05 * (MANIDP_LR_SCALE if is_manidp else 1.0))
        assert run.config.train.nesterov == is_manidp
        own = run.config.train.epochs + getattr(run.config.method, "finetune_epochs", 0)
        budget[run.key] = own + (by_key["pretrain"].config.train.epochs if is_manidp else 0)
    # every compared run is shaped by E + F epochs in all; pretrain is only the ManiDP runs' first E
    assert budget.pop("pretrain") == e
    assert set(budget.values()) == {e + f}
    assert by_key["slim-l0"].config.train.epochs == e and by_key["slim-l0"].config.method.finetune_epochs == f


def test_lambdas_replace_the_default_slimming_runs_and_nothing_else() -> None:
    default, chosen = build_suite("demo", BASE), build_suite("slimming", BASE, lambdas=[0.0, 1e-3])
    assert [run.key for run in chosen.runs] == ["baseline", "slim-l0", "slim-l1e-3"]
    assert [run.config.method.sparsity_lambda for run in chosen.runs[1:]] == [0.0, 1e-3]
    same = {run.key: run.config for run in default.runs}
    for run in chosen.runs:  # only the lambda differs from the default suite's run of the same role
        twin = same["slim-l0" if run.key.startswith("slim") else run.key].model_dump(exclude={"suite", "name"})
        mine = run.config.model_dump(exclude={"suite", "name"})
        twin["method"].pop("sparsity_lambda", None), mine["method"].pop("sparsity_lambda", None)
        assert mine == twin


def test_seeds_repeat_every_run_and_each_seed_has_its_own_parent() -> None:
    suite = build_suite("ablation", BASE, epochs=2, finetune_epochs=1, seeds=3)
    assert len(suite.runs) == 3 * 6
    for seed in range(3):
        runs = {run.key: run for run in suite.runs if run.key.endswith(f"-s{seed}")}
        assert set(runs) == {f"{k}-s{seed}" for k in ("baseline", "pretrain", "manidp-neither",
                                                      "manidp-complexity", "manidp-similarity", "manidp-both")}
        assert {run.config.train.seed for run in runs.values()} == {seed}
        assert all(run.init_from == f"pretrain-s{seed}" for k, run in runs.items() if "manidp" in k)
    with pytest.raises(ValueError, match="seeds must be between 1 and"):
        build_suite("demo", BASE, seeds=0)


def test_epochs_override_sets_training_and_finetune_lengths() -> None:
    one = build_suite("demo", BASE, epochs=1)
    assert {run.config.train.epochs for run in one.runs if run.config.method.name != "baseline"} == {1}
    assert {run.config.method.finetune_epochs for run in one.runs if "slim" in run.key} == {1}
    six = build_suite("demo", BASE, epochs=6, finetune_epochs=4)
    assert {run.config.method.finetune_epochs for run in six.runs if "slim" in run.key} == {4}
    assert {run.config.train.epochs for run in six.runs if "manidp" in run.key} == {4}
    assert next(run for run in six.runs if run.key == "baseline").config.train.epochs == 10


def test_pretrain_epochs_move_the_split_and_keep_every_budget() -> None:
    """P = 4 of E + F = 16: pretrain trains 4 epochs and every ManiDP run 12, in sweeps too; the baseline
    and slimming are untouched. P outside 1..E + F - 1, or set on a suite without ManiDP runs, is refused."""
    default, split = build_suite("demo", BASE, epochs=8, finetune_epochs=8), \
        build_suite("demo", BASE, epochs=8, finetune_epochs=8, pretrain_epochs=4)
    epochs = {run.key: run.config.train.epochs for run in split.runs}
    assert epochs["pretrain"] == 4 and {epochs[k] for k in epochs if k.startswith("manidp")} == {12}
    assert epochs["baseline"] == 16 and epochs["slim-l0"] == 8
    for twin, run in zip(default.runs, split.runs, strict=True):  # only the pretrain / ManiDP lengths move
        exclude = {"suite": True, "train": {"epochs"}}
        assert run.config.model_dump(exclude=exclude) == twin.config.model_dump(exclude=exclude)
        assert (run.config.train.epochs == twin.config.train.epochs) == (run.key.split("-")[0] in ("baseline", "slim"))
    swept = sweep("manidp", "target_density", [0.5, 0.7], BASE, epochs=3, finetune_epochs=3, pretrain_epochs=1)
    assert {run.key: run.config.train.epochs for run in swept.runs} == \
        {"baseline": 6, "pretrain": 1, "manidp-d0.5": 5, "manidp-d0.7": 5}
    for bad in (0, 16):
        with pytest.raises(ValueError, match=rf"--pretrain-epochs must be between 1 and E \+ F - 1 = 15 .*got {bad}"):
            build_suite("ablation", BASE, epochs=8, finetune_epochs=8, pretrain_epochs=bad)
    with pytest.raises(ValueError, match="--pretrain-epochs sets the ManiDP runs' parent, and suite slimming has none"):
        build_suite("slimming", BASE, pretrain_epochs=2)
    with pytest.raises(ValueError, match="and a slimming sweep has none"):
        sweep("slimming", "sparsity_lambda", [0.0], BASE, pretrain_epochs=2)


def test_manidp_lr_scale_sets_the_manidp_runs_lr_only() -> None:
    """--manidp-lr-scale S: every ManiDP run (suites and sweeps) trains at the base lr * S with Nesterov momentum,
    the rest keep the base lr; the default is MANIDP_LR_SCALE. Out of range, or without ManiDP runs, refused."""
    base_lr = BASE.train.lr
    for build in (lambda **kw: build_suite("demo", BASE, **kw),
                  lambda **kw: sweep("manidp", "target_density", [0.5, 0.7], BASE, **kw)):
        for scale, expected in ((None, MANIDP_LR_SCALE), (1.0, 1.0), (0.25, 0.25)):
            suite = build(manidp_lr_scale=scale)
            for run in suite.runs:
                manidp = run.config.method.name == "manidp"
                assert run.config.train.lr == pytest.approx(base_lr * expected if manidp else base_lr)
                assert run.config.train.nesterov == (manidp or BASE.train.nesterov)
    for bad in (0.0, -1.0, float("nan"), 4.5):
        with pytest.raises(ValueError, match="--manidp-lr-scale must be above 0 and at most 4"):
            build_suite("ablation", BASE, manidp_lr_scale=bad)
    with pytest.raises(ValueError, match="--manidp-lr-scale sets the ManiDP runs' learning rate, and suite slimming"):
        build_suite("slimming", BASE, manidp_lr_scale=1.0)
    with pytest.raises(ValueError, match="and a slimming sweep has none"):
        sweep("slimming", "sparsity_lambda", [0.0], BASE, manidp_lr_scale=1.0)


def test_registered_suites_and_unknown_name() -> None:
    assert set(SUITES) >= {"demo", "slimming", "ablation", "controls"}
    assert build_suite("slimming", BASE).run_keys() == ["baseline", "slim-l0", "slim-l4e-3", "slim-l8e-3"]
    assert build_suite("ablation", BASE).run_keys()[1:] == ["pretrain", "manidp-neither", "manidp-complexity",
                                                        "manidp-similarity", "manidp-both"]
    with pytest.raises(ValueError, match=r"unknown suite 'nope'; allowed: demo"):
        build_suite("nope")


@pytest.mark.parametrize(("param", "values"), [
    ("sparsity_lambda", [0.0, 1e-5, 1e-4]), ("prune_ratio", [0.3, 0.5, 0.7]), ("lambda_prime", [0.5, 2.0]),
    ("gamma_sim", [0.0, 1.0]), ("gamma_c", [0.5, 2.0]), ("target_density", [0.3, 0.6]),
])
def test_sweep_varies_exactly_one_parameter(param: str, values: list[float]) -> None:
    method = SWEEP_PARAMS[param].method
    suite = sweep(method, param, values, BASE, epochs=2)
    swept = [run for run in suite.runs if run.config.method.name == method]
    assert [getattr(run.config.method, param) for run in swept] == values
    default = type(swept[0].config.method)()
    for run in swept:
        others = run.config.method.model_dump(exclude={param, "finetune_epochs", "init_from"})
        assert others == default.model_dump(exclude={param, "finetune_epochs", "init_from"})
        assert run.config.train.epochs == (1 if method == "manidp" else 2) and run.config.suite == suite.suite_id
    assert len({run.config.name for run in suite.runs}) == len(suite.runs)
    keys = [run.key for run in suite.runs if run.config.method.name == "baseline"]
    assert keys == (["baseline", "pretrain"] if method == "manidp" else [])  # ManiDP sweeps share one parent
    assert all(run.init_from == ("pretrain" if method == "manidp" else None) for run in swept)


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
    assert [job.state for job in manager.jobs()] == ["queued"] * 6
    manager.shutdown()
    baseline_id, pretrain_id, *manidp_ids = run_ids
    assert len(run_ids) == 6 and baseline_id.endswith("ablation-baseline") and pretrain_id.endswith("pretrain")
    for run_id in manidp_ids:
        run = manager.store.open(run_id)
        config = run.read_config()
        assert config.method.init_from == pretrain_id  # a run id, never a machine's absolute path
        assert run.read_status()["depends_on"] == [pretrain_id] and run.state == "cancelled"  # by shutdown
        assert manager.job(run_id).depends_on == (pretrain_id,)


def test_method_settings_reach_every_run_of_their_method_and_only_those() -> None:
    suite = demo_suite(seeds=2, method_settings={"manidp": {"target_density": 0.65},
                                                 "slimming": {"prune_ratio": 0.4}})
    by_method: dict[str, list[RunConfig]] = {}
    for run in suite.runs:
        by_method.setdefault(run.config.method.name, []).append(run.config)
    assert len(by_method["manidp"]) == 8 and {c.method.target_density for c in by_method["manidp"]} == {0.65}
    assert {(c.method.complexity, c.method.similarity) for c in by_method["manidp"]} == {
        (False, False), (True, False), (False, True), (True, True)}  # the ablation still sets its terms
    assert len(by_method["slimming"]) == 6 and {c.method.prune_ratio for c in by_method["slimming"]} == {0.4}
    assert len({c.method.sparsity_lambda for c in by_method["slimming"]}) == 3  # still swept
    swept = sweep("manidp", "gamma_sim", [1.0, 3.0], method_settings={"manidp": {"target_density": 0.6}})
    assert {r.config.method.target_density for r in swept.runs if r.config.method.name == "manidp"} == {0.6}


def test_method_settings_the_suite_sets_itself_or_cannot_use_are_refused() -> None:
    with pytest.raises(ValueError, match=r"--lambda: the suite sets this for each slimming run itself"):
        demo_suite(method_settings={"slimming": {"sparsity_lambda": 1e-4}})
    with pytest.raises(ValueError, match=r"--target-density: the suite sets this"):
        sweep("manidp", "target_density", [0.5, 0.7], method_settings={"manidp": {"target_density": 0.6}})
    with pytest.raises(ValueError, match=r"--target-density set manidp runs, and suite slimming has none"):
        build_suite("slimming", method_settings={"manidp": {"target_density": 0.6}})


def test_suite_builders_refuse_counts_beyond_their_limits() -> None:
    too_many = [i * 1e-5 for i in range(SWEEP_VALUES.high + 1)]
    with pytest.raises(ValueError, match=r"^the number of sweep values \(--values\) must be between 1 and 100 "
                                         r"\(.*\), got 101$"):
        sweep(None, "lambda", too_many, BASE)
    with pytest.raises(ValueError, match=r"^the number of lambdas \(--lambdas\) must be between 1 and 100"):
        build_suite("demo", BASE, lambdas=too_many)
    with pytest.raises(ValueError, match="--seeds must be between 1 and 10"):
        sweep(None, "lambda", [0.0], BASE, seeds=SEEDS.high + 1)
    # within each count's limit, but 10 seeds x (49 values + baseline) = 500 runs is the most a suite holds
    assert len(sweep(None, "lambda", too_many[:49], BASE, seeds=10, baseline=True).runs) == SUITE_RUNS.high
    with pytest.raises(ValueError, match=r"^suite sweep-slim-sparsity_lambda: runs in a suite must be between 1 and "
                                         r"500 \(.*\), got 510$"):
        sweep(None, "lambda", too_many[:50], BASE, seeds=10, baseline=True)
    with pytest.raises(ValueError, match="runs in a suite must be between 1 and 500"):
        Suite("handmade", "handmade-1", ())  # whoever builds a suite: no scheduler is handed an empty or huge one
    with pytest.raises(ValueError, match=r"^--epochs \+ --finetune-epochs must be between 2 and 1,000 .*got 1,001$"):
        build_suite("demo", BASE, epochs=MAX_EPOCHS, finetune_epochs=1)
    with pytest.raises(ValueError, match="--finetune-epochs must be at least 0, got -1"):
        build_suite("slimming", BASE, epochs=3, finetune_epochs=-1)
    with pytest.raises(ValueError, match="--manidp-lr-scale must be above 0 and at most 4"):
        build_suite("demo", BASE, manidp_lr_scale=4.5)


def budget_of(run: object, parent: object | None) -> int:
    """Epochs in all behind a suite run's final weights (its own, and its parent's where it starts from them)."""
    config = run.config  # type: ignore[attr-defined]
    method = config.method
    if method.name == "random":  # its parent's sparsity epochs, then its own fine-tuning
        return parent.config.train.epochs + method.finetune_epochs  # type: ignore[union-attr]
    own = config.train.epochs + getattr(method, "finetune_epochs", 0)
    return own + (parent.config.train.epochs if method.name == "manidp" else 0)  # type: ignore[union-attr]


def test_controls_suite_builds_each_control_against_its_parent_at_equal_budgets() -> None:
    suite = build_suite("controls", BASE, epochs=2, finetune_epochs=1, seeds=2)
    slim = f"slim-l{format_value(CONTROLS_LAMBDAS[0])}"
    per_seed = ["baseline", slim, f"rand-{slim}", f"scratch-{slim}", "pretrain", "manidp-both",
                "scratch-manidp-both"]
    assert suite.run_keys() == [f"{key}-s{seed}" for seed in (0, 1) for key in per_seed]
    assert suite.name == "controls" and suite.suite_id.startswith("controls-")
    by_key = {run.key: run for run in suite.runs}
    parents = {run.key: run.init_from for run in suite.runs}
    for seed in (0, 1):
        assert parents[f"rand-{slim}-s{seed}"] == parents[f"scratch-{slim}-s{seed}"] == f"{slim}-s{seed}"
        assert parents[f"scratch-manidp-both-s{seed}"] == f"manidp-both-s{seed}"
        assert parents[f"manidp-both-s{seed}"] == f"pretrain-s{seed}"
    budgets = {key: budget_of(run, by_key.get(str(run.init_from))) for key, run in by_key.items()}
    assert {b for key, b in budgets.items() if not key.startswith("pretrain")} == {3}  # E + F, every compared run
    for run in suite.runs:
        assert run.config.train.seed == int(run.key[-1]) and run.config.data == BASE.data
        method = run.config.method
        if method.name == "scratch":  # fresh weights for the whole budget, at the baseline's learning rate
            assert run.config.train.epochs == 3 and run.config.train.lr == BASE.train.lr
            assert not run.config.train.nesterov
        if method.name == "random":  # the slimming run's fine-tuning
            assert method.finetune_epochs == 1 and method.finetune_lr is None
        if method.name == "slimming":
            assert method.sparsity_lambda == CONTROLS_LAMBDAS[0]
        if method.name == "manidp":
            assert (method.complexity, method.similarity) == (True, True)
    assert [r.key for r in build_suite("controls", BASE, lambdas=[0.0, 4e-3]).runs if r.init_from][:4] == [
        "rand-slim-l0", "scratch-slim-l0", "rand-slim-l4e-3", "scratch-slim-l4e-3"]


def test_controls_suite_takes_method_settings_and_wires_parents_by_run_id(tmp_path: Path) -> None:
    suite = build_suite("controls", BASE, epochs=1, method_settings={
        "slimming": {"form": "prunelab", "prune_ratio": 0.4}, "manidp": {"target_density": 0.6},
        "random": {"finetune_lr": 0.01}})
    methods = {run.key: run.config.method for run in suite.runs}
    assert methods["slim-l8e-3"].prune_ratio == 0.4 and methods["slim-l8e-3"].form == "prunelab"
    assert methods["manidp-both"].target_density == 0.6 and methods["rand-slim-l8e-3"].finetune_lr == 0.01
    with pytest.raises(ValueError, match="--finetune-epochs: the suite sets this for each random run itself"):
        build_suite("controls", BASE, method_settings={"random": {"finetune_epochs": 5}})
    manager = JobManager(tmp_path / "runs", autostart=False)
    run_ids = dict(zip(suite.run_keys(), manager.submit_suite(suite), strict=True))
    manager.shutdown()
    for key, parent in (("rand-slim-l8e-3", "slim-l8e-3"), ("scratch-slim-l8e-3", "slim-l8e-3"),
                        ("scratch-manidp-both", "manidp-both")):
        assert manager.store.open(run_ids[key]).read_config().method.init_from == run_ids[parent]
        assert manager.job(run_ids[key]).depends_on == (run_ids[parent],)

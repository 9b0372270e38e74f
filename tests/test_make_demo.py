"""scripts/make_demo.py strips what no page reads and keeps what the ManiDP what-if reads."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

from prunelab.runs.store import RunStore
from tests.helpers import tiny_config, write_folder_dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from make_demo import strip  # noqa: E402


def test_strip_keeps_the_gated_model_of_seed_0_manidp_runs_only(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    runs = {"manidp-s0": tiny_config("manidp"), "baseline-s0": tiny_config("baseline")}
    later = tiny_config("manidp")
    runs["manidp-s1"] = later.model_copy(update={"train": later.train.model_copy(update={"seed": 1})})
    for name, config in runs.items():
        run = store.create(config, name)
        for file in ("model.pt", "checkpoint.pt", "per_image.parquet"):
            run.file(file).write_bytes(b"x" * 10)
    left = strip(tmp_path)
    kept = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.pt"))
    assert kept == ["manidp-s0/model.pt"]
    assert all((tmp_path / name / "per_image.parquet").is_file() for name in runs)
    assert left == sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())


@pytest.mark.slow
def test_a_cut_short_cifar_suite_continues_and_ships_only_when_done(tmp_path: Path, monkeypatch) -> None:
    """make_cifar_demo --continue resumes a run the last session left queued, then ships the runs with
    their test images; a work folder with an unfinished run is never shipped."""
    import make_cifar_demo

    from prunelab.data.test_pack import TEST_PACK_FILE

    work, shipped = tmp_path / "work", tmp_path / "assets" / "cifar10_runs"
    monkeypatch.setattr(make_cifar_demo, "CIFAR_DEMO_RUNS_DIR", shipped)
    store = RunStore(work)
    run = store.create(tiny_config("baseline", train_size=40, test_size=20, width=0.125, batch_size=20), "left-queued")
    assert make_cifar_demo.unfinished(work) == [run.path]
    assert make_cifar_demo.ship(work) == 1 and not shipped.exists()  # not done: nothing shipped

    assert make_cifar_demo.main(["--continue", "--work", str(work)]) == 0
    assert run.read_status()["state"] == "done" and make_cifar_demo.unfinished(work) == []
    assert (shipped / "left-queued" / "summary.json").is_file() and (shipped / TEST_PACK_FILE).is_file()
    assert not (shipped / "left-queued" / "checkpoint.pt").exists() and (work / "left-queued" / "model.pt").is_file()


def test_continue_trains_the_runs_the_quality_bar_compares_first(tmp_path: Path) -> None:
    """Seed 0's baseline, pretrain, ManiDP-both (parent before child) and slimming at the middle lambda go
    first, then seed 1's, then creation order."""
    import make_cifar_demo

    store = RunStore(tmp_path)
    config = tiny_config("baseline", train_size=40, test_size=20, width=0.125, batch_size=20)
    names = ["demo-baseline-s0", "demo-slim-l0-s0", "demo-slim-l1e-3-s0", "demo-slim-l4e-3-s0", "demo-pretrain-s0",
             "demo-manidp-neither-s0", "demo-manidp-both-s0", "demo-slim-l0-s1", "demo-manidp-both-s1",
             "demo-pretrain-s1", "demo-baseline-s1"]
    runs = {name: store.create(config, f"20261201-161536-{name}") for name in names}
    order = [path.name.removeprefix("20261201-161536-") for path in make_cifar_demo.unfinished(tmp_path)]
    assert order == ["demo-baseline-s0", "demo-pretrain-s0", "demo-manidp-both-s0", "demo-slim-l1e-3-s0",
                     "demo-baseline-s1", "demo-pretrain-s1", "demo-manidp-both-s1",
                     "demo-slim-l0-s0", "demo-slim-l4e-3-s0", "demo-manidp-neither-s0", "demo-slim-l0-s1"]
    assert set(runs) == set(order)


@pytest.mark.slow
def test_continue_in_two_lanes_starts_a_child_only_after_its_parent(tmp_path: Path, capsys) -> None:
    """--continue --max-concurrent 2 --threads 1: two runs train at once, each in its own process, but a run
    whose parent (its status's depends_on, a ManiDP run's pretrain) is unfinished waits for it; a run
    whose parent is not in the folder at all is reported, not started."""
    import make_cifar_demo

    store = RunStore(tmp_path)
    config = tiny_config("baseline", train_size=40, test_size=20, width=0.125, batch_size=20)
    parent, other = store.create(config, "demo-pretrain-s0"), store.create(config, "demo-baseline-s0")
    child = store.create(config, "demo-manidp-both-s0")
    child.write_status(depends_on=[parent.run_id])
    assert make_cifar_demo.continue_suite(tmp_path, lanes=2, threads=1, poll_s=0.2) == 0
    statuses = {run.run_id: run.read_status() for run in (parent, other, child)}
    assert all(status["state"] == "done" for status in statuses.values())
    assert statuses[child.run_id]["started_at"] >= statuses[parent.run_id]["finished_at"]
    assert statuses[other.run_id]["started_at"] < statuses[parent.run_id]["finished_at"]  # in the other lane

    orphan = store.create(config, "demo-manidp-neither-s0")
    orphan.write_status(depends_on=["gone-pretrain"])
    assert make_cifar_demo.continue_suite(tmp_path, lanes=2, poll_s=0.2) == 1
    assert "demo-manidp-neither-s0 wait for runs that are not done" in capsys.readouterr().err
    assert orphan.read_status()["state"] == "queued"


@pytest.mark.slow
def test_ship_done_ships_the_finished_runs_and_leaves_the_rest_training(tmp_path: Path, monkeypatch) -> None:
    """--ship-done copies the done runs (with the test images) and none that is still unfinished."""
    import make_cifar_demo

    from prunelab.data.test_pack import TEST_PACK_FILE

    work, shipped = tmp_path / "work", tmp_path / "assets" / "cifar10_runs"
    monkeypatch.setattr(make_cifar_demo, "CIFAR_DEMO_RUNS_DIR", shipped)
    store = RunStore(work)
    config = tiny_config("baseline", train_size=40, test_size=20, width=0.125, batch_size=20)
    store.create(config, "queued-first")
    assert make_cifar_demo.main(["--ship-done", "--work", str(work)]) == 1 and not shipped.exists()  # none done
    assert make_cifar_demo.continue_suite(work) == 0
    later = store.create(config, "queued-later")
    assert make_cifar_demo.main(["--ship-done", "--work", str(work)]) == 0
    assert sorted(p.name for p in shipped.iterdir()) == ["queued-first", TEST_PACK_FILE]
    assert make_cifar_demo.unfinished(work) == [later.path]  # still there, to train and ship later
    assert make_cifar_demo.ship(work) == 1  # a full ship still waits for every run


def test_the_cifar_suite_gives_every_pruning_run_the_measured_best_settings(tmp_path: Path, monkeypatch) -> None:
    """The suite command make_cifar_demo runs, parsed by prunelab's own CLI, gives all eight ManiDP runs
    (four ablation rows x two seeds) target density 0.7 and lambda' 0.01 and 12 epochs after a 4-epoch
    parent (16 in all, as the baseline), and the six slimming runs lambdas 0, 1e-3 and 4e-3 at prune ratio
    0.4."""
    import make_cifar_demo

    from prunelab.cli import jobs
    from prunelab.cli.main import build_parser

    commands: list[list[str]] = []
    monkeypatch.setattr(make_cifar_demo, "prepare", lambda source, per_class: source)
    monkeypatch.setattr(make_cifar_demo, "run_suite", lambda command, work, force: commands.append(command) or 1)
    assert make_cifar_demo.main(["--source", str(tmp_path), "--work", str(tmp_path / "work")]) == 1
    # the command names folder:data/cifar10-demo relative to the repository root; the tests have no
    # CIFAR-10, so a tiny folder dataset stands in at that path (the CLI checks it exists and fits)
    write_folder_dataset(tmp_path / make_cifar_demo.PREPARED, size=(32, 32))
    monkeypatch.chdir(tmp_path)
    assert commands[0][1:3] == ["-m", "prunelab"]
    suite = jobs.build_suite_from_args(build_parser().parse_args(commands[0][3:]))
    manidp = [run.config.method for run in suite.runs if run.config.method.name == "manidp"]
    assert len(manidp) == 8
    assert {(method.target_density, method.lambda_prime) for method in manidp} == {(0.7, 0.01)}
    assert (make_cifar_demo.TARGET_DENSITY, make_cifar_demo.LAMBDA_PRIME) == (0.7, 0.01)
    epochs = {run.key: run.config.train.epochs for run in suite.runs}
    assert {key: epochs[key] for key in ("baseline-s0", "pretrain-s0", "manidp-both-s0", "slim-l1e-3-s0")} == \
        {"baseline-s0": 16, "pretrain-s0": 4, "manidp-both-s0": 12, "slim-l1e-3-s0": 8}
    assert {epochs[run.key] for run in suite.runs if run.config.method.name == "manidp"} == {12}
    # the ManiDP runs train at the baseline's lr (MANIDP_LR_SCALE 1.0), the rest at the default 0.1
    lrs = [(run.config.method.name == "manidp", run.config.train.lr) for run in suite.runs]
    assert make_cifar_demo.MANIDP_LR_SCALE == 1.0
    assert {lr for manidp, lr in lrs if manidp} == {0.1} and {lr for manidp, lr in lrs if not manidp} == {0.1}
    slimming = [run.config.method for run in suite.runs if run.config.method.name == "slimming"]
    assert sorted(method.sparsity_lambda for method in slimming) == [0.0, 0.0, 1e-3, 1e-3, 4e-3, 4e-3]
    assert {method.prune_ratio for method in slimming} == {0.4}


def test_continue_refuses_runs_made_with_other_pruning_settings(tmp_path: Path, monkeypatch, capsys) -> None:
    """A work folder whose slimming runs use another prune ratio, or whose ManiDP run another target
    density, lr or another split of the budget, is neither trained on nor shipped; each differing run is
    named. Passing the settings the runs were made with is accepted."""
    import make_cifar_demo

    work, shipped = tmp_path / "work", tmp_path / "assets" / "cifar10_runs"
    monkeypatch.setattr(make_cifar_demo, "CIFAR_DEMO_RUNS_DIR", shipped)
    store = RunStore(work)
    for lam in (0.0, 1e-3, 4e-3):
        store.create(tiny_config("slimming", sparsity_lambda=lam, prune_ratio=0.5), f"demo-slim-l{lam}-s0")
    manidp = store.create(tiny_config("manidp", epochs=8, target_density=0.65, lambda_prime=0.01),
                          "demo-manidp-both-s0")
    pretrain = store.create(tiny_config("baseline", epochs=8), "demo-pretrain-s0")

    for flag in ("--continue", "--ship-done"):
        assert make_cifar_demo.main([flag, "--work", str(work)]) == 2
        err = capsys.readouterr().err
        assert "demo-slim-l0.001-s0: prune_ratio 0.5, this script gives 0.4" in err
        assert f"{manidp.path.name}: target_density 0.65, this script gives 0.7" in err
        # made with the old 8 + 8 split; the script gives a 4-epoch parent and 12 ManiDP epochs
        assert f"{manidp.path.name}: 8 epochs, this script gives manidp 12 (--pretrain-epochs 4)" in err
        assert f"{pretrain.path.name}: 8 epochs, this script gives pretrain 4 (--pretrain-epochs 4)" in err
        assert f"{manidp.path.name}: lr 0.05, this script gives 0.1 (--manidp-lr-scale 1)" in err
    assert not shipped.exists() and all(run.state == "queued" for run in store.scan())  # nothing trained
    with pytest.raises(SystemExit) as exit_info:
        make_cifar_demo.main(["--continue", "--work", str(work), "--lambdas", "0,x"])
    assert exit_info.value.code == 2 and "argument --lambdas: invalid lambdas value: '0,x'" in capsys.readouterr().err
    for bad in ("0", "x", "5"):
        with pytest.raises(SystemExit) as exit_info:
            make_cifar_demo.main(["--continue", "--work", str(work), "--manidp-lr-scale", bad])
        assert exit_info.value.code == 2 and "argument --manidp-lr-scale" in capsys.readouterr().err

    # with the settings the runs were made with, the check passes: --ship-done goes on (nothing is done yet)
    assert make_cifar_demo.main(["--ship-done", "--work", str(work), "--prune-ratio", "0.5",
                                 "--target-density", "0.65", "--pretrain-epochs", "8",
                                 "--manidp-lr-scale", "0.5"]) == 1
    assert "no run in" in capsys.readouterr().err and not shipped.exists()
    parser_defaults = {"lambdas": [0.0, 1e-3, 4e-3], "lambda_prime": 0.01, "epochs": 8, "finetune_epochs": 8,
                       "pretrain_epochs": 8, "manidp_lr_scale": 0.5}
    made_with = argparse.Namespace(prune_ratio=0.5, target_density=0.65, **parser_defaults)
    assert make_cifar_demo.settings_drift(work, made_with) == []
    other_lambdas = argparse.Namespace(**{**vars(made_with), "lambdas": [0.0, 4e-3, 8e-3]})
    assert make_cifar_demo.settings_drift(work, other_lambdas) == [
        "seed 0's slimming runs: lambdas 0,1e-3,4e-3, this script gives 0,4e-3,8e-3"]


def test_continue_on_a_new_machine_rebuilds_the_prepared_data_or_says_how(tmp_path: Path, monkeypatch, capsys) -> None:
    """The work folder came back (from git) without data/cifar10-demo: --continue names the missing folder and
    --source in one line; with --source it rebuilds the data from the release before resuming."""
    import make_cifar_demo

    work = tmp_path / "work"
    config = tiny_config("baseline")
    config = config.model_copy(update={"data": config.data.model_copy(
        update={"dataset": f"folder:{make_cifar_demo.PREPARED.as_posix()}"})})
    RunStore(work).create(config, "demo-baseline-s0")
    monkeypatch.setattr(make_cifar_demo, "ROOT", tmp_path)
    calls: list[str] = []
    monkeypatch.setattr(make_cifar_demo, "prepare", lambda source, per_class: calls.append(f"prepare {source}"))
    monkeypatch.setattr(make_cifar_demo, "continue_suite", lambda work, *lanes: calls.append("continue") or 1)
    assert make_cifar_demo.trains_on_prepared(work)
    with pytest.raises(SystemExit) as exit_info:
        make_cifar_demo.main(["--continue", "--work", str(work)])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert exit_info.value.code == 2 and calls == []
    assert "data/cifar10-demo, the dataset the runs train on, is missing" in err and "--source" in err
    assert make_cifar_demo.main(["--continue", "--work", str(work), "--source", str(tmp_path / "release")]) == 1
    assert calls == [f"prepare {tmp_path / 'release'}", "continue"]


def test_form_rows_copy_the_untagged_prunelab_rows_of_the_seeds_asked_for(tmp_path: Path) -> None:
    """The templates are the shipped rows without a tag, whatever departures they record; --seeds narrows them."""
    from make_form_rows import plan_rows

    store = RunStore(tmp_path)
    for name, seed in (("demo-manidp-both-s0", 0), ("demo-manidp-both-s1", 1), ("demo-manidp-refsi-both-s1", 1),
                       ("demo-manidp-neither-s1", 1)):
        form = {"form": "reference", "small_gate_init": True} if "refsi" in name else {"form": "prunelab"}
        terms = {"complexity": "both" in name, "similarity": "both" in name}
        config = tiny_config("manidp", init_from="parent", **form, **terms)
        config = config.model_copy(update={"name": name, "train": config.train.model_copy(update={"seed": seed})})
        store.create(config, name)
    planned = plan_rows(tmp_path, "refsi", "reference", ["small_gate_init"], ["both"], {}, seeds={1})
    assert [run_id for run_id, _, _ in planned] == ["demo-manidp-refsi-both-s1"]
    config = planned[0][1]
    assert config.method.form == "reference" and config.method.departures == ["small_gate_init"]
    assert config.train.seed == 1 and planned[0][2] == "parent"
    in_place = plan_rows(tmp_path, "", "prunelab", [], ["both", "neither"], {})
    assert sorted(run_id for run_id, _, _ in in_place) == ["demo-manidp-both-s0", "demo-manidp-both-s1",
                                                            "demo-manidp-neither-s1"]


def test_controls_are_planned_against_the_shipped_runs_with_their_settings(tmp_path: Path) -> None:
    """scripts/make_controls.py builds suite controls with the demo's settings: every run the demo ships has the
    suite's config but its identity, and each control names its shipped parent by run id; a shipped run made with
    other settings stops the plan, naming the field."""
    import shutil

    from make_controls import plan

    from prunelab.analysis.results import DEMO_RUNS_DIR, DEMO_SEEDS
    from prunelab.scheduling.suites import DEMO_EPOCHS, DEMO_FINETUNE_EPOCHS

    demo = Path(DEMO_RUNS_DIR)
    if not (demo / "20261201-142625-demo-baseline-s0").is_dir():
        pytest.skip("no bundled demo runs")
    suite, ids, controls = plan(demo, "prunelab")
    assert len(controls) == 3 * DEMO_SEEDS
    for run_id, config in controls.items():
        parent = demo / str(config.method.init_from)
        assert parent.is_dir() and run_id.startswith("20261201-142625-demo-")
        assert config.train.seed == int(run_id[-1])
        if config.method.name == "random":  # the shipped slimming run's E, then F of fine-tuning
            assert config.method.finetune_epochs == DEMO_FINETUNE_EPOCHS
        else:  # from scratch: E + F epochs, the whole budget
            assert config.train.epochs == DEMO_EPOCHS + DEMO_FINETUNE_EPOCHS
    assert {ids[key] for key in suite.run_keys()} - set(controls) <= {p.name for p in demo.iterdir()}
    cifar = Path("assets/cifar10_runs")
    if (cifar / "20261202-103407-demo-baseline-s0").is_dir():  # E = F = 8, P = 4, λ = 4e-3, two seeds, two id prefixes
        _, _, controls = plan(cifar, "prunelab")
        assert sorted(config.name for config in controls.values()) == sorted(
            f"demo-{kind}-s{seed}" for seed in (0, 1)
            for kind in ("rand-slim-l4e-3", "scratch-slim-l4e-3", "scratch-manidp-both"))
        parents = {config.method.init_from for config in controls.values()}
        assert "20261202-103408-demo-slim-l4e-3-s1" in parents and "20261202-103408-demo-manidp-both-s0" in parents
        for config in controls.values():
            assert config.train.epochs == (8 if config.method.name == "random" else 16)
    copy = tmp_path / "demo"
    for name in ("baseline", "slim-l8e-3", "pretrain", "manidp-both"):
        for seed in range(DEMO_SEEDS):
            run = f"20261201-142625-demo-{name}-s{seed}"
            shutil.copytree(demo / run, copy / run, ignore=shutil.ignore_patterns("*.pt", "*.gz", "*.parquet"))
    config = copy / "20261201-142625-demo-slim-l8e-3-s1" / "config.json"
    config.write_text(config.read_text().replace('"momentum": 0.9', '"momentum": 0.8'))
    with pytest.raises(SystemExit, match=r"slim-l8e-3-s1 ships with other settings .*train\.momentum: 0\.9 \(suite\) "
                                         r"vs 0\.8 \(shipped\)"):
        plan(copy, "prunelab")


@pytest.mark.slow
def test_train_all_starts_a_run_once_its_parent_is_done_beside_the_others(tmp_path: Path, capsys) -> None:
    """scripts/make_form_rows.py `train_all` (the controls' and form rows' trainer): two processes; the child waits for
    its parent while an unrelated run trains; a run whose parent never finishes is named, not started."""
    import json

    from make_form_rows import train_all

    store = RunStore(tmp_path)
    for run_id in ("parent", "child", "other", "orphan"):
        store.create(tiny_config(train_size=64, test_size=32, batch_size=32), run_id)
    results = train_all(tmp_path, ["child", "parent", "other", "orphan"], 2,
                        {"child": "parent", "orphan": "missing"})
    assert results == {"parent": "done", "other": "done", "child": "done"}

    def started(run_id: str) -> float:
        return json.loads((tmp_path / run_id / "status.json").read_text())["started_at"]

    def ended(run_id: str) -> float:
        return json.loads((tmp_path / run_id / "status.json").read_text())["finished_at"]

    assert started("child") >= ended("parent")
    assert "orphan: not started, its parent missing did not finish" in capsys.readouterr().out

"""`python -m prunelab`: run, list, bad input (exit 2, one line), resume of a killed process, suite, jobs."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

import prunelab
from prunelab.methods import METHODS
from prunelab.runs.store import RunStore
from tests.helpers import HOLD_SCRIPT, held_cli, run_cli, tiny_config

TINY = ["--train-size", "100", "--test-size", "50", "--width", "0.25", "--batch-size", "50"]
REPO = Path(prunelab.__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRUNELAB_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "data-cache"))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str]:
    runs = tmp_path_factory.mktemp("cli-runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PRUNELAB_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "data-cache"))
        code, out, _ = run_cli("run", "baseline", "--epochs", "1", *TINY, "--runs-dir", str(runs))
    return runs, code, out


def test_run_baseline_prints_the_run_dir_last(finished_run: tuple[Path, int, str]) -> None:
    runs, code, out = finished_run
    assert code == 0
    lines = out.strip().splitlines()
    run_dir = Path(lines[-1])
    assert run_dir.parent == runs
    assert (run_dir / "summary.json").is_file() and (run_dir / "model.pt").is_file()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert f"test accuracy {summary['test_acc']:.4f}" in lines[-2]
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "done" and status["owner_pid"] == os.getpid()  # claimed while it trained


def test_list_and_jobs_show_the_finished_run(finished_run: tuple[Path, int, str]) -> None:
    runs, _, out = finished_run
    run_id = Path(out.strip().splitlines()[-1]).name
    code, listing, _ = run_cli("list", "--runs-dir", str(runs))
    assert code == 0
    header, row = listing.strip().splitlines()
    assert header.split()[:5] == ["run", "method", "dataset", "model", "state"]
    assert row.split()[:5] == [run_id, "baseline", "shapes", "vgg11", "done"]
    code, table, _ = run_cli("jobs", "--runs-dir", str(runs))
    assert code == 0 and run_id in table and "done" in table and "100%" in table


@pytest.mark.parametrize(("argv", "expected"), [
    (["run", "baseline", "--dataset", "imagenet"], ["unknown dataset 'imagenet'", "allowed: shapes, cifar"]),
    (["run", "baseline", "--model", "resnet18"], ["unknown model 'resnet18'", "allowed: vgg11", "resnet20"]),
    (["run", "baseline", "--epochs", "-3"], ["epochs", "greater than or equal to 1"]),
    (["run", "baseline", "--dataset", "folder:/no/such/folder"], ["'/no/such/folder' does not exist",
                                                                  "PATH/train/<class>/"]),
    (["run", "prune-it"], ["unknown method 'prune-it'", "allowed: baseline, slimming, manidp"]),
    (["run", "baseline", "--threads", "0"], ["threads", "greater than or equal to 1"]),
    (["run", "baseline", "--lambda", "1e-4"], ["--lambda does not apply to method 'baseline' (it is slimming's)"]),
    (["suite", "nope"], ["unknown suite 'nope'", "allowed: demo"]),
    (["suite", "demo", "--epochs", "0"], ["epochs", "greater than or equal to 1"]),
    (["suite", "demo", "--dataset", "imagenet"], ["unknown dataset 'imagenet'"]),
    (["suite", "sweep", "--param", "lr", "--values", "0.1"], ["unknown sweep parameter 'lr'", "prune_ratio"]),
    (["suite", "sweep", "--param", "lambda", "--values", "0,x"], ["'x' is not a number"]),
    (["suite", "sweep", "--param", "prune_ratio", "--values", "0.5,1.5"], ["prune_ratio", "less than 1"]),
    (["suite", "sweep", "--values", "1"], ["needs --param and --values"]),
    (["suite", "demo", "--lambda", "1e-4"], ["--lambda: the suite sets this for each slimming run itself"]),
    (["suite", "demo", "--lambdas", "0,x"], ["--lambdas: 'x' is not a number"]),
    (["suite", "demo", "--lambdas", "0,-1e-3"], ["--lambdas: every lambda must be >= 0"]),
    (["suite", "slimming", "--lambdas", "1e-3,0.001"], ["--lambdas: each lambda once"]),
    (["suite", "ablation", "--lambdas", "1e-3"], ["--lambdas sets the slimming runs", "ablation has none"]),
    (["suite", "sweep", "--param", "lambda", "--values", "0", "--lambdas", "1e-3"], ["a sweep takes --values"]),
    (["suite", "slimming", "--target-density", "0.6"], ["--target-density set manidp runs", "slimming has none"]),
    (["suite", "demo", "--target-density", "1.5"], ["target_density", "less than or equal to 1"]),
    (["suite", "demo", "--epochs", "2", "--finetune-epochs", "1", "--pretrain-epochs", "3"],
     ["--pretrain-epochs must be between 1 and E + F - 1 = 2", "got 3"]),
    (["suite", "slimming", "--pretrain-epochs", "1"], ["--pretrain-epochs sets the ManiDP runs' parent",
                                                       "suite slimming has none"]),
    (["suite", "demo", "--manidp-lr-scale", "0"], ["--manidp-lr-scale must be above 0 and at most 4", "got 0"]),
    (["suite", "slimming", "--manidp-lr-scale", "1"], ["--manidp-lr-scale sets the ManiDP runs' learning rate",
                                                       "suite slimming has none"]),
    (["resume", "no-such-run"], ["not a PruneLab run directory"]),
    (["suite", "demo", "--max-concurrent", "100000"], ["--max-concurrent must be between 1 and 64 (",
                                                       "threads", "got 100,000"]),
    (["suite", "demo", "--seeds", "11"], ["--seeds must be between 1 and 10 (", "got 11"]),
    (["suite", "demo", "--lambdas", ",".join(f"{i}e-5" for i in range(101))],
     ["the number of lambdas (--lambdas) must be between 1 and 100 (", "got 101"]),
    (["suite", "sweep", "--param", "lambda", "--values", ",".join(f"{i}e-5" for i in range(60)), "--seeds", "10"],
     ["suite sweep-slim-sparsity_lambda: runs in a suite must be between 1 and 500 (", "got 600"]),
    (["suite", "demo", "--epochs", "900", "--finetune-epochs", "200"],
     ["--epochs + --finetune-epochs must be between 2 and 1,000 (", "got 1,100"]),
    (["jobs", "--recent", "100000"], ["--recent must be between 0 and 10,000 (", "got 100,000"]),
])
def test_bad_input_exits_2_with_one_line(tmp_path: Path, argv: list[str], expected: list[str]) -> None:
    code, out, err = run_cli(*argv, "--runs-dir", str(tmp_path / "runs"))
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and out == ""
    for text in expected:
        assert text in lines[0]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # nothing was created



def test_a_sweep_of_3000_values_or_100000_threads_exits_2_naming_the_limit_and_makes_nothing(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    values = ",".join(f"{i}e-6" for i in range(3000))
    code, out, err = run_cli("suite", "sweep", "--param", "lambda", "--values", values, *TINY, "--runs-dir", str(runs))
    assert (code, out) == (2, "") and len(err.strip().splitlines()) == 1
    assert err.startswith("error: the number of sweep values (--values) must be between 1 and 100 (")
    assert err.strip().endswith("got 3,000")
    code, out, err = run_cli("suite", "sweep", "--param", "lambda", "--values", "0,1e-3", "--max-concurrent",
                             "100000", *TINY, "--runs-dir", str(runs))
    assert (code, out) == (2, "") and len(err.strip().splitlines()) == 1
    assert err.startswith("error: --max-concurrent must be between 1 and 64 (") and "got 100,000" in err
    assert not runs.exists()  # no run directory, not even the runs folder


def test_suite_method_flags_set_every_run_of_their_method(tmp_path: Path) -> None:
    from prunelab.cli.jobs import build_suite_from_args
    from prunelab.cli.main import build_parser

    args = build_parser().parse_args(["suite", "demo", "--target-density", "0.65", "--no-similarity",
                                      "--finetune-epochs", "2", "--prune-ratio", "0.3", "--channels-last", "true",
                                      *TINY])
    with pytest.raises(Exception, match="--no-similarity: the suite sets this for each manidp run itself"):
        build_suite_from_args(args)
    args.no_similarity = False
    runs = [run.config for run in build_suite_from_args(args).runs]
    manidp = [c for c in runs if c.method.name == "manidp"]
    slimming = [c for c in runs if c.method.name == "slimming"]
    assert len(manidp) == 4 and all(c.method.target_density == 0.65 for c in manidp)
    assert len(slimming) == 3 and all(c.method.prune_ratio == 0.3 and c.method.finetune_epochs == 2 for c in slimming)
    assert all(c.train.channels_last is True for c in runs)


def test_suite_lambdas_flag_gives_the_slimming_runs_those_lambdas_in_order() -> None:
    from prunelab.cli.jobs import build_suite_from_args
    from prunelab.cli.main import build_parser

    args = build_parser().parse_args(["suite", "demo", "--lambdas", "0, 1e-3,4e-3", "--seeds", "2", *TINY])
    suite = build_suite_from_args(args)
    slimming = [(run.key, run.config.method.sparsity_lambda) for run in suite.runs
                if run.config.method.name == "slimming"]
    assert slimming == [("slim-l0-s0", 0.0), ("slim-l1e-3-s0", 1e-3), ("slim-l4e-3-s0", 4e-3),
                        ("slim-l0-s1", 0.0), ("slim-l1e-3-s1", 1e-3), ("slim-l4e-3-s1", 4e-3)]


@pytest.mark.slow
def test_killed_process_is_interrupted_then_resumed(tmp_path: Path) -> None:
    runs, marker = tmp_path / "runs", tmp_path / "holding"
    argv = ["run", "baseline", "--epochs", "2", *TINY, "--runs-dir", str(runs)]
    with held_cli(HOLD_SCRIPT, marker, argv):
        pass  # killed once epoch 1 is checkpointed
    (run,) = RunStore(runs).list_runs()
    assert run.state == "running"  # what the killed process left behind

    code, table, _ = run_cli("jobs", "--runs-dir", str(runs))
    assert code == 0 and "interrupted" in table  # its owner pid is gone

    code, out, err = run_cli("resume", run.run_id, "--runs-dir", str(runs))
    assert code == 0, err
    assert out.strip().splitlines()[-1] == str(run.path)
    handle = RunStore(runs).open(run.run_id)
    assert handle.state == "done"
    assert [row["epoch"] for row in handle.read_metrics()] == [1, 2]
    assert "resumed from train epoch 1" in handle.file("log.txt").read_text()
    assert "marked interrupted (was running): owner process" in handle.file("log.txt").read_text()


# `python -c HOLD_MID_EPOCH SIGNAL_FILE ARGS...`: a CLI run that hangs after the 2nd batch of its first epoch
HOLD_MID_EPOCH = """
import pathlib, sys, time
from prunelab.methods.baseline import Baseline

calls = []

def hold(self, model):
    calls.append(1)
    if len(calls) == 2:  # two batches of the first epoch trained: signal, then hang until killed
        pathlib.Path(sys.argv[1]).write_text("holding")
        time.sleep(600)

Baseline.after_backward = hold
from prunelab.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("command", ["run", "resume"])  # claim_run, and a JobManager
@pytest.mark.slow
def test_another_process_sees_a_local_run_progress_within_an_epoch(tmp_path: Path, command: str) -> None:
    """`jobs` in another process reads how far into an epoch a local run is: the owner's heartbeat copies the
    live progress into status.json (before, it showed 0% until the first epoch ended: minutes on CIFAR-10)."""
    runs, marker = tmp_path / "runs", tmp_path / "holding"
    train = ["--epochs", "2", "--train-size", "200", "--test-size", "100", "--width", "0.125", "--batch-size", "50"]
    if command == "run":
        argv = ["run", "baseline", *train, "--runs-dir", str(runs)]
    else:
        RunStore(runs).create(tiny_config("baseline", epochs=2, train_size=200, test_size=100, width=0.125), "r")
        argv = ["resume", "r", "--runs-dir", str(runs)]  # a queued run left behind: resumed by a JobManager
    with held_cli(HOLD_MID_EPOCH, marker, argv):
        (run,) = RunStore(runs).list_runs()
        deadline, status = time.time() + 30, {}
        while time.time() < deadline:
            status = RunStore(runs).open(run.run_id).read_status()
            if status.get("batch"):
                break
            time.sleep(0.3)
        # epoch 1 of 2 (1-based) in progress: 1 of its 4 batches counted, before any epoch ended
        assert status["state"] == "running" and status["phase"] == "train" and status["epoch"] == 1, status
        assert status["batch"] == 1 and status["batches"] == 4 and 0 < status["fraction"] < 0.5, status
        assert "metrics" not in status or not status["metrics"]  # no epoch has ended: this is the heartbeat's
        code, table, _ = run_cli("jobs", "--runs-dir", str(runs))
        (row,) = [line for line in table.splitlines()[1:] if line.strip()]  # the one run
        assert code == 0 and " running " in row and " 1/2 " in row and " 0% " not in row, table


@pytest.mark.skipif("slimming" not in METHODS, reason="slimming is not registered")
@pytest.mark.slow
def test_suite_sweep_runs_to_the_end(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    code, out, err = run_cli("suite", "sweep", "--method", "slimming", "--param", "prune_ratio",
                             "--values", "0.25,0.5", "--epochs", "1", "--finetune-epochs", "1", *TINY,
                             "--runs-dir", str(runs))
    assert code == 0, err
    assert "[1/2] sweep-slim-r0.25: running" in err and "[2/2] sweep-slim-r0.5: done" in err
    assert "overall 100%" in err
    table = out.strip().splitlines()
    assert table[0].split()[:3] == ["run", "method", "state"]
    assert [line.split()[:3] for line in table[1:3]] == [["sweep-slim-r0.25", "slimming", "done"],
                                                        ["sweep-slim-r0.5", "slimming", "done"]]
    infos = RunStore(runs).list_runs()
    assert len({info.config.suite for info in infos}) == 1
    assert sorted(info.config.method.prune_ratio for info in infos) == [0.25, 0.5]
    assert all(info.summary["params_after"] < info.summary["params_before"] for info in infos)

"""Run files are checked on read: schemas (prunelab.runs.artefacts, prunelab.runs.artefact_checks), broken runs in
the listing, and `python -m prunelab list` / `jobs` beside malformed runs (exit 0, good runs listed)."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prunelab.cli import main
from prunelab.runs.artefact_checks import read_artefact, read_artefact_json, run_problems, validate_json
from prunelab.runs.reading import ArtefactError
from prunelab.runs.store import BrokenRun, RunDir, RunStore
from tests.broken_runs import DEMO, GOOD, demo_run, make_broken_runs
from tests.helpers import probe_arrays

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def broken(tmp_path: Path) -> tuple[Path, dict[str, tuple[Path, str]]]:
    root = tmp_path / "runs"
    return root, make_broken_runs(root)


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


# ------------------------------------------------------------------------------------------------
# schemas


def test_the_bundled_demo_runs_pass_every_check() -> None:
    for path in sorted(DEMO.iterdir()):
        config = RunDir(path).read_config()
        assert run_problems(path, config.method.name, "done") == [], path.name


@pytest.mark.parametrize(("name", "raw", "message"), [
    ("status.json", [], "expected a JSON object, got list"),
    ("status.json", {"state": "finished"}, "unknown state 'finished'"),
    ("status.json", {"state": "running", "fraction": "half"}, "fraction: Input should be a valid number"),
    ("status.json", {"state": "running", "metrics": {"test_acc": "high"}}, "metrics.test_acc"),
    ("summary.json", {"test_acc": "n/a"}, "test_acc: Input should be a valid number (got 'n/a')"),
    ("summary.json", {"test_acc": 1.5}, "test_acc: Input should be less than or equal to 1"),
    ("pruning.json", {"layers": {"a": 1}}, "layers: Input should be a valid list"),
    ("manidp.json", {"layers": ["a", "b"], "channels": [4], "thresholds": [0.1, 0.2], "macs_dense": 1,
                     "gate_macs": 0, "macs_verification": {"max_abs_diff": 0, "passed": True}},
     "channels has 1 entries for 2 layers"),
])
def test_wrong_types_and_shapes_are_errors_naming_the_file(name: str, raw: object, message: str) -> None:
    good = read_artefact_json(demo_run("slimming") / name) if name != "manidp.json" else {}
    data = {**good, **raw} if isinstance(raw, dict) else raw
    with pytest.raises(ArtefactError) as caught:
        validate_json(Path("run") / name, data)
    assert caught.value.short.startswith(f"{name} is corrupt: ") and message in str(caught.value)
    assert not caught.value.missing


def test_extra_fields_are_allowed_and_types_kept() -> None:
    status = {"state": "running", "fraction": 1, "epochs_total": 3, "owner": "h:1:x", "owner_pid": 1,
              "lock": {"path": "x"}}
    assert validate_json(Path("status.json"), status) is status
    summary = read_artefact_json(demo_run("baseline") / "summary.json")
    assert validate_json(Path("summary.json"), {**summary, "epochs_total": 4})["epochs_total"] == 4


def test_pruning_masks_must_match_their_counts() -> None:
    pruning = read_artefact_json(demo_run("slimming") / "pruning.json")
    pruning["layers"][0]["channels_after"] += 1
    with pytest.raises(ArtefactError, match="kept_mask keeps"):
        validate_json(Path("pruning.json"), pruning)


def test_npz_keys_dtypes_and_shapes_are_checked(tmp_path: Path) -> None:
    probe = probe_arrays(demo_run("manidp"))  # a file that stores T and R, as those written before 2026-12-07
    cases = {"labels": (probe["labels"][:3], "array 'labels' should have shape (64,)"),
             "T_2": (probe["T_2"][:, :5], "array 'T_2' should have shape (64, 64)"),
             "layer_names": (np.arange(3), "'layer_names' should hold text values"),
             "gates_0": (probe["gates_0"][0], "'gates_0' should have 2 dimension(s)")}
    for key, (value, message) in cases.items():
        np.savez(tmp_path / "probe.npz", **{**probe, key: value})
        with pytest.raises(ArtefactError, match=message.replace("(", r"\(").replace(")", r"\)")):
            read_artefact(tmp_path / "probe.npz")
    np.savez(tmp_path / "gamma_history.npz", epochs=np.arange(3), layer_names=np.array(["a"]),
             layer_0=np.zeros((2, 4), np.float32))
    with pytest.raises(ArtefactError, match=r"'layer_0' should have shape \(3, 'any'\)"):
        read_artefact(tmp_path / "gamma_history.npz")
    with pytest.raises(ArtefactError, match="is missing") as caught:
        read_artefact(tmp_path / "absent" / "probe.npz")
    assert caught.value.missing


def test_per_image_columns_and_dtypes_are_checked(tmp_path: Path) -> None:
    frame = pd.read_parquet(demo_run("manidp") / "per_image.parquet")
    file = tmp_path / "per_image.parquet"
    frame.assign(difficulty=pd.array([None] * len(frame), dtype="Float32")).to_parquet(file)
    assert read_artefact(file)["difficulty"].isna().all()  # unknown difficulty is allowed
    density_column = [c for c in frame if c.startswith("density_")][-1]
    for changed, message in [(frame.drop(columns="macs"), r"column\(s\) macs missing"),
                             (frame.assign(loss=frame["loss"].astype(str)), "column 'loss' should hold float"),
                             (frame.assign(correct=frame["correct"].astype(int)), "'correct' should hold bool"),
                             (frame.drop(columns=[c for c in frame if c.startswith("density_")]), "no density_"),
                             (frame.assign(**{density_column: 2.0}), "holds 2, above 1")]:
        changed.to_parquet(file)
        with pytest.raises(ArtefactError, match=message):
            read_artefact(file)


def test_metrics_rows_that_are_not_objects_or_have_wrong_types_are_skipped(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    rows = [{"phase": "train", "epoch": 1, "test_acc": 0.5}, [], {"phase": 3, "epoch": 2}, {"epoch": "2"},
            {"phase": "train", "epoch": 2}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"epo')
    assert [row["epoch"] for row in run.read_metrics()] == [1, 2]


# ------------------------------------------------------------------------------------------------
# the listing and the command line


def test_scan_lists_broken_runs_with_the_file_and_the_problem(broken: tuple[Path, dict]) -> None:
    root, cases = broken
    entries = {entry.run_id: entry for entry in RunStore(root).scan(check_artefacts=True)}
    assert set(entries) == set(GOOD) | set(cases)
    assert not any(entries[run_id].broken for run_id in GOOD)
    for case, (_, file) in cases.items():
        entry = entries[case]
        assert entry.broken and any(problem.startswith(f"{file} is ") for problem in entry.problems), case
    assert isinstance(entries["status-list"], BrokenRun) and entries["status-list"].config is not None
    missing, corrupt = entries["npz-missing"].problems, entries["npz-corrupt"].problems
    assert missing == ["probe.npz is missing (a finished manidp run writes it)"]
    assert corrupt[0].startswith("probe.npz is corrupt: not a readable .npz archive")
    assert {info.run_id for info in RunStore(root).iter_runs()} == set(GOOD) | set(cases) - {"status-list"}


def test_broken_runs_can_be_deleted(broken: tuple[Path, dict]) -> None:
    root, _ = broken
    RunStore(root).delete("status-list")
    (root / "no-config").mkdir()
    (root / "no-config" / "status.json").write_text('{"state": "done"}')
    RunStore(root).delete("no-config")
    assert not (root / "status-list").exists() and not (root / "no-config").exists()


def test_list_and_jobs_keep_working_beside_malformed_runs(broken: tuple[Path, dict]) -> None:
    root, cases = broken
    code, out, err = run_cli("list", "--runs-dir", str(root))
    assert code == 0 and "Traceback" not in out + err
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert set(rows) == set(GOOD) | set(cases)
    for run_id in GOOD:
        assert " done " in rows[run_id] and "broken" not in rows[run_id]
    for case, (_, file) in cases.items():
        assert " broken " in rows[case] and f"{file} is " in rows[case], rows[case]
    assert "probe.npz is missing" in rows["npz-missing"] and "probe.npz is corrupt" in rows["npz-corrupt"]
    assert "per_image.parquet is missing" in rows["parquet-missing"]
    assert "per_image.parquet is corrupt" in rows["parquet-corrupt"]
    assert "got 'n/a'" in rows["summary-na"] and "layers: Input should be a valid list" in rows["pruning-shape"]

    code, out, err = run_cli("jobs", "--runs-dir", str(root), "--recent", "50")
    assert code == 0 and "Traceback" not in out + err
    listed = {line.split()[0] for line in out.splitlines()[1:]}
    assert set(GOOD) <= listed and "status-list" not in listed  # its status cannot say what it is doing


def test_list_and_jobs_in_a_fresh_process_with_a_status_of_a_list(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    make_broken_runs(root)
    for command in (["list"], ["jobs", "--recent", "50"]):
        done = subprocess.run([sys.executable, "-m", "prunelab", "--runs-dir", str(root), *command],
                              capture_output=True, text=True, cwd=REPO, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stdout + done.stderr and "good-baseline" in done.stdout

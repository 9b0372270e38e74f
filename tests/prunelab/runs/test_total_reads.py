"""Issue 33, parts 1 and 2: every read of a run file is total and bounded (a FIFO, a device, a link out of the run,
deep nesting, huge integers, torn bytes), content that passes the types but is wrong is refused, and one broken
run never fails the listing of the others. Each case failed (crashed, hung or misled) before."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from prunelab.analysis import results
from prunelab.methods.manidp.artefacts import PER_IMAGE, PROBE
from prunelab.methods.slimming.artefacts import GAMMA_HISTORY
from prunelab.runs import reading
from prunelab.runs.artefacts import METRICS, STATUS, SUMMARY
from prunelab.runs.reading import ArtefactError
from prunelab.runs.run import Run
from prunelab.runs.store import BrokenRun, RunStore
from tests.broken_runs import copy_demo_run
from tests.helpers import probe_arrays, run_cli

NESTED = "[" * 100_000 + "]" * 100_000  # a RecursionError in json.loads before


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    root.mkdir()
    copy_demo_run(root, "baseline", "good")
    return root


def listed(root: Path) -> dict[str, object]:
    """run id -> its listing entry, within a time limit (nothing hangs)."""
    start = time.monotonic()
    entries = {entry.run_id: entry for entry in RunStore(root).scan(check_artefacts=True)}
    assert time.monotonic() - start < 30
    assert "good" in entries and not entries["good"].problems  # the run beside it is untouched
    return entries


@pytest.mark.parametrize("name", ["summary.json", "status.json"])
def test_deeply_nested_json_breaks_only_its_run(root: Path, name: str) -> None:
    path = copy_demo_run(root, "baseline", "nested")
    (path / name).write_text(NESTED)
    entry = listed(root)["nested"]
    assert any(f"{name} is corrupt: nested more than" in problem for problem in entry.problems)
    table = results.runs_table([root])
    assert set(table["run_id"]) == {"good", "nested"} and table.set_index("run_id").loc["good", "state"] == "done"
    code, out, err = run_cli("list", "--runs-dir", str(root))
    assert code == 0 and "good" in out and "nested" in out + err


def test_integers_beyond_64_bits_are_corrupt_and_the_table_converts(root: Path) -> None:
    path = copy_demo_run(root, "baseline", "huge")
    summary = json.loads((path / "summary.json").read_text())
    (path / "summary.json").write_text(json.dumps({**summary, "params": 2**70, "macs_before": 10**30}))
    with pytest.raises(ArtefactError, match="beyond the 64 bits"):
        _ = Run(path).summary
    assert "summary.json is corrupt" in listed(root)["huge"].problems[0]
    pa.Table.from_pandas(results.runs_table([root]))  # the pages' Arrow conversion crashed before


@pytest.mark.parametrize("name", ["status.json", "summary.json", "metrics.jsonl", "log.txt"])
def test_a_fifo_is_never_read(root: Path, name: str) -> None:
    path = copy_demo_run(root, "baseline", "fifo")
    (path / name).unlink(missing_ok=True)
    os.mkfifo(path / name)
    entries = listed(root)  # hung before: open() of a FIFO waits for a writer
    if name == "status.json":
        assert isinstance(entries["fifo"], BrokenRun) and "is a FIFO, not a regular file" in entries["fifo"].problems[0]
    run = Run(path)
    if name == "log.txt":
        assert run.log_tail() == ["(log.txt is corrupt: is a FIFO, not a regular file)"]
    else:
        artefact = {"status.json": STATUS, "summary.json": SUMMARY, "metrics.jsonl": METRICS}[name]
        with pytest.raises(ArtefactError, match="is a FIFO, not a regular file"):
            run.read(artefact)


def test_links_out_of_the_run_are_not_followed(root: Path, tmp_path: Path) -> None:
    path = copy_demo_run(root, "baseline", "links")
    secret = tmp_path / "secret.txt"
    secret.write_text("a file elsewhere on the server\n")
    (path / "log.txt").unlink(missing_ok=True)
    (path / "log.txt").symlink_to(secret)  # shown on the Live page before
    (path / "metrics.jsonl").unlink()
    (path / "metrics.jsonl").symlink_to("/dev/zero")  # read until memory ran out before
    run = Run(path)
    assert run.log_tail() == ["(log.txt is corrupt: is a link to a file outside its run directory)"]
    with pytest.raises(ArtefactError, match="is a character device, not a regular file"):
        _ = run.metrics
    (path / "summary.json").unlink()
    (path / "summary.json").symlink_to(secret)
    with pytest.raises(ArtefactError, match="is a link to a file outside its run directory"):
        _ = run.summary
    assert listed(root)["links"].problems


def test_files_beyond_their_size_limit_are_not_read(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = copy_demo_run(root, "baseline", "big")
    monkeypatch.setitem(reading.MAX_BYTES, ".json", 64)
    with pytest.raises(ArtefactError, match="more than the 64 bytes such a file may hold"):
        _ = Run(path).summary


def test_torn_bytes_in_text_are_read_leniently(root: Path) -> None:
    path = copy_demo_run(root, "baseline", "torn")
    (path / "log.txt").write_bytes("epoch 1 \u2713\n".encode() + "epoch 2 \u2713".encode()[:-1])
    assert Run(path).log_tail()[-1] == "epoch 2 \ufffd"
    with open(path / "metrics.jsonl", "ab") as handle:
        handle.write(b'{"phase": "train", "epoch": 9, "note": "\xe2\x9c')  # a crash mid-character
    assert len(Run(path).metrics) >= 1  # the torn row skipped, the others read
    code, _, _ = run_cli("jobs", "--runs-dir", str(root))
    assert code == 0


@pytest.mark.parametrize(("change", "message"), [
    (lambda a: {**a, "epochs": a["epochs"][:0], **{k: v[:0] for k, v in a.items() if k.startswith("layer_")}},
     "'epochs' is empty"),
    (lambda a: {"epochs": a["epochs"], "layer_names": a["layer_names"][:0]}, "'layer_names' is empty"),
    (lambda a: {**a, "layer_0": np.full_like(a["layer_0"], np.nan)}, "'layer_0' holds"),
    (lambda a: {**a, "layer_0": a["layer_0"][:, :0]}, "'layer_0' has no channel"),
    (lambda a: {**a, "layer_1": -a["layer_1"] - 1}, "'layer_1' holds"),
])
def test_degenerate_gamma_histories_are_corrupt(root: Path, change: object, message: str) -> None:
    path = copy_demo_run(root, "slimming", "gammas")
    arrays = dict(np.load(path / "gamma_history.npz"))
    np.savez(path / "gamma_history.npz", **change(arrays))  # type: ignore[operator]
    with pytest.raises(ArtefactError, match=message):
        Run(path).read(GAMMA_HISTORY)


@pytest.mark.parametrize(("change", "message"), [
    (lambda f: f.assign(macs=-f["macs"]), "'macs' holds"),  # a "MACs reduction of 154.9%" before
    (lambda f: f.assign(label=pd.array([None, *f["label"][1:]], dtype="Int64")), "'label' is missing"),
    (lambda f: f.assign(loss=np.where(np.arange(len(f)) == 3, np.nan, f["loss"])), "'loss' is missing for 1 image"),
    (lambda f: f.assign(index=0), "names an image twice"),
])
def test_per_image_tables_with_wrong_values_are_corrupt(root: Path, change: object, message: str) -> None:
    path = copy_demo_run(root, "manidp", "per-image")
    frame = pd.read_parquet(path / "per_image.parquet")
    change(frame).to_parquet(path / "per_image.parquet")  # type: ignore[operator]
    with pytest.raises(ArtefactError, match=message):
        Run(path).read(PER_IMAGE)


def test_a_probe_with_cosines_out_of_range_is_corrupt(root: Path) -> None:
    path = copy_demo_run(root, "manidp", "probe")
    arrays = probe_arrays(path)  # stored T and R, as a file written before 2026-12-07 has them
    np.savez(path / "probe.npz", **{**arrays, "R_0": arrays["R_0"] * 3})
    with pytest.raises(ArtefactError, match=r"'R_0' holds .* above 1\.0001"):
        Run(path).read(PROBE)


def test_the_shipped_demos_pass_the_content_checks() -> None:
    for folder in results.demo_run_dirs():
        for path in sorted(p for p in folder.iterdir() if p.is_dir()):
            run = Run(path)
            for artefact in run.config.method.facts.artefacts:
                run.require(artefact)

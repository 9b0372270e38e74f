"""A property test of the run store (issue 33, part 6): random and adversarial contents in one artefact of a copied
run, beside a good run. Reading the run, the listing, the runs table, `list` and `jobs` (and, in the full suite,
every page and the TensorBoard export) either work or report that run as broken, within a time limit, and the
good run beside it is listed unchanged.

The quick tier runs a fixed-seed sample (`derandomize=True`); the full suite a longer profile with the pages."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from prunelab.analysis import results
from prunelab.export.common import ExportError
from prunelab.export.tensorboard import export_tensorboard
from prunelab.runs.artefact_checks import artefact_for
from prunelab.runs.reading import ArtefactError
from prunelab.runs.run import Run, clear_cache
from prunelab.runs.store import RunDir, RunStore
from tests.broken_runs import copy_demo_run
from tests.helpers import run_cli

ROOT = Path(__file__).resolve().parents[3]
FILES = {"baseline": ["config.json", "status.json", "summary.json", "metrics.jsonl", "log.txt"],
         "slimming": ["gamma_history.npz", "pruning.json", "summary.json"],
         "manidp": ["per_image.parquet", "probe.npz", "manidp.json", "summary.json"]}
CASES = [(method, name) for method, names in FILES.items() for name in names]
TIME_LIMIT_S = 60.0

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20)


@st.composite
def damage(draw: st.DrawFn) -> tuple[str, str, object]:
    """(method, file, how it is damaged): random bytes, a JSON value, the real file cut or with a byte changed,
    its JSON with one field replaced, deep nesting, or a FIFO, a folder, a link out of the run or to a device."""
    method, name = draw(st.sampled_from(CASES))
    kind = draw(st.sampled_from(["bytes", "json", "cut", "flip", "field", "nested", "fifo", "folder", "link",
                                 "device", "empty"]))
    if kind == "bytes":
        return method, name, ("bytes", draw(st.binary(max_size=200)))
    if kind == "json":
        return method, name, ("json", draw(json_values))
    if kind in ("cut", "flip"):
        return method, name, (kind, draw(st.floats(min_value=0.0, max_value=1.0)), draw(st.integers(0, 255)))
    if kind == "field":
        return method, name, ("field", draw(st.text(max_size=12)), draw(json_values))
    return method, name, (kind,)


def apply(path: Path, how: tuple) -> None:
    """Damage the file `path` as `how` says (see `damage`)."""
    kind = how[0]
    original = path.read_bytes() if path.is_file() else b""
    if kind in ("fifo", "folder", "link", "device"):
        path.unlink(missing_ok=True)
    if kind == "bytes":
        path.write_bytes(how[1])
    elif kind == "json":
        path.write_text(json.dumps(how[1]))
    elif kind == "cut":
        path.write_bytes(original[: int(len(original) * how[1])])
    elif kind == "flip" and original:
        data = bytearray(original)
        data[min(len(data) - 1, int(len(data) * how[1]))] = how[2]
        path.write_bytes(bytes(data))
    elif kind == "field":
        try:
            data = json.loads(original)
        except ValueError:
            data = {}
        if isinstance(data, dict) and data:
            data[sorted(data)[hash(how[1]) % len(data)]] = how[2]  # replace one known field
        path.write_text(json.dumps(data))
    elif kind == "nested":
        path.write_text("{\"a\": " * 50_000 + "1" + "}" * 50_000)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "link":
        path.symlink_to(path.parent.parent / "outside.txt")
    elif kind == "device":
        path.symlink_to("/dev/zero")
    elif kind == "empty":
        path.write_bytes(b"")


def check_store(method: str, name: str, how: tuple, pages: bool) -> None:
    clear_cache()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "runs"
        root.mkdir()
        (Path(tmp) / "outside.txt").write_text("a file elsewhere on the machine\n")
        good = copy_demo_run(root, "baseline", "good")
        bad = copy_demo_run(root, method, "bad")
        apply(bad / name, how)
        start = time.monotonic()

        run = Run(bad)  # each artefact reads or says why not: nothing else escapes
        for file in {*FILES[method], name}:
            artefact = artefact_for(file)
            if artefact is not None:
                with contextlib.suppress(ArtefactError):
                    run.read(artefact)
        run.log_tail()
        entries = {entry.run_id: entry for entry in RunStore(root).scan(check_artefacts=True)}
        assert "good" in entries and not entries["good"].problems and entries["good"].state == "done"
        table = results.runs_table([root])
        assert table.set_index("run_id").loc["good", "state"] == "done"
        pa.Table.from_pandas(table)  # what the pages convert
        for command in (["list", "--runs-dir", str(root)], ["jobs", "--runs-dir", str(root)]):
            code, out, _ = run_cli(*command)
            assert code == 0 and "good" in out
        if pages:
            check_pages(root, good, bad)
            for target in (bad, good):
                try:
                    export_tensorboard([RunDir(target)], Path(tmp) / f"tb-{target.name}")
                except ExportError:
                    assert target == bad
        assert time.monotonic() - start < TIME_LIMIT_S


def check_pages(root: Path, good: Path, bad: Path) -> None:
    """The Runs page and the page of the damaged run's method render with no exception."""
    environment = {"PRUNELAB_RUNS_DIR": str(root), "PRUNELAB_NO_DEMO": "1"}
    saved = {key: os.environ.get(key) for key in environment}
    os.environ.update(environment)
    try:
        method = json.loads((good / "config.json").read_text())["method"]["name"]
        pages = [("runs.py", {})]
        with contextlib.suppress(ArtefactError):
            method = Run(bad).config.method.name
        pages += {"slimming": [("slimming.py", {"slim_run": bad})],
                  "manidp": [("per_image.py", {"pi_run": bad}), ("similarity.py", {"sim_run": bad})]}.get(method, [])
        for page, selected in pages:
            at = AppTest.from_file(str(ROOT / "app_pages" / page), default_timeout=60)
            for key, value in selected.items():
                at.session_state[key] = str(value)
            at.run()
            assert not at.exception, (page, [e.value for e in at.exception])
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(damage())
def test_one_damaged_file_breaks_only_its_run(case: tuple[str, str, tuple]) -> None:
    check_store(*case, pages=False)


@pytest.mark.slow
@pytest.mark.timeout(1200)
@settings(max_examples=20, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(damage())
def test_one_damaged_file_breaks_only_its_run_on_every_page_and_export(case: tuple[str, str, tuple]) -> None:
    check_store(*case, pages=True)


def test_the_fuzzer_reaches_every_kind_of_damage() -> None:
    """The strategy covers each file and each kind of damage (a fuzzer that never writes a FIFO tests nothing)."""
    seen_files, seen_kinds = set(), set()

    @settings(max_examples=400, derandomize=True, database=None)
    @given(damage())
    def collect(case: tuple[str, str, tuple]) -> None:
        seen_files.add(case[:2])
        seen_kinds.add(case[2][0])

    collect()
    assert seen_kinds == {"bytes", "json", "cut", "flip", "field", "nested", "fifo", "folder", "link", "device",
                          "empty"}
    assert len(seen_files) >= len(CASES) - 2
    assert np.isfinite(len(seen_files))

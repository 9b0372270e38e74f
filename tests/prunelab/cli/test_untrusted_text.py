"""Strings from a run directory reach the terminal without control characters: a run named with escape
sequences, a config whose suite and dataset hold them and a status.json whose error, phase and node do are
listed by `list` and `jobs`, and shown by a suite's progress lines, as visible escapes."""

from __future__ import annotations

import io
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from prunelab.cli.display import SuiteDisplay, format_table
from prunelab.cli.jobs import SUITE_COLUMNS, suite_rows
from prunelab.runs.store import RunStore
from tests.helpers import run_cli, tiny_config

# what a terminal acts on: C0 (but the newline ending each line), DEL, C1, the bidi overrides and isolates
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
EVIL_NAME = "evil\x1b[2J\x1b[31mred\u202etxt.exe"
EVIL_ERROR = "\x1b]0;pwned\x07boom\x9b6n"


@pytest.fixture
def evil_runs(tmp_path: Path) -> Path:
    """One failed run whose directory name, suite, dataset, status error, phase and node hold escape codes."""
    root = tmp_path / "runs"
    base = tiny_config()
    config = base.model_copy(update={"suite": "suite\x1b]8;;http://x\x07link", "data": base.data.model_copy(
        update={"dataset": "folder:/data/\x1b[5mblink"})})
    run = RunStore(root).create(config)
    run.write_status(state="failed", error=EVIL_ERROR, phase="train\x1b[1A", node="node\x1b[K", backend="ray",
                     fraction=0.5)
    run.path.rename(root / EVIL_NAME)
    return root


def test_list_prints_no_control_character(evil_runs: Path) -> None:
    code, out, err = run_cli("list", "--runs-dir", str(evil_runs))
    assert code == 0 and not err
    assert not CONTROL.search(out), repr(out)
    assert "evil\\x1b[2J\\x1b[31mred\\u202etxt.exe" in out  # the name, with its escapes visible
    assert "folder:/data/\\x1b[5mblink" in out


def test_jobs_prints_no_control_character(evil_runs: Path) -> None:
    code, out, err = run_cli("jobs", "--runs-dir", str(evil_runs))
    assert code == 0 and not err
    assert not CONTROL.search(out), repr(out)
    assert "evil\\x1b[2J" in out and "suite\\x1b]8;;http://x\\x07link" in out and "ray:node\\x1b[K" in out


def test_suite_lines_and_table_print_no_control_character() -> None:
    job = SimpleNamespace(run_id=EVIL_NAME, name=EVIL_NAME, state="failed", error=EVIL_ERROR, method="baseline",
                          path=None, progress={"fraction": 1.0})
    stream = io.StringIO()
    display = SuiteDisplay(stream)
    display.update([job], {EVIL_NAME: 1.0})
    display.close()
    table = format_table(suite_rows([job]), SUITE_COLUMNS)
    assert not CONTROL.search(stream.getvalue() + table), repr(stream.getvalue() + table)
    assert "\\x1b]0;pwned\\x07boom\\x9b6n" in stream.getvalue() and "\\x1b]0;pwned" in table

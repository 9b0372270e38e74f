"""The handout, `python -m prunelab report [RUNS_DIR...] --out lesson.html`: one self-contained HTML file with every
step of both tours (its rendering in a browser with the network blocked is tests/test_browser_lessons.py's), and
bad input refused in one line before anything is written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from prunelab.analysis import results, tours
from tests.helpers import run_cli

MAX_BYTES = 15_000_000  # the bound on the shapes demo's handout


def test_a_missing_or_empty_runs_folder_is_refused_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / "lesson.html"
    code, _, stderr = run_cli("report", str(tmp_path / "nowhere"), "--out", str(out))
    assert code == 2 and stderr.count("\n") == 1 and "no runs folder" in stderr and not out.exists()
    (tmp_path / "empty").mkdir()
    code, _, stderr = run_cli("report", str(tmp_path / "empty"), "--out", str(out))
    assert code == 2 and "no finished run" in stderr and not out.exists()


def test_an_output_that_cannot_be_written_is_refused_before_anything_is_read(tmp_path: Path) -> None:
    if not results.DEMO_RUNS_DIR.is_dir():
        pytest.skip("demo not shipped")
    code, _, stderr = run_cli("report", str(results.DEMO_RUNS_DIR), "--out", str(tmp_path / "no" / "lesson.html"))
    assert code == 2 and stderr.startswith("error: cannot write") and stderr.count("\n") == 1


@pytest.mark.slow
def test_the_demo_handout_is_one_file_with_every_step(tmp_path: Path) -> None:
    if not results.DEMO_RUNS_DIR.is_dir():
        pytest.skip("demo not shipped")
    out = tmp_path / "lesson.html"
    code, stdout, _ = run_cli("report", str(results.DEMO_RUNS_DIR), "--out", str(out))
    assert code == 0 and str(out) in stdout
    text = out.read_text(encoding="utf-8")
    size = out.stat().st_size
    print(f"handout of {results.DEMO_RUNS_DIR.name}: {size / 1e6:.2f} MB")
    assert size < MAX_BYTES
    steps = sum(len(tour.steps) for tour in tours.TOURS.values())
    assert len(re.findall(r"<section id=", text)) == steps
    assert text.count("class='chart'") == steps  # every step of the shapes demo draws a chart
    assert text.count("Plotly.newPlot") == 1  # one loop draws them all; plotly.js itself is embedded once:
    assert len(re.findall(r"plotly\.js v\d", text)) == 1
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=['\"]?(https?:)?//", text)  # nothing from a network
    assert text.count("data:image/png;base64,") >= 6  # the test images, inlined
    for tour in tours.TOURS.values():
        for step in tour.steps:
            assert step.title.replace("'", "&#x27;") in text
    assert "mean ± std" in text or "± " in text

"""The Live training page through AppTest: finished fixture runs (slimming, ManiDP), runs still being
written (a message naming what is missing, never a traceback), a finished run that lost an artefact,
and `?run=<id>` opening the page on one run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from prunelab.config import RunConfig
from prunelab.runs.run_format import GAMMA_HISTORY_FILE, MANIDP_FILE, PRUNING_FILE
from prunelab.runs.store import RunStore
from tests.app_pages.page_helpers import fixture_run, plotly_figures
from tests.app_pages.page_helpers import trace_values as values

PAGE = str(Path(__file__).resolve().parents[2] / "app_pages" / "live.py")
TIMEOUT = 60


def render(run: Path | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    if run is not None:
        at.query_params["run"] = run.name
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    if run is not None:
        assert at.selectbox(key="live_run").value == str(run)
    texts = [str(e.value) for e in (*at.markdown, *at.error, *at.warning, *at.info, *at.caption)]
    assert not any("Traceback" in text for text in texts)
    return at


def messages(at: AppTest) -> str:
    return " | ".join(str(e.value) for e in (*at.info, *at.error, *at.warning, *at.caption))


def annotations(figure: dict) -> list[str]:
    return [a.get("text", "") for a in figure["layout"].get("annotations", [])]


def test_finished_slimming_run_shows_its_phases_prune_and_gammas(runs_env: Path) -> None:
    run = fixture_run(runs_env, "fx-slim-l1e-3", PRUNING_FILE)
    at = render(run)
    curves, gammas = plotly_figures(at)[:2]
    loss = next(t for t in curves["data"] if t["name"] == "train CE")
    assert values(loss["x"]).tolist() == [1, 2, 3]  # 2 sparsity epochs, then 1 fine-tune epoch
    assert not any(t["name"].startswith("train objective") for t in curves["data"])  # slimming's loss is CE
    assert "prune" in annotations(curves)
    assert {"sparsity training", "fine-tune"} <= set(annotations(curves))
    pruning = json.loads((run / PRUNING_FILE).read_text())
    marks = next(t for t in curves["data"] if t["name"] == "before / right after pruning")
    assert values(marks["x"]).tolist() == [2.5, 2.5]
    assert values(marks["y"]).tolist() == pytest.approx([pruning["acc_before_prune"], pruning["acc_after_prune"]])
    assert [t["name"] for t in gammas["data"]] == ["at initialisation", "after sparsity epoch 2"]
    assert "After sparsity epoch 2" in messages(at)
    files = at.dataframe[0].value
    assert {GAMMA_HISTORY_FILE, PRUNING_FILE, "summary.json", "metrics.jsonl"} <= set(files["file"])
    assert (files["note"] == "").all()
    assert any("done" in str(line) for line in at.code[0].value.splitlines()[-1:])  # log tail: "done: ..."
    assert at.json[0].value  # the config


def test_finished_manidp_run_shows_density_per_layer_and_c(runs_env: Path) -> None:
    run = fixture_run(runs_env, "fx-manidp-full", MANIDP_FILE)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    layers = json.loads((run / MANIDP_FILE).read_text())["layers"]
    # ManiDP logs the test density of every gated layer per epoch (the live view draws the last epoch's)
    assert {f"test_density_{layer}" for layer in layers} <= set(rows[-1])
    at = render(run)
    curves, density, complexity = plotly_figures(at)[:3]
    objective = next(t for t in curves["data"] if t["name"].startswith("train objective"))  # CE + its terms
    assert values(objective["y"]).tolist() == pytest.approx([row["train_loss"] for row in rows])
    bars = density["data"][0]
    assert list(bars["x"]) == layers
    assert values(bars["y"]).tolist() == pytest.approx([rows[-1][f"test_density_{layer}"] for layer in layers])
    c = next(t for t in complexity["data"] if t["name"] == "C (this epoch)")
    assert values(c["y"]).tolist() == pytest.approx([row["complexity_c"] for row in rows])


def test_a_running_run_says_what_is_not_written_yet(runs_env: Path) -> None:
    run = fixture_run(runs_env, "fx-running", "metrics.jsonl")  # slimming, first epoch logged, no artefacts
    at = render(run)
    curves = plotly_figures(at)[0]
    loss = next(t for t in curves["data"] if t["name"] == "train CE")
    assert len(values(loss["x"])) == 1
    assert any("sparsity training (1/" in text for text in annotations(curves))  # the planned phases ahead
    text = messages(at)
    assert "gamma_history.npz" in text  # the γ histogram's file, not written yet
    assert not at.error
    files = at.dataframe[0].value.set_index("file")
    assert files.loc[PRUNING_FILE, "note"] == "not written yet" and files.loc["summary.json", "note"] == \
        "not written yet"
    assert "Not written yet" in text


def test_a_queued_run_without_metrics_and_a_finished_run_missing_an_artefact(
        fixture_runs_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = tmp_path / "runs"
    lost = runs / "slim-lost"
    shutil.copytree(fixture_run(fixture_runs_dir, "fx-slim-l1e-3", PRUNING_FILE), lost)
    (lost / GAMMA_HISTORY_FILE).unlink()
    queued = RunStore(runs).create(RunConfig.model_validate({"method": {"name": "manidp"}}), "dp-queued")
    queued.write_status(state="queued", heartbeat_at=4e9, owner="elsewhere:1:x", owner_pid=1,
                        owner_host="elsewhere")  # a live owner on another host: still queued
    monkeypatch.setenv("PRUNELAB_RUNS_DIR", str(runs))
    monkeypatch.setenv("PRUNELAB_NO_DEMO", "1")

    at = render(queued.path)
    assert "No epoch has finished yet" in messages(at) and not plotly_figures(at)
    assert not at.error

    at = render(lost)
    assert "has finished but `gamma_history.npz` is missing" in messages(at)
    assert plotly_figures(at)  # the curves still drawn


def test_no_runs_says_how_to_start_one(empty_runs_env: Path) -> None:
    at = render()
    assert "Start one on the **Runs** page" in messages(at)
    assert not plotly_figures(at)


def test_every_fixture_run_opens_without_an_exception(runs_env: Path) -> None:
    """Broken, failed, running and finished runs alike: the page says what it can, never raises."""
    at = render()
    options = at.selectbox(key="live_run").options
    assert len(options) == len([p for p in runs_env.iterdir() if p.is_dir()])
    for path in [p for p in runs_env.iterdir() if p.is_dir()]:
        at.selectbox(key="live_run").set_value(str(path)).run()
        assert not at.exception, (path.name, [e.value for e in at.exception])
        if path.name == "fx-failed":
            assert "The run failed" in messages(at)


def test_a_run_folder_error_and_log_with_markup_and_escape_codes_show_as_text(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whoever writes the runs folder writes a run's folder name, its status.json error and its log: the page
    shows their characters (escaped markdown, escape codes as visible text), never markup or a raw ESC."""
    runs = tmp_path / "runs"
    run = RunStore(runs).create(RunConfig(), "plain")
    run.write_status(state="failed", error="**boom** [click](x) <img src=x> \x1b]0;pwned\x07")
    (run.path / "log.txt").write_text("epoch 1 \x1b[2J\x1b[31mred\u202e\n", encoding="utf-8")
    hostile = run.path.rename(runs / "a`b` **c** [d](e)")
    monkeypatch.setenv("PRUNELAB_RUNS_DIR", str(runs))
    monkeypatch.setenv("PRUNELAB_NO_DEMO", "1")
    at = render(hostile)
    failed = " | ".join(str(e.value) for e in at.error)
    assert failed == r"The run failed: \*\*boom\*\* \[click\]\(x\) \<img src\=x\> \\x1b\]0\;pwned\\x07"
    log = at.code[0].value
    assert log == "epoch 1 \\x1b[2J\\x1b[31mred\\u202e" and "\x1b" not in log

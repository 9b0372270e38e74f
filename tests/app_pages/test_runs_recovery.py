"""The Runs page when things go wrong: a runs folder that cannot be written, resuming and restarting runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import app_components.common
from prunelab.runs.progress import Cancelled, Progress
from prunelab.runs.store import RunStore
from prunelab.scheduling.jobs import JobManager
from prunelab.training.engine import run_training
from tests.helpers import tiny_config

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "app_pages" / "runs.py")


def render() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def errors(at: AppTest) -> str:
    return " | ".join(str(e.value) for e in at.error)


def point_app_at(monkeypatch: pytest.MonkeyPatch, runs: Path) -> JobManager:
    monkeypatch.setenv("PRUNELAB_RUNS_DIR", str(runs))
    monkeypatch.setenv("PRUNELAB_NO_DEMO", "1")
    monkeypatch.chdir(ROOT)
    manager = JobManager(runs)
    monkeypatch.setattr(app_components.common, "get_job_manager", lambda: manager)
    return manager


def test_a_runs_folder_that_cannot_be_written_is_a_clear_error(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "runs"
    blocker.write_text("a file where the runs folder should be")  # root ignores permission bits
    manager = point_app_at(monkeypatch, blocker)
    try:
        at = render()
        at.button(key="FormSubmitter:run_form-Start run").click().run()
        assert not at.exception, [e.value for e in at.exception]
        assert f"Cannot start: cannot write {blocker}" in errors(at) and "writable?" in errors(at)
        at.button(key="demo_live").click().run()
        assert not at.exception and errors(at).count("Cannot start") == 1
        assert manager.jobs() == []
    finally:
        manager.shutdown()


def test_restart_from_scratch_button(tmp_path: Path, data_cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = tmp_path / "runs"
    config = tiny_config(epochs=2, train_size=100, test_size=50)
    run = RunStore(runs).create(config, "stopped")
    progress = Progress()
    progress.add_listener(lambda snap: progress.request_cancel() if snap.get("epoch") == 2 else None)
    with pytest.raises(Cancelled):
        run_training(config, run, progress)
    manager = point_app_at(monkeypatch, runs)
    try:
        at = render()
        assert at.button(key="restart_runs").disabled  # nothing selected
        at.session_state["runs_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
        at.run()
        assert not at.button(key="resume_runs").disabled
        at.button(key="restart_runs").click().run()
        assert errors(at) == ""
        [job] = manager.jobs()
        assert job.run_id == "stopped" and manager.wait("stopped", timeout=120)
    finally:
        manager.shutdown()
    assert run.state == "done" and [row["epoch"] for row in run.read_metrics()] == [1, 2]
    assert "restarting from scratch" in run.file("log.txt").read_text()

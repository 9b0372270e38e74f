"""Viewer mode and the Ray scheduler: no `RaySuiteRunner` is made (Ray is not even imported), and one made before
refuses to submit a run or a suite and to cancel, in one line naming viewer mode. No Ray instance is started."""

from __future__ import annotations

from pathlib import Path

import pytest

from prunelab.runs import viewer
from prunelab.runs.viewer import ViewerModeError
from prunelab.scheduling.ray_backend import RaySuiteRunner
from prunelab.scheduling.suites import Suite, SuiteRun
from tests.helpers import assert_viewer_refusal, folder_snapshot, tiny_config

pytestmark = pytest.mark.ray


def test_no_ray_runner_is_made_in_viewer_mode(tmp_path: Path, viewer_on: None) -> None:
    with pytest.raises(ViewerModeError) as refused:
        RaySuiteRunner(tmp_path / "runs")
    assert_viewer_refusal(refused, "cannot start the Ray runner")
    assert not (tmp_path / "runs").exists()


def test_a_ray_runner_made_before_refuses_every_request(tmp_path: Path) -> None:
    runner = RaySuiteRunner(tmp_path / "runs")  # not connected: Ray is imported, not started
    before = folder_snapshot(tmp_path)
    viewer.set_active(True)
    try:
        with pytest.raises(ViewerModeError) as refused:
            runner.submit(tiny_config())
        assert_viewer_refusal(refused, "cannot start a run")
        with pytest.raises(ViewerModeError) as refused:
            runner.submit_suite(Suite("one", "one-1", (SuiteRun("a", tiny_config()),)))
        assert_viewer_refusal(refused, "cannot start a suite")
        with pytest.raises(ViewerModeError) as refused:
            runner.cancel("any-run")
        assert_viewer_refusal(refused, "cannot cancel run any-run")
    finally:
        viewer.set_active(None)
        runner.shutdown(timeout=5.0)
    assert folder_snapshot(tmp_path) == before

"""Viewer mode and the local scheduler: no `JobManager` is made, and one made before refuses to submit a run or a
suite, to cancel and to resume, in one line naming viewer mode, with the runs folder left as it was; the app's delete
path (`results.delete_run`) is refused too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from prunelab.analysis import results
from prunelab.runs import viewer
from prunelab.runs.store import RunStore
from prunelab.runs.viewer import ViewerModeError
from prunelab.scheduling.jobs import JobManager, list_jobs
from prunelab.scheduling.suites import Suite, SuiteRun
from tests.helpers import assert_viewer_refusal, folder_snapshot, tiny_config


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[JobManager]:
    """A manager made before viewer mode is on, its workers not started (a submitted run stays queued) and its
    heartbeat slow, so nothing but a request writes into the runs folder during a test."""
    jm = JobManager(tmp_path / "runs", autostart=False, heartbeat_s=3600.0)
    yield jm
    viewer.set_active(False)  # a viewer refuses cancel: the teardown shuts the manager down as its owner
    try:
        jm.shutdown(cancel_running=True, timeout=30.0)
    finally:
        viewer.set_active(None)


def test_no_job_manager_is_made_in_viewer_mode(tmp_path: Path, viewer_on: None) -> None:
    """Making one would already write: it marks stale runs of the folder interrupted."""
    root = tmp_path / "runs"
    with pytest.raises(ViewerModeError) as refused:
        JobManager(root)
    assert_viewer_refusal(refused, "cannot start the job manager")
    assert not root.exists()


def test_a_manager_made_before_refuses_every_request(manager: JobManager) -> None:
    queued = manager.submit(tiny_config(), "queued-before")
    root = manager.runs_dir
    before = folder_snapshot(root)
    viewer.set_active(True)
    with pytest.raises(ViewerModeError) as refused:
        manager.submit(tiny_config(), "new")
    assert_viewer_refusal(refused, "cannot start a run")
    suite = Suite("one", "one-1", (SuiteRun("a", tiny_config()), SuiteRun("b", tiny_config())))
    with pytest.raises(ViewerModeError) as refused:
        manager.submit_suite(suite)
    assert_viewer_refusal(refused, "cannot start a suite")
    with pytest.raises(ViewerModeError) as refused:
        manager.cancel(queued)
    assert_viewer_refusal(refused, f"cannot cancel run {queued}")
    with pytest.raises(ViewerModeError) as refused:
        manager.resume(queued, from_scratch=True)
    assert_viewer_refusal(refused, f"cannot resume run {queued}")
    assert folder_snapshot(root) == before  # no run made, none cancelled or requeued
    assert [job.state for job in manager.jobs()] == ["queued"]
    assert [job.run_id for job in list_jobs(root)] == [queued]  # reading the folder is untouched


def test_deleting_a_run_from_the_app_is_refused(tmp_path: Path) -> None:
    run = RunStore(tmp_path / "runs").create(tiny_config(), "kept").path
    before = folder_snapshot(run)
    viewer.set_active(True)
    try:
        with pytest.raises(ViewerModeError) as refused:
            results.delete_run(run)
    finally:
        viewer.set_active(None)
    assert_viewer_refusal(refused, "cannot delete run kept")
    assert folder_snapshot(run) == before

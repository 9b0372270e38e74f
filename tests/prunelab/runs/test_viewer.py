"""Viewer mode in the core: the switch (read once, a misspelt value refused), and every write into a runs folder
refused in one line naming viewer mode and how to leave it, before anything is written: creating, training and
deleting a run, the CLI's run and resume, and a computed view written into a run directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from prunelab.analysis import views
from prunelab.runs import viewer
from prunelab.runs.run_format import RunStoreError
from prunelab.runs.store import RunStore
from prunelab.runs.viewer import ViewerModeError
from prunelab.training.engine import run_training
from tests.helpers import assert_viewer_refusal, folder_snapshot, run_cli, tiny_config


@pytest.fixture
def a_run(tmp_path: Path) -> Path:
    """A queued run made before viewer mode is switched on."""
    return RunStore(tmp_path / "runs").create(tiny_config(), "made-before").path


@pytest.mark.parametrize(("value", "on"), [(None, False), ("", False), ("0", False), ("off", False), ("No", False),
                                           ("1", True), ("true", True), (" YES ", True), ("on", True)])
def test_the_switch_reads_the_usual_words(value: str | None, on: bool) -> None:
    assert viewer.parse(value) is on


@pytest.mark.parametrize("value", ["2", "viewer", "enabled", "y"])
def test_a_value_that_is_not_a_switch_is_refused_in_one_line(value: str) -> None:
    """A misspelt switch must not leave a class server writable: it is refused, naming the variable and the words."""
    with pytest.raises(ViewerModeError) as refused:
        viewer.parse(value)
    text = str(refused.value)
    assert text.startswith(f"PRUNELAB_VIEWER={value!r} is not a switch") and "1, true, yes, on" in text
    assert "\n" not in text


def test_the_environment_is_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(viewer.ENV, "1")
    viewer.set_active(None)
    try:
        assert viewer.active()
        monkeypatch.setenv(viewer.ENV, "0")
        assert viewer.active()  # read once: a later change of the environment does not turn a viewer writable
        viewer.set_active(None)
        assert not viewer.active()
    finally:
        viewer.set_active(None)


def test_creating_a_run_is_refused_and_makes_no_folder(tmp_path: Path, viewer_on: None) -> None:
    root = tmp_path / "runs"
    with pytest.raises(ViewerModeError) as refused:
        RunStore(root).create(tiny_config(), "x")
    assert_viewer_refusal(refused, "cannot create a run")
    assert not root.exists()
    assert isinstance(refused.value, RunStoreError)  # the store's callers already handle its errors


def test_deleting_a_run_is_refused_and_keeps_it(a_run: Path, viewer_on: None) -> None:
    before = folder_snapshot(a_run)
    with pytest.raises(ViewerModeError) as refused:
        RunStore(a_run.parent).delete(a_run.name)
    assert_viewer_refusal(refused, "cannot delete run made-before")
    assert folder_snapshot(a_run) == before


def test_training_a_run_is_refused_before_anything_is_written(a_run: Path, viewer_on: None) -> None:
    from prunelab.runs.store import RunDir

    before = folder_snapshot(a_run)
    with pytest.raises(ViewerModeError) as refused:
        run_training(tiny_config(), RunDir(a_run))
    assert_viewer_refusal(refused, "cannot train run made-before")
    assert folder_snapshot(a_run) == before  # status.json still says queued: the refusal is not recorded as a failure


@pytest.mark.parametrize("compute", [
    lambda run: views.compute_whatif(run, [0.5]),
    lambda run: views.compute_umaps(run),
    lambda run: views.compute_prune(run),
    lambda run: views.precompute(run),
])
def test_a_view_is_not_written_into_a_run_directory(a_run: Path, viewer_on: None, compute: object) -> None:
    (a_run / "model.pt").write_bytes(b"")  # precompute picks the ManiDP views by the model's presence
    (a_run / "per_image.parquet").write_bytes(b"")
    before = folder_snapshot(a_run)
    with pytest.raises(ViewerModeError) as refused:
        compute(a_run)  # type: ignore[operator]
    assert str(refused.value).startswith("cannot write ") and " into run made-before: " in str(refused.value)
    assert folder_snapshot(a_run) == before


def test_the_cli_refuses_run_and_resume_with_exit_2(a_run: Path, viewer_on: None) -> None:
    root = a_run.parent
    before = folder_snapshot(root)
    code, out, err = run_cli("run", "baseline", "--runs-dir", str(root), "--epochs", "1", "--train-size", "100",
                             "--test-size", "50")
    assert code == 2 and err.startswith("error: cannot create a run: this PruneLab is a read-only viewer")
    assert len(err.strip().splitlines()) == 1
    code, out, err = run_cli("resume", str(a_run))
    assert code == 2 and err.startswith("error: cannot start the job manager: this PruneLab is a read-only viewer")
    code, out, err = run_cli("suite", "sweep", "--param", "lambda", "--values", "0", "--runs-dir", str(root))
    assert code == 2 and "read-only viewer" in err
    assert folder_snapshot(root) == before
    code, out, err = run_cli("list", "--runs-dir", str(root))  # reading is untouched
    assert code == 0 and "made-before" in out

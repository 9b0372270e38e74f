"""The app as a read-only viewer (`PRUNELAB_VIEWER=1`, `streamlit run app.py -- --viewer`): the Runs page is the runs
table with a one-line note, no page offers to train, cancel, resume, delete, upload or compute a view, and every page
still renders for reading; the `--viewer` option and a misspelt switch."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app_components import viewer_mode
from prunelab.analysis import results
from prunelab.runs import viewer
from prunelab.runs.run_format import PRUNE_CURVE_FILE, UMAP_FILE, WHATIF_CURVE_FILE
from tests.app_pages.test_app import APP, PAGES, TIMEOUT, assert_clean, open_page

# what a viewer must not offer: a button, form or link that starts, stops, resumes, deletes, uploads or computes
OFFER = re.compile(r"\b(start|run the demo|cancel|delete|resume|restart|compute|upload)\b", re.I)
ALL_PAGES = [*PAGES, "app_pages/speed.py"]


def offers(at: AppTest) -> list[str]:
    """The labels of every button (form submit buttons included), page link and uploader the page shows that offer to
    change a run or compute a view, and the keys of the run and suite forms' widgets."""
    labels = [button.label for button in at.button]
    labels += [link.proto.label for link in at.get("page_link")]
    found = [label for label in labels if OFFER.search(label)]
    found += [f"uploader {up.proto.label}" for up in at.get("file_uploader")]
    keys = [getattr(widget, "key", None) or "" for widget in (*at.text_input, *at.selectbox, *at.number_input,
                                                               *at.radio, *at.checkbox)]
    found += [key for key in keys if key.startswith(("form_", "suite_"))]
    return found


@pytest.fixture
def demo_env(empty_runs_dir: Path, data_cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The app reads the bundled demos and an empty runs folder, as a class server on a fresh machine."""
    if not results.DEMO_RUNS_DIR.is_dir():
        pytest.skip("the bundled demo is not in this checkout")
    monkeypatch.setenv("PRUNELAB_RUNS_DIR", str(empty_runs_dir))
    monkeypatch.delenv(results.NO_DEMO_ENV, raising=False)
    monkeypatch.chdir(Path(APP).parent)
    return empty_runs_dir


@pytest.fixture
def unviewed_runs(fixture_runs_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the fixture runs without any stored view (another page test may have computed one into them): the
    app reads it, the demo hidden."""
    runs = tmp_path / "runs"
    views = shutil.ignore_patterns(WHATIF_CURVE_FILE, UMAP_FILE, PRUNE_CURVE_FILE)
    shutil.copytree(fixture_runs_dir, runs, ignore=views)
    monkeypatch.setenv("PRUNELAB_RUNS_DIR", str(runs))
    monkeypatch.setenv(results.NO_DEMO_ENV, "1")
    monkeypatch.chdir(Path(APP).parent)
    return runs


def test_the_runs_page_is_the_runs_table_with_a_note(demo_env: Path, viewer_on: None) -> None:
    at, _ = open_page("app_pages/runs.py")
    assert_clean(at)
    assert at.title[0].value == "Runs: browse"
    notes = [str(info.value) for info in at.info]
    assert len(notes) == 1 and notes[0].startswith("This PruneLab is a **read-only viewer**")
    table = at.dataframe[0].value
    assert len(table) and table["demo"].all()  # the demos, listed read-only
    assert not offers(at), offers(at)
    assert not at.tabs  # no "Start a run" / "Start a suite" tabs
    assert any(viewer_mode.SIDEBAR in str(caption.value) for caption in at.sidebar.caption)


def test_the_offers_check_sees_the_forms_when_not_a_viewer(demo_env: Path) -> None:
    """The same page on a normal server offers them all: the check above is not blind."""
    at, _ = open_page("app_pages/runs.py")
    found = " ".join(offers(at))
    assert "Start run" in found and "Start suite" in found and "Run the demo live" in found and "form_method" in found
    assert "Delete selected runs (0)" in found and "Resume selected (0)" in found


@pytest.mark.slow
@pytest.mark.parametrize("page", ALL_PAGES)
def test_every_page_renders_for_reading_and_offers_nothing(demo_env: Path, viewer_on: None, page: str) -> None:
    at, seconds = open_page(page)
    assert_clean(at)
    assert not offers(at), (page, offers(at))
    print(f"{page}: {seconds:.1f} s in viewer mode")


@pytest.mark.slow
@pytest.mark.parametrize("page", ALL_PAGES)
def test_a_chosen_runs_folder_is_read_and_nothing_is_offered(unviewed_runs: Path, viewer_on: None, page: str) -> None:
    """The fixture runs (a ManiDP run with its model but no stored views, a running, a failed and broken runs) in
    viewer mode: no compute, resume or delete offer on any page, and nothing written into the folder."""
    before = {path: path.stat().st_mtime_ns for path in unviewed_runs.rglob("*")}
    at, _ = open_page(page)
    assert_clean(at)
    assert not offers(at), (page, offers(at))
    assert {path: path.stat().st_mtime_ns for path in unviewed_runs.rglob("*")} == before
    said = " ".join(str(element.value) for element in (*at.info, *at.caption))
    assert NOT_STORED.get(page, "") in said  # instead of a compute button, why the view is not there


# what a viewer says where a normal server offers to compute a view of the fixture ManiDP run
NOT_STORED = {"app_pages/per_image.py": viewer_mode.NOT_COMPUTED,
              "app_pages/similarity.py": "is not stored with this run, and this read-only viewer computes none"}


@pytest.mark.slow
@pytest.mark.parametrize(("page", "offer"), [("app_pages/per_image.py", "Compute the what-if"),
                                             ("app_pages/similarity.py", "Compute the map"),
                                             ("app_pages/runs.py", "Resume selected")])
def test_the_same_runs_offer_them_on_a_normal_server(unviewed_runs: Path, page: str, offer: str) -> None:
    """The check above is not blind: on a normal server these pages offer to compute or resume."""
    at, _ = open_page(page)
    assert any(found.startswith(offer) for found in offers(at)), offers(at)


def test_the_viewer_option_is_read_from_the_scripts_arguments() -> None:
    try:
        assert viewer_mode.apply_options(["/srv/prunelab/app.py", "--viewer"]) is None
        assert viewer.active()
        viewer.set_active(False)
        assert viewer_mode.apply_options(["/srv/prunelab/app.py"]) is None and not viewer.active()
        problem = viewer_mode.apply_options(["app.py", "--veiwer"])
        assert problem == ("unknown option '--veiwer' after `streamlit run app.py --`: the app takes --viewer (a "
                           "read-only viewer) and nothing else")
        assert viewer_mode.apply_options(["/usr/bin/pytest", "-q", "--anything"]) is None  # not `streamlit run`
    finally:
        viewer.set_active(None)


def test_a_misspelt_switch_stops_the_app_with_one_line(demo_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(viewer.ENV, "yes please")
    viewer.set_active(None)
    try:
        at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    finally:
        viewer.set_active(None)
    assert not at.exception
    assert [str(error.value) for error in at.error] == [
        "PRUNELAB_VIEWER='yes please' is not a switch: 1, true, yes, on turn viewer mode on; '', '0', 'false', 'no', "
        "'off' (or unset) leave it off"]
    assert not at.title and not at.button  # no page is drawn

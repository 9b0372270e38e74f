"""Every page beside runs with one malformed file each (tests/broken_runs.py): no exception, the good runs
still shown, and a message that names the broken file and tells "missing" from "corrupt"."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.app_pages.page_helpers import as_shown, frame_with
from tests.broken_runs import GOOD, make_broken_runs

PAGES = Path(__file__).resolve().parents[2] / "app_pages"
ROOT = PAGES.parent
TIMEOUT = 60


@pytest.fixture
def broken_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[Path, str]]:
    cases = make_broken_runs(tmp_path / "runs")
    monkeypatch.setenv("PRUNELAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("PRUNELAB_NO_DEMO", "1")
    monkeypatch.chdir(ROOT)
    return cases


def render(page: str, **selected: Path) -> AppTest:
    """Run `page` with its run pickers preset (so no other run is rendered first); no exception allowed."""
    at = AppTest.from_file(str(PAGES / page), default_timeout=TIMEOUT)
    for key, path in selected.items():
        at.session_state[key] = str(path)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements: object) -> str:
    """What the elements show (a file's problem is escaped markdown: `common.md_text`)."""
    return as_shown(" | ".join(str(element.value) for element in elements))


def test_runs_page_lists_broken_runs_with_their_problem(broken_env: dict) -> None:
    at = render("runs.py")
    table = at.dataframe[0].value.set_index("name")
    assert set(table.index) == set(GOOD) | set(broken_env)
    assert (table.loc[list(GOOD), "state"] == "done").all() and table.loc[list(GOOD), "problem"].isna().all()
    for case, (_, file) in broken_env.items():
        assert table.loc[case, "state"] == "broken" and f"{file} is " in table.loc[case, "problem"], case
    assert "probe.npz is missing" in table.loc["npz-missing", "problem"]
    assert "probe.npz is corrupt" in table.loc["npz-corrupt", "problem"]
    assert "status.json is corrupt" in table.loc["status-list", "problem"]
    assert "listed as *broken*" in texts(at.warning)


@pytest.mark.parametrize(("case", "message"), [
    ("pruning-shape", "pruning.json is corrupt: layers: Input should be a valid list"),
    ("slim-summary-na", "summary.json is corrupt: test_acc: Input should be a valid number (got 'n/a')"),
    ("gamma-corrupt", "gamma_history.npz is corrupt: not a readable .npz archive"),
])
def test_slimming_page_names_the_corrupt_file(broken_env: dict, case: str, message: str) -> None:
    path, _ = broken_env[case]
    at = render("slimming.py", slim_run=path, slim_compare_shapes=[path])
    assert message in texts(at.error)
    assert "not finished yet" not in texts(at.info) and "No γ history yet" not in texts(at.info)
    assert "is written when sparsity training ends" not in texts(at.info)


@pytest.mark.parametrize(("case", "message"), [
    ("parquet-corrupt", "per_image.parquet is corrupt: not a readable parquet file"),
    ("parquet-missing", "has finished but `per_image.parquet` is missing"),
])
def test_per_image_page_tells_missing_from_corrupt(broken_env: dict, case: str, message: str) -> None:
    at = render("per_image.py", pi_run=broken_env[case][0])
    assert message in texts(at.error)
    assert not at.info or "when training ends" not in texts(at.info)  # not "not written yet": the run is done
    assert not at.get("plotly_chart")


@pytest.mark.parametrize(("case", "message"), [
    ("npz-corrupt", "probe.npz is corrupt: not a readable .npz archive"),
    ("npz-missing", "has finished but `probe.npz` is missing"),
])
def test_similarity_page_tells_missing_from_corrupt(broken_env: dict, case: str, message: str) -> None:
    at = render("similarity.py", sim_run=broken_env[case][0])
    assert message in texts(at.error)
    assert not at.get("plotly_chart")


def test_ablations_page_shows_the_good_runs(broken_env: dict) -> None:
    at = render("ablations.py")
    names = set(frame_with(at, "name", "variant")["name"])
    assert set(GOOD) <= names and not {"status-list", "summary-na", "slim-summary-na"} & names

"""The Lessons page (AppTest, against the fixture runs): each tour renders every step from its URL, and the
controls move the URL (the page's one source of where the tour stands, so back and forward walk the steps; a real
browser's back button is tests/test_browser_lessons.py's)."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from app_components.shell import PAGES
from prunelab.analysis import tours
from tests.app_pages.test_app import APP, TIMEOUT, assert_clean

PAGE = "app_pages/lessons.py"


def open_step(params: dict[str, str]) -> AppTest:
    """The app on the Lessons page with `params` as the URL's query."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(params)
    at.run()
    at.switch_page(PAGE).run()
    return at


def test_the_lessons_come_first_after_the_overview() -> None:
    assert [page.file for page in PAGES[:2]] == ["app_pages/home.py", PAGE]
    assert PAGES[1].url_path == "lessons"


def test_each_tour_renders_every_step_from_its_url(runs_env: Path) -> None:
    at = open_step({})
    assert_clean(at)
    for key, tour in tours.TOURS.items():
        for number, step in enumerate(tour.steps, start=1):
            at.query_params.clear()
            at.query_params.update({"tour": key, "step": str(number), "dataset": "shapes"})
            at.run()
            assert_clean(at)
            where = (key, number)
            assert at.subheader[0].value == f"{number}. {step.title}", where
            assert at.get("plotly_chart"), where  # every step draws its chart on the fixture runs
            texts = " ".join(str(m.value) for m in at.markdown)
            assert step.question in texts and step.claim in texts, where
            assert any(f"tour={key}&step={number}&dataset=shapes" in str(c.value) for c in at.code), where


def test_the_controls_move_the_url(runs_env: Path) -> None:
    at = open_step({"tour": "manidp", "step": "3", "dataset": "shapes"})
    assert at.subheader[0].value.startswith("3. ")
    at.button(key="lesson_next").click().run()
    assert at.query_params["step"] == "4" and at.subheader[0].value.startswith("4. ")
    knob = at.selectbox(key="lesson_knob_manidp_4")
    other = next(option for option in knob.options if option != knob.value)
    knob.select(other).run()
    assert at.query_params["knob"] == other and at.selectbox(key="lesson_knob_manidp_4").value == other
    at.button(key="lesson_back").click().run()
    assert at.query_params["step"] == "3" and "knob" not in at.query_params
    # the URL moved back (the browser's back button): the page and its knob follow it
    at.query_params.update({"step": "4", "knob": other})
    at.run()
    assert at.subheader[0].value.startswith("4. ") and at.selectbox(key="lesson_knob_manidp_4").value == other
    assert_clean(at)


def test_a_url_naming_an_unknown_step_opens_the_first(runs_env: Path) -> None:
    at = open_step({"tour": "nonsense", "step": "zero"})
    assert_clean(at)
    first = next(iter(tours.TOURS.values()))
    assert at.subheader[0].value == f"1. {first.steps[0].title}"

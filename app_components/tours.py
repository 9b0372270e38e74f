"""The Lessons page's drawing of the guided tours (`prunelab.analysis.tours`: the steps, their knobs and views are
the core's, cached here per runs table, step and knob value).

The URL is where a tour stands (`?tour=...&step=...&dataset=...&knob=...`): every control writes the new place into
it (`st.query_params`, a browser history entry each), and every run reads it back and sets the controls from it, so a
shared link opens that step and the browser's back and forward buttons walk the steps. A URL without parameters is
the first step of the first tour (nothing is written until the reader moves, so back never lands on a page that
writes its URL again).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from app_components import common, images, shell
from prunelab.analysis import tours
from prunelab.analysis.tour_base import Step, StepView
from prunelab.config import dataset_short_name

PLACE = "_lesson_place"  # the place this run drew: what a control's callback moves from
PER_ROW = 6  # a step's images to a row (a gallery of the cheapest and the costliest: one row each)
CHART_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}  # PNGs sharp on slides


def where(names: list[str]) -> tours.Place:
    """The place the URL names among the datasets `names`, remembered for the controls' callbacks."""
    at = tours.place(st.query_params.to_dict(), names)
    st.session_state[PLACE] = at
    return at


def _go(**change: Any) -> None:
    """Move to another place: write it into the URL (the next run reads it back)."""
    at = replace(st.session_state[PLACE], **change)
    st.query_params.from_dict(tours.url_params(at))


def _pick(key: str, field: str) -> None:
    """A control's callback: move `field` of the place to the control's new value (another tour starts at its first
    step; the knob starts at the new step's default). A segmented control clicked off (None) moves nothing."""
    value = st.session_state.get(key)
    if value is not None:
        _go(**{field: value, "knob": None}, **({"step": 1} if field == "tour" else {}))


def _following(key: str, value: Any) -> str:
    """Set the control `key` to the URL's `value` before it is drawn (back and forward move it); its key."""
    st.session_state[key] = value
    return key


def controls(at: tours.Place, names: list[str]) -> None:
    """The tour, the dataset (when the runs hold several) and the step, each moving the URL."""
    left, right = st.columns([1, 1])
    left.segmented_control("Tour", list(tours.TOURS), key=_following("lesson_tour", at.tour),
                           format_func=lambda key: tours.TOURS[key].title, on_change=_pick,
                           args=("lesson_tour", "tour"))
    if len(names) > 1:
        right.segmented_control("Dataset", names, key=_following("lesson_dataset", at.dataset),
                                format_func=dataset_short_name, on_change=_pick, args=("lesson_dataset", "dataset"))
    steps = tours.TOURS[at.tour].steps
    st.segmented_control("Step", list(range(1, len(steps) + 1)), key=_following("lesson_step", at.step),
                         format_func=lambda n: f"{n}. {steps[n - 1].title}", on_change=_pick,
                         args=("lesson_step", "step"))


def knob(table: pd.DataFrame, at: tours.Place, step: Step) -> Any:
    """The step's one knob, on the value the URL names (else its default); its value (None: the runs offer none)."""
    options, default = common.computed(tours.knob, table, tour=at.tour, step=at.step)
    if not options:
        return None
    value = tours.knob_value(options, at.knob, default)
    spec, key = step.knob, f"lesson_knob_{at.tour}_{at.step}"
    if len(options) == 1:
        st.caption(f"{spec.label}: {common.md_text(spec.text(value))} (the only one these runs hold)")
        return value
    widget = st.select_slider if spec.slider else st.selectbox if len(options) > 5 else st.segmented_control
    widget(spec.label, options, key=_following(key, value), format_func=spec.text, help=spec.help or None,
           on_change=_turned, args=(key,))
    return value


def _turned(key: str) -> None:
    """The knob's callback: its new value into the URL."""
    value = st.session_state.get(key)
    if value is not None:
        _go(knob=tours.value_key(value))


def show(table: pd.DataFrame, at: tours.Place, step: Step, value: Any) -> None:
    """The step's view at `value`: chart and images, the paper's claim beside what the demo measures, the claims as
    judged, a link to the full page and to this step."""
    view: StepView = common.computed(tours.view, table, tour=at.tour, step=at.step, value=value)
    if view.figure is not None:
        st.plotly_chart(view.figure, key=f"tour_chart_{at.tour}_{at.step}", config=CHART_CONFIG)
    if view.note:
        st.info(common.md_text(view.note))
    if view.images:
        st.caption(common.md_text(view.images_note))
        images.image_grid([images.upscale(image) for _, image in view.images],
                          [common.md_text(caption) for caption, _ in view.images], f"tour_{at.tour}_{at.step}",
                          per_row=PER_ROW)
    paper, measured = st.columns(2, gap="medium")
    paper.markdown(f"**The paper.** {step.claim}")
    with measured:
        st.markdown(f"**What the demo measures.** {step.measures}")
        for line in view.measured:
            st.markdown(f"- {common.md_text(line)}")
    common.show_claims(view.claims)
    more = {"run": view.run} if view.run else None
    shell.page_link(step.page, "The full page, for more", icon=":material/open_in_new:", query_params=more)


def footer(at: tours.Place, steps: int) -> None:
    """Back and next, and this step's link (for a slide)."""
    back, link, forward = st.columns([1, 4, 1])
    back.button("← Previous step", key="lesson_back", disabled=at.step == 1, on_click=_go,
                kwargs={"step": at.step - 1, "knob": None})
    forward.button("Next step →", key="lesson_next", disabled=at.step == steps, on_click=_go,
                   kwargs={"step": at.step + 1, "knob": None})
    link.caption("This step's link (put it on a slide):")
    link.code(f"{_base_url()}?{urlencode(tours.url_params(at))}", language=None)


def warm_up(runs: pd.DataFrame) -> None:
    """Load the test images the tours show in the background, once per server and runs (no Streamlit call there)."""
    _warm_up(tuple(common.computed(tours.image_runs, runs)))


@st.cache_resource(show_spinner=False, max_entries=4)
def _warm_up(paths: tuple[str, ...]) -> Any:
    return tours.warm_up_in_background(paths)


def _base_url() -> str:
    """This page's address without its query (the page path alone where the browser's is unknown)."""
    url = getattr(st.context, "url", None) or ""
    return url.split("?", 1)[0] if url else "/lessons"

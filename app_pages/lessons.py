"""Lessons: a guided tour of each paper, one question, one knob and one view per step, over the bundled demos."""

import streamlit as st

from app_components import common, tours
from prunelab.analysis import tours as core

common.title("Lessons: a guided tour of each paper")
st.caption("One question per step, one knob, and the view that answers it, with the paper's claim beside what the "
           "demo measures (mean ± std over seeds). Every step has its own link; the browser's back and forward "
           "buttons walk the steps. The same tours, without a server: `python -m prunelab report RUNS_DIR --out "
           "lesson.html`.")
runs = common.runs_frame()
names = core.datasets(runs)
if not names:
    st.info("The tours read finished runs: the bundled demos, or the runs of your runs folder. Start the `demo` "
            "suite on the **Runs** page to make them.")
    st.stop()
at = tours.where(names)
tours.controls(at, names)
table = common.computed(core.tour_table, runs, dataset=at.dataset)
step = core.step_of(at.tour, at.step)
st.subheader(f"{at.step}. {step.title}")
st.markdown(f"**{step.question}**")
value = tours.knob(table, at, step)
tours.show(table, at, step, value)
tours.footer(at, len(core.TOURS[at.tour].steps))
tours.warm_up(runs)  # after the first step is drawn: the images a later step shows

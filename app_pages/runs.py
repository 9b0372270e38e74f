"""Runs: start runs and suites, watch jobs live, browse and delete finished runs."""

import streamlit as st

from app_components import common, run_widgets

common.title("Runs: start, watch, browse")
st.markdown(
    "Start a baseline, Network Slimming or ManiDP run (or a whole suite), follow it in the jobs table and "
    "on the **Live training** page, and browse every run on disk."
)
runs = common.runs_frame()
run_widgets.first_visit_note(runs)

start_run, start_suite = st.tabs(["Start a run", "Start a suite"])
with start_run:
    run_widgets.run_form()
with start_suite:
    run_widgets.suite_form()

st.subheader("Jobs")
run_widgets.jobs_panel()

st.subheader("Runs")
run_widgets.runs_browser(runs)

"""Runs: start runs and suites, watch jobs live, browse and delete finished runs (on a read-only viewer: browse)."""

import streamlit as st

from app_components import common, run_widgets, viewer_mode

if viewer_mode.active():  # no form, no jobs, no delete or resume: the runs table alone
    common.title("Runs: browse")
    viewer_mode.note()
    run_widgets.runs_browser(common.runs_frame(), read_only=True)
    st.stop()

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

"""Runs (home): start runs and suites, watch jobs live, browse and delete finished runs."""

import streamlit as st

from app_components import common, run_widgets

common.title("PruneLab: channel pruning you can watch")
st.markdown(
    "PruneLab trains small CNNs and removes channels in two ways. **Network Slimming** pushes BatchNorm "
    "scales γ toward zero with an L1 penalty, then cuts every channel under one global threshold: a "
    "smaller static network. **ManiDP** learns a gate per layer that keeps a different subset of channels "
    "for every image, so easy images cost fewer " + common.MAC_LABEL + " than hard ones."
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

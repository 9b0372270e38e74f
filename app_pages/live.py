"""Live training: one run's loss and accuracy per epoch and phase, its method's internals, log and files,
redrawn every few seconds while it trains."""

import streamlit as st

from app_components import common, live_view

common.title("Live training")
st.caption("Pick any run, running or finished. While it trains this view re-reads its files every "
           f"{live_view.POLL_S:g} s; the rest of the app stays usable.")
run = live_view.pick_run()
if run is None:
    st.stop()
live_view.watch(run)

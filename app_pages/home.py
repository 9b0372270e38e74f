"""Overview (home): what the bundled demo shows, in one screen, and one click to start or watch a run."""

import streamlit as st

from app_components import common, overview, paper_points
from prunelab.analysis import live

common.title("PruneLab: channel pruning you can watch")
overview.links()
runs = common.runs_frame()
variants, beside = common.computed(live.chart_runs, runs)
if variants.empty:
    overview.method_sentences()
    overview.no_demo_message()
    st.stop()
dataset = common.pick_dataset(variants["dataset"], "Demo dataset", key="home_dataset")
chart, side = st.columns([3, 2], gap="medium")
with chart:
    points = paper_points.published(runs[runs["dataset"] == dataset])  # only for CIFAR-10
    st.plotly_chart(overview.accuracy_macs_figure(variants, beside, dataset, points), key="home_chart")
    if points:
        st.caption(paper_points.caption(len(points)))
    if left_off := live.other_settings(variants[variants["dataset"] == dataset], beside):
        st.caption(f"{left_off} of your finished runs on this dataset use another model or width than the demo "
                   "and are left off this chart; the **Ablations** page charts each setting in its own panel.")
with side:
    overview.method_sentences()
    overview.image_strip(runs, dataset)
overview.chart_caption(runs, reduction=bool(points))

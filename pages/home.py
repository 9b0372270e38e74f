"""Overview (home): what the bundled demo shows, in one screen, and one click to start or watch a run."""

import streamlit as st

from app_components import common, overview

common.title("PruneLab: channel pruning you can watch")
overview.links()
runs = common.runs_frame()
variants = overview.chart_variants(runs)
if variants.empty:
    overview.no_demo_message()
    st.stop()
dataset = overview.pick_dataset(variants)
chart, side = st.columns([3, 2], gap="medium")
with chart:
    st.plotly_chart(overview.accuracy_macs_figure(variants, overview.user_runs(runs), dataset), key="home_chart")
with side:
    overview.method_sentences()
    overview.image_strip(runs, dataset)
st.caption("Top-left is best: high accuracy at few MACs. Each point is a variant of the bundled demo, averaged "
           "over its seeds (bars: ± one standard deviation). The **Slimming**, **Per-image MACs**, "
           "**Similarity** and **Ablations** pages explain each method on these runs.")

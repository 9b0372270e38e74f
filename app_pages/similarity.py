"""Similarity: do images with similar features get similar sub-networks (ManiDP's manifold term)?"""

from pathlib import Path

import plotly.express as px
import streamlit as st

from app_components import common, method_card, subnet_map
from prunelab.analysis import figures, tables
from prunelab.methods.manidp import lesson_runs
from prunelab.methods.manidp.artefacts import PER_IMAGE, PROBE
from prunelab.methods.manidp.claims import claims as manidp_claims
from prunelab.methods.manidp.config import NAME as MANIDP
from prunelab.runs.run_format import PROBE_FILE

common.title("Similarity alignment")
common.explain(
    "For a batch of images, R holds the cosine similarity of their pooled features at a layer and T the "
    "cosine similarity of their gate vectors π (which channels they keep). ManiDP's similarity term "
    "penalises ‖T − R‖, so images that look alike to the network should also share a sub-network. Whether "
    "the term trains the gates alone or the backbone too, and which features R is built from, depends on the "
    "run's form: its method card, below the run picker, shows the formulas exactly as the run computed them. "
    "‖T − R‖ is the term's own objective (training lowers it almost by construction); the paper's claim is "
    "judged on held-out pairs, as the rank correlation ρ(R, T) with the term on against off.",
)


run = common.pick_run("ManiDP run", methods=[MANIDP], key="sim_run", default=lesson_runs.opening_run, param="run")
if run is None:
    st.stop()
method_card.show(run)
probe = common.read(run, PROBE)
if probe is None:
    common.report_missing(run, PROBE_FILE, "ManiDP writes the probe set (probe.npz) when training ends.")
    st.stop()

st.subheader("T, R and T − R at one layer")
layer = st.selectbox("Layer (opens on the one whose feature similarity varies most)", probe.layer_names,
                     index=lesson_runs.heatmap_layer(probe.R), key="sim_layer")
position = probe.layer_names.index(layer)
t, labels = tables.order_by_class(probe.T[position], probe.labels)
r, _ = tables.order_by_class(probe.R[position], probe.labels)
st.plotly_chart(figures.similarity_heatmaps(t, r), key="sim_heatmaps")
st.metric(f"Frobenius distance ‖T − R‖ at {common.md_text(layer)} ({len(labels)} probe images)",
          f"{tables.frobenius_gap(t, r):.3f}")

st.subheader("‖T − R‖ per layer: with and without the similarity term")
runs_table = common.runs_frame()
runs = runs_table.set_index("path")
paths = common.pick_runs("Runs to compare (to start with, the chosen run and its twin with the similarity term "
                         "switched, same seed)", methods=[MANIDP], key="sim_compare",
                         dataset=common.dataset_of(run), default=lesson_runs.similarity_comparison(runs_table, run),
                         param="compare", follow=run) or [run]
gaps = {}
for path in paths:
    other = common.read(path, PROBE)
    if other is not None:
        setting = tables.variant_label(runs.loc[str(path)]) if str(path) in runs.index else "ManiDP"
        gaps[f"{Path(path).name} ({setting})"] = tables.similarity_gaps(other.layer_names, other.T, other.R)
scaled = st.toggle("Divide by the probe size P (compare runs with different probe sets)", key="sim_scaled")
value = "gap_per_pair" if scaled else "gap"
fig = px.bar(tables.gap_comparison(gaps), x="layer", y=value, color="run", barmode="group",
             labels={"gap": "‖T − R‖_F", "gap_per_pair": "‖T − R‖_F / P", "run": "run"})
st.plotly_chart(fig.update_layout(height=380, legend={"orientation": "h", "y": -0.3}), key="sim_gaps")

summary = common.summary_of(run) or {}
figures = [("similarity_rank_correlation", "ρ(R, T) over held-out test pairs", ".3f",
            "Spearman's rank correlation of feature similarity R and gate similarity T over the probe's test "
            "image pairs, mean over layers: the paper's claim, similar images get similar sub-networks."),
           ("macs_cv", "Per-image MACs CV", ".3f", "std / mean of per-image MACs: 0, every image costs the same."),
           ("decision_disagreement", "Gate decisions off their channel's majority", ".1%",
            "0% means one static sub-network for every image: then no similarity between images can show.")]
for column, (key, label, fmt, help_text) in zip(st.columns(3), figures, strict=True):
    if summary.get(key) is not None:
        column.metric(label, f"{summary[key]:{fmt}}", help=help_text)
setting = common.setting_runs(run)
common.show_claims(common.computed(manidp_claims, setting, figure="similarity_rank_correlation")
                   + common.computed(manidp_claims, setting, figure="similarity_gap_mean"),
                   empty=f"Finished ManiDP runs with and without the similarity term, {common.IN_THIS_SETTING}, "
                         "are needed for this comparison.")

st.subheader("Sub-network space: UMAP of gate vectors and of features")
subnet_map.show(run, probe, common.read(run, PER_IMAGE), common.class_names_of(run))

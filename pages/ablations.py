"""Ablations: accuracy against MACs across methods, the ManiDP ablation rows and one-parameter sweeps."""

import plotly.express as px
import streamlit as st
from plotly.subplots import make_subplots

from pages import common
from prunelab import analysis

ALL_SUITES = "all finished runs"
SHOWN = ["name", "variant", "test_acc", "macs_per_image", "macs_reduction", "params", "macs_reference",
         "method", "suite", "dataset", "model", "width", "epochs"]
FORMATS = {
    "test_acc": st.column_config.NumberColumn("test accuracy", format="percent"),
    "macs_per_image": st.column_config.NumberColumn(f"{common.MAC_LABEL} / image", format="compact"),
    "macs_reference": st.column_config.NumberColumn("MACs unpruned", format="compact"),
    "macs_reduction": st.column_config.NumberColumn("MACs reduction", format="percent"),
    "params": st.column_config.NumberColumn("params", format="compact"),
}

common.title("Ablations and sweeps")
common.explain(
    f"Every pruning method trades accuracy for compute: the best runs sit top-left in the accuracy versus "
    f"{common.MAC_LABEL} chart. The MACs reduction compares a run with the same network unpruned (slimming: "
    "before pruning; ManiDP: every gate open). ManiDP's ablation switches its two terms on and off: neither "
    "(plain dynamic pruning), complexity only, similarity only, both.",
    r"\text{MACs reduction} = 1 - \frac{\mathrm{MACs}_{\text{pruned}}}{\mathrm{MACs}_{\text{unpruned}}}",
)

table = analysis.ablation_table(common.runs_frame())
if table.empty:
    st.info("No finished runs yet. Start a baseline, slimming and ManiDP runs (or the `demo` / `ablation` "
            "suite) on the **Runs** page; they appear here when done.")
    st.stop()
suites = sorted({str(s) for s in table["suite"].dropna()})
suite = st.selectbox("Runs", [ALL_SUITES, *suites], key="abl_suite",
                     format_func=lambda s: s if s == ALL_SUITES else f"suite {s}")
if suite != ALL_SUITES:
    table = table[table["suite"] == suite].reset_index(drop=True)

st.dataframe(table.drop(columns=["path", "run_id"]), hide_index=True, key="abl_table", column_order=SHOWN,
             column_config=FORMATS)
st.download_button("Download this table as CSV", analysis.to_csv_bytes(table),
                   file_name="prunelab_ablations.csv", mime="text/csv", key="abl_csv")

fig = px.scatter(table, x="macs_per_image", y="test_acc", color="method", symbol="method", hover_name="name",
                 hover_data={"variant": True, "macs_reduction": ":.1%"},
                 labels={"macs_per_image": f"{common.MAC_LABEL} per image", "test_acc": "test accuracy"},
                 title="Accuracy against MACs (top-left is best)")
fig.update_traces(marker={"size": 12})
st.plotly_chart(fig.update_layout(height=460), key="abl_scatter")

st.subheader("Sweep curve for one parameter")
runs = common.runs_frame()
shown = runs[runs["path"].isin(table["path"])]
params = analysis.sweepable_params(shown)
if not params:
    st.info("A sweep needs finished runs of one method that differ in one parameter, e.g. "
            "`python -m prunelab suite sweep --param lambda --values 0,1e-4,1e-3` (or the slimming suite).")
    st.stop()
param = st.selectbox("Parameter", params, key="abl_param")
sweep = analysis.sweep_table(shown, param)
labels = [f"{v:g}" for v in sweep["value"]]  # categorical axis: sweeps often include 0 and span decades
fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
fig.add_scatter(x=labels, y=sweep["test_acc"], name="test accuracy", mode="lines+markers", row=1, col=1)
fig.add_scatter(x=labels, y=sweep["macs_per_image"], name=f"{common.MAC_LABEL} per image",
                mode="lines+markers", row=2, col=1)
fig.update_xaxes(type="category").update_xaxes(title_text=param, row=2, col=1)
fig.update_yaxes(title_text="test accuracy", row=1, col=1)
fig.update_yaxes(title_text="MACs per image", row=2, col=1)
st.plotly_chart(fig.update_layout(height=460, showlegend=False), key="abl_sweep")
st.dataframe(sweep, hide_index=True, key="abl_sweep_table", column_config=FORMATS)

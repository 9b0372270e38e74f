"""Ablations: accuracy against MACs across methods, the ManiDP ablation rows and one-parameter sweeps."""

import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from app_components import charts, common, method_card, paper_points, viewer_mode
from prunelab.analysis import controls, lessons, tables
from prunelab.config import SWEEP_PARAMS
from prunelab.methods.manidp.evidence import evidence_table

ALL_SUITES = "all finished runs"
SHOWN = ["name", "variant", "seed", "test_acc", "macs_per_image", "macs_reduction", "params", "macs_reference",
         "epochs_total", "parent_run", "method", "suite", "dataset", "model", "width", "epochs"]
ERROR_BAR_FIGURES = ["test_acc", "macs_per_image", "spearman_macs_loss", "spearman_macs_difficulty",
                     "similarity_gap_mean", "gamma_frac_below_0.05", "acc_after_prune", "complexity_quintile_gap",
                     "similarity_rank_correlation", "macs_cv", "decision_disagreement"]
GROUP_SHOWN = ["label", "epochs_total", "seeds", "test_acc_mean", "test_acc_std", "macs_per_image_mean",
               "macs_per_image_std", "macs_per_image_with_gates_mean", "spearman_macs_loss_mean",
               "spearman_macs_loss_std", "spearman_macs_difficulty_mean", "spearman_macs_difficulty_std",
               "similarity_gap_mean_mean", "similarity_gap_mean_std", "gamma_frac_below_0.05_mean",
               "acc_after_prune_mean", "dataset", "model", "width", "runs"]
X_AXES = {"MACs per image": "macs_per_image", "MACs reduction": "macs_reduction"}
# column -> (label, format): app_components.common.table shows a missing figure as "—"
CONTROL_COLUMNS = {  # prunelab.analysis.controls.control_table: two rows per control
    "question": ("question", None), "role": ("role", None), "variant": ("variant", None),
    "accuracy": ("accuracy", "percent"), "± acc": ("± acc", "percent"), "seeds": ("seeds", None),
    "MACs / image": ("MACs / image", "compact"), "difference": ("control − method (paired)", "{:+.1%}"),
    "verdict": ("verdict", None), "paper": ("paper", None),
}
GROUP_COLUMNS = {
    "label": ("variant", None), "epochs_total": ("epochs in all", "{:.0f}"), "seeds": ("seeds", None),
    "test_acc_mean": ("accuracy", "percent"), "test_acc_std": ("± acc", "percent"),
    "macs_per_image_mean": ("MACs / image", "compact"), "macs_per_image_std": ("± MACs", "compact"),
    "macs_per_image_with_gates_mean": ("MACs with gates", "compact"),
    "spearman_macs_loss_mean": ("ρ(MACs, loss)", "{:.3f}"), "spearman_macs_loss_std": ("± ρ", "{:.3f}"),
    "spearman_macs_difficulty_mean": ("ρ(MACs, difficulty)", "{:.3f}"),
    "spearman_macs_difficulty_std": ("± ρ(difficulty)", "{:.3f}"),
    "similarity_gap_mean_mean": ("‖T − R‖", "{:.2f}"), "similarity_gap_mean_std": ("± ‖T − R‖", "{:.2f}"),
    "gamma_frac_below_0.05_mean": ("|γ| < 0.05", "percent"),
    "acc_after_prune_mean": ("acc right after pruning", "percent"),
}
COLUMNS = {
    "epochs_total": ("epochs in all", "{:.0f}"), "test_acc": ("test accuracy", "percent"),
    "macs_per_image": (f"{common.MAC_LABEL} / image", "compact"), "macs_reference": ("MACs unpruned", "compact"),
    "macs_reduction": ("MACs reduction", "percent"), "params": ("params", "compact"), "value": ("value", None),
}

common.title("Ablations and sweeps")
common.explain(
    f"Every pruning method trades accuracy for compute: the best runs sit top-left in the accuracy versus "
    f"{common.MAC_LABEL} chart. The MACs reduction compares a run with the same network unpruned (slimming: "
    "before pruning; ManiDP: every gate open). ManiDP's ablation switches its two terms on and off: neither "
    "(plain dynamic pruning), complexity only, similarity only, both.",
    r"\text{MACs reduction} = 1 - \frac{\mathrm{MACs}_{\text{pruned}}}{\mathrm{MACs}_{\text{unpruned}}}",
)

table = common.computed(tables.ablation_table, common.runs_frame())
if table.empty:
    st.info("No finished runs yet." + viewer_mode.offer(
        " Start a baseline, slimming and ManiDP runs (or the `demo` / `ablation` suite) on the **Runs** page; they "
        "appear here when done."))
    st.stop()
dataset = common.pick_dataset(table["dataset"], "Dataset", key="abl_dataset")
table = table[table["dataset"] == dataset].reset_index(drop=True)  # never two datasets in one chart or claim
suites = sorted({str(s) for s in table["suite"].dropna()})
suite = st.selectbox("Runs", [ALL_SUITES, *suites], key="abl_suite",
                     format_func=lambda s: s if s == ALL_SUITES else f"suite {s}")
if suite != ALL_SUITES:
    table = table[table["suite"] == suite].reset_index(drop=True)

table = common.cached_run_figures(table)  # each ManiDP run's accuracy at its form's matched MACs reduction
groups = common.computed(lessons.variant_groups, table)

published = paper_points.published(table)
x_axis = st.radio("x axis", list(X_AXES), index=1 if published else 0, horizontal=True, key="abl_x",
                  help="The papers' CIFAR-10 results are drawn against MACs reduction." if published else None)
settings = groups[["model", "width"]].drop_duplicates()  # another network gets its own panel, its own axes
for number, (model, width) in enumerate(settings.itertuples(index=False, name=None)):
    part = groups[(groups["model"] == model) & (groups["width"] == width)]
    fig = paper_points.accuracy_chart(part, X_AXES[x_axis], published)
    # full width: the legend beside the plot (below it, its group titles would run into the axis title)
    fig.update_layout(height=560, legend={"orientation": "v", "x": 1.02, "xanchor": "left", "y": 1, "yanchor": "top"})
    if len(settings) > 1:
        fig.update_layout(title=f"{model} at width {width:g}: {fig.layout.title.text}")
    st.plotly_chart(fig, key="abl_scatter" if number == 0 else f"abl_scatter_{model}_{width:g}")
if published and X_AXES[x_axis] == "macs_reduction":
    st.caption(paper_points.caption(len(published)))
elif published:
    st.caption("Choose MACs reduction as the x axis to see the papers' published CIFAR-10 results.")

st.subheader("What the papers claim, and what these runs show")
common.show_claims(common.computed(lessons.claims, table), empty="These runs do not compare the variants a claim needs "
                   "(e.g. slimming at two λ, or ManiDP with and without a term).")

st.subheader("Controls at equal MACs: the criterion, the inherited weights, per-image routing")
found = common.computed(controls.controls, table)
if not found:
    st.caption("No control runs here. `python -m prunelab suite controls` trains, at one budget, slimming with "
               "random channels at its per-layer counts and its architecture from scratch, and ManiDP with a static "
               "network of its mean MACs per image from scratch.")
else:
    st.caption("Each control keeps the MACs of the run it controls and its epochs in all: random channels keep a "
               "slimming run's per-layer counts, chosen at random, with the same fine-tuning; from scratch trains "
               "that run's architecture (or a uniformly thinner network of a ManiDP run's mean MACs) from fresh "
               "weights. Each control run is compared with its own parent, seed by seed; the verdict judges the "
               "method's claim that it beats its control, with the same rule as the claims above.")
    rows = controls.control_table(found)
    st.plotly_chart(charts.controls_figure(rows), key="abl_controls_chart")
    common.table(rows, CONTROL_COLUMNS, key="abl_controls", column_order=list(CONTROL_COLUMNS))
    for control in found:
        st.markdown(f"{common.verdict_icon(control.verdict)} **{control.question}** "  # the finding names variants
                    f"{common.md_text(control.finding)}  \nPaper: {control.paper}")

evidence = evidence_table(groups)
if not evidence.empty:
    st.subheader("ManiDP by the paper's own tests, per form")
    st.caption("Do the gates route images differently at all (per-image MACs CV; share of gate decisions off "
               "their channel's majority)? Do harder images, by the parent model's own loss, get larger "
               "sub-networks (hardest minus easiest fifth, relative MACs)? Do images with similar features get "
               "similar gates (ρ(R, T) over held-out test pairs)? And the paper's ablation table: accuracy at a "
               "matched MACs reduction (the median of the form's runs), read along each run's what-if curve, for "
               "the runs that have one. Mean ± std over seeds.")
    st.dataframe(evidence, hide_index=True, key="abl_evidence")
    method_card.show(table.groupby("variant", sort=False)["path"].first().tolist())

st.subheader("Variants over seeds")
st.caption("Runs that differ only in their seed form one variant; each figure is mean ± standard deviation "
           "over its seeds. `epochs in all` counts every epoch that shaped the final weights, a parent run's "
           "included, so rows with the same number compare like with like. ManiDP's MACs are those of each "
           "image's sub-network; the gates' own cost is in `MACs with gates`.")
common.table(groups, GROUP_COLUMNS, key="abl_groups", column_order=GROUP_SHOWN)
figure = st.selectbox("Figure", [f for f in ERROR_BAR_FIGURES if groups[f"{f}_mean"].notna().any()],
                      format_func=lambda f: lessons.FIGURE_LABELS[f], key="abl_figure")
if figure:
    shown_groups = groups[groups[f"{figure}_mean"].notna()]
    fig = go.Figure(go.Bar(
        x=shown_groups["label"], y=shown_groups[f"{figure}_mean"],
        error_y={"type": "data", "array": shown_groups[f"{figure}_std"].fillna(0)},
        text=[f"n = {n}" for n in shown_groups["seeds"]],
        marker_color=shown_groups["method"].map(charts.method_colour)))
    fig.update_layout(height=400, yaxis_title=lessons.FIGURE_LABELS[figure], margin={"t": 30},
                      title=f"{lessons.FIGURE_LABELS[figure]}: mean ± std over seeds")
    st.plotly_chart(fig, key="abl_errorbars")

with st.expander("Every run"):
    common.table(table.drop(columns=["path", "run_id"]), COLUMNS, key="abl_table", column_order=SHOWN)
st.download_button("Download this table as CSV", tables.to_csv_bytes(table),
                   file_name="prunelab_ablations.csv", mime="text/csv", key="abl_csv")

st.subheader("Sweep curve for one parameter")
runs = common.runs_frame()
shown = runs[runs["path"].isin(table["path"])]
params = tables.sweepable_params(shown)
if not params:
    st.info("A sweep needs finished runs of one method that differ in one parameter, e.g. "
            "`python -m prunelab suite sweep --param lambda --values 0,1e-4,1e-3` (or the slimming suite).")
    st.stop()
param = st.selectbox("Parameter", params, key="abl_param")
sweep = tables.sweep_table(shown, param)
means = tables.sweep_means(sweep)
colour = charts.method_colour(SWEEP_PARAMS[param].method)  # the swept method's one colour
labels = [f"{v:g}" for v in means["value"]]  # categorical axis: sweeps often include 0 and span decades
fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
for row, figure, name in ((1, "test_acc", "test accuracy"), (2, "macs_per_image", f"{common.MAC_LABEL} per image")):
    mean, std = means[f"{figure}_mean"], means[f"{figure}_std"].fillna(0)
    fig.add_scatter(x=labels, y=mean, name=name, mode="lines+markers", line_color=colour, row=row, col=1)
    fig.add_scatter(x=labels, y=mean - std, mode="lines", line_width=0, showlegend=False, hoverinfo="skip",
                    name=f"{name} − std", row=row, col=1)  # the band: from mean − std up to mean + std
    fig.add_scatter(x=labels, y=mean + std, mode="lines", line_width=0, fill="tonexty",
                    fillcolor=charts.translucent(colour, 0.2), name=f"{name} ± std", hoverinfo="skip", row=row, col=1)
    fig.add_scatter(x=[f"{v:g}" for v in sweep["value"]], y=sweep[figure], mode="markers", name=f"{name}: each run",
                    marker={"size": 5, "color": colour, "opacity": 0.35}, text=sweep["name"],
                    hovertemplate="%{text}: %{y:.4g}<extra></extra>", row=row, col=1)
fig.update_xaxes(type="category").update_xaxes(title_text=param, row=2, col=1)
fig.update_yaxes(title_text="test accuracy", row=1, col=1)
fig.update_yaxes(title_text="MACs per image", row=2, col=1)
st.plotly_chart(fig.update_layout(height=460, showlegend=False, title=f"Mean over seeds per {param}, ± one "
                                  "standard deviation (band); faint dots: single runs"), key="abl_sweep")
common.table(sweep, COLUMNS, key="abl_sweep_table")

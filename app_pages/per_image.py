"""Per-image MACs: ManiDP gives every image its own sub-network; which images are cheap, which costly?"""

import plotly.express as px
import streamlit as st

from app_components import common, manidp_whatif, method_card
from app_components.images import show_images
from prunelab.analysis import figures, tables
from prunelab.methods.manidp import evidence, lesson_runs, report
from prunelab.methods.manidp.artefacts import PER_IMAGE
from prunelab.methods.manidp.claims import claims as manidp_claims
from prunelab.methods.manidp.config import NAME as MANIDP
from prunelab.runs.run_format import PER_IMAGE_FILE

common.title("Per-image MACs")
common.explain(
    "ManiDP's gates keep a different set of channels for every image, so each image pays its own cost in "
    f"{common.MAC_LABEL}. The complexity term pushes easy images (low cross-entropy, below the threshold C) "
    "toward smaller sub-networks, so harder images should get larger ones. The paper's test: which images get "
    "the cheapest and the costliest sub-networks; here, relative MACs by fifths of an external difficulty, the "
    "parent model's own loss on each image, with the term on against off. How this run computes λ(x) (CE "
    "attached or not) is on its method card, below the run picker.",
    r"\mathrm{MACs}(x) = \sum_{\mathrm{conv}} k_h k_w H_{out} W_{out}\,|\mathrm{in}(x)|\, |\mathrm{out}(x)|",
)

run = common.pick_run("ManiDP run", methods=[MANIDP], key="pi_run", default=lesson_runs.opening_run, param="run")
if run is None:
    st.stop()
method_card.show(run)
per_image = common.read(run, PER_IMAGE)
if per_image is None:
    common.report_missing(run, PER_IMAGE_FILE, "ManiDP writes the per-image table (per_image.parquet) "
                          "when training ends.")
    st.stop()
if per_image.empty:
    st.info("This run's per-image table (per_image.parquet) has no rows.")
    st.stop()
names = common.class_names_of(run)

summary = common.summary_of(run) or {}
rho = tables.complexity_correlations(per_image)

cols = st.columns(4)
gate_macs = float(per_image["gate_macs"].iloc[0]) if "gate_macs" in per_image else 0.0
cols[0].metric(f"Mean {common.MAC_LABEL} per image", f"{per_image['macs'].mean() / 1e6:.3f} M",
               help=f"The sub-networks' convolutions and classifier, without the gates. With the gates' own "
                    f"two Linear layers ({gate_macs / 1e3:.1f} k MACs per image): "
                    f"{(per_image['macs'].mean() + gate_macs) / 1e6:.3f} M.")
if summary.get("macs_dense"):
    cols[1].metric("Dense network", f"{summary['macs_dense'] / 1e6:.3f} M")
    cols[2].metric("MACs reduction", f"{1 - per_image['macs'].mean() / summary['macs_dense']:.1%}")
cols[3].metric("Spearman ρ (MACs, loss)", f"{rho['loss']:.3f}")
run_config = common.config_of(run)
if (reach := report.reach_text(summary, run_config is not None and run_config.model.torchvision)) is not None:
    st.caption(reach)

st.plotly_chart(figures.macs_histogram(per_image["macs"]), key="pi_hist")

st.subheader("MACs against complexity")
axes = {"CE loss": "loss"}
if "difficulty" in rho:
    axes["difficulty (known to the dataset)"] = "difficulty"
axis = st.radio("Complexity measure", list(axes), horizontal=True, key="pi_axis")
shown = per_image.assign(cls=[tables.class_name(names, i) for i in per_image["label"]])
fig = px.scatter(shown, x=axes[axis], y="macs", color="cls", custom_data=["index"], opacity=0.7,
                 hover_data={axes[axis]: ":.3f", "macs": ":.4s"},  # not plotly's SI default: 495.7877μ
                 labels={"macs": f"{common.MAC_LABEL} per image", "cls": "class", "loss": "CE loss"},
                 title=f"Spearman ρ = {rho[axes[axis]]:.3f} over {len(per_image)} test images")
event = st.plotly_chart(fig.update_layout(height=420), key="pi_scatter", on_select="rerun",
                        selection_mode="points")
clicked = common.selected_custom(event)
if clicked and clicked[0] != st.session_state.get("pi_clicked"):  # a new click; the selectbox may move on
    st.session_state["pi_clicked"] = st.session_state["pi_image"] = int(clicked[0])

st.caption(f"MACs exclude the gates' own cost ({gate_macs / 1e3:.1f} k MACs per image, the same for every "
           "image). The loss here is the pruned run's own, partly caused by the sub-network it measures; the "
           "paper's kind of test, below, ranks images by a difficulty measured before the gates existed.")
st.subheader("The paper's test: which images get the costliest sub-networks?")
st.caption("Relative MACs (an image's MACs over the run's mean) by fifths of the test images, ranked by the "
           "parent model's own loss on each: a difficulty measured before the gates existed, so not caused by "
           "the allocation it explains. This run beside its control, the same run without the complexity term.")
setting = common.setting_runs(run)
control = evidence.control_of(setting, run)
run_config = common.config_of(run)
term_on = bool(run_config is not None and getattr(run_config.method, "complexity", False))
compared = {f"this run ({'with' if term_on else 'without'} the complexity term)": run}
if control is not None:
    compared[f"control ({'without' if term_on else 'with'} the term)"] = control
quintiles = evidence.quintile_table(compared)
if quintiles.empty:
    st.info("This run's per-image table has no `parent_loss` column: it did not start from a parent run, or "
            "it finished before PruneLab stored the parent's loss.")
else:
    long = quintiles.reset_index().melt(id_vars=quintiles.index.name, var_name="run", value_name="relative MACs")
    fig = px.bar(long, x=quintiles.index.name, y="relative MACs", color="run", barmode="group")
    st.plotly_chart(fig.update_layout(height=320, margin={"t": 10}, legend={"orientation": "h", "y": -0.3},
                                      yaxis_range=[min(0.8, float(long["relative MACs"].min()) - 0.02),
                                                   max(1.2, float(long["relative MACs"].max()) + 0.02)]),
                    key="pi_quintiles")
dynamism = st.columns(2)
if summary.get("macs_cv") is not None:
    dynamism[0].metric("Per-image MACs CV", f"{summary['macs_cv']:.3f}",
                       help="std / mean of the per-image MACs: 0 means every image runs the same cost.")
if summary.get("decision_disagreement") is not None:
    dynamism[1].metric("Gate decisions off their channel's majority", f"{summary['decision_disagreement']:.1%}",
                       help="0% means one static sub-network for every image: the gates do not route at all.")
common.show_claims(common.computed(manidp_claims, setting, figure="complexity_quintile_gap"),
                   empty=f"Finished ManiDP runs with and without the complexity term, {common.IN_THIS_SETTING}, "
                         "whose per-image tables hold the parent's loss (`parent_loss`), are needed for this "
                         "comparison.")

st.subheader("One image")
by_macs = per_image.sort_values(["macs", "index"])
if st.session_state.get("pi_image") not in set(by_macs["index"]):
    st.session_state.pop("pi_image", None)  # another run was picked
image_index = st.selectbox("Test image (click a point above, or choose; cheapest first)",
                           by_macs["index"].tolist(), key="pi_image", format_func=lambda i: f"#{i}")
one = per_image[per_image["index"] == image_index]
row = one.iloc[0]
left, right = st.columns([1, 3])
with left:
    show_images(str(run), one, names, "pi_one", per_row=1)
    st.markdown(f"label **{common.md_text(tables.class_name(names, row['label']))}**, prediction "
                f"**{common.md_text(tables.class_name(names, row['pred']))}**, loss {row['loss']:.3f}, "
                f"{row['macs'] / 1e6:.3f} M MACs")
with right:
    st.plotly_chart(figures.density_bars(row), key="pi_density")

st.subheader("Gallery: images ranked by MACs")
cols = st.columns(2)
count = cols[0].slider("Images per row", 4, 16, 8, key="pi_count")  # beyond 16 no caption fits its image
labels = sorted(int(i) for i in per_image["label"].unique())
choice = cols[1].selectbox("Class", [None, *labels], key="pi_class",
                           format_func=lambda i: "all classes" if i is None else tables.class_name(names, i))
cheapest, costliest = tables.rank_by_macs(per_image, count, choice)
st.markdown(f"**Cheapest {len(cheapest)}**")
show_images(str(run), cheapest, names, "pi_cheap", per_row=count)
st.markdown(f"**Most expensive {len(costliest)}**")
show_images(str(run), costliest, names, "pi_costly", per_row=count)

st.subheader("What if the target density were different?")
st.caption("The run's saved gated model with its thresholds recalibrated at another target density (the run's "
           "own rule, on its calibration images), without retraining: what the thresholds alone buy or cost. The "
           "weights were trained for the run's own density, so other thresholds can cost accuracy even when they "
           "keep more channels. A new density takes a few passes over the calibration images; each is computed "
           "once.")
if run_config is not None and not getattr(run_config.method, "pair_quantile_thresholds", True):
    st.caption("This run uses the reference's threshold rule (channel means over an epoch's training images, in "
               "training mode). A finished run no longer has those, so the what-if ranks channel means over its "
               "calibration images in evaluation mode: even at the run's own density it can differ from the run "
               "as trained (measured on the shapes demo's reference + small_gate_init run, both terms, seed 0: "
               "44.4% against 34.9%).")
manidp_whatif.show(run, names)

"""Slimming: how the L1 penalty on BatchNorm scales shapes what one global threshold removes."""

import html
from pathlib import Path
from typing import Any

import streamlit as st

from app_components import common, method_card, run_exports
from prunelab.analysis import figures, results, tables
from prunelab.methods.slimming import lesson_runs
from prunelab.methods.slimming.artefacts import GAMMA_HISTORY, PRUNING
from prunelab.methods.slimming.claims import claims as slimming_claims
from prunelab.methods.slimming.config import NAME as SLIMMING
from prunelab.runs.run import Run
from prunelab.runs.run_format import DENSE_MODEL_FILE, GAMMA_HISTORY_FILE, PRUNING_FILE, SUMMARY_FILE

WITH_DATA = ("done", "running", "interrupted", "cancelled")  # runs that may hold gamma histories

common.title("Network Slimming")
common.explain(
    "Network Slimming trains with an L1 penalty on every BatchNorm scale γ, which pushes the scales of "
    "unimportant channels toward zero. One **global threshold** (the `prune_ratio` percentile of the |γ| in "
    "the run's scope: every BN in the reference form, each ResNet block's interior BN in the prunelab form; "
    "channels a residual add couples count once, scored by their mean |γ|, and go together) then removes "
    "every channel below it, the network is rebuilt physically smaller and fine-tuned. "
    f"Costs are counted in {common.MAC_LABEL} per image. The run's method card, below the run picker, shows "
    "the formulas as the run computed them, its scope and whether γ also gets weight decay.",
)


@st.cache_data(show_spinner="Re-pruning the dense model…", max_entries=128)
def what_if(path: str, mtime: float, ratio: float) -> dict[str, Any]:
    from prunelab.analysis.views import prune_what_if  # stored with a demo run, else computed

    return prune_what_if(path, ratio)


@st.cache_data(show_spinner=False, max_entries=128)
def channel_counts(path: str, mtime: float) -> dict[str, Any] | None:
    """What the run's prune ratio is a fraction of (recorded, or computed from the model spec for old runs)."""
    from prunelab.methods.slimming.counts import run_channel_counts

    return run_channel_counts(path)


run = common.pick_run("Run to inspect", methods=[SLIMMING], key="slim_run", states=WITH_DATA, param="run",
                      default=lesson_runs.opening_run)
if run is None:
    st.stop()
method_card.show(run)
summary, pruning = common.summary_of(run), common.read(run, PRUNING)

st.subheader("Accuracy through the pipeline")
if summary is None or summary.get("acc_before_prune") is None:
    common.report_missing(run, SUMMARY_FILE, "This run has not finished yet: accuracy before and after "
                          "pruning appear once it is pruned and fine-tuned. The γ histograms below already "
                          "show the epochs trained so far.")
else:
    config = common.config_of(run)
    stages = tables.pipeline_stages(summary, config.method.finetune_epochs if config is not None else None)
    for number, (col, (label, acc)) in enumerate(zip(st.columns(len(stages)), stages, strict=True)):
        delta = None if number == 0 else f"{acc - summary['acc_before_prune']:+.1%}"
        col.metric(label, f"{acc:.1%}", delta)
    costs = tables.before_after(summary)
    for col, (_, cost) in zip(st.columns(2), costs.head(2).iterrows(), strict=False):
        label = f"{common.MAC_LABEL} per image" if cost["quantity"].startswith("MACs") else "Parameters"
        value = f"{cost['after'] / 1e6:.3f} M" if label != "Parameters" else f"{int(cost['after']):,}"
        col.metric(label, value, f"{cost['change']:+.1%}", delta_color="inverse")
    percent = st.column_config.NumberColumn(format="percent")
    st.dataframe(costs, hide_index=True, column_config={"change": percent})

st.subheader("Deploy: ONNX, and its latency next to PyTorch's")
run_exports.onnx_panel(Path(run), summary)

st.subheader("|γ| distribution per epoch")
paths = common.pick_runs("Runs to compare (one seed of each λ in the inspected run's setting, to start with)",
                         methods=[SLIMMING], key="slim_compare", states=WITH_DATA, dataset=common.dataset_of(run),
                         default=lesson_runs.lambda_comparison(common.runs_frame(), run), param="compare",
                         follow=run) or [run]
histories = {p: h for p in paths if (h := common.read(p, GAMMA_HISTORY)) is not None}
if not histories:
    common.report_missing(run, GAMMA_HISTORY_FILE, "No γ history yet: it is written after each "
                          "sparsity-training epoch (gamma_history.npz).")
else:
    last = max(int(h.epochs[-1]) for h in histories.values())
    epoch = st.slider("Epoch (0 = at initialisation)", 0, max(last, 1), last, key="slim_epoch") if last else 0
    names = next(iter(histories.values())).layer_names
    layer = st.selectbox("Layer", ["all prunable layers", *names], key="slim_layer")
    layer = None if layer == "all prunable layers" else layer
    titles = [f"λ = {h.sparsity_lambda:g}<br>{html.escape(str(getattr(common.config_of(p), 'name', Path(p).name)))}"
              for p, h in histories.items()]  # the run's name, not its time-stamped folder: titles fit
    st.plotly_chart(figures.gamma_panels(dict(zip(titles, histories.values(), strict=True)), epoch, layer),
                    key="slim_hist")
    shares = tables.near_zero_shares(histories, epoch)
    cols = st.columns(len(shares))
    for col, (name, share) in zip(cols, shares.items(), strict=True):
        col.metric(f"|γ| < {tables.NEAR_ZERO_GAMMA} · {common.md_text(name)}", f"{share:.1%}")
    st.caption(f"The dashed line is the global threshold the run's rule (prune ratio, per-layer guard) gives for "
               f"the γ of the epoch shown; the share of |γ| below {tables.NEAR_ZERO_GAMMA} is for that epoch too. "
               "The histogram counts each BN's own |γ|; the threshold applies to a channel's score, which for "
               "channels coupled by residual adds is the mean |γ| over their BNs.")

st.subheader("What the paper claims, and what the slimming runs show")
slim_runs = common.setting_runs(run)
common.show_claims(common.computed(slimming_claims, slim_runs[slim_runs["method"] == SLIMMING]),
                   empty=f"Finished slimming runs at two or more λ, {common.IN_THIS_SETTING}, are needed for this "
                         "comparison.")

st.subheader("Channels kept per layer")
if pruning is None:
    common.report_missing(run, PRUNING_FILE, "pruning.json is written when sparsity training ends and "
                          "the network is pruned.")
else:
    counts = channel_counts(str(run), Run(run).newest_version())
    if counts is not None:
        st.markdown(f"Prune ratio {counts['prune_ratio']:.0%}: the global threshold removed "
                    f"{tables.prune_denominator_text(counts)}.")
    st.plotly_chart(figures.channel_bars(tables.channels_frame(pruning["layers"]), "after"), key="slim_channels")
    if pruning.get("guard_fired_layers"):
        st.warning("The global threshold would have removed every channel of "
                   f"{', '.join(pruning['guard_fired_layers'])}; the per-layer guard kept "
                   f"{pruning.get('min_channels', 1)} channel(s) there (marked in red).")

st.subheader("What if we pruned more, or less?")
if not (Path(run) / DENSE_MODEL_FILE).is_file():
    shipped = " A demo ships it with each variant's seed-0 run only (the size budget of the demos)." \
        if results.is_demo(run) else ""
    st.info(f"The what-if slider needs the dense model saved after sparsity training (dense_model.pt).{shipped}")
else:
    default = float((pruning or {}).get("prune_ratio", 0.5))
    counts = channel_counts(str(run), Run(run).newest_version()) if pruning is not None else None
    prunable = f"the {counts['channels_prunable']:,} prunable channels" if counts else "the prunable channels"
    ratio = st.slider(f"Prune ratio (fraction of {prunable} removed)", 0.0, 0.95,
                      round(default * 20) / 20, 0.05, key="slim_ratio")
    try:
        result = what_if(str(run), Run(run).newest_version(), float(ratio))
    except Exception as error:  # noqa: BLE001 - a broken or foreign run: say why instead of a traceback
        st.warning(f"Cannot re-prune this run: {common.md_text(error)}")
    else:
        cols = st.columns(4)
        cols[0].metric("Threshold |γ|", f"{result['threshold']:.4f}")
        cols[1].metric(f"{common.MAC_LABEL} per image", f"{result['macs'] / 1e6:.3f} M",
                       f"{result['macs'] / result['macs_dense'] - 1:+.1%}", delta_color="inverse")
        cols[2].metric("Parameters", f"{result['params']:,}",
                       f"{result['params'] / result['params_dense'] - 1:+.1%}", delta_color="inverse")
        cols[3].metric("Test accuracy, no fine-tuning", f"{result['acc']:.1%}")
        st.caption(f"At {ratio:.0%} the threshold removes {tables.prune_denominator_text(result)}.")
        st.plotly_chart(figures.channel_bars(tables.channels_frame(result["layers"]), f"kept at {ratio:.0%}"),
                        key="slim_whatif")

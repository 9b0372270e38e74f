"""Speed: why MACs are not milliseconds. A measured speed benchmark result, read from assets/speed/."""

import streamlit as st

from app_components import common, speed
from prunelab.analysis import tables
from prunelab.speed import report

common.title("Speed: from MACs to milliseconds")
common.explain(
    "Pruning counts its gain in MACs; a user feels milliseconds. The MACs ratio is the speedup a network would "
    "get if every operation's time were proportional to its multiply-adds. It is not: every layer has a fixed "
    "cost that removing channels cannot remove (launching the op, ReLU, pooling, Python), small or oddly sized "
    "convolutions run at a lower rate, layers that read more weights than they compute with are limited by "
    "memory, and a dynamic network also pays for its gates and for gathering each image's channels. Amdahl's "
    "law says how much a fixed part caps the speedup.",
    r"\text{speedup} = \frac{T_{\text{dense}}}{T_{\text{pruned}}} \le "
    r"\frac{T_{\text{dense}}}{T_{\text{fixed}} + (T_{\text{dense}} - T_{\text{fixed}}) / r_{\text{MACs}}}",
)

files = report.result_files()
if not files:
    st.info(f"No speed benchmark result in `{report.speed_dir()}`. Measure one with "
            "`python benchmarks/run_all.py --quick --only speed --out assets/speed/cpu.json`.")
    st.stop()
path = st.selectbox("Result", files, format_func=lambda p: p.name, key="speed_file")
result = speed.load(path)
if result is None:
    st.stop()
st.caption(speed.machine_caption(result))
frame = report.speed_rows(result)

st.subheader("The four headline figures")
st.dataframe(report.headline_frame(result), hide_index=True, key="speed_headlines")
st.caption("Speedup ÷ MACs ratio is the share of the MACs reduction that turns into time (1.0 = all of it). "
           "Each figure is for one thread; the table shows both models, the headline the worse of the two.")

st.subheader("MACs ratio next to the measured speedup")
left, right = st.columns(2)
kind = left.radio("Pruning", ["static", "dynamic"], horizontal=True, key="speed_kind",
                  format_func=lambda k: {"static": "static: Network Slimming's compact network",
                                         "dynamic": "dynamic: ManiDP's sparse executor"}[k])
models = list(dict.fromkeys(frame["model"]))
model = right.selectbox("Network", models, key="speed_model", format_func=lambda m: report.MODEL_LABELS.get(m, m))
facts = report.model_facts(result, model)
if kind == "static":
    pruned = facts.get("pruning", {})  # the interior-only scope: each ResNet block's bn_a, every BN of a VGG
    share = tables.prune_denominator_text({"channels_removed": pruned.get("channels_removed"),
                                             "channels_prunable": pruned.get("channels_total")})
    scope = ", each block's interior BN only" if model.startswith("resnet") else ""
    st.caption(f"Compact network of a global threshold at prune ratio "
               f"{result['details']['speed']['config']['prune_ratio']} ({share}{scope}): "
               f"{facts.get('macs_compact', 0):,} MACs per "
               f"image against {facts.get('macs_dense', 0):,}. Both networks run in the same form; the bars' "
               "whiskers are the quartiles of the per-round ratios.")
else:
    st.caption("The dense network in each form against ManiDP's executor (eager PyTorch, BN folded): "
               f"{speed.EXECUTOR_LABELS['sparse_executor']} at batch 1, "
               f"{speed.EXECUTOR_LABELS['batched_executor']} above. The MACs ratio is the mean over the timed "
               "images of each image's own sub-network; a batch computes the union of its images' channels.")
st.plotly_chart(speed.speedup_figure(frame, kind, model), key="speed_chart")
slowdown = report.oversubscribed(frame)
if slowdown is not None and slowdown > 1.0:
    st.warning(f"With 2 threads the dense network took {slowdown:.1f}× its 1-thread time (median over the cells "
               "measured both ways): the machine's cores were busy with other jobs, and a second thread that waits "
               "for a core stalls the first at every parallel region. The 2-thread panel shows that effect, not what "
               "2 threads give on an idle machine.")
shown = frame[(frame["kind"] == kind) & (frame["model"] == model)]
st.dataframe(shown.drop(columns=["kind", "model", "form"]), hide_index=True, key="speed_rows")

split = report.split_of(result, model)
st.subheader("Where the gap comes from")
if not split:
    st.info("This result has no split (the benchmark ran without it).")
    st.stop()
bound = report.amdahl(split, facts.get("static_macs_ratio", 1.0))
if bound:
    cols = st.columns(3)
    cols[0].metric("Dense, batch 1 (BN folded)", f"{bound['dense_ms']:.2f} ms")
    cols[1].metric("Same network 1 channel wide", f"{bound['fixed_ms']:.2f} ms", help="the fixed cost")
    cols[2].metric("Amdahl's bound at this MACs ratio", f"{bound['amdahl_speedup']:.2f}×")
    st.markdown(f"**Fixed cost per layer.** Even with one channel per layer, a batch-1 forward takes "
                f"{bound['fixed_share']:.0%} of the dense network's time: op launches, activations, pooling and "
                f"Python, paid once per layer whatever its width. With that floor a MACs ratio of "
                f"{facts.get('static_macs_ratio', 1.0):.2f} can give at most {bound['amdahl_speedup']:.2f}×.")
budget = report.time_budget_frame(split)
st.markdown("**Convolutions against everything else.** Each convolution timed alone, summed, next to the whole "
            "forward pass: the convolutions' own speedup is what MACs can buy; the rest does not shrink.")
st.dataframe(budget, hide_index=True, key="speed_budget")
st.markdown("**Small and memory-bound layers.** The rate of each convolution (multiply-adds per second) falls "
            "when it has few channels or few pixels: at batch 1 the last layers of VGG-16 see 2×2 pixels and "
            "read 2.4 M weights for 9.4 M multiply-adds, so they wait on memory; pruning halves a layer's channels "
            "but not its time when the layer was not compute-bound to begin with.")
st.plotly_chart(speed.layer_figure(split), key="speed_layers")
st.markdown("**Gates and gathers.** Where a dynamic network's time goes, by kind of op (torch.profiler, self time; "
            "the profiler inflates small ops): the executor pays for gate MLPs, thresholds and gathering each "
            "image's weights, work the dense network never does.")
st.plotly_chart(speed.op_split_figure(split), key="speed_ops")
st.markdown("**A batch computes the union.** One image keeps about half of each layer's channels, but a batch "
            "runs every channel any of its images keeps; rounded up to the CPU's 8-float blocks, the early narrow "
            "layers run at full width. (In a ResNet block the second convolution always runs at the full width of "
            "the residual stream, on the union of the first one's channels: every second gated layer sits at 1.)")
st.plotly_chart(speed.union_figure(split), key="speed_union")

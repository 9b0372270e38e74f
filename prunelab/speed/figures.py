"""The Speed page's Plotly figures of a speed benchmark result (`benchmarks/bench_speed.py`, shipped under
`assets/speed/`): the measured speedup against the MACs ratio, each convolution's rate, where the time goes by kind
of op, and the union of channels a batch computes. Drawn by the Speed page and by the tours' last Network Slimming
step; nothing here measures (the rows come from `prunelab.speed.report`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from prunelab.speed.forms import FORM_LABELS

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def speedup_figure(frame: pd.DataFrame, kind: str, model: str) -> go.Figure:
    """Measured speedup per batch size and form (bars), MACs ratio (dashed), one panel per thread count."""
    mine = frame[(frame["kind"] == kind) & (frame["model"] == model)]
    threads = sorted(mine["threads"].unique())
    fig = make_subplots(rows=1, cols=len(threads), shared_yaxes=True,
                        subplot_titles=[f"{t} thread{'s' if t > 1 else ''}" for t in threads])
    forms = list(dict.fromkeys(mine["form"]))
    colors = {form: PALETTE[i % len(PALETTE)] for i, form in enumerate(forms)}
    shown: set[str] = set()
    for col, t in enumerate(threads, start=1):
        cell = mine[mine["threads"] == t]
        for form in dict.fromkeys(cell["form"]):  # the forms measured at this thread count
            part = cell[cell["form"] == form].sort_values("batch")
            fig.add_trace(go.Bar(x=[f"batch {b}" for b in part["batch"]], y=part["speedup"],
                                 name=FORM_LABELS.get(form, form), legendgroup=form, showlegend=form not in shown,
                                 marker_color=colors[form],
                                 error_y={"type": "data", "symmetric": False,
                                          "array": part["speedup_q75"] - part["speedup"],
                                          "arrayminus": part["speedup"] - part["speedup_q25"]}),
                          row=1, col=col)
            shown.add(form)
        macs = cell.groupby("batch")["macs_ratio"].first().sort_index()
        fig.add_trace(go.Scatter(x=[f"batch {b}" for b in macs.index], y=macs.values, mode="lines+markers",
                                 line={"dash": "dash", "color": "black"}, name="MACs ratio", legendgroup="macs",
                                 showlegend=col == 1), row=1, col=col)
    fig.add_hline(y=1.0, line={"color": "grey", "width": 1})
    pruned = "compact network" if kind == "static" else "executor"
    fig.update_layout(barmode="group", height=420, yaxis_title=f"speedup = dense ms / {pruned} ms",
                      legend_title="dense side runs as", margin={"t": 40})
    return fig


def layer_figure(split: dict[str, Any]) -> go.Figure:
    """GMAC/s of every convolution, dense against compact, at batch 1 and batch 64."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=["batch 1 (NCHW)", "batch 64 (channels-last)"])
    for col, key in enumerate(("layers_b1", "layers_b64"), start=1):
        layers = split.get(key, {}).get("layers", [])
        for net, color in (("dense", "#1f77b4"), ("compact", "#ff7f0e")):
            fig.add_trace(go.Scatter(
                x=list(range(len(layers))), y=[row[f"{net}_gmacs_per_s"] for row in layers], mode="markers+lines",
                name=net, legendgroup=net, showlegend=col == 1, marker={"color": color},
                text=[f"{row['layer']}: {row[f'{net}_channels'][0]}→{row[f'{net}_channels'][1]} channels at "
                      f"{row['out_hw']}x{row['out_hw']}, {row[f'{net}_ms']:.3f} ms" for row in layers],
                hovertemplate="%{text}<br>%{y:.1f} GMAC/s<extra></extra>"), row=1, col=col)
    fig.update_xaxes(title_text="convolution (forward order)")
    fig.update_yaxes(title_text="GMAC/s (each convolution timed alone)", col=1)
    fig.update_layout(height=380, margin={"t": 40})
    return fig


def op_split_figure(split: dict[str, Any]) -> go.Figure:
    """Share of each network's time by kind of op (torch.profiler), batch 1 and batch 64."""
    bars: dict[str, dict[str, float]] = {}
    for batch, networks in split.get("ops", {}).items():
        for net, values in networks.items():
            bars[f"{net}, {batch.replace('b', 'batch ')}"] = values["share"]
    kinds = list(dict.fromkeys(k for share in bars.values() for k in share))
    fig = go.Figure([go.Bar(y=list(bars), x=[share.get(kind, 0.0) for share in bars.values()], name=kind,
                            orientation="h") for kind in kinds])
    fig.update_layout(barmode="stack", height=320, xaxis={"title": "share of the time", "tickformat": ".0%"},
                      margin={"t": 20}, legend={"orientation": "h", "y": -0.3})
    return fig


def union_figure(split: dict[str, Any]) -> go.Figure:
    """Per gated layer: fraction of channels one image keeps against what a batch of 8 and of 64 computes."""
    fig = go.Figure()
    b64 = split.get("union_b64", [])
    fig.add_trace(go.Scatter(x=list(range(len(b64))), y=[r["per_image_density"] for r in b64], mode="lines+markers",
                             name="one image keeps (mean)"))
    for key, label in (("union_b8", "batch of 8"), ("union_b64", "batch of 64")):
        layers = split.get(key, [])
        fig.add_trace(go.Scatter(x=list(range(len(layers))), y=[r["union_density"] for r in layers],
                                 mode="lines", line={"dash": "dot"}, name=f"union of a {label}"))
        fig.add_trace(go.Scatter(x=list(range(len(layers))), y=[r["computed_density"] for r in layers],
                                 mode="lines+markers", name=f"computed for a {label} (union rounded to 8)"))
    fig.update_layout(height=360, xaxis_title="gated layer (forward order)",
                      yaxis={"title": "fraction of the layer's channels", "range": [0, 1.05]}, margin={"t": 20})
    return fig

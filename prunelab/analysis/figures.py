"""The Plotly figures that the pages and the tours share (no Streamlit: the Lessons page, the handout and
the analysis pages draw the same figure from the same function).

`METHOD_COLOURS` (each method's facts' colour) is the only method → colour mapping of the app (the Overview's
sentences, its chart, the Ablations charts, the tours and the papers' stars all read it). `accuracy_figure`
draws variants (mean ± std over seeds, `prunelab.analysis.lessons.variant_groups`) one trace each, so every point
has its own legend entry under its method's group; within a method each variant gets its own marker symbol, and
the methods are drawn with shrinking markers (in their facts' order), so two variants at the same place both stay
visible. The method-specific figures (Network Slimming's |γ| histograms and channels per layer, ManiDP's what-if
histogram, channels kept per layer and T/R heatmaps) are drawn from the tables `prunelab.analysis.tables` and the
methods' modules compute.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from prunelab.analysis import tables
from prunelab.config import METHOD_FACTS

MAC_LABEL = "MACs (multiply-accumulates)"
# each method's facts (prunelab.methods.spec.MethodFacts) give its colour, its symbols (one per variant, in
# the order the variants come) and its marker size: the later methods' markers are smaller and drawn on
# top, so a point sitting on another method's point leaves a ring of it visible
METHOD_COLOURS = {name: facts.colour for name, facts in METHOD_FACTS.items()}
OTHER_COLOUR = "#333333"
SYMBOLS = {name: list(facts.symbols) for name, facts in METHOD_FACTS.items() if facts.symbols}
SIZES = {name: facts.marker_size for name, facts in METHOD_FACTS.items()}
MINE_SYMBOLS = ["circle-open", "square-open", "diamond-open", "triangle-up-open", "x-open", "star-open"]
KEPT_COLOUR, BEFORE_COLOUR, GUARD_COLOUR = "#2e86ab", "#c9c9c9", "#e4572e"


def method_colour(method: object) -> str:
    return METHOD_COLOURS.get(str(method), OTHER_COLOUR)


def translucent(colour: str, alpha: float) -> str:
    """'#2e86ab' as 'rgba(46, 134, 171, alpha)' (a band or fill in a method's colour)."""
    red, green, blue = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red}, {green}, {blue}, {alpha})"


def method_name(method: object) -> str:
    facts = METHOD_FACTS.get(str(method))
    return facts.label if facts is not None else str(method)


def _marker(method: str, index: int) -> dict[str, Any]:
    symbols = SYMBOLS.get(method, MINE_SYMBOLS)
    return {"color": method_colour(method), "symbol": symbols[index % len(symbols)], "size": SIZES.get(method, 12),
            "line": {"width": 1, "color": "white"}}


def x_title(reduction: bool) -> str:
    return "MACs reduction (vs the same network unpruned)" if reduction else f"{MAC_LABEL} per image"


def accuracy_figure(groups: pd.DataFrame, x: str, mine: pd.DataFrame | None = None) -> go.Figure:
    """Accuracy against `x` ("macs_per_image" or "macs_reduction") for every variant of `groups` (columns
    `method`, `label`, `seeds`, `<figure>_mean` / `_std`): one trace and legend entry per variant, grouped
    by method. `mine`: single runs (`tables.ablation_table` rows) drawn as open markers, one entry each."""
    reduction = x == "macs_reduction"
    x_hover = "MACs reduction %{x:.1%}" if reduction else "%{x:.3s} MACs per image"
    fig = go.Figure()
    for method, part in groups.groupby("method", sort=False):
        for index, (_, row) in enumerate(part.iterrows()):
            fig.add_scatter(
                x=[row[f"{x}_mean"]], y=[row["test_acc_mean"]], mode="markers", name=str(row["label"]),
                legendgroup=str(method), legendgrouptitle_text=method_name(method), marker=_marker(str(method), index),
                error_x={"type": "data", "array": [_zero(row[f"{x}_std"])], "thickness": 1, "width": 3},
                error_y={"type": "data", "array": [_zero(row["test_acc_std"])], "thickness": 1, "width": 3},
                hovertemplate=f"{row['label']}<br>{x_hover}<br>accuracy %{{y:.3f}} ± {_zero(row['test_acc_std']):.3f} "
                              f"({int(row['seeds'])} seed{'s' if row['seeds'] != 1 else ''})<extra></extra>")
    if mine is not None and not mine.empty:
        for index, (_, run) in enumerate(mine.iterrows()):
            fig.add_scatter(x=[run[x]], y=[run["test_acc"]], mode="markers", name=str(run["name"]),
                            legendgroup="mine", legendgrouptitle_text="Your runs",
                            marker={"size": 11, "color": OTHER_COLOUR, "line": {"width": 1.5},
                                    "symbol": MINE_SYMBOLS[index % len(MINE_SYMBOLS)]},
                            hovertemplate=f"{run['name']}<br>{x_hover}<br>accuracy %{{y:.3f}}<extra></extra>")
    if reduction:
        fig.update_xaxes(tickformat=".0%")
    return fig.update_layout(xaxis_title=x_title(reduction), yaxis_title="test accuracy",
                             legend={"groupclick": "toggleitem", "font": {"size": 11}, "orientation": "h",
                                     "yanchor": "top", "y": -0.18, "xanchor": "left", "x": 0})


def _zero(value: Any) -> float:
    return 0.0 if pd.isna(value) else float(value)


# ------------------------------------------------------------------------------------------------
# Network Slimming


def channel_bars(channels: pd.DataFrame, after_name: str) -> go.Figure:
    """Channels per layer before vs after (`tables.channels_frame`); layers where the per-layer guard fired are
    marked."""
    colours = [GUARD_COLOUR if fired else KEPT_COLOUR for fired in channels["guard_fired"]]
    fig = go.Figure([go.Bar(name="before", x=channels["layer"], y=channels["before"], marker_color=BEFORE_COLOUR),
                     go.Bar(name=after_name, x=channels["layer"], y=channels["after"], marker_color=colours,
                            text=["guard" if f else "" for f in channels["guard_fired"]])])
    return fig.update_layout(barmode="group", yaxis_title="channels", height=340, margin={"t": 30})


def threshold_figure(channels: pd.DataFrame, ratio: float, acc: float,
                     curve: Sequence[tuple[float, float]]) -> go.Figure:
    """Left: channels per layer before vs kept at prune ratio `ratio` (`channel_bars`); right: test accuracy with no
    fine-tuning against the prune ratio (`curve`: (ratio, accuracy) points, where stored), `ratio` marked."""
    fig = make_subplots(rows=1, cols=2, column_widths=[0.64, 0.36], horizontal_spacing=0.1,
                        subplot_titles=[f"channels per layer at {ratio:.0%}", "accuracy right after pruning"])
    for trace in channel_bars(channels, f"kept at {ratio:.0%}").data:
        fig.add_trace(trace, row=1, col=1)
    if curve:
        fig.add_scatter(x=[r for r, _ in curve], y=[a for _, a in curve], mode="lines+markers", name="every ratio",
                        line={"color": BEFORE_COLOUR}, hovertemplate="%{x:.0%}: %{y:.1%}<extra></extra>", row=1, col=2)
    fig.add_scatter(x=[ratio], y=[acc], mode="markers", name=f"at {ratio:.0%}", row=1, col=2,
                    marker={"color": GUARD_COLOUR, "size": 12}, hovertemplate="%{x:.0%}: %{y:.1%}<extra></extra>")
    fig.update_yaxes(title_text="channels", row=1, col=1)
    fig.update_yaxes(title_text="test accuracy, no fine-tuning", tickformat=".0%", range=[0, 1.02], row=1, col=2)
    fig.update_xaxes(title_text="prune ratio", tickformat=".0%", row=1, col=2)
    return fig.update_layout(barmode="group", height=380, margin={"t": 50}, legend={"orientation": "h", "y": -0.3})


def recovery_figure(curves: Mapping[str, pd.DataFrame], prune_step: float | None, baseline: Any,
                    cuts: pd.DataFrame) -> go.Figure:
    """Test accuracy after every epoch of each seed (`curves`: label -> `live.epoch_curves`), the cut at
    `prune_step` with each seed's accuracy before and right after pruning (`cuts`: seed, acc_before_prune,
    acc_after_prune) and `baseline` (a `lessons.Stat` of test accuracy) as a band of mean ± std."""
    fig = go.Figure()
    for index, (label, frame) in enumerate(curves.items()):
        fig.add_scatter(x=frame["step"], y=frame["test_acc"], mode="lines+markers", name=label,
                        line={"color": translucent(KEPT_COLOUR, 1.0 - 0.25 * index)},
                        hovertemplate=frame["phase_label"] + " epoch " + frame["epoch"].astype(str)
                        + "<br>test accuracy %{y:.1%}<extra>" + label + "</extra>")
    if prune_step is not None:
        fig.add_vline(x=prune_step, line={"color": GUARD_COLOUR, "dash": "dot", "width": 2}, annotation_text="prune")
        for _, cut in cuts.dropna().iterrows():
            fig.add_scatter(x=[prune_step, prune_step], y=[cut["acc_before_prune"], cut["acc_after_prune"]],
                            mode="lines+markers", showlegend=False, line={"color": GUARD_COLOUR},
                            marker={"symbol": ["circle-open", "x"], "size": 10},
                            hovertemplate=f"seed {int(cut['seed'])}: %{{y:.1%}}<extra>before / right after</extra>")
    if baseline.n:
        spread = 0.0 if baseline.n < 2 else baseline.std
        fig.add_hrect(y0=baseline.mean - spread, y1=baseline.mean + spread, fillcolor=translucent(BEFORE_COLOUR, 0.4),
                      line_width=0, layer="below")
        fig.add_hline(y=baseline.mean, line={"color": "#777777", "dash": "dash"}, annotation_position="bottom right",
                      annotation_text="baseline, same epochs")
    return fig.update_layout(height=380, margin={"t": 30}, xaxis_title="epoch, all phases",
                             legend={"orientation": "h", "y": -0.25},
                             yaxis={"title": "test accuracy", "tickformat": ".0%", "range": [0, 1.02]})


def gamma_panels(histories: Mapping[str, Any], epoch: int, layer: str | None = None) -> go.Figure:
    """One |γ| histogram per gamma history (title -> `GammaHistory`; a title is Plotly text: escape names) at `epoch`
    (0 = at initialisation), on shared bins, with the global threshold the run's rule gives for that epoch's γ
    (dashed); `layer` None: every prunable layer."""
    edges = tables.gamma_bin_edges([g for h in histories.values() for g in h.gammas])
    fig = make_subplots(rows=1, cols=max(len(histories), 1), shared_yaxes=True,
                        subplot_titles=list(histories))
    fig.update_annotations(font_size=12)  # the subplot titles: two short lines, each within its panel
    for col, hist in enumerate(histories.values(), start=1):
        row = tables.epoch_row(hist.epochs, epoch)
        values = tables.layer_gammas(hist.gammas, hist.layer_names, row, layer)
        bins = tables.gamma_histogram(values, edges)
        fig.add_trace(go.Bar(x=bins["center"], y=bins["count"], width=edges[1] - edges[0], showlegend=False,
                             marker_color=KEPT_COLOUR), row=1, col=col)
        threshold = tables.threshold_at_epoch(hist.thresholds, row)
        if threshold is not None:  # the threshold the run's rule gives for this epoch's gammas
            fig.add_vline(x=threshold, line_dash="dash", line_color=GUARD_COLOUR, row=1, col=col,
                          annotation_text=f"threshold at epoch {int(hist.epochs[row])}",
                          annotation_position="top right")
    fig.update_xaxes(title_text="|γ|").update_yaxes(title_text="channels", col=1)
    return fig.update_layout(height=380, margin={"t": 70})


def gamma_epochs(history: Any, layer: str | None = None) -> go.Figure:
    """|γ| histograms of one run at every recorded epoch, as outlines from light (at initialisation) to dark (after
    the last sparsity epoch), with the last epoch's global threshold."""
    edges = tables.gamma_bin_edges(list(history.gammas))
    rows = len(history.epochs)
    fig = go.Figure()
    for row, epoch in enumerate(history.epochs):
        bins = tables.gamma_histogram(tables.layer_gammas(history.gammas, history.layer_names, row, layer), edges)
        shade = 0.25 + 0.75 * row / max(rows - 1, 1)
        fig.add_scatter(x=bins["center"], y=bins["count"], mode="lines", line_shape="hvh",
                        name="at initialisation" if int(epoch) == 0 else f"after epoch {int(epoch)}",
                        line={"color": translucent(KEPT_COLOUR, shade), "width": 1 + 1.5 * row / max(rows - 1, 1)})
    threshold = tables.threshold_at_epoch(history.thresholds, rows - 1)
    if threshold is not None:
        fig.add_vline(x=threshold, line_dash="dash", line_color=GUARD_COLOUR, annotation_position="top right",
                      annotation_text=f"threshold after epoch {int(history.epochs[-1])}")
    return fig.update_layout(height=380, margin={"t": 40}, xaxis_title="|γ|", yaxis_title="channels",
                             title=f"λ = {history.sparsity_lambda:g}: |γ| of every prunable BN, epoch by epoch",
                             legend={"orientation": "h", "y": -0.2})


# ------------------------------------------------------------------------------------------------
# ManiDP


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """A uint8 [H, W, 3] image `factor` times larger, each pixel a block (crisp when drawn)."""
    return np.kron(np.asarray(image, np.uint8), np.ones((factor, factor, 1), dtype=np.uint8))


def png_bytes(image: np.ndarray, factor: int = 1) -> bytes:
    """A uint8 [H, W, 3] image, `factor` times larger (`upscale`), as the bytes of a PNG file."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(upscale(image, factor) if factor > 1 else np.asarray(image, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def whatif_histogram(result: Any) -> go.Figure:
    """Per-image MACs as trained (grey) against at the what-if's density (`prunelab.methods.manidp.whatif.WhatIf`)."""
    frame = result.per_image
    fig = go.Figure()
    fig.add_histogram(x=frame["macs_trained"], name="as trained", opacity=0.55, marker_color=BEFORE_COLOUR, nbinsx=40)
    fig.add_histogram(x=frame["macs"], name=f"at density {result.density:.2f}", opacity=0.7,
                      marker_color=KEPT_COLOUR, nbinsx=40)
    return fig.update_layout(barmode="overlay", height=300, margin={"t": 30},
                             xaxis_title=f"{MAC_LABEL} per image", yaxis_title="images",
                             legend={"orientation": "h", "y": 1.12})


def macs_histogram(macs: Sequence[float] | pd.Series) -> go.Figure:
    """Per-image MACs of a ManiDP run's test images (per_image.parquet's `macs`)."""
    fig = go.Figure(go.Histogram(x=list(macs), nbinsx=40, marker_color=KEPT_COLOUR))
    return fig.update_layout(xaxis_title=f"{MAC_LABEL} per image", yaxis_title="images", height=300,
                             margin={"t": 20})


def density_bars(row: Mapping[str, Any] | pd.Series) -> go.Figure:
    """One image's fraction of channels kept per gated layer (`tables.layer_densities` of its per-image row)."""
    densities = tables.layer_densities(row)
    fig = go.Figure(go.Bar(x=densities["layer"], y=densities["density"], marker_color=KEPT_COLOUR,
                           hovertemplate="%{x}<br>%{y:.3f} of its channels kept<extra></extra>"))
    return fig.update_layout(yaxis={"title": "fraction of channels kept", "range": [0, 1]}, height=300,
                             margin={"t": 10})


def image_and_densities(image: np.ndarray | None, row: Mapping[str, Any] | pd.Series, title: str) -> go.Figure:
    """One test image (uint8 [32, 32, 3]; None when its dataset is not here) beside the fraction of each gated
    layer's channels it keeps (`density_bars`)."""
    fig = make_subplots(rows=1, cols=2, column_widths=[0.22, 0.78], horizontal_spacing=0.12)
    if image is not None:
        fig.add_trace(go.Image(z=np.asarray(image, np.uint8), hoverinfo="skip"), row=1, col=1)
    for trace in density_bars(row).data:
        fig.add_trace(trace, row=1, col=2)
    fig.update_xaxes(visible=False, row=1, col=1).update_yaxes(visible=False, row=1, col=1)
    fig.update_yaxes(title_text="fraction of channels kept", range=[0, 1], row=1, col=2)
    return fig.update_layout(height=320, margin={"t": 40}, title=title, showlegend=False)


def difficulty_figure(per_image: pd.DataFrame, measure: str, label: str,
                      by_fifth: Mapping[str, np.ndarray]) -> go.Figure:
    """Left: every test image's MACs against `measure` (a per-image column, `label` its name); right: relative MACs
    (an image's MACs over its run's mean) by fifths of it, easiest first, one bar group per run (`by_fifth`)."""
    fig = make_subplots(rows=1, cols=2, column_widths=[0.55, 0.45], horizontal_spacing=0.1,
                        subplot_titles=["every test image", "by fifth of the difficulty (1 = easiest)"])
    fig.add_scatter(x=per_image[measure], y=per_image["macs"], mode="markers", name="test images",
                    marker={"size": 4, "color": KEPT_COLOUR, "opacity": 0.45},
                    hovertemplate="%{x:.3f}: %{y:.4s} MACs<extra></extra>", row=1, col=1)
    for index, (name, values) in enumerate(by_fifth.items()):
        fig.add_bar(x=[f"{fifth}" for fifth in range(1, len(values) + 1)], y=list(values), name=name,
                    marker_color=KEPT_COLOUR if index == 0 else BEFORE_COLOUR, row=1, col=2)
    fig.add_hline(y=1.0, line={"color": "#777777", "width": 1}, row=1, col=2)
    fig.update_xaxes(title_text=label, row=1, col=1)
    fig.update_yaxes(title_text=f"{MAC_LABEL} per image", row=1, col=1)
    fig.update_yaxes(title_text="relative MACs", row=1, col=2)
    return fig.update_layout(barmode="group", height=400, margin={"t": 50}, legend={"orientation": "h", "y": -0.25})


def similarity_heatmaps(t: np.ndarray, r: np.ndarray) -> go.Figure:
    """T, R (one colour scale over both, spanning their values: a run whose similarities all lie in 0.65-0.98
    still shows its structure) and T - R side by side; rows and columns are probe images by class."""
    low, high = float(min(t.min(), r.min())), float(max(t.max(), r.max()))
    if high - low < 1e-6:
        low, high = low - 0.5, high + 0.5
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.1,
                        subplot_titles=["T: gate similarity", "R: feature similarity", "T − R"])
    panels = ((t, "coloraxis"), (r, "coloraxis"), (t - r, "coloraxis2"))
    for col, (matrix, axis) in enumerate(panels, start=1):
        fig.add_trace(go.Heatmap(z=np.asarray(matrix, np.float32), coloraxis=axis), row=1, col=col)
    fig.update_xaxes(constrain="domain").update_yaxes(autorange="reversed", constrain="domain")
    fig.update_yaxes(scaleanchor="x", title_text="probe image (by class)", col=1)
    fig.update_xaxes(title_text="probe image (by class)", col=2)
    for col in (2, 3):
        fig.update_yaxes(scaleanchor=f"x{col}", showticklabels=False, col=col)
    return fig.update_layout(
        height=380, margin={"t": 40, "b": 10},
        coloraxis={"colorscale": "RdBu_r", "cmin": low, "cmax": high, "colorbar": {"x": 0.645, "thickness": 12}},
        coloraxis2={"colorscale": "PuOr", "cmin": -2, "cmax": 2, "colorbar": {"x": 1.01, "thickness": 12}})


def mean_bars(names: Sequence[str], means: Sequence[float], stds: Sequence[float], colours: Sequence[str],
              texts: Sequence[str], title: str, y_title: str) -> go.Figure:
    """One bar per variant: its mean (a fraction, drawn as a percentage) with ± one standard deviation over seeds as
    the error bar, a note at the foot of each."""
    fig = go.Figure(go.Bar(x=list(names), y=list(means), marker_color=list(colours), text=list(texts),
                           textposition="inside", insidetextanchor="start",
                           error_y={"type": "data", "array": [_zero(s) for s in stds]}))
    return fig.update_layout(height=400, title=title, yaxis={"title": y_title, "tickformat": ".0%"}, margin={"t": 50})

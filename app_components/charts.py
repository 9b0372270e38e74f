"""What every chart of the app shares: one colour per method, and the accuracy-against-MACs chart.

`METHOD_COLOURS` (each method's facts' colour) is the only method → colour mapping of the app (the
Overview's sentences, its chart, the Ablations charts and the papers' stars all read it). `accuracy_figure`
draws variants (mean ± std over seeds, `prunelab.analysis.lessons.variant_groups`) one trace each, so every point has
its own legend entry under its method's group; within a method each variant gets its own marker symbol, and
the methods are drawn with shrinking markers (in their facts' order),
so two variants at the same place both stay visible.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from app_components import common
from prunelab.config import METHOD_FACTS

# each method's facts (prunelab.methods.spec.MethodFacts) give its colour, its symbols (one per variant, in
# the order the variants come) and its marker size: the later methods' markers are smaller and drawn on
# top, so a point sitting on another method's point leaves a ring of it visible
METHOD_COLOURS = {name: facts.colour for name, facts in METHOD_FACTS.items()}
OTHER_COLOUR = "#333333"
SYMBOLS = {name: list(facts.symbols) for name, facts in METHOD_FACTS.items() if facts.symbols}
SIZES = {name: facts.marker_size for name, facts in METHOD_FACTS.items()}
MINE_SYMBOLS = ["circle-open", "square-open", "diamond-open", "triangle-up-open", "x-open", "star-open"]


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
    return "MACs reduction (vs the same network unpruned)" if reduction else f"{common.MAC_LABEL} per image"


def accuracy_figure(groups: pd.DataFrame, x: str, points: Sequence[Any] = (),
                    mine: pd.DataFrame | None = None) -> go.Figure:
    """Accuracy against `x` ("macs_per_image" or "macs_reduction") for every variant of `groups` (columns
    `method`, `label`, `seeds`, `<figure>_mean` / `_std`): one trace and legend entry per variant, grouped
    by method. `mine`: single runs (`tables.ablation_table` rows) drawn as open markers, one entry each;
    `points`: the papers' results as stars (`app_components.paper_points`, against MACs reduction only)."""
    from app_components import paper_points

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
        paper_points.add_paper_points(fig, points)
        fig.update_xaxes(tickformat=".0%")
    return fig.update_layout(xaxis_title=x_title(reduction), yaxis_title="test accuracy",
                             legend={"groupclick": "toggleitem", "font": {"size": 11}, "orientation": "h",
                                     "yanchor": "top", "y": -0.18, "xanchor": "left", "x": 0})


def _zero(value: Any) -> float:
    return 0.0 if pd.isna(value) else float(value)


def controls_figure(rows: pd.DataFrame) -> go.Figure:
    """Test accuracy (mean ± std over seeds, horizontal bars) of each variant of a controls table
    (`prunelab.analysis.controls.control_table`: every method once, then its controls), in its method's colour,
    with its MACs per image and seeds in the bar's text: the controls at equal MACs side by side."""
    shown = rows.drop_duplicates("variant")
    fig = go.Figure(go.Bar(
        y=shown["variant"], x=shown["accuracy"], orientation="h",
        error_x={"type": "data", "array": shown["± acc"].fillna(0.0)},
        marker_color=shown["method"].map(method_colour),
        text=[f"{common.CELL_FORMATS['compact'](macs)} MACs · n = {n}" for macs, n in
              zip(shown["MACs / image"], shown["seeds"], strict=True)],
        textposition="inside", insidetextanchor="start",
        hovertemplate="%{y}<br>accuracy %{x:.1%}<extra></extra>"))
    return fig.update_layout(
        height=120 + 48 * len(shown), margin={"t": 40, "l": 10}, xaxis={"title": "test accuracy", "tickformat": ".0%"},
        yaxis={"autorange": "reversed", "automargin": True},
        title="Controls at equal MACs: test accuracy, mean ± std over seeds")

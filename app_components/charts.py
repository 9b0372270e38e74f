"""What every chart of the app shares: one colour per method, and the accuracy-against-MACs chart.

The figures themselves are the core's (`prunelab.analysis.figures`, also drawn by the Lessons page and the
handout); this adds the papers' published CIFAR-10 results (`app_components.paper_points`) to the
accuracy-against-MACs-reduction chart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from prunelab.analysis import figures
from prunelab.analysis.figures import METHOD_COLOURS, method_colour, method_name, translucent, x_title

__all__ = ["METHOD_COLOURS", "accuracy_figure", "controls_figure", "method_colour", "method_name", "translucent",
           "x_title"]


def accuracy_figure(groups: pd.DataFrame, x: str, points: Sequence[Any] = (),
                    mine: pd.DataFrame | None = None) -> go.Figure:
    """`prunelab.analysis.figures.accuracy_figure` with `points`, the papers' results, as stars
    (`app_components.paper_points`, against MACs reduction only)."""
    from app_components import paper_points

    fig = figures.accuracy_figure(groups, x, mine)
    if x == "macs_reduction":
        paper_points.add_paper_points(fig, points)
    return fig


def controls_figure(rows: pd.DataFrame) -> go.Figure:
    """Test accuracy (mean ± std over seeds, horizontal bars) of each variant of a controls table
    (`prunelab.analysis.controls.control_table`: every method once, then its controls), in its method's colour,
    with its MACs per image and seeds in the bar's text: the controls at equal MACs side by side."""
    from app_components import common

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

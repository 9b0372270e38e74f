"""The papers' published CIFAR-10 results as labelled markers on an accuracy-against-MACs-reduction chart.

`add_paper_points(fig, datasets)` draws `prunelab.references.PUBLISHED` (stars, one trace per method,
each labelled with its model and training budget) when every dataset of the runs shown is CIFAR-10,
and nothing otherwise. The chart's axes must be MACs reduction (x, a fraction) and test accuracy
(y, a fraction).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import plotly.graph_objects as go

from app_components.common import MAC_LABEL
from prunelab import references

TRACE_PREFIX = "published: "
COLOURS = {"slimming": "#6c4f9e", "manidp": "#d1495b"}


def add_paper_points(fig: Any, datasets: Iterable[str], **position: Any) -> int:
    """Add the published results to `fig` (plotly) when the runs shown are on CIFAR-10; returns how many.

    `position` (row=, col=) places them in one subplot.
    """
    found = references.for_datasets(datasets)
    for method in ("slimming", "manidp"):
        points = [p for p in found if p.method == method]
        if not points:
            continue
        fig.add_scatter(
            x=[p.flops_reduction for p in points], y=[p.top1 / 100.0 for p in points], mode="markers+text",
            name=f"{TRACE_PREFIX}{'Network Slimming' if method == 'slimming' else 'ManiDP'} (paper)",
            text=[p.label for p in points], textposition="top center", textfont={"size": 10},
            marker={"symbol": "star", "size": 14, "color": COLOURS[method], "line": {"width": 1, "color": "#333"}},
            customdata=[[p.description] for p in points],
            hovertemplate="%{customdata[0]}<extra></extra>", **position)
    return len(found)


def applies(datasets: Iterable[str]) -> bool:
    """True when every dataset shown is CIFAR-10 (the published results then apply)."""
    return bool(references.for_datasets(datasets))


def accuracy_chart(groups: Any, x: str, datasets: Iterable[str]) -> tuple[go.Figure, int]:
    """Accuracy against `x` ("macs_per_image" or "macs_reduction") per variant, mean ± std over seeds
    (`prunelab.lessons.variant_groups`), one trace per method; against MACs reduction the papers'
    CIFAR-10 results are added when they apply. Returns the figure and the number of published points."""
    reduction = x == "macs_reduction"
    fig = go.Figure()
    for method, part in groups.groupby("method", sort=False):
        fig.add_scatter(x=part[f"{x}_mean"], y=part["test_acc_mean"], mode="markers", name=str(method),
                        text=part["variant"], marker={"size": 12},
                        error_x={"type": "data", "array": part[f"{x}_std"].fillna(0)},
                        error_y={"type": "data", "array": part["test_acc_std"].fillna(0)},
                        hovertemplate="%{text}<br>" + ("MACs reduction %{x:.1%}" if reduction else "MACs %{x:.3s}")
                        + "<br>accuracy %{y:.3f}<extra></extra>")
    published = add_paper_points(fig, datasets) if reduction else 0
    title = ("Accuracy against MACs reduction, mean ± std over seeds (top-right is best)" if reduction
             else "Accuracy against MACs, mean ± std over seeds (top-left is best)")
    fig.update_layout(height=460, title=title, yaxis_title="test accuracy",
                      xaxis_title="MACs reduction (vs the same network unpruned)" if reduction
                      else f"{MAC_LABEL} per image")
    if reduction:
        fig.update_xaxes(tickformat=".0%")
    return fig, published


def caption(count: int) -> str:
    """What the stars are, for the text under the chart ('' when none were drawn)."""
    if not count:
        return ""
    return ("Stars: the papers' own CIFAR-10 results (top-1 accuracy at their FLOPs reduction), labelled with the "
            "training budget behind them, for scale: a run of a few epochs is expected to sit well below them.")

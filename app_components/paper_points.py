"""The papers' published CIFAR-10 results as labelled markers on an accuracy-against-MACs-reduction chart.

`published(runs)` gives `prunelab.analysis.references.PUBLISHED` when every run shown is on CIFAR-10 (`cifar10`,
or a folder dataset with CIFAR-10's class names, read from the run's dataset or its shipped test
images), else nothing; `add_paper_points(fig, points)` draws them as stars, one trace per method, each
star labelled with its model and each method with its training budget. The chart's axes must be MACs
reduction (x, a fraction) and test accuracy (y, a fraction): the papers state FLOPs reductions, not MACs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from app_components import charts, common
from prunelab.analysis import references
from prunelab.config import METHOD_FACTS
from prunelab.methods.manidp.config import NAME as MANIDP
from prunelab.methods.slimming.config import NAME as SLIMMING

TRACE_PREFIX = "published: "
NEAR = 0.06  # stars closer than this in MACs reduction share a column: only the highest is labelled above


def published(runs: pd.DataFrame) -> list[references.PublishedResult]:
    """The papers' CIFAR-10 results when every run in `runs` (rows with `dataset` and `path`) is on CIFAR-10."""
    if runs.empty or "dataset" not in runs:
        return []
    names: dict[str, list[str]] = {}
    for dataset, group in runs.groupby("dataset"):
        if str(dataset).startswith("folder:") and not references.is_cifar10(str(dataset)) and "path" in group:
            names[str(dataset)] = common.class_names_of(group["path"].iloc[0]) or []
    return references.for_datasets(runs["dataset"], names)


def add_paper_points(fig: go.Figure, points: Sequence[references.PublishedResult], **position: Any) -> int:
    """Draw `points` on `fig` (`position`: row=, col= of a subplot); returns how many were drawn. Each star is
    labelled with its model (above it, or below where a higher star stands close by, so labels never
    collide; never clipped by the plotting area), in its method's colour, each method's legend entry with
    its training budget (one per paper), the whole result on hover."""
    for method in (SLIMMING, MANIDP):
        mine = [p for p in points if p.method == method]
        if not mine:
            continue
        budgets = ", ".join(dict.fromkeys(p.budget for p in mine))
        fig.add_scatter(
            x=[p.flops_reduction for p in mine], y=[p.top1 / 100.0 for p in mine], mode="markers+text",
            name=f"{TRACE_PREFIX}{METHOD_FACTS[method].label} (paper, {budgets})", text=[p.model for p in mine],
            textposition=[text_position(p, points) for p in mine], textfont={"size": 10}, cliponaxis=False,
            legendgroup="papers", legendgrouptitle_text="Published (CIFAR-10)",
            marker={"symbol": "star", "size": 15, "color": charts.method_colour(method),
                    "line": {"width": 1, "color": "#333"}},
            customdata=[[p.description] for p in mine], hovertemplate="%{customdata[0]}<extra></extra>", **position)
    return len(points)


def text_position(point: references.PublishedResult, points: Sequence[references.PublishedResult]) -> str:
    """'top center', or 'bottom center' when a higher star stands within NEAR of it in MACs reduction."""
    higher = [p for p in points if p is not point and abs(p.flops_reduction - point.flops_reduction) < NEAR
              and p.top1 > point.top1]
    return "bottom center" if higher else "top center"


def accuracy_chart(groups: pd.DataFrame, x: str, points: Sequence[references.PublishedResult]) -> go.Figure:
    """Accuracy against `x` ("macs_per_image" or "macs_reduction") per variant, mean ± std over seeds
    (`prunelab.analysis.lessons.variant_groups`, `app_components.charts.accuracy_figure`); against MACs reduction
    `points` are added."""
    reduction = x == "macs_reduction"
    fig = charts.accuracy_figure(groups, x, points if reduction else ())
    title = ("Accuracy against MACs reduction, mean ± std over seeds (top-right is best)" if reduction
             else "Accuracy against MACs, mean ± std over seeds (top-left is best)")
    return fig.update_layout(height=520, title=title)


def caption(count: int) -> str:
    """What the stars are, for the text under the chart ('' when none were drawn)."""
    if not count:
        return ""
    return ("Against MACs reduction, top-right is best. Stars: the papers' own CIFAR-10 results (top-1 accuracy at "
            "their FLOPs reduction), labelled with the training budget behind them, for scale: a run of a few "
            "epochs is expected to sit well below them.")

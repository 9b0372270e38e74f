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

__all__ = ["METHOD_COLOURS", "accuracy_figure", "method_colour", "method_name", "translucent", "x_title"]


def accuracy_figure(groups: pd.DataFrame, x: str, points: Sequence[Any] = (),
                    mine: pd.DataFrame | None = None) -> go.Figure:
    """`prunelab.analysis.figures.accuracy_figure` with `points`, the papers' results, as stars
    (`app_components.paper_points`, against MACs reduction only)."""
    from app_components import paper_points

    fig = figures.accuracy_figure(groups, x, mine)
    if x == "macs_reduction":
        paper_points.add_paper_points(fig, points)
    return fig

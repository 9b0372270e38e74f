"""The home page's pieces (app_pages/home.py): what the bundled demo shows, in one screen.

Accuracy against MACs for every demo variant (mean ± std over seeds, the user's finished runs of the same
dataset beside them), one sentence per method and a strip of a ManiDP demo run's cheapest and costliest
test images. Every input comes from the cached loaders of `app_components.common`, so only a fresh
server's first visit reads the run folders.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app_components import charts, common, shell, viewer_mode
from app_components.images import image_grid
from prunelab.analysis import live, tables
from prunelab.config import METHOD_FACTS, dataset_short_name
from prunelab.methods.manidp.artefacts import PER_IMAGE

METHOD_SENTENCES = {name: facts.overview for name, facts in METHOD_FACTS.items() if facts.overview}
STRIP_COUNT = 6


def links() -> None:
    """Starting a run (on a viewer: browsing the runs) and watching one, one click each."""
    start, watch = st.columns(2)
    with start:
        shell.page_link("app_pages/runs.py", label="Browse the runs" if viewer_mode.active() else "Start a run",
                        icon=":material/play_circle:")
    with watch:
        shell.page_link("app_pages/live.py", label="Watch a run train", icon=":material/monitoring:")


def method_sentences() -> None:
    for method, sentence in METHOD_SENTENCES.items():
        st.markdown(f"<span style='color:{charts.method_colour(method)}'>●</span> {sentence}",
                    unsafe_allow_html=True)


def accuracy_macs_figure(variants: pd.DataFrame, beside: pd.DataFrame, dataset: str,
                         points: Sequence[Any] = ()) -> go.Figure:
    """Demo variants (mean ± std over seeds) on `dataset`, one named point each, and the user's finished runs
    in the demo's setting (`prunelab.analysis.live.runs_beside`) as open markers
    (`app_components.charts.accuracy_figure`).

    With `points` (the papers' CIFAR-10 results, `app_components.paper_points.published`) the x axis is
    the MACs reduction, the papers' unit, and the points are drawn as labelled stars."""
    shown = variants[variants["dataset"] == dataset]
    x = "macs_reduction" if points else "macs_per_image"
    fig = charts.accuracy_figure(shown, x, points, live.runs_beside(shown, beside))
    first = shown.iloc[0] if not shown.empty else None
    setting = (f"{first['model']} at width {first['width']:g}, mean ± std over up to {int(shown['seeds'].max())} seeds"
               if first is not None else "")
    return fig.update_layout(height=560, margin={"t": 60, "b": 40, "l": 50, "r": 10},  # a two-line title
                             title={"text": f"Accuracy against {'MACs reduction' if points else 'MACs'} on "
                                            f"{dataset_short_name(dataset)}<br><sup>{setting}</sup>",
                                    "font": {"size": 14}})


def image_strip(runs: pd.DataFrame, dataset: str | None) -> None:
    """A ManiDP demo run's cheapest and costliest test images with their MACs."""
    path = live.strip_run(runs, dataset)
    if path is None:
        st.caption("A finished ManiDP demo run shows its cheapest and costliest images here.")
        return
    per_image = common.read(path, PER_IMAGE)
    if per_image is None or per_image.empty:
        return
    cheapest, costliest = tables.rank_by_macs(per_image, STRIP_COUNT)
    names = common.class_names_of(path) or []
    for title, rows in (("Cheapest images", cheapest), ("Costliest images", costliest)):
        st.markdown(f"**{title}** for ManiDP (MACs per image)")
        images = common.cached_test_images(path, tuple(int(i) for i in rows["index"]))
        captions = [f"{tables.class_name(names, r['label'])} · {r['macs'] / 1e6:.2f}\u00a0M"
                    for _, r in rows.iterrows()]
        if images is None:
            st.caption("The test images of this run's dataset are not available: " + ", ".join(captions))
            continue
        image_grid(images, captions, f"home_{title.split()[0].lower()}", STRIP_COUNT)
    dense = per_image["macs"].max()
    st.caption(f"Same network, same weights: each image runs the channels its gates keep, from "
               f"{per_image['macs'].min() / 1e6:.2f} M to {dense / 1e6:.2f} M MACs. More on **Per-image MACs**.")


def chart_caption(runs: pd.DataFrame, reduction: bool = False) -> None:
    """What the chart shows; `reduction`: its x axis is the MACs reduction (then top-right is best)."""
    source = "the bundled demo" if runs["demo"].astype(bool).any() else "your finished runs"
    best = ("Top-right is best: high accuracy at a large MACs reduction." if reduction
            else "Top-left is best: high accuracy at few MACs.")
    st.caption(f"{best} Each point is a variant of {source} (runs that "
               "differ only in their seed), averaged over its seeds; bars: ± one standard deviation. The "
               "**Slimming**, **Per-image MACs**, **Similarity** and **Ablations** pages explain each method on "
               "these runs.")


def no_demo_message() -> None:
    st.info("No finished runs to chart yet (the bundled demo is hidden or missing)."
            + viewer_mode.offer(" Start a run on the **Runs** page; finished runs appear here as accuracy against "
                                "MACs."))


"""Sub-network space on a page: UMAPs of gate vectors and of features, one point per test image.

With the run's gated model (model.pt) every test image is a point: its UMAPs are read from the views
stored with the run (`prunelab.analysis.views`, shipped with a demo run), or computed when asked, with a progress
bar, and stored next to the run (a demo run's in the derived-file cache; a read-only viewer computes none).
Until then, and for a run without its model, the probe images of probe.npz are shown. Hovering a point shows the
image's label, prediction, loss and MACs; clicking (or box-selecting) points shows the images themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

from app_components import common, viewer_mode
from app_components.images import show_images
from prunelab.analysis import results, tables
from prunelab.methods.manidp.artefacts import PROBE, Probe
from prunelab.runs.run import Run
from prunelab.runs.run_format import MODEL_FILE, RunStoreError

ALL_LAYERS = "all layers (concatenated)"
COLOUR_BY = {"class": "class", common.MAC_LABEL: "MACs", "loss": "loss"}
KINDS = (("gates", "gate vectors π"), ("features", "pooled features"))
SELECTED_SHOWN = 24  # images shown for a box or lasso selection


def _all_images_embedding(path: str, mtime: float, kind: str, layer: str) -> np.ndarray | None:
    from prunelab.analysis.views import load_umap

    return load_umap(path, kind, None if layer == ALL_LAYERS else layer)


@st.cache_data(show_spinner="Computing UMAP…", max_entries=64)
def _probe_embedding(path: str, mtime: float, kind: str, layer: str) -> np.ndarray | None:
    probe = Run(path).read(PROBE)
    per_layer = probe.gates if kind == "gates" else probe.features
    if layer == ALL_LAYERS:
        return tables.umap_embedding(tables.concat_layers(per_layer))
    return tables.umap_embedding(per_layer[probe.layer_names.index(layer)])


def show(run: Path, probe: Probe, per_image: pd.DataFrame | None, names: list[str]) -> None:
    """Layer and colour pickers, the two UMAPs side by side and the images of the selected points."""
    cols = st.columns(2)
    layer = cols[0].selectbox("UMAP layer", [ALL_LAYERS, *probe.layer_names], key="sim_umap_layer")
    colour = cols[1].radio("Colour by", list(COLOUR_BY), horizontal=True, key="sim_colour")
    embed, indices, labels = _source(run, probe, per_image, None if layer == ALL_LAYERS else layer)
    points = tables.point_table(indices, per_image, names, labels)
    colour_column = COLOUR_BY[colour]
    if colour_column != "class" and points[colour_column].isna().all():
        st.info(f"This run has no per-image {colour_column} (per_image.parquet) for these images; coloured by class.")
        colour_column = "class"
    mtime = Run(run).newest_version()
    chosen: list[int] = []
    cols = st.columns(2)
    for col, (kind, title) in zip(cols, KINDS, strict=True):
        xy = embed(str(run), mtime, kind, layer)
        if xy is None:
            col.info(f"UMAP needs at least {tables.UMAP_MIN_POINTS} images.")
            continue
        chosen += _scatter(col, points.assign(x=xy[:, 0], y=xy[:, 1]), colour_column, title, f"sim_umap_{kind}")
    _selected(run, points, chosen, names)


def _source(run: Path, probe: Probe, per_image: pd.DataFrame | None,
            layer: str | None) -> tuple[Any, np.ndarray, np.ndarray]:
    """(embedding function, test-image indices, labels): every test image when the run's gated model can be
    evaluated, else the probe images (the page says why)."""
    from prunelab.analysis import views

    reason = None
    if not (Path(run) / MODEL_FILE).is_file():
        reason = (f"this run has no {MODEL_FILE}" + (" (the bundled demo ships without it)"
                                                     if results.is_demo(run) else ""))
    elif per_image is None:
        reason = "its per-image table (per_image.parquet) is not written yet"
    elif views.load_umap(run, "gates", layer) is not None:
        st.caption(f"Every one of the run's {len(per_image)} test images is a point (gate vectors computed from "
                   "the saved gated model at its thresholds). Hover for its label, prediction, loss and MACs; click "
                   "a point, or drag a box, to see the images.")
        return _all_images_embedding, per_image["index"].to_numpy(), per_image["label"].to_numpy()
    elif viewer_mode.active():
        reason = ("the map of every test image at this layer is not stored with this run, and this read-only viewer "
                  "computes none")
    else:
        reason = "the map of every test image at this layer is not computed yet"
        if st.button(f"Compute the map of all {len(per_image)} test images at this layer (stored next to the run)",
                     key="sim_umap_compute"):
            try:
                _compute(run, layer)
            except (RunStoreError, OSError, ValueError) as error:
                reason = f"the gate vectors of its test images cannot be computed ({error})"
            except Exception as error:  # noqa: BLE001 - e.g. the dataset is unavailable: fall back, say why
                reason = f"the gate vectors of its test images cannot be computed ({type(error).__name__}: {error})"
    st.caption(f"The {len(probe.indices)} probe images (probe.npz) are shown: {reason}. Hover for label, "
               "prediction, loss and MACs; click a point, or drag a box, to see the images.")
    return _probe_embedding, probe.indices, probe.labels


def _compute(run: Path, layer: str | None) -> None:
    """Compute the run's UMAPs at `layer` with a progress bar, store them, and draw the page again."""
    from prunelab.analysis import views

    bar = st.progress(0.0, text="Starting…")
    out = views.cache_dir(run) if results.is_demo(run) else None  # a demo run stays read-only
    views.compute_umaps(run, [layer], out_dir=out, report=lambda fraction, text: bar.progress(fraction, text=text))
    st.rerun()


def _scatter(col: Any, points: pd.DataFrame, colour: str, title: str, key: str) -> list[int]:
    """One UMAP scatter; returns the test-image indices of the points selected on it."""
    fig = px.scatter(points, x="x", y="y", color=colour, custom_data=["index"], title=f"UMAP of {title}",
                     hover_name=[f"test image #{i}" for i in points["index"]],
                     hover_data={"x": False, "y": False, "class": True, "prediction": True, "loss": ":.3f",
                                 "MACs": ":.4s"},
                     labels={"x": "UMAP 1", "y": "UMAP 2", "MACs": "MACs"})
    fig.update_traces(marker={"size": 5 if len(points) > 500 else 8})
    with col:
        event = st.plotly_chart(fig.update_layout(height=420), key=key, on_select="rerun",
                                selection_mode=("points", "box", "lasso"))
    return [int(index) for index in common.selected_custom(event)]


def _selected(run: Path, points: pd.DataFrame, chosen: list[int], names: list[str]) -> None:
    if not chosen:
        st.caption("No point selected yet.")
        return
    unique = [index for index in dict.fromkeys(chosen) if index in set(points["index"])]
    if not unique:
        st.caption("No point selected yet.")
        return
    rows = points.set_index("index").loc[unique[:SELECTED_SHOWN]].reset_index()
    more = f" (the first {SELECTED_SHOWN} of {len(unique)})" if len(unique) > SELECTED_SHOWN else ""
    st.markdown(f"**Selected test images{more}:** label→prediction, loss, MACs")
    show_images(str(run), rows[["index", "label", "pred", "loss", "macs"]], names, "sim_selected")

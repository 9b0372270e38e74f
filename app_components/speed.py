"""The Speed page's parts: read a speed benchmark result (`benchmarks/bench_speed.py`, shipped under
`assets/speed/`), and turn it into tables and Plotly figures. Nothing here measures anything.

A result file is the JSON that `python benchmarks/run_all.py --quick --only speed --out F.json` writes:
`speed_rows` (one row per kind, model, batch, threads and form), the four headline keys, `targets`, the
machine, and `details.speed.models[<model>].split` (where the time goes).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from app_components.shell import ROOT
from prunelab.speed.forms import FORM_LABELS

SPEED_DIR_ENV = "PRUNELAB_SPEED_DIR"
HEADLINES = {  # key -> (label, target, what it is)
    "static_speedup_over_macs_b1": ("Static, batch 1: speedup / MACs ratio", 0.8,
                                    "compact network in its fastest form, dense network in the same form"),
    "static_speedup_over_macs_b64": ("Static, batch 64: speedup / MACs ratio", 0.85,
                                     "compact network in its fastest form, dense network in the same form"),
    "dynamic_speedup_over_macs_b1": ("Dynamic, batch 1: speedup / MACs ratio", 0.6,
                                     "sparse executor against the BN-folded dense network"),
    "dynamic_speedup_b64": ("Dynamic, batch 64: speedup", 1.2,
                            "batched executor against the BN-folded dense network in channels-last"),
}
EXECUTOR_LABELS = {"sparse_executor": "sparse executor (one image at a time)",
                   "batched_executor": "batched executor (union of the batch's channels)"}
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
MODEL_LABELS = {"resnet56": "ResNet-56", "vgg16": "VGG-16", "resnet20": "ResNet-20", "vgg11": "VGG-11"}


def speed_dir() -> Path:
    """Folder of the result files: `PRUNELAB_SPEED_DIR`, else `assets/speed` of the repository."""
    return Path(os.environ.get(SPEED_DIR_ENV) or ROOT / "assets" / "speed")


def result_files() -> list[Path]:
    folder = speed_dir()
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


@st.cache_data(show_spinner=False, max_entries=8)
def _load(path: str, mtime: float) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def load(path: Path) -> dict[str, Any] | None:
    """The result JSON, or None (with an error on the page) when it is unreadable or holds no speed rows."""
    try:
        result = _load(str(path), path.stat().st_mtime)
    except (OSError, ValueError) as error:
        st.error(f"`{path.name}` cannot be read: {error}")
        return None
    if not result.get("speed_rows"):
        st.error(f"`{path.name}` holds no `speed_rows`: it is not a speed benchmark result.")
        return None
    return result


def rows(result: dict[str, Any]) -> pd.DataFrame:
    frame = pd.DataFrame(result["speed_rows"])
    frame["form_label"] = frame["form"].map(FORM_LABELS).fillna(frame["form"])
    return frame


def oversubscribed(frame: pd.DataFrame) -> float | None:
    """Median ratio of the dense network's 2-thread to its 1-thread time over the cells measured both ways
    (above 1: two threads were slower than one, the cores were busy with other work), or None."""
    dense = frame.drop_duplicates(["model", "batch", "threads", "form"])
    one = dense[dense["threads"] == 1].set_index(["model", "batch", "form"])["dense_ms"]
    two = dense[dense["threads"] == 2].set_index(["model", "batch", "form"])["dense_ms"]
    both = two.index.intersection(one.index)
    return float((two[both] / one[both]).median()) if len(both) else None


def split_of(result: dict[str, Any], model: str) -> dict[str, Any] | None:
    return result.get("details", {}).get("speed", {}).get("models", {}).get(model, {}).get("split")


def model_facts(result: dict[str, Any], model: str) -> dict[str, Any]:
    facts = result.get("details", {}).get("speed", {}).get("models", {}).get(model, {})
    return {k: v for k, v in facts.items() if k not in ("split", "cells")}


# --- text ------------------------------------------------------------------------------------------------
def machine_caption(result: dict[str, Any]) -> str:
    machine, git = result.get("machine", {}), result.get("git", {})
    load = result.get("details", {}).get("speed", {})
    cpu = f"CPU, {machine.get('cpu_count')} cores ({machine.get('processor') or 'x86_64'})"
    device = machine.get("cuda_device") or cpu
    commit = (git.get("commit") or "?")[:7] + (" (uncommitted changes)" if git.get("dirty") else "")
    return (f"Measured {result.get('time', '?')} on {device}, torch {machine.get('torch_version')}, code {commit}. "
            f"Load average before / after: {load.get('load_average_before')} / {load.get('load_average_after')} "
            "(a shared machine: other jobs were running, so single figures are noisy; every ratio is the median of "
            "per-round ratios taken side by side). One thread reads thread CPU time, two threads wall time.")


def headline_frame(result: dict[str, Any]) -> pd.DataFrame:
    by_model = result.get("details", {}).get("speed", {}).get("headline_by_model", {})
    records = []
    for key, (label, target, what) in HEADLINES.items():
        value = result.get(key)
        record = {"figure": label, "measured (worse model)": value, "target": target,
                  "state": "n/a" if value is None else ("met" if value >= target else
                                                        f"missed by {1 - value / target:.0%}"),
                  "what": what}
        part = key.split("_b")[-1]
        kind = "static" if key.startswith("static") else "dynamic"
        for model, entry in by_model.items():
            cell = entry.get(f"{kind}_b{part}")
            if cell:
                field = "speedup" if key == "dynamic_speedup_b64" else "speedup_over_macs"
                form = cell.get("form") or cell.get("dense_form")
                record[MODEL_LABELS.get(model, model)] = f"{cell[field]:.2f} ({FORM_LABELS.get(form, form)})"
        records.append(record)
    return pd.DataFrame(records)


# --- figures ----------------------------------------------------------------------------------------------
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


def time_budget_frame(split: dict[str, Any]) -> pd.DataFrame:
    """Per batch and network: whole forward, the convolutions alone, the rest, and the MACs."""
    records = []
    for key, label in (("layers_b1", "batch 1"), ("layers_b64", "batch 64")):
        for net, values in split.get(key, {}).get("networks", {}).items():
            records.append({"batch": label, "network": net, "whole forward ms": values["whole_ms"],
                            "convolutions ms": values["conv_ms"], "everything else ms": values["other_ms"],
                            "MACs": values["macs"]})
    frame = pd.DataFrame(records)
    if frame.empty:
        return frame
    for batch in frame["batch"].unique():
        part = frame["batch"] == batch
        dense = frame[part & (frame["network"] == "dense")].iloc[0]
        frame.loc[part, "MACs ratio"] = dense["MACs"] / frame.loc[part, "MACs"]
        frame.loc[part, "conv speedup"] = dense["convolutions ms"] / frame.loc[part, "convolutions ms"]
        frame.loc[part, "speedup"] = dense["whole forward ms"] / frame.loc[part, "whole forward ms"]
    return frame


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


def amdahl(split: dict[str, Any], macs_ratio: float) -> dict[str, float] | None:
    """Fixed cost at batch 1 and the speedup Amdahl's law allows with it (dense and one-channel ms)."""
    fixed = split.get("fixed_cost_b1_ms")
    if not fixed:
        return None
    dense, floor = fixed["dense"], fixed["one_channel"]
    return {"dense_ms": dense, "fixed_ms": floor, "fixed_share": floor / dense,
            "amdahl_speedup": dense / (floor + (dense - floor) / macs_ratio)}

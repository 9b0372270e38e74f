"""The live view of one run (app_pages/live.py): a run picker, then a fragment that re-reads the run's files
every POLL_S seconds while it trains and stops polling once it has ended.

What is drawn is computed by `prunelab.analysis.live` from the cached loaders of `app_components.common` (keyed
by the run's newest file mtime, so a poll re-reads only what changed). Nothing here touches the
trainer: a run started from the form, from a terminal or by another app process is watched alike,
through its files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from app_components import common, shell, viewer_mode
from prunelab.analysis import live, results, tables
from prunelab.config import METHOD_FACTS
from prunelab.methods.manidp.artefacts import PER_IMAGE
from prunelab.methods.slimming.artefacts import GAMMA_HISTORY, PRUNING
from prunelab.runs.artefacts import METRICS
from prunelab.runs.run_format import GAMMA_HISTORY_FILE, METRICS_FILE, NEAR_ZERO_GAMMA, PER_IMAGE_FILE
from prunelab.runs.safe_text import printable

POLL_S = 2.0
LOG_LINES = 30
PICK_KEY = "live_run"
PARAM = "run"  # ?run=<run id> opens the page on that run (the run form links to it)
_PARAM_SEEN = "live_run_param"
PHASE_COLOURS = ["rgba(46, 134, 171, 0.10)", "rgba(241, 143, 1, 0.10)", "rgba(110, 170, 80, 0.10)"]
TRAIN_COLOUR, TEST_COLOUR, PRUNE_COLOUR = "#2e86ab", "#f18f01", "#c73e1d"


# ----------------------------------------------------------------------------------------------
# picking a run


def link_to(run_id: str, label: str = "Watch it train") -> None:
    """A link that opens the live view on `run_id`."""
    shell.page_link("app_pages/live.py", label=label, icon=":material/monitoring:", query_params={PARAM: run_id})


def pick_run() -> Path | None:
    """A selectbox over every run (running ones first); `?run=<id>` preselects one. None, with a message
    saying how to start a run, when there is none."""
    runs = common.runs_frame()
    if runs.empty:
        start = viewer_mode.offer("Start one on the **Runs** page (or with `python -m prunelab run ...` in a "
                                  "terminal) and watch it train here. ")
        st.info(f"No runs yet. {start}Runs are read from `{common.default_runs_dir()}`.")
        return None
    active = runs["state"].map(live.is_active)
    runs = pd.concat([runs[active], runs[~active]])
    labels = {row["path"]: _label(row) for _, row in runs.iterrows()}
    wanted = st.query_params.get(PARAM)
    if wanted and wanted != st.session_state.get(_PARAM_SEEN):
        match = next((path for path in labels if Path(path).name == wanted), None)
        if match is not None:
            st.session_state[PICK_KEY] = match
    if st.session_state.get(PICK_KEY) not in labels:
        st.session_state.pop(PICK_KEY, None)
    choice = st.selectbox("Run", list(labels), format_func=labels.__getitem__, key=PICK_KEY,
                          help="Running runs first. A run started anywhere (this app, a terminal) is "
                               "shown from its files.")
    if choice is None:
        return None
    st.query_params[PARAM] = st.session_state[_PARAM_SEEN] = Path(choice).name
    return Path(choice)


def _label(row: pd.Series) -> str:
    """'[demo] name · method (settings)': no state or accuracy, so a label stays the same while the run
    trains and ends (the browser keeps the chosen option by its label)."""
    settings = results.method_settings(row) if pd.notna(row.get("method")) else ""
    method = f"{row['method']} ({settings})" if settings else str(row.get("method") or "unknown method")
    name = row["name"] if row["name"] == row["run_id"] else f"{row['name']} ({row['run_id']})"
    return f"{'[demo] ' if row['demo'] else ''}{name} · {method}"


# ----------------------------------------------------------------------------------------------
# the live fragment


def watch(path: Path) -> None:
    """Draw the run and, while it may still write files, redraw it every POLL_S seconds (a fragment:
    the rest of the page and the app stay responsive)."""
    state, _ = live.run_status(path)
    st.fragment(_live_body, run_every=POLL_S if live.is_active(state) else None)(str(path), state)


def _live_body(path: str, drawn_state: str) -> None:
    state, status = live.run_status(path)
    if live.is_active(state) != live.is_active(drawn_state):
        st.rerun()  # the run ended (or was resumed): redraw the whole page, which stops (or starts) polling
    config = common.config_of(path)
    curves = live.epoch_curves(common.read(path, METRICS))
    spans = live.phase_spans(curves, live.planned_phases(config))
    _header(path, state, status, curves, spans)
    if curves.empty:
        if (Path(path) / METRICS_FILE).exists() or live.is_active(state):
            st.info("No epoch has finished yet: the curves appear after the first one (metrics.jsonl).")
        else:
            common.report_missing(path, METRICS_FILE, f"This run has no metrics.jsonl ({state}).")
    else:
        with st.container(key="live_curves"):
            st.plotly_chart(curves_figure(curves, spans, common.read(path, PRUNING)), key="live_curves_chart")
    method = config.method.name if config is not None else None
    panel = PANELS.get(METHOD_FACTS[method].live_panel) if method in METHOD_FACTS else None
    if panel is not None:
        panel(path, curves, config)
    _details(path, config, method, state)


def _header(path: str, state: str, status: dict[str, Any], curves: pd.DataFrame,
            spans: list[live.PhaseSpan]) -> None:
    total = sum(span.epochs for span in spans)
    fraction = len(curves) / total if total else float(status.get("fraction") or 0.0)
    polling = f" · refreshing every {POLL_S:g} s" if live.is_active(state) else ""
    st.progress(min(1.0, max(0.0, fraction)),
                text=f"**{state}**{polling} · {live.progress_text(curves, spans)}")
    if status.get("error"):
        st.error(f"The run failed: {common.md_text(status['error'])}")
    elif state == "interrupted":
        why = common.md_text(status.get("message") or "its owner is gone")
        resume = f"python -m prunelab resume {Path(path).name}"
        st.warning(f"This run stopped without finishing ({why})."
                   + viewer_mode.offer(f" Resume it on the **Runs** page or with {common.md_code(resume)}."))


def curves_figure(curves: pd.DataFrame, spans: list[live.PhaseSpan],
                  pruning: dict[str, Any] | None = None) -> go.Figure:
    """Loss and accuracy per epoch (train and test), phases shaded (planned ones fainter), the boundary
    between two phases marked (slimming: "prune", with the accuracy right after pruning)."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.08)
    hover = curves["phase_label"] + " epoch " + curves["epoch"].astype(str)
    traces = [(1, "train CE", curves["train_ce"], TRAIN_COLOUR, "solid"),
              (1, "test CE", curves["test_loss"], TEST_COLOUR, "dash"),
              (2, "train acc", curves["train_acc"], TRAIN_COLOUR, "solid"),
              (2, "test acc", curves["test_acc"], TEST_COLOUR, "dash")]
    objective = curves["train_loss"]
    if not np.allclose(objective, curves["train_ce"], rtol=1e-3, equal_nan=True):  # method terms in the loss
        traces.insert(1, (1, "train objective (CE + method terms)", objective, TRAIN_COLOUR, "dot"))
    for col, name, series, colour, dash in traces:
        fig.add_scatter(x=curves["step"], y=series, mode="lines+markers", name=name,
                        line={"color": colour, "dash": dash}, marker={"size": 7 if dash != "dot" else 4},
                        text=hover, hovertemplate="%{text}<br>%{y:.4f}<extra>" + name + "</extra>", row=1, col=col)
    for index, span in enumerate(spans):
        colour = PHASE_COLOURS[index % len(PHASE_COLOURS)]
        done_end = span.start + span.done
        for col in (1, 2):
            if span.done:
                fig.add_vrect(x0=span.start, x1=done_end, fillcolor=colour, line_width=0, layer="below", row=1, col=col)
            if done_end < span.end:  # planned, not trained yet
                fig.add_vrect(x0=done_end, x1=span.end, fillcolor="rgba(128, 128, 128, 0.06)", line_width=0,
                              layer="below", row=1, col=col)
        text = span.label if span.done == span.epochs else f"{span.label} ({span.done}/{span.epochs})"
        for xref in ("x", "x2"):
            fig.add_annotation(x=(span.start + span.end) / 2, y=1.0, yref="paper", yanchor="bottom", xref=xref,
                               showarrow=False, text=text, font={"size": 11})
    for step, label in live.boundaries(spans):
        for col in (1, 2):
            fig.add_vline(x=step, line={"color": PRUNE_COLOUR, "dash": "dot", "width": 2}, row=1, col=col)
        fig.add_annotation(x=step, y=0.0, yref="paper", xref="x2", text=label, showarrow=False, yanchor="bottom",
                           font={"color": PRUNE_COLOUR})
    if pruning and "acc_after_prune" in pruning:
        step = next((s for s, label in live.boundaries(spans) if label == "prune"), None)
        if step is not None:
            fig.add_scatter(x=[step, step], y=[pruning.get("acc_before_prune"), pruning["acc_after_prune"]],
                            mode="markers", name="before / right after pruning",
                            marker={"color": PRUNE_COLOUR, "symbol": ["circle-open", "x"], "size": 11},
                            hovertemplate="%{y:.4f}<extra>pruning</extra>", row=1, col=2)
    last = max([span.end for span in spans] + [float(curves["step"].max()) + 0.5])
    fig.update_xaxes(range=[0.5, last], title_text="epoch, all phases", dtick=1 if last < 30 else None)
    fig.update_yaxes(title_text="loss (cross-entropy)", row=1, col=1)
    fig.update_yaxes(title_text="accuracy", range=[0, 1.02], row=1, col=2)
    fig.update_layout(height=340, margin={"t": 50, "b": 40, "l": 40, "r": 10},
                      legend={"orientation": "h", "y": -0.25})
    return fig


# ----------------------------------------------------------------------------------------------
# method panels


def _slimming_panel(path: str, curves: pd.DataFrame, config: Any) -> None:
    st.subheader("|γ| of the prunable BatchNorm scales")
    history = common.read(path, GAMMA_HISTORY)
    if history is None:
        common.report_missing(path, GAMMA_HISTORY_FILE, "Slimming writes gamma_history.npz when training starts "
                              "and after every sparsity epoch.")
        return
    latest = live.latest_gammas(history)
    if latest is None:
        st.info("gamma_history.npz has no epoch yet.")
        return
    epoch, values, threshold = latest
    initial = tables.layer_gammas(history.gammas, history.layer_names, 0)
    st.plotly_chart(gamma_figure(initial, values, epoch, threshold, history.sparsity_lambda), key="live_gamma")
    share = tables.near_zero_share(values)
    st.caption(f"After sparsity epoch {epoch}: {share:.1%} of the {values.size} scales lie below "
               f"{NEAR_ZERO_GAMMA}. The L1 term (λ = {history.sparsity_lambda:g}) pulls them toward "
               "zero; the dotted line is the global threshold the prune ratio would cut at now."
               if epoch else "At initialisation: the first sparsity epoch has not finished yet.")


def gamma_figure(initial: np.ndarray, values: np.ndarray, epoch: int, threshold: float | None,
                 sparsity_lambda: float) -> go.Figure:
    """Histogram of |γ| at the latest epoch over the one at initialisation, with the global threshold."""
    edges = tables.gamma_bin_edges([initial, values])
    fig = go.Figure()
    for label, data, colour in (("at initialisation", initial, "rgba(128, 128, 128, 0.45)"),
                                (f"after sparsity epoch {epoch}", values, TRAIN_COLOUR)):
        hist = tables.gamma_histogram(data, edges)
        fig.add_bar(x=hist["center"], y=hist["count"], width=float(edges[1] - edges[0]), name=label,
                    marker_color=colour)
    if threshold is not None:
        fig.add_vline(x=threshold, line={"color": PRUNE_COLOUR, "dash": "dot"}, annotation_text="threshold")
    fig.update_layout(barmode="overlay", height=280, margin={"t": 30, "b": 40}, xaxis_title="|γ|",
                      yaxis_title="channels", title=f"λ = {sparsity_lambda:g}", legend={"orientation": "h"})
    return fig


def _manidp_panel(path: str, curves: pd.DataFrame, config: Any) -> None:
    st.subheader("Gates: density per layer and the complexity threshold C")
    left, right = st.columns(2)
    with left:
        layers = live.layer_density_curves(curves)
        if not layers.empty:
            step = layers["step"].max()
            latest = layers[layers["step"] == step]
            title = f"test density per gated layer, epoch {int(latest['epoch'].iloc[0])}"
        else:
            latest = live.final_layer_densities(common.read(path, PER_IMAGE))
            title = "test density per gated layer, final model"
        if latest.empty:
            common.report_missing(path, PER_IMAGE_FILE, "Density per layer appears after the first epoch (runs "
                                  "made before per-layer densities were logged show it when training ends).")
        else:
            st.plotly_chart(density_figure(latest, title, getattr(config.method, "target_density", None)),
                            key="live_density")
    with right:
        if "complexity_c" in curves and curves["complexity_c"].notna().any():
            used = bool(getattr(config.method, "complexity", True))
            st.plotly_chart(complexity_figure(curves, used), key="live_complexity")
        else:
            st.info("C is logged after the first epoch (metrics.jsonl: complexity_c).")


def density_figure(latest: pd.DataFrame, title: str, target: float | None) -> go.Figure:
    fig = go.Figure(go.Bar(x=latest["layer"], y=latest["density"], marker_color=TRAIN_COLOUR,
                           hovertemplate="%{x}<br>%{y:.3f}<extra></extra>"))
    if target is not None:
        fig.add_hline(y=target, line={"color": PRUNE_COLOUR, "dash": "dot"}, annotation_text="target")
    return fig.update_layout(height=300, margin={"t": 40, "b": 40}, title=title, yaxis_range=[0, 1.02],
                             yaxis_title="fraction of channels kept")


def complexity_figure(curves: pd.DataFrame, used: bool) -> go.Figure:
    """C per epoch beside the mean training CE it comes from (images with CE below C are pushed)."""
    fig = go.Figure()
    fig.add_scatter(x=curves["step"], y=curves["complexity_c"], mode="lines+markers", name="C (this epoch)",
                    line={"color": PRUNE_COLOUR})
    if "train_ce" in curves:
        fig.add_scatter(x=curves["step"], y=curves["train_ce"], mode="lines+markers", name="mean training CE",
                        line={"color": TRAIN_COLOUR, "dash": "dash"})
    title = "complexity threshold C" + ("" if used else " (complexity term off: not used)")
    return fig.update_layout(height=320, margin={"t": 40, "b": 40}, title=title, xaxis_title="epoch, all phases",
                             legend={"orientation": "h", "y": -0.3}, xaxis_dtick=1)


# what a method adds under the curves, by the panel its facts name (MethodFacts.live_panel): the BN scales'
# histogram, or the gates' densities and C; (run path, curves, config) -> None
PANELS = {"gamma": _slimming_panel, "gates": _manidp_panel}


# ----------------------------------------------------------------------------------------------
# config, log and files


def _details(path: str, config: Any, method: str | None, state: str) -> None:
    files, log_tab, config_tab = st.tabs(["Artefacts", "Log", "Config"])
    with files:
        listing = live.artefact_listing(path, method, state)
        st.dataframe(listing, hide_index=True, key="live_files",
                     column_config={"bytes": st.column_config.NumberColumn("size", format="compact")})
        absent = listing[listing["note"] != ""]
        if not absent.empty:
            names = ", ".join(f"`{name}`" for name in absent["file"])
            if state == "done":
                st.error(f"This run has finished but {names} {'is' if len(absent) == 1 else 'are'} missing.")
            else:
                st.caption(f"Not written yet: {names}. A run writes its summary and most of its method's "
                           "artefacts when training ends.")
    with log_tab:
        lines = [printable(line) for line in live.log_tail(path, LOG_LINES)]  # shown as text, escapes visible
        st.code("\n".join(lines) if lines else "(log.txt is empty or not written yet)", language=None)
    with config_tab:
        if config is None:
            st.warning("config.json is missing or invalid.")
        else:
            st.json(config.model_dump(mode="json"), expanded=1)

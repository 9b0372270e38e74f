"""What the live view of one run and the home page's overview show, computed from the run's files.

Streamlit-free: the pages (`app_pages/live.py`, `app_pages/home.py`) read a run directory through
`prunelab.analysis.results`, pass the frames here and draw what comes back. Everything accepts a run that is
still being written: an empty metrics frame, a missing artefact or a phase that has not started yet
gives an empty result, never an exception.

- `epoch_curves`: metrics.jsonl rows in training order, with `step`, the epoch counted over every phase.
- `phase_spans` / `planned_phases` / `boundaries`: where each phase lies on that axis, done or planned,
  and what happens between two phases (slimming prunes between sparsity training and fine-tuning).
- `layer_density_curves`: ManiDP's density per gated layer and epoch (`test_density_<layer>` columns).
- `artefact_listing`: every file of the run, and the artefacts its method writes that are not there yet.
- `variants` / `strip_run`: the home page's accuracy-against-MACs chart and cheap/costly image strip;
  `chart_runs` / `user_runs` / `runs_beside` / `other_settings`: which runs that chart draws, and how many
  of the user's runs it leaves off.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from prunelab.analysis import lessons, tables
from prunelab.config import METHOD_FACTS
from prunelab.methods.manidp.config import NAME as MANIDP
from prunelab.runs.artefact_checks import required_artefacts
from prunelab.runs.ownership import effective_state
from prunelab.runs.run import Run
from prunelab.runs.run_format import ACTIVE_STATES, RunStoreError

log = logging.getLogger("prunelab.analysis.live")

PHASE_LABELS = {"train": "training"} | {phase: label for facts in METHOD_FACTS.values()
                                         for phase, label in facts.phase_labels}
# what a method does to the model between two of its phases (Trainer: method.between_phases)
BOUNDARY_LABELS = {pair: label for facts in METHOD_FACTS.values() for pair, label in facts.boundary_labels}
LAYER_DENSITY_PREFIX = "test_density_"  # ManiDP: test density of one gated layer per epoch
CURVE_COLUMNS = ["train_loss", "train_ce", "test_loss", "train_acc", "test_acc"]


# ------------------------------------------------------------------------------------------------
# the run's state


def run_status(path: str | Path) -> tuple[str, dict[str, Any]]:
    """(state to show, status.json): `interrupted` for an active run whose owner is gone; ("broken", {})
    when status.json cannot be read."""
    try:
        status = Run(path).status
    except RunStoreError:
        return "broken", {}
    if status is None:
        return "broken", {}
    return effective_state(path, status), status


def is_active(state: str) -> bool:
    """Whether a run in `state` may still write files (a page keeps polling it)."""
    return state in ACTIVE_STATES


# ------------------------------------------------------------------------------------------------
# curves


def epoch_curves(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per epoch in training order (phase_index, epoch), the last row kept where one repeats,
    with `step` = 1, 2, ... counted over every phase and `phase_label` for legends."""
    if metrics is None or metrics.empty or "epoch" not in metrics:
        return pd.DataFrame(columns=["phase", "phase_index", "epoch", "step", "phase_label", *CURVE_COLUMNS])
    frame = metrics.copy()
    if "phase_index" not in frame:
        frame["phase_index"] = 0
    if "phase" not in frame:
        frame["phase"] = "train"
    frame["phase_index"] = frame["phase_index"].fillna(0).astype(int)
    frame = frame.dropna(subset=["epoch"]).assign(epoch=lambda f: f["epoch"].astype(int))
    frame = frame.drop_duplicates(["phase_index", "epoch"], keep="last")
    frame = frame.sort_values(["phase_index", "epoch"], kind="stable").reset_index(drop=True)
    frame["step"] = np.arange(1, len(frame) + 1)
    frame["phase_label"] = [PHASE_LABELS.get(str(p), str(p)) for p in frame["phase"]]
    for column in CURVE_COLUMNS:
        if column not in frame:
            frame[column] = np.nan
    frame["train_ce"] = frame["train_ce"].fillna(frame["train_loss"])  # rows from before train_ce was logged
    return frame


@dataclass(frozen=True)
class PhaseSpan:
    """A phase on the `step` axis: from `start` to `end` (half-way between epochs); `done` epochs of
    `epochs` planned (a planned phase not started yet has done = 0)."""

    name: str
    label: str
    start: float
    end: float
    done: int
    epochs: int


def planned_phases(config: Any) -> list[tuple[str, int]]:
    """[(phase name, epochs)] the run's method trains through (from its config alone); [] when unknown."""
    if config is None:
        return []
    try:
        from prunelab.methods import get_method

        method = get_method(config.method.name)(config.method, SimpleNamespace(config=config))
        return [(phase.name, int(phase.epochs)) for phase in method.phases()]
    except Exception as error:  # noqa: BLE001 - only a layout hint: fall back to the phases logged so far
        log.info("cannot tell the phases of %s: %s", getattr(config, "name", config), error)
        return []


def phase_spans(curves: pd.DataFrame, planned: list[tuple[str, int]] | None = None) -> list[PhaseSpan]:
    """Each phase's span on the `step` axis: the planned phases in order (epochs done so far from the
    curves), or only the phases logged when the plan is unknown or does not match the log."""
    done_by_index: dict[int, int] = {}
    names_logged: dict[int, str] = {}
    for index, part in curves.groupby("phase_index", sort=True) if not curves.empty else []:
        done_by_index[int(index)] = len(part)
        names_logged[int(index)] = str(part["phase"].iloc[-1])
    plan = list(planned or [])
    if any(index >= len(plan) or plan[index][0] != name for index, name in names_logged.items()):
        plan = [(names_logged[index], done_by_index[index]) for index in sorted(names_logged)]
    spans, start = [], 0.5
    for index, (name, epochs) in enumerate(plan):
        done = done_by_index.get(index, 0)
        length = max(epochs, done)
        if length == 0:
            continue
        spans.append(PhaseSpan(name, PHASE_LABELS.get(name, name), start, start + length, done, length))
        start += length
    return spans


def boundaries(spans: list[PhaseSpan]) -> list[tuple[float, str]]:
    """(step, label) between consecutive phases, e.g. (3.5, "prune") for slimming after 3 sparsity epochs."""
    return [(after.start, BOUNDARY_LABELS.get((before.name, after.name), f"{before.label} → {after.label}"))
            for before, after in itertools.pairwise(spans)]


def progress_text(curves: pd.DataFrame, spans: list[PhaseSpan]) -> str:
    """'sparsity training epoch 2/3 · 2 of 6 epochs in all' (or 'no epoch finished yet')."""
    if curves.empty:
        return "no epoch finished yet"
    last = curves.iloc[-1]
    total = int(sum(span.epochs for span in spans)) or len(curves)
    span = next((s for s in spans if s.name == str(last["phase"]) and s.done), None)
    within = f"/{span.epochs}" if span is not None else ""
    return (f"{PHASE_LABELS.get(str(last['phase']), last['phase'])} epoch {int(last['epoch'])}{within} · "
            f"{len(curves)} of {total} epochs in all")


def layer_density_curves(curves: pd.DataFrame) -> pd.DataFrame:
    """Long frame step, epoch, phase, layer, density from the `test_density_<layer>` columns (ManiDP)."""
    columns = [c for c in curves.columns if str(c).startswith(LAYER_DENSITY_PREFIX)]
    if not columns:
        return pd.DataFrame(columns=["step", "epoch", "phase", "layer", "density"])
    long = curves.melt(id_vars=["step", "epoch", "phase"], value_vars=columns, var_name="layer",
                       value_name="density")
    long["layer"] = long["layer"].str.slice(len(LAYER_DENSITY_PREFIX))
    return long.dropna(subset=["density"]).reset_index(drop=True)


def final_layer_densities(per_image: pd.DataFrame | None) -> pd.DataFrame:
    """Mean density per gated layer over the test images of a finished ManiDP run: columns layer, density."""
    if per_image is None or per_image.empty:
        return pd.DataFrame(columns=["layer", "density"])
    columns = tables.density_columns(per_image)
    return pd.DataFrame({"layer": [c[len("density_"):] for c in columns],
                         "density": [float(per_image[c].mean()) for c in columns]})


def latest_gammas(history: Any) -> tuple[int, np.ndarray, float | None] | None:
    """(epoch, every prunable |gamma| of the latest recorded epoch, that epoch's global threshold) of a
    `prunelab.methods.slimming.artefacts.GammaHistory`, or None without one."""
    if history is None or not len(history.epochs):
        return None
    row = len(history.epochs) - 1
    values = tables.layer_gammas(history.gammas, history.layer_names, row)
    return int(history.epochs[row]), values, tables.threshold_at_epoch(history.thresholds, row)


# ------------------------------------------------------------------------------------------------
# files


def log_tail(path: str | Path, lines: int = 30) -> list[str]:
    """The last `lines` lines of the run's log.txt ([] before it is written)."""
    try:
        return Run(path).log_tail(lines)
    except (OSError, UnicodeDecodeError):
        return []


def artefact_listing(path: str | Path, method: str | None, state: str) -> pd.DataFrame:
    """Every file of the run (name, size in bytes, modified, note), then each artefact its method writes
    that is absent: 'not written yet' while the run may still write it, 'missing' once it is done."""
    folder = Path(path)
    rows = []
    try:
        entries = sorted(entry for entry in folder.iterdir() if entry.is_file() and not entry.name.startswith("."))
    except OSError:
        entries = []
    for entry in entries:
        try:
            stat = entry.stat()
        except OSError:
            continue
        rows.append({"file": entry.name, "bytes": int(stat.st_size),
                     "modified": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stat.st_mtime)), "note": ""})
    present = {row["file"] for row in rows}
    note = "missing" if state == "done" else ("not written yet" if is_active(state) else f"not written ({state})")
    for name in ("summary.json", *required_artefacts(method or "")):
        if name not in present:
            rows.append({"file": name, "bytes": None, "modified": None, "note": note})
    return pd.DataFrame(rows, columns=["file", "bytes", "modified", "note"])


# ------------------------------------------------------------------------------------------------
# the home page


def variants(runs: pd.DataFrame) -> pd.DataFrame:
    """The finished runs among `runs` as variants (runs that differ only in their seed) with mean ± std of
    accuracy and MACs, one row per variant and dataset (`lessons.variant_groups`); `label` names the
    variant with its budget, e.g. 'slimming λ=0.004, prune 50% · 6 epochs'."""
    groups = lessons.variant_groups(tables.ablation_table(runs))
    groups = groups[groups["test_acc_mean"].notna() & groups["macs_per_image_mean"].notna()]
    return groups.reset_index(drop=True)


def runs_beside(shown: pd.DataFrame, beside: pd.DataFrame) -> pd.DataFrame:
    """The user's finished runs (`beside`, runs-table rows) in the setting of the variants `shown`: the same
    dataset, model and width (another network would rescale the demo's axes), as `tables.ablation_table`
    rows (MACs per image and reduction)."""
    if beside.empty or shown.empty:
        return beside.iloc[:0]
    mine = tables.ablation_table(beside)
    keys = ["dataset", "model", "width"]
    settings = set(shown[keys].itertuples(index=False, name=None))
    same = [tuple(row) in settings for row in mine[keys].itertuples(index=False, name=None)]
    return mine[same].reset_index(drop=True)


def other_settings(shown: pd.DataFrame, beside: pd.DataFrame) -> int:
    """How many of the user's finished runs on the dataset of `shown` are left off its chart (another model
    or width)."""
    if beside.empty or shown.empty:
        return 0
    on_dataset = beside[beside["dataset"].isin(set(shown["dataset"]))]
    return len(on_dataset) - len(runs_beside(shown, on_dataset))


def user_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The user's finished runs with an accuracy and MACs (not the demo)."""
    if runs.empty:
        return runs
    done = runs[~runs["demo"].astype(bool) & (runs["state"] == "done")]
    return done.dropna(subset=["test_acc", "macs_per_image"])


def chart_runs(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(variants to chart, single runs drawn beside them): the demo's variants and the user's finished
    runs; without a demo, the user's runs as variants and nothing beside."""
    demo = runs[runs["demo"].astype(bool)] if not runs.empty else runs
    mine = user_runs(runs)
    if demo.empty:
        return variants(mine), mine.iloc[:0]
    return variants(demo), mine


def strip_run(runs: pd.DataFrame, dataset: str | None = None) -> str | None:
    """The path of the demo ManiDP run whose cheapest and costliest images the home page shows: a
    finished one (of `dataset` when given) with both terms on if there is one, lowest seed first."""
    if runs.empty or "demo" not in runs:
        return None
    rows = runs[runs["demo"].astype(bool) & (runs["method"] == MANIDP) & (runs["state"] == "done")
                & runs["problem"].isna()]
    if dataset is not None:
        rows = rows[rows["dataset"] == dataset]
    if rows.empty:
        return None
    both = [_flag(c) and _flag(s) for c, s in zip(rows["complexity"], rows["similarity"], strict=True)]
    ranked = rows.assign(_both=both).sort_values(["_both", "seed", "name"], ascending=[False, True, True])
    return str(ranked["path"].iloc[0])


def _flag(value: Any) -> bool:
    return isinstance(value, bool | np.bool_) and bool(value)

"""What a speed benchmark result says, computed from its JSON (no timing here, no Streamlit): the tables and
bounds the Speed page draws.

A result is the JSON `python benchmarks/run_all.py --quick --only speed --out F.json` writes (shipped under
`assets/speed/`): `speed_rows` (one row per kind, model, batch, threads and form), the four headline keys,
`targets`, the machine, and `details.speed.models[<model>]` (the model's facts and `split`: where the time
goes).

- `speed_dir` / `result_files`: where the result files are.
- `speed_rows`: the rows as a frame, each form with its label.
- `oversubscribed`: how much slower two threads ran than one (above 1: the cores were busy with other work).
- `headline_frame`: the four headline figures against their targets, with each model's own value.
- `time_budget_frame`: whole forward, convolutions and the rest per network, and the speedups they give.
- `amdahl_bound` / `amdahl`: the speedup a fixed cost per forward leaves to a MACs reduction.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from prunelab.speed.forms import FORM_LABELS

SPEED_DIR_ENV = "PRUNELAB_SPEED_DIR"
DEFAULT_SPEED_DIR = Path(__file__).resolve().parents[2] / "assets" / "speed"
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
MODEL_LABELS = {"resnet56": "ResNet-56", "vgg16": "VGG-16", "resnet20": "ResNet-20", "vgg11": "VGG-11"}


def speed_dir() -> Path:
    """Folder of the result files: `PRUNELAB_SPEED_DIR`, else `assets/speed` of the repository."""
    return Path(os.environ.get(SPEED_DIR_ENV) or DEFAULT_SPEED_DIR)


def result_files() -> list[Path]:
    """The result files (`*.json`) of `speed_dir()`, by name; [] when the folder is missing."""
    folder = speed_dir()
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def read_result(path: Path) -> dict[str, Any]:
    """A result file's JSON (OSError or ValueError when it cannot be read or parsed)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def speed_rows(result: dict[str, Any]) -> pd.DataFrame:
    """The result's `speed_rows` as a frame, with `form_label` (the form's label, else its name)."""
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


def _model_entry(result: dict[str, Any], model: str) -> dict[str, Any]:
    return result.get("details", {}).get("speed", {}).get("models", {}).get(model, {})


def split_of(result: dict[str, Any], model: str) -> dict[str, Any] | None:
    """Where `model`'s time goes (`details.speed.models[model].split`), or None when not measured."""
    return _model_entry(result, model).get("split")


def model_facts(result: dict[str, Any], model: str) -> dict[str, Any]:
    """`model`'s facts (MACs, pruning, MACs ratio, ...) without its split and timed cells."""
    return {k: v for k, v in _model_entry(result, model).items() if k not in ("split", "cells")}


def headline_state(value: float | None, target: float) -> str:
    """'met' when `value` reaches `target` (every headline target is a minimum), 'missed by 12%' (the share of
    the target missing) when not, 'n/a' when there is no value."""
    if value is None:
        return "n/a"
    return "met" if value >= target else f"missed by {1 - value / target:.0%}"


def headline_frame(result: dict[str, Any]) -> pd.DataFrame:
    """One row per headline figure: its label, the measured value (the worse model), target, state, what it
    compares, and one column per model with that model's value and the form it was measured in."""
    by_model = result.get("details", {}).get("speed", {}).get("headline_by_model", {})
    records = []
    for key, (label, target, what) in HEADLINES.items():
        value = result.get(key)
        record = {"figure": label, "measured (worse model)": value, "target": target,
                  "state": headline_state(value, target), "what": what}
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


def time_budget_frame(split: dict[str, Any]) -> pd.DataFrame:
    """Per batch and network: whole forward, the convolutions alone, the rest, and the MACs; with each
    network's MACs ratio, convolution speedup and whole-forward speedup against the dense network of its
    batch. Empty when the split has no networks."""
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


def amdahl_bound(dense_ms: float, fixed_ms: float, macs_ratio: float) -> float:
    """Amdahl's law: the speedup of a network whose forward takes `dense_ms`, of which `fixed_ms` does not
    shrink with its channels, when the rest shrinks by `macs_ratio` (dense MACs / pruned MACs)."""
    return dense_ms / (fixed_ms + (dense_ms - fixed_ms) / macs_ratio)


def amdahl(split: dict[str, Any], macs_ratio: float) -> dict[str, float] | None:
    """The batch-1 fixed cost of a split (`fixed_cost_b1_ms`: the dense network and the same network one
    channel wide) and the speedup Amdahl's law allows with it at `macs_ratio`; None when not measured."""
    fixed = split.get("fixed_cost_b1_ms")
    if not fixed:
        return None
    dense, floor = fixed["dense"], fixed["one_channel"]
    return {"dense_ms": dense, "fixed_ms": floor, "fixed_share": floor / dense,
            "amdahl_speedup": amdahl_bound(dense, floor, macs_ratio)}

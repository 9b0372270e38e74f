"""ManiDP's run files and their readers (no torch): `PER_IMAGE`, `PROBE` and `MANIDP_INFO`.

- `per_image.parquet`: one row per test image with its MACs, loss, difficulty and per-layer densities;
- `probe.npz`: gates, pooled features and their cosine matrices T and R on a class-balanced probe set,
  read as a `Probe`;
- `manidp.json`: gated layers, channels, thresholds, MACs and their verification.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from prunelab.runs.reading import (
    FLOAT,
    INTEGER,
    TEXT,
    Arrays,
    Artefact,
    ArtefactError,
    Schema,
    Verification,
    check_array,
    json_artefact,
    npz_artefact,
    parquet_artefact,
)
from prunelab.runs.run_format import MANIDP_FILE, PER_IMAGE_FILE, PROBE_FILE

# ------------------------------------------------------------------------------------------------
# manidp.json


class ManiDPFile(Schema):
    """manidp.json: gated layers with their channels and thresholds, MACs and their verification."""

    layers: list[str] = Field(min_length=1)
    channels: list[int]
    thresholds: list[float]
    macs_dense: float = Field(ge=0.0)
    gate_macs: float = Field(ge=0.0)
    macs_verification: Verification

    @model_validator(mode="after")
    def _one_entry_per_layer(self) -> ManiDPFile:
        for name in ("channels", "thresholds"):
            if len(getattr(self, name)) != len(self.layers):
                raise ValueError(f"{name} has {len(getattr(self, name))} entries for {len(self.layers)} layers")
        return self


MANIDP_INFO: Artefact[dict[str, Any]] = json_artefact(MANIDP_FILE, ManiDPFile)


# ------------------------------------------------------------------------------------------------
# probe.npz


@dataclass
class Probe:
    """Gates, pooled features and their cosine-similarity matrices on a class-balanced probe set."""

    indices: np.ndarray  # int [P], test-set positions, sorted by class
    labels: np.ndarray  # int [P]
    layer_names: list[str]
    gates: list[np.ndarray]  # per layer [P, C_i] (pi)
    features: list[np.ndarray]  # per layer [P, C_i] (pooled, before masking)
    T: list[np.ndarray]  # per layer [P, P] gate cosine similarity
    R: list[np.ndarray]  # per layer [P, P] feature cosine similarity


def check_probe(path: Path, arrays: Arrays) -> None:
    """indices, labels int [P]; layer_names str [L]; gates_/features_<i> [P, C_i]; T_/R_<i> [P, P]."""
    indices = check_array(path, arrays, "indices", INTEGER, 1)
    size = len(indices)
    check_array(path, arrays, "labels", INTEGER, 1, (size,))
    names = check_array(path, arrays, "layer_names", TEXT, 1)
    for i in range(len(names)):
        gates = check_array(path, arrays, f"gates_{i}", FLOAT, 2, (size, None))
        check_array(path, arrays, f"features_{i}", FLOAT, 2, (size, gates.shape[1]))
        for key in ("T", "R"):
            check_array(path, arrays, f"{key}_{i}", FLOAT, 2, (size, size))


def _probe(arrays: dict[str, np.ndarray], run: Any = None) -> Probe:
    names = [str(name) for name in arrays["layer_names"]]
    per_layer = {key: [arrays[f"{key}_{i}"] for i in range(len(names))] for key in ("gates", "features", "T", "R")}
    indices, labels = np.asarray(arrays["indices"]).astype(int), np.asarray(arrays["labels"]).astype(int)
    return Probe(indices, labels, names, per_layer["gates"], per_layer["features"], per_layer["T"], per_layer["R"])


PROBE: Artefact[Probe] = npz_artefact(PROBE_FILE, check_probe, _probe)


# ------------------------------------------------------------------------------------------------
# per_image.parquet

PER_IMAGE_COLUMNS = {"index": INTEGER, "label": INTEGER, "pred": INTEGER, "loss": FLOAT, "correct": "bool",
                     "difficulty": FLOAT, "macs": INTEGER, "gate_macs": INTEGER}
DENSITY_PREFIX = "density_"


def check_per_image(path: Path, frame: Any) -> None:
    """The documented columns with their dtypes, at least one density_<layer> column, densities in [0, 1]."""
    import pandas as pd
    from pandas.api import types

    is_role = {INTEGER: types.is_integer_dtype, FLOAT: lambda d: types.is_float_dtype(d) or
               types.is_integer_dtype(d), "bool": types.is_bool_dtype}
    missing = [name for name in PER_IMAGE_COLUMNS if name not in frame.columns]
    if missing:
        raise ArtefactError(path, f"column(s) {', '.join(missing)} missing")
    for name, role in PER_IMAGE_COLUMNS.items():
        column = frame[name]
        all_null = name == "difficulty" and bool(column.isna().all())  # unknown difficulty: nulls
        if not all_null and not is_role[role](column.dtype):
            raise ArtefactError(path, f"column {name!r} should hold {role} values, has dtype {column.dtype}")
    densities = [c for c in frame.columns if str(c).startswith(DENSITY_PREFIX)]
    if not densities:
        raise ArtefactError(path, f"no {DENSITY_PREFIX}<layer> column")
    for name in densities:
        column = frame[name]
        if not types.is_float_dtype(column.dtype):
            raise ArtefactError(path, f"column {name!r} should hold float values, has dtype {column.dtype}")
        values = pd.to_numeric(column).to_numpy(dtype=float, na_value=np.nan)
        if len(values) and not ((values >= 0) & (values <= 1)).all():
            raise ArtefactError(path, f"column {name!r} has values outside [0, 1]")


PER_IMAGE: Artefact[Any] = parquet_artefact(PER_IMAGE_FILE, check_per_image)

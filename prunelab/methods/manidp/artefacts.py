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
    check_values,
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


# the cosines T and R are derived from the stored gates and features when the probe is read (they made up three
# quarters of every probe.npz); the same formulas as the training code's, in numpy (gates.cosine_matrix and
# gates.normalized_cosine_matrix, which import these constants; a test holds the two equal)
COSINE_EPS = 1e-2  # smoothed_gate_cosine: smoothing of the norm, bounds the gradient of a near-dead gate vector
NORMALIZE_EPS = 1e-12  # F.normalize's default floor on the norm (the reference's cal_similarity_loss)


def cosine_rows(vectors: np.ndarray, smoothing: float | None = None) -> np.ndarray:
    """[N, N] cosines of the rows of `vectors` [N, C], in float32: v_i.v_j / (sqrt(|v_i|^2 + s^2) sqrt(|v_j|^2 + s^2))
    with `smoothing` s (departure smoothed_gate_cosine), else v_i.v_j / (max(|v_i|, 1e-12) max(|v_j|, 1e-12))
    (the reference's G = f f^T of F.normalize'd rows)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    squares = (vectors * vectors).sum(axis=1, keepdims=True)
    if smoothing is not None:
        unit = vectors / np.sqrt(squares + np.float32(smoothing * smoothing))
    else:
        unit = vectors / np.maximum(np.sqrt(squares), np.float32(NORMALIZE_EPS))
    return unit @ unit.T


def check_probe(path: Path, arrays: Arrays) -> None:
    """indices, labels int [P] (P >= 1, indices >= 0, labels >= 0); layer_names str [L] (L >= 1);
    gates_/features_<i> [P, C_i] finite, gates >= 0; where a file written before 2026-12-07 stores them,
    T_/R_<i> [P, P] finite cosines in [-1, 1]."""
    indices = check_array(path, arrays, "indices", INTEGER, 1)
    size = len(indices)
    if size < 1:
        raise ArtefactError(path, "array 'indices' is empty (no probe image)")
    check_values(path, "indices", indices, low=0)
    check_values(path, "labels", check_array(path, arrays, "labels", INTEGER, 1, (size,)), low=0)
    names = check_array(path, arrays, "layer_names", TEXT, 1)
    if len(names) < 1:
        raise ArtefactError(path, "array 'layer_names' is empty (no gated layer)")
    for i in range(len(names)):
        gates = check_array(path, arrays, f"gates_{i}", FLOAT, 2, (size, None))
        check_values(path, f"gates_{i}", gates, low=0.0)  # a saliency after ReLU: >= 0, not bounded above
        check_values(path, f"features_{i}", check_array(path, arrays, f"features_{i}", FLOAT, 2,
                                                         (size, gates.shape[1])))
        for key in ("T", "R"):
            if f"{key}_{i}" in arrays:
                check_values(path, f"{key}_{i}", check_array(path, arrays, f"{key}_{i}", FLOAT, 2, (size, size)),
                             low=-1.0001, high=1.0001)


def _probe(arrays: dict[str, np.ndarray], run: Any = None) -> Probe:
    """The probe with T (gate cosines, by the cosine the run trained with) and R (feature cosines) derived from
    its gates and features; an older file's stored T and R are used as they are."""
    names = [str(name) for name in arrays["layer_names"]]
    gates = [arrays[f"gates_{i}"] for i in range(len(names))]
    features = [arrays[f"features_{i}"] for i in range(len(names))]
    smoothing = COSINE_EPS if _smoothed(run) else None
    t = [arrays[f"T_{i}"] if f"T_{i}" in arrays else cosine_rows(g, smoothing) for i, g in enumerate(gates)]
    r = [arrays[f"R_{i}"] if f"R_{i}" in arrays else cosine_rows(f) for i, f in enumerate(features)]
    indices, labels = np.asarray(arrays["indices"]).astype(int), np.asarray(arrays["labels"]).astype(int)
    return Probe(indices, labels, names, gates, features, t, r)


def _smoothed(run: Any) -> bool:
    """Whether the run's T used the smoothed cosine (departure smoothed_gate_cosine; False when unknown)."""
    try:
        return bool(getattr(run.config.method, "smoothed_gate_cosine", False))
    except (ArtefactError, AttributeError):
        return False


PROBE: Artefact[Probe] = npz_artefact(PROBE_FILE, check_probe, _probe)


# ------------------------------------------------------------------------------------------------
# per_image.parquet

PER_IMAGE_COLUMNS = {"index": INTEGER, "label": INTEGER, "pred": INTEGER, "loss": FLOAT, "correct": "bool",
                     "difficulty": FLOAT, "macs": INTEGER, "gate_macs": INTEGER}
DENSITY_PREFIX = "density_"


def check_per_image(path: Path, frame: Any) -> None:
    """The documented columns with their dtypes, at least one density_<layer> column; and in the rows: every
    index and label present and >= 0 (indices unique), predictions >= 0, MACs finite and >= 0, losses finite
    (or the whole column missing), difficulty finite where known, densities in [0, 1]."""
    from pandas.api import types

    is_role = {INTEGER: types.is_integer_dtype, FLOAT: lambda d: types.is_float_dtype(d) or
               types.is_integer_dtype(d), "bool": types.is_bool_dtype}
    missing = [name for name in PER_IMAGE_COLUMNS if name not in frame.columns]
    if missing:
        raise ArtefactError(path, f"column(s) {', '.join(missing)} missing")
    for name, role in PER_IMAGE_COLUMNS.items():
        column = frame[name]
        all_null = name in OPTIONAL_COLUMNS and bool(column.isna().all())  # unknown for every image: nulls
        if not all_null and not is_role[role](column.dtype):
            raise ArtefactError(path, f"column {name!r} should hold {role} values, has dtype {column.dtype}")
    densities = [c for c in frame.columns if str(c).startswith(DENSITY_PREFIX)]
    if not densities:
        raise ArtefactError(path, f"no {DENSITY_PREFIX}<layer> column")
    for name in densities:
        if not types.is_float_dtype(frame[name].dtype):
            raise ArtefactError(path, f"column {name!r} should hold float values, has dtype {frame[name].dtype}")
    if frame.empty:
        return
    for name, low, high in [("index", 0, None), ("label", 0, None), ("pred", 0, None), ("macs", 0, None),
                            ("gate_macs", 0, None), *((name, 0.0, 1.0) for name in densities)]:
        _check_column(path, frame, name, low, high)
    for name in OPTIONAL_COLUMNS:
        if not frame[name].isna().all():
            _check_column(path, frame, name, None, None, allow_missing=name == "difficulty")
    if frame["index"].duplicated().any():
        raise ArtefactError(path, "column 'index' names an image twice")


OPTIONAL_COLUMNS = ("loss", "difficulty")  # a column that may be missing for every image (all null)


def _check_column(path: Path, frame: Any, name: str, low: float | None, high: float | None,
                  allow_missing: bool = False) -> None:
    column = frame[name]
    if column.isna().any() and not allow_missing:
        raise ArtefactError(path, f"column {name!r} is missing for {int(column.isna().sum())} image(s)")
    data = column.dropna().to_numpy(dtype=np.float64)
    if not np.isfinite(data).all():
        raise ArtefactError(path, f"column {name!r} holds NaN or infinite values")
    if low is not None and len(data) and data.min() < low:
        raise ArtefactError(path, f"column {name!r} holds {data.min():g}, below {low:g}")
    if high is not None and len(data) and data.max() > high:
        raise ArtefactError(path, f"column {name!r} holds {data.max():g}, above {high:g}")


PER_IMAGE: Artefact[Any] = parquet_artefact(PER_IMAGE_FILE, check_per_image)

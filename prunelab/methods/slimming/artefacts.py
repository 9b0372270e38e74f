"""Network Slimming's run files and their readers (no torch): `GAMMA_HISTORY` and `PRUNING`.

- `gamma_history.npz`: |gamma| of every prunable BN layer after each sparsity epoch (written by
  `method.write_gamma_history`), read as a `GammaHistory`; its lambda is the run config's
  `method.sparsity_lambda` (one stored copy: files written before kept a second one, which is ignored);
- `pruning.json`: the global threshold, per-layer kept masks and the compact model's verification.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

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
    values,
)
from prunelab.runs.run_format import GAMMA_HISTORY_FILE, PRUNING_FILE

# ------------------------------------------------------------------------------------------------
# pruning.json


class PruningLayer(Schema):
    name: str
    channels_before: int = Field(ge=1)
    channels_after: int = Field(ge=0)
    kept_mask: list[Literal[0, 1]]
    guard_fired: bool = False

    @model_validator(mode="after")
    def _mask_matches_counts(self) -> PruningLayer:
        if len(self.kept_mask) != self.channels_before:
            raise ValueError(f"layer {self.name!r}: kept_mask has {len(self.kept_mask)} entries for "
                             f"{self.channels_before} channels")
        if sum(self.kept_mask) != self.channels_after:
            raise ValueError(f"layer {self.name!r}: kept_mask keeps {sum(self.kept_mask)} channels, "
                             f"channels_after says {self.channels_after}")
        return self


class PruningFile(Schema):
    """pruning.json: the global threshold, per-layer kept masks and the compact-model verification."""

    threshold: float
    prune_ratio: float = Field(ge=0.0, lt=1.0)
    min_channels: int = Field(ge=1)
    guard_fired_layers: list[str]
    layers: list[PruningLayer] = Field(min_length=1)
    verification: Verification


PRUNING: Artefact[dict[str, Any]] = json_artefact(PRUNING_FILE, PruningFile)


# ------------------------------------------------------------------------------------------------
# gamma_history.npz


@dataclass
class GammaHistory:
    """|gamma| of every prunable BN layer after each sparsity epoch (index 0 = at initialisation)."""

    epochs: np.ndarray  # int [E+1]
    layer_names: list[str]
    gammas: list[np.ndarray]  # per layer float32 [E+1, C_i]
    sparsity_lambda: float  # the run's L1 weight (its config)
    thresholds: np.ndarray | None = None  # float [E+1]: the global threshold of each row's gammas


def check_gamma_history(path: Path, arrays: Arrays) -> None:
    """epochs int [E+1] (0, 1, ... E; at least the initial row), layer_names str [L] (at least one),
    layer_<i> float [E+1, C_i] with C_i >= 1 and every |gamma| finite and >= 0, optional thresholds float [E+1]
    (finite). Values are checked when the arrays are read, shapes also from their headers."""
    epochs = check_array(path, arrays, "epochs", INTEGER, 1)
    names = check_array(path, arrays, "layer_names", TEXT, 1)
    if len(epochs) < 1:
        raise ArtefactError(path, "array 'epochs' is empty (the history starts with the initial gammas)")
    if len(names) < 1:
        raise ArtefactError(path, "array 'layer_names' is empty (no layer to show)")
    if values(epochs) is not None and not np.array_equal(values(epochs), np.arange(len(epochs))):
        raise ArtefactError(path, f"array 'epochs' should count 0, 1, ..., {len(epochs) - 1}")
    for i in range(len(names)):
        layer = check_array(path, arrays, f"layer_{i}", FLOAT, 2, (len(epochs), None))
        if layer.shape[1] < 1:
            raise ArtefactError(path, f"array 'layer_{i}' has no channel")
        check_values(path, f"layer_{i}", layer, low=0.0)
    if "thresholds" in arrays:
        check_values(path, "thresholds", check_array(path, arrays, "thresholds", FLOAT, 1, (len(epochs),)))


def _gamma_history(arrays: dict[str, np.ndarray], run: Any) -> GammaHistory:
    names = [str(name) for name in arrays["layer_names"]]
    gammas = [np.asarray(arrays[f"layer_{i}"], dtype=np.float32) for i in range(len(names))]
    thresholds = np.asarray(arrays["thresholds"], dtype=float) if "thresholds" in arrays else None
    return GammaHistory(np.asarray(arrays["epochs"]).astype(int), names, gammas, _sparsity_lambda(arrays, run),
                        thresholds)


def _sparsity_lambda(arrays: dict[str, np.ndarray], run: Any) -> float:
    """The run config's lambda; a file of a run whose config cannot be read keeps the copy it once stored."""
    try:
        return float(run.config.method.sparsity_lambda)
    except (ArtefactError, AttributeError):
        return float(arrays["sparsity_lambda"]) if "sparsity_lambda" in arrays else float("nan")


GAMMA_HISTORY: Artefact[GammaHistory] = npz_artefact(GAMMA_HISTORY_FILE, check_gamma_history, _gamma_history)

"""The run-directory format: file names, run states and the one atomic writer.

The bottom of the store: `prunelab.runs.store`, `prunelab.runs.artefacts`, `prunelab.runs.artefact_checks`, the engine,
the methods and the listings take every artefact name and state from here (docs/architecture.md, "Run
directory"). Imports nothing from prunelab.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Literal, get_args

import numpy as np

# --- file names ----------------------------------------------------------------------------------
CONFIG_FILE = "config.json"
STATUS_FILE = "status.json"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
CHECKPOINT_FILE = "checkpoint.pt"
MODEL_FILE = "model.pt"
LOG_FILE = "log.txt"
TRACEBACK_FILE = "traceback.txt"
LOCK_FILE = "owner.lock"
# slimming
GAMMA_HISTORY_FILE = "gamma_history.npz"
PRUNING_FILE = "pruning.json"
DENSE_MODEL_FILE = "dense_model.pt"
EXPORT_FILE = "compact_model.pt2"
# manidp
PER_IMAGE_FILE = "per_image.parquet"
PROBE_FILE = "probe.npz"
MANIDP_FILE = "manidp.json"
# scratch
ARCHITECTURE_FILE = "architecture.json"
# views precomputed from a finished ManiDP run's model.pt (prunelab/analysis/views.py): what its pages show at once
WHATIF_CURVE_FILE = "whatif_curve.parquet"
UMAP_FILE = "subnet_umap.npz"
# ... and from a slimming run's dense_model.pt: its re-pruning at each prune ratio of the page's slider
PRUNE_CURVE_FILE = "whatif_prune.json.gz"
# beside the runs of a shipped demo (not in a run directory): the test split they were evaluated on
TEST_PACK_FILE = "test_images.npz"

# Network Slimming's lesson (its Figure 4): the share of |gamma| below NEAR_ZERO_GAMMA after sparsity
# training, written under this key in metrics rows and summary.json
NEAR_ZERO_GAMMA = 0.05
NEAR_ZERO_GAMMA_KEY = "gamma_frac_below_0.05"

# --- run states ----------------------------------------------------------------------------------
RunState = Literal["queued", "running", "done", "failed", "cancelled", "interrupted"]
RUN_STATES: tuple[RunState, ...] = get_args(RunState)
ACTIVE_STATES: tuple[RunState, ...] = ("queued", "running")  # an owner may still be writing the run
FINAL_STATES: tuple[RunState, ...] = tuple(state for state in RUN_STATES if state not in ACTIVE_STATES)


class RunStoreError(Exception):
    """A run directory is missing, broken or not a run."""


class RunDeleted(RunStoreError, FileNotFoundError):
    """The run directory was deleted while its owner still wrote into it: nothing more is written (a write
    never recreates a run directory). A `FileNotFoundError` too, so best-effort writers that give up on an
    `OSError` give up on it."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(f"run directory {path} was deleted while it trained; stopping")
        self.path = Path(path)


# --- the atomic writer ---------------------------------------------------------------------------
def atomic_write(path: Path, write: Callable[[BinaryIO], None] | bytes) -> None:
    """Write `path` through a temp file in the same folder (fsync, then rename): a reader sees the old
    file or the new one, never half of one. `write` is the bytes, or a function writing to a binary file.

    The folder must exist (FileNotFoundError otherwise): a write into a run directory deleted meanwhile
    must not bring it back half-made, so callers that write into a new folder (a cache, an export target)
    create it themselves."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            if isinstance(write, bytes):
                handle.write(write)
            else:
                write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, data)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write(path, json.dumps(obj, indent=2, default=json_default).encode())


def atomic_write_npz(path: Path, arrays: dict[str, np.ndarray], compressed: bool = False) -> None:
    save = np.savez_compressed if compressed else np.savez
    atomic_write(path, lambda handle: save(handle, **arrays))


def atomic_write_parquet(path: Path, frame: Any) -> None:
    """A pandas DataFrame as parquet, without its index."""
    atomic_write(path, lambda handle: frame.to_parquet(handle, index=False))


def atomic_write_torch(path: Path, obj: Any) -> None:
    """torch.save of tensors and plain containers (weights_only loadable)."""
    import torch  # on first use: readers of run directories need no torch

    atomic_write(path, lambda handle: torch.save(obj, handle))


def json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")

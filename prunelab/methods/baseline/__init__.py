"""Plain training: cross-entropy with SGD, no pruning (`method.py`: the plug-in `Baseline`)."""

from typing import Any

__all__ = ["Baseline"]


def __getattr__(name: str) -> Any:
    # lazy, so that reading the config (`config.py`) does not import torch
    if name == "Baseline":
        from prunelab.methods.baseline.method import Baseline

        return Baseline
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

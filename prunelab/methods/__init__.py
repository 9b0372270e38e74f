"""Pruning methods as plug-ins of the trainer (see `base.PruningMethod`)."""

from prunelab.methods import (
    baseline,  # noqa: F401  (registers "baseline")
    manidp,  # noqa: F401
    slimming,  # noqa: F401
)
from prunelab.methods.base import METHODS, Phase, PruningMethod, get_method, register_method

__all__ = ["METHODS", "Phase", "PruningMethod", "get_method", "register_method"]

"""Pruning methods as plug-ins of the trainer (see `base.PruningMethod`)."""

from prunelab.methods import (
    baseline,  # noqa: F401  (registers "baseline")
    manidp,  # noqa: F401
    slimming,  # noqa: F401
)
from prunelab.methods.base import (
    METHODS,
    ArtefactWriter,
    EvalResult,
    Phase,
    PruningMethod,
    RunContext,
    get_method,
    register_method,
)

__all__ = [
    "METHODS", "ArtefactWriter", "EvalResult", "Phase", "PruningMethod", "RunContext", "get_method", "register_method",
]

"""Plain training: the base method's no-op hooks."""

from prunelab.methods.base import PruningMethod, register_method
from prunelab.methods.baseline.config import BaselineConfig


@register_method(BaselineConfig)
class Baseline(PruningMethod):
    """Cross-entropy training with SGD; no pruning."""

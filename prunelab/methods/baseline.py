"""Plain training: the base method's no-op hooks."""

from prunelab.methods.base import PruningMethod, register_method


@register_method("baseline")
class Baseline(PruningMethod):
    """Cross-entropy training with SGD; no pruning."""

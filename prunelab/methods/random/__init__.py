"""Random channels: the control a careful reader of a pruning paper asks for.

The same per-layer channel counts as a Network Slimming run's pruned network (`init_from` names that run:
its dense model after sparsity training is the starting point, its pruning.json the counts), the channels
drawn at random (seeded by the run's seed), then fine-tuning as slimming does. Without a slimming run it
trains the network itself (`train.epochs`) and removes `uniform_ratio` of every layer's channels at random.

- `config.py`: `RandomConfig` and the method's facts (no torch);
- `method.py`: the plug-in `RandomChannels`, writing `pruning.json` in slimming's format.
"""

from typing import Any

__all__ = ["RandomChannels"]


def __getattr__(name: str) -> Any:
    # lazy, so that reading the config imports no torch
    if name == "RandomChannels":
        from prunelab.methods.random.method import RandomChannels

        return RandomChannels
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""From scratch: the control of the inherited weights (Liu et al., "Rethinking the Value of Network Pruning",
ICLR 2019), and a static network at a dynamic run's mean MACs.

A pruned run's architecture (`init_from` names it: a slimming or random-channels run's per-layer kept counts)
trained from fresh weights for as many epochs as the whole pruning run; named against a run without a pruned
network (ManiDP: a sub-network per image), a uniformly thinner network whose MACs equal that run's mean MACs per
image. Without a run it trains the network with `uniform_ratio` of every layer's channels removed.

- `config.py`: `ScratchConfig` and the method's facts (no torch);
- `artefacts.py`: `architecture.json`, the widths and where they came from;
- `method.py`: the plug-in `Scratch`;
- `claims.py`: the controls it answers (against slimming: do the inherited weights matter? against ManiDP: does
  per-image routing pay over a static network of equal average MACs?).
"""

from typing import Any

__all__ = ["Scratch"]


def __getattr__(name: str) -> Any:
    # lazy, so that reading the config imports no torch
    if name == "Scratch":
        from prunelab.methods.scratch.method import Scratch

        return Scratch
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

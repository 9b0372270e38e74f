"""Network Slimming (Liu et al., ICCV 2017): static channel pruning on BatchNorm scales.

- `pruning.py`: which BN channels may go (coupled groups), the L1 subgradient, one global threshold
  with the per-layer guard, masked and physically compact networks (pure functions);
- `method.py`: the plug-in `Slimming` (sparsity training, pruning between the phases, fine-tuning,
  artefacts) and `what_if`, which re-prunes a finished run's dense model at another ratio.
"""

from prunelab.methods.slimming.method import Slimming

__all__ = ["Slimming"]

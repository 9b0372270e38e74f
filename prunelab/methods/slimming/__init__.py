"""Network Slimming (Liu et al., ICCV 2017): static channel pruning on BatchNorm scales.

- `pruning.py`: which BN channels may go (coupled groups), the L1 subgradient, one global threshold
  with the per-layer guard, masked and physically compact networks (pure functions);
- `method.py`: the plug-in `Slimming` (sparsity training, pruning between the phases, fine-tuning)
  and its artefacts (`gamma_history.npz`, `pruning.json`, `dense_model.pt`, `compact_model.pt2`);
- `reprune.py`: `what_if`, which re-prunes a finished run's dense model at another ratio;
- `counts.py`: `run_channel_counts`, what a run's prune ratio is a fraction of (prunable and all channels).
"""

from prunelab.methods.slimming.counts import run_channel_counts
from prunelab.methods.slimming.method import Slimming, finetune_lr, load_dense_model, read_gamma_history
from prunelab.methods.slimming.reprune import what_if

__all__ = ["Slimming", "finetune_lr", "load_dense_model", "read_gamma_history", "run_channel_counts", "what_if"]

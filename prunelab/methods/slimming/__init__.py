"""Network Slimming (Liu et al., ICCV 2017): static channel pruning on BatchNorm scales.

- `pruning.py`: which BN channels may go (coupled groups), the L1 subgradient, one global threshold
  with the per-layer guard, masked and physically compact networks (pure functions);
- `method.py`: the plug-in `Slimming` (sparsity training, pruning between the phases, fine-tuning)
  and the files it writes (`gamma_history.npz`, `pruning.json`, `dense_model.pt`, `compact_model.pt2`);
- `artefacts.py`: how its files are read and checked (`GAMMA_HISTORY`, `PRUNING`; no torch);
- `reprune.py`: `what_if`, which re-prunes a finished run's dense model at another ratio;
- `counts.py`: `run_channel_counts`, what a run's prune ratio is a fraction of (prunable and all channels);
- `claims.py`: the paper's claims (Figure 4) judged over seeds on an ablation table;
- `formulas.py`: the method card's formulas, as a run's config selects them;
- `lesson_runs.py`: which runs the Slimming page opens on and compares (by config);
- `config.py`: `SlimmingConfig` and its facts (no torch).

The names below load on first use, so that reading the config imports no torch.
"""

import importlib
from typing import Any

_WHERE = {"run_channel_counts": "counts", "Slimming": "method", "finetune_lr": "method",
          "load_dense_model": "method", "what_if": "reprune"}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)

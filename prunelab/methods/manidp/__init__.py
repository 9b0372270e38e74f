"""ManiDP (Tang et al., CVPR 2021): per-image gates pick a sub-network for every image.

- `gates.py`: the channel gate pi(x), its threshold mask and the cosine matrices T and R;
- `macs.py`: per-image MACs from the masks, checked against FlopCounterMode on the sliced sub-network;
- `executor.py`: the sparse executor, which runs only an image's kept channels;
- `unit_trace.py`: where a re-implementation first departs from the masked model;
- `report.py`: the per-image table, the probe set's T and R, the summary figures (pure functions);
- `method.py`: the plug-in `ManiDP`: losses, thresholds, checks, artefacts;
- `gated_run.py`: `gated_run`, a finished run's gated model with the run's own trainer and method object;
- `whatif.py`: `what_if`, the thresholds recalibrated at another target density and every test image evaluated;
- `subnet_space.py`: every test image's gate vectors and pooled features, and their UMAP;
- `evidence.py`: the paper's claims tested on a run's files (complexity fifths, rho(R, T), matched MACs), and
  their table per variant;
- `claims.py`: the paper's claims judged over seeds on an ablation table (each term against its control);
- `formulas.py`: the method card's formulas, as a run's config selects them;
- `lesson_runs.py`: which runs the Per-image and Similarity pages open on and compare (by config);
- `artefacts.py`: how its files are read and checked (`PER_IMAGE`, `PROBE`, `MANIDP_INFO`; no torch);
- `config.py`: `ManiDPConfig`, its departures and facts (no torch).
"""

from typing import Any

__all__ = ["ManiDP"]


def __getattr__(name: str) -> Any:
    # lazy, so that reading the config imports no torch
    if name == "ManiDP":
        from prunelab.methods.manidp.method import ManiDP

        return ManiDP
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Which ManiDP runs show the paper's lessons: what the Per-image and Similarity pages open on, chosen from the
runs table by config (`prunelab.analysis.lesson_runs`).

- `opening_run`: the full method (complexity and similarity terms on) at its lowest seed, a run with its gated
  model.pt (the what-if and the sub-network map need it), in the form a new run gets by default (the authors'
  reference form) where the runs hold one;
- `similarity_comparison`: a run and its twin with the similarity term switched, at the same seed and otherwise
  the same config (`TWIN`: the term on against off, balanced);
- `heatmap_layer`: the gated layer whose feature similarity R varies most between probe images (where R is near
  1 everywhere, T and R are one colour and T − R says nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from prunelab.analysis.lesson_runs import SETTING, finished, flag, preferred_form, row_of, same
from prunelab.methods.manidp.config import NAME as MANIDP
from prunelab.runs.run_format import MODEL_FILE

# what a run and its twin share: everything but the similarity term (and the seed, matched apart)
TWIN = [*SETTING, "complexity", "target_density", "lambda_prime", "gamma_sim", "gamma_c", "form"]


def opening_run(runs: pd.DataFrame) -> str | None:
    """The path of the full method's run at its lowest seed, preferring one with model.pt (table order breaks
    ties); None when there is no finished ManiDP run."""
    manidp = finished(runs, MANIDP)
    if manidp.empty:
        return None
    score = pd.DataFrame({
        "model": [not (Path(p) / MODEL_FILE).is_file() for p in manidp["path"]],
        "full": ~(flag(manidp, "complexity") & flag(manidp, "similarity")).to_numpy(),
        "form": (manidp["form"] != preferred_form(MANIDP)).to_numpy(),
        "seed": manidp["seed"].fillna(np.inf).to_numpy(float),
        "order": np.arange(len(manidp)),
    }, index=manidp.index)  # False sorts first: with model, full method, the preferred form, lowest seed
    best = score.sort_values(["model", "full", "form", "seed", "order"]).index[0]
    return str(manidp.loc[best, "path"])


def similarity_comparison(runs: pd.DataFrame, run: str | Path) -> list[str]:
    """`run` and its twin with the similarity term switched (same seed and otherwise the same config; failing
    that, any run of its setting and seed with the term switched), the run with the term first; just `run`
    when there is none."""
    manidp = finished(runs, MANIDP)
    row = row_of(manidp, run)
    if row is None:
        return [str(run)]
    flipped = flag(manidp, "similarity") != bool(row.get("similarity"))
    twins = manidp[same(manidp, row, [*TWIN, "seed"]) & flipped]
    if twins.empty:
        twins = manidp[same(manidp, row, [*SETTING, "seed"]) & flipped]
    if twins.empty:
        return [str(run)]
    flipped = not bool(row.get("similarity"))
    pair = [str(run), str(twins.iloc[0]["path"])]
    return pair if not flipped else pair[::-1]


def heatmap_layer(r_matrices: Sequence[np.ndarray]) -> int:
    """The position of the layer whose feature similarity R varies most between probe images (standard
    deviation of its off-diagonal entries); 0 when there is no layer or no pair."""
    spreads = []
    for r in r_matrices:
        r = np.asarray(r, dtype=np.float64)
        off = ~np.eye(len(r), dtype=bool)
        spreads.append(float(r[off].std()) if off.any() else 0.0)
    return int(np.argmax(spreads)) if spreads else 0

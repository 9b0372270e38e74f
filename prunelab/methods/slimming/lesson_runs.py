"""Which slimming runs show the paper's lesson (Figure 4: the L1 term pushes more scales toward zero as λ grows):
what the Slimming page opens on, chosen from the runs table by config (`prunelab.analysis.lesson_runs`).

- `opening_run`: a finished run in the form a new run gets by default where the runs hold one, at its lowest
  seed, the largest λ first;
- `lambda_comparison`: one run of each λ in a run's setting and form, at that run's seed where there is one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from prunelab.analysis.lesson_runs import SETTING, at_seed, finished, preferred_form, row_of, same
from prunelab.methods.slimming.config import NAME as SLIMMING

COMPARED = [*SETTING, "prune_ratio", "finetune_epochs", "form"]  # what the runs of a λ comparison share


def opening_run(runs: pd.DataFrame) -> str | None:
    """The path of a finished slimming run in the preferred form, at its lowest seed, the largest λ first (the one
    whose γ piles up at zero; table order breaks ties); None when none has finished (the page then opens on the
    first run)."""
    slim = finished(runs, SLIMMING)
    if slim.empty:
        return None
    order = pd.DataFrame({"form": (slim["form"] != preferred_form(SLIMMING)).to_numpy(),
                          "seed": slim["seed"].fillna(np.inf).to_numpy(float) if "seed" in slim else 0.0,
                          "lam": -slim["sparsity_lambda"].fillna(0).to_numpy(float) if "sparsity_lambda" in slim
                          else 0.0, "order": np.arange(len(slim))}, index=slim.index)
    return str(slim.loc[order.sort_values(["form", "seed", "lam", "order"]).index[0], "path"])


def lambda_comparison(runs: pd.DataFrame, run: str | Path) -> list[str]:
    """One run per λ (ascending) in `run`'s setting, at `run`'s seed where that λ has it; `run` itself is the
    one of its own λ. Just `run` when it is not a listed slimming run."""
    slim = finished(runs, SLIMMING)
    row = row_of(slim, run)
    if row is None:
        return [str(run)]
    alike = slim[same(slim, row, COMPARED)]
    chosen = []
    for lam, group in alike.groupby("sparsity_lambda", sort=True):
        chosen.append(str(run) if lam == row["sparsity_lambda"] else at_seed(group, row["seed"]))
    return chosen

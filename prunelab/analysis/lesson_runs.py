"""Which runs show each paper's lesson: what the analysis pages open on.

Chosen from the runs table (`prunelab.analysis.results.runs_table`) by config, never by run name, so renamed or
regenerated demos keep their defaults:

- `manidp_run`: the full method (complexity and similarity terms on) at its lowest seed, a run with its
  gated model.pt (the what-if and the sub-network map need it), in the form a new run gets by default (the
  authors' reference form) where the runs hold one;
- `slimming_run`: a slimming run in the form a new run gets by default where the runs hold one, at its
  lowest seed, the largest λ first;
- `slimming_comparison`: one run of each λ in a slimming run's setting and form, at that run's seed where there
  is one (the paper's Figure 4: the L1 term pushes more scales toward zero as λ grows);
- `similarity_comparison`: a ManiDP run and its twin with the similarity term switched, at the same seed
  and otherwise the same config (the term on against off, balanced);
- `heatmap_layer`: the gated layer whose feature similarity R varies most between probe images (where R
  is near 1 everywhere, T and R are one colour and T − R says nothing).

A ManiDP or slimming config names its `form` (a run made before that field existed has none: PruneLab's form).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from prunelab.methods.manidp.config import NAME as MANIDP
from prunelab.methods.manidp.config import ManiDPConfig
from prunelab.methods.slimming.config import NAME as SLIMMING
from prunelab.runs.run_format import MODEL_FILE

DEFAULT_FORM = "prunelab"  # a run whose config names no form
PREFERRED_FORM = str(ManiDPConfig.model_fields["form"].default)  # what a new run is: the lesson's first choice
SETTING = ["dataset", "model", "width", "epochs_total"]  # what a comparison never mixes
SLIMMING_SETTING = [*SETTING, "prune_ratio", "finetune_epochs", "form"]
MANIDP_TWIN = [*SETTING, "complexity", "target_density", "lambda_prime", "gamma_sim", "gamma_c", "form"]


def _forms(runs: pd.DataFrame) -> pd.Series:
    if "form" not in runs:
        return pd.Series(DEFAULT_FORM, index=runs.index)
    return runs["form"].where(runs["form"].notna() & (runs["form"] != ""), DEFAULT_FORM)


def _finished(runs: pd.DataFrame, method: str) -> pd.DataFrame:
    if runs.empty or "method" not in runs:
        return runs.iloc[0:0]
    done = runs[(runs["method"] == method) & (runs["state"] == "done")] if "state" in runs else \
        runs[runs["method"] == method]
    return done.assign(form=_forms(done))


def _flag(runs: pd.DataFrame, column: str) -> pd.Series:
    return runs[column].fillna(False).astype(bool) if column in runs else pd.Series(False, index=runs.index)


def slimming_run(runs: pd.DataFrame) -> str | None:
    """The path of a finished slimming run in the preferred form, at its lowest seed, the largest λ first (the one
    whose γ piles up at zero; table order breaks ties); None when none has finished (the page then opens on the
    first run)."""
    slim = _finished(runs, SLIMMING)
    if slim.empty:
        return None
    order = pd.DataFrame({"form": (slim["form"] != PREFERRED_FORM).to_numpy(),
                          "seed": slim["seed"].fillna(np.inf).to_numpy(float) if "seed" in slim else 0.0,
                          "lam": -slim["sparsity_lambda"].fillna(0).to_numpy(float) if "sparsity_lambda" in slim
                          else 0.0, "order": np.arange(len(slim))}, index=slim.index)
    return str(slim.loc[order.sort_values(["form", "seed", "lam", "order"]).index[0], "path"])


def manidp_run(runs: pd.DataFrame) -> str | None:
    """The path of the full method's run at its lowest seed, preferring one with model.pt (table order breaks
    ties); None when there is no finished ManiDP run."""
    manidp = _finished(runs, MANIDP)
    if manidp.empty:
        return None
    score = pd.DataFrame({
        "model": [not (Path(p) / MODEL_FILE).is_file() for p in manidp["path"]],
        "full": ~(_flag(manidp, "complexity") & _flag(manidp, "similarity")).to_numpy(),
        "form": (manidp["form"] != PREFERRED_FORM).to_numpy(),
        "seed": manidp["seed"].fillna(np.inf).to_numpy(float),
        "order": np.arange(len(manidp)),
    }, index=manidp.index)  # False sorts first: with model, full method, the preferred form, lowest seed
    best = score.sort_values(["model", "full", "form", "seed", "order"]).index[0]
    return str(manidp.loc[best, "path"])


def _same(runs: pd.DataFrame, row: pd.Series, keys: Sequence[str]) -> pd.Series:
    same = pd.Series(True, index=runs.index)
    for key in keys:
        if key not in runs:
            continue
        value = row.get(key)
        same &= runs[key].isna() if pd.isna(value) else runs[key] == value
    return same


def _row(runs: pd.DataFrame, run: str | Path) -> pd.Series | None:
    match = runs[runs["path"].astype(str) == str(run)] if "path" in runs else runs.iloc[0:0]
    return None if match.empty else match.iloc[0]


def _at_seed(group: pd.DataFrame, seed: object) -> str:
    """The run of `group` at `seed`, else its lowest seed (table order breaks ties)."""
    if pd.notna(seed) and (group["seed"] == seed).any():
        return str(group[group["seed"] == seed].iloc[0]["path"])
    return str(group.assign(_order=np.arange(len(group))).sort_values(["seed", "_order"]).iloc[0]["path"])


def slimming_comparison(runs: pd.DataFrame, run: str | Path) -> list[str]:
    """One run per λ (ascending) in `run`'s setting, at `run`'s seed where that λ has it; `run` itself is the
    one of its own λ. Just `run` when it is not a listed slimming run."""
    slim = _finished(runs, SLIMMING)
    row = _row(slim, run)
    if row is None:
        return [str(run)]
    same = slim[_same(slim, row, SLIMMING_SETTING)]
    chosen = []
    for lam, group in same.groupby("sparsity_lambda", sort=True):
        chosen.append(str(run) if lam == row["sparsity_lambda"] else _at_seed(group, row["seed"]))
    return chosen


def similarity_comparison(runs: pd.DataFrame, run: str | Path) -> list[str]:
    """`run` and its twin with the similarity term switched (same seed and otherwise the same config; failing
    that, any run of its setting and seed with the term switched), the run with the term first; just `run`
    when there is none."""
    manidp = _finished(runs, MANIDP)
    row = _row(manidp, run)
    if row is None:
        return [str(run)]
    flipped = _flag(manidp, "similarity") != bool(row.get("similarity"))
    twins = manidp[_same(manidp, row, [*MANIDP_TWIN, "seed"]) & flipped]
    if twins.empty:
        twins = manidp[_same(manidp, row, [*SETTING, "seed"]) & flipped]
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

"""Which runs show each paper's lesson: the pieces every method's choice is made of.

A method's analysis pages open on runs chosen from the runs table (`prunelab.analysis.results.runs_table`) by
config, never by run name, so renamed or regenerated demos keep their defaults. The choosers live in each
method's package (`prunelab/methods/<name>/lesson_runs.py`: which run a lesson opens on, which runs it compares);
this module holds what they share: the finished runs of a method in their forms (`finished`; a config made before
the `form` field existed is PruneLab's form), the form a new run gets (`preferred_form`, a lesson's first
choice), the setting a comparison never mixes (`SETTING`), and matching rows by config and seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from prunelab.config import METHOD_CONFIGS

DEFAULT_FORM = "prunelab"  # a run whose config names no form
SETTING = ["dataset", "model", "width", "epochs_total"]  # what a comparison never mixes


def preferred_form(method: str) -> str:
    """The form a new run of `method` gets (its config's default; DEFAULT_FORM for a method without forms):
    the lesson's first choice."""
    field = METHOD_CONFIGS[method].model_fields.get("form")
    return DEFAULT_FORM if field is None else str(field.default)


def _forms(runs: pd.DataFrame) -> pd.Series:
    if "form" not in runs:
        return pd.Series(DEFAULT_FORM, index=runs.index)
    return runs["form"].where(runs["form"].notna() & (runs["form"] != ""), DEFAULT_FORM)


def finished(runs: pd.DataFrame, method: str) -> pd.DataFrame:
    """The finished runs of `method` (every run of it when the table has no `state`), each with its `form`."""
    if runs.empty or "method" not in runs:
        return runs.iloc[0:0]
    done = runs[(runs["method"] == method) & (runs["state"] == "done")] if "state" in runs else \
        runs[runs["method"] == method]
    return done.assign(form=_forms(done))


def flag(runs: pd.DataFrame, column: str) -> pd.Series:
    """A boolean config column (False where it is missing or unset)."""
    return runs[column].fillna(False).astype(bool) if column in runs else pd.Series(False, index=runs.index)


def same(runs: pd.DataFrame, row: pd.Series, keys: Sequence[str]) -> pd.Series:
    """The runs that match `row` on every one of `keys` the table has (missing values match each other)."""
    matches = pd.Series(True, index=runs.index)
    for key in keys:
        if key not in runs:
            continue
        value = row.get(key)
        matches &= runs[key].isna() if pd.isna(value) else runs[key] == value
    return matches


def row_of(runs: pd.DataFrame, run: str | Path) -> pd.Series | None:
    """The row of the run at `run`; None when it is not in `runs`."""
    match = runs[runs["path"].astype(str) == str(run)] if "path" in runs else runs.iloc[0:0]
    return None if match.empty else match.iloc[0]


def at_seed(group: pd.DataFrame, seed: object) -> str:
    """The run of `group` at `seed`, else its lowest seed (table order breaks ties)."""
    if pd.notna(seed) and (group["seed"] == seed).any():
        return str(group[group["seed"] == seed].iloc[0]["path"])
    return str(group.assign(_order=np.arange(len(group))).sort_values(["seed", "_order"]).iloc[0]["path"])

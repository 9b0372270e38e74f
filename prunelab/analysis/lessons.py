"""The papers' claims next to what the selected runs measure, over seeds.

Runs are grouped into *variants*: the same method and setting, data, model, width and training budget
(`epochs_total`, a parent run's epochs included), differing only in their seed. Each figure of a
variant is reported as mean ± sample standard deviation over its seeds.

A difference between two variants counts as *beyond seed noise* when

    |mean_a - mean_b| > NOISE_Z * sqrt(sd_a^2 / n_a + sd_b^2 / n_b)        (a two-sample z bound)

with at least two seeds on each side; with fewer, the verdict says the noise is unknown. Two variants
are compared on the seeds both hold (`shared_seeds`): a suite cut short, with seeds 0 and 1 of one variant
and seed 0 of the other, is judged on seed 0, since seeds differ systematically (one seed's data order
and initialisation can sit a point above another's for every variant).

`claims(table)` returns one `Claim` per lesson the runs can speak to: the paper's statement, the
measured figures and a verdict ("holds", "does not hold", "within seed noise", "not enough runs").
A claim that does not hold at this scale is a finding, and is reported as such.

Claims are judged within one *setting* at a time (SETTING_KEYS: dataset, model, width and training budget):
runs of two settings, say the shapes and the CIFAR-10 demo, are never pooled. When the runs span several
settings, each claim names its setting.

Each method's own claims live in its package (`prunelab/methods/<name>/claims.py`, the method's
`MethodFacts.claims`), built from the pieces here (`Stat`, `shared_seeds`, `verdict_of`, `paired_difference`,
`per_form`, `by_setting`); `claims` loops over the methods. The budget claims set every method with a
published result (`MethodFacts.budget_reference`) against the baseline trained for as many epochs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np
import pandas as pd

from prunelab.analysis import references
from prunelab.config import METHOD_FACTS, dataset_short_name
from prunelab.methods.baseline.config import NAME as BASELINE
from prunelab.runs.run_format import NEAR_ZERO_GAMMA_KEY

NOISE_Z = 2.0  # how many standard errors apart two means must be to count as different
VARIANT_KEYS = ["method", "variant", "dataset", "model", "width", "epochs_total"]
# claims never pool runs across these: a variant's keys but the method and the variant itself
SETTING_KEYS = [key for key in VARIANT_KEYS if key not in ("method", "variant")]
# the figures averaged per variant (those a run lacks are NaN and left out of its mean)
FIGURES = ["test_acc", "macs_per_image", "macs_reduction", "spearman_macs_loss", "spearman_macs_difficulty",
           "similarity_gap_mean", NEAR_ZERO_GAMMA_KEY, "acc_after_prune", "macs_per_image_with_gates",
           "complexity_quintile_gap", "similarity_rank_correlation", "macs_cv", "decision_disagreement",
           "matched_reduction", "acc_at_matched"]
FIGURE_LABELS = {
    "test_acc": "test accuracy", "macs_per_image": "MACs per image", "macs_reduction": "MACs reduction",
    "spearman_macs_loss": "ρ(MACs, loss)", "spearman_macs_difficulty": "ρ(MACs, difficulty)",
    "similarity_gap_mean": "mean ‖T − R‖_F", NEAR_ZERO_GAMMA_KEY: "share of |γ| < 0.05",
    "acc_after_prune": "accuracy right after pruning", "macs_per_image_with_gates": "MACs per image with gates",
    "complexity_quintile_gap": "relative MACs, hardest − easiest fifth (parent loss)",
    "similarity_rank_correlation": "ρ(R, T) over test pairs", "macs_cv": "per-image MACs CV",
    "decision_disagreement": "gate decisions off the channel's majority",
    "matched_reduction": "matched MACs reduction", "acc_at_matched": "accuracy at the matched MACs reduction",
}


@dataclass(frozen=True)
class Stat:
    """Mean, sample standard deviation (NaN for one seed) and number of seeds of one figure."""

    mean: float
    std: float
    n: int

    def text(self, fmt: str = ".3f", percent: bool = False) -> str:
        scale = 100.0 if percent else 1.0
        unit = "%" if percent else ""
        if self.n == 0:
            return "no runs"
        body = f"{self.mean * scale:{fmt}}{unit}"
        if self.n >= 2:
            return f"{body} ± {self.std * scale:{fmt}}{unit} (n = {self.n})"
        return f"{body} (1 seed)"


def stat(values: Sequence[float] | pd.Series) -> Stat:
    """Stat of the finite values (NaN mean when there are none)."""
    finite = np.asarray([float(v) for v in values if v is not None and np.isfinite(float(v))], dtype=float)
    if finite.size == 0:
        return Stat(float("nan"), float("nan"), 0)
    std = float(finite.std(ddof=1)) if finite.size >= 2 else float("nan")
    return Stat(float(finite.mean()), std, int(finite.size))


def beyond_noise(a: Stat, b: Stat, z: float = NOISE_Z) -> bool | None:
    """True/False when both have >= 2 seeds: is |a - b| more than z standard errors? None otherwise."""
    if a.n < 2 or b.n < 2 or math.isnan(a.mean) or math.isnan(b.mean):
        return None
    error = math.sqrt(a.std ** 2 / a.n + b.std ** 2 / b.n)
    return abs(a.mean - b.mean) > z * error


PARENT_LABEL = "pretrain (parent of the ManiDP runs)"


def variant_groups(table: pd.DataFrame) -> pd.DataFrame:
    """One row per variant: VARIANT_KEYS, `seeds`, `runs` (their names), `label` (the variant and its budget,
    a chart's name for it: 'slimming λ=0.004, prune 50% · 6 epochs'; baseline runs that ManiDP runs start
    from are named PARENT_LABEL, apart from the baseline trained for the whole budget) and
    `<figure>_mean` / `<figure>_std` for FIGURES."""
    columns = [*VARIANT_KEYS, "seeds", "runs", "label"] + [f"{f}_{s}" for f in FIGURES for s in ("mean", "std")]
    if table.empty:
        return pd.DataFrame(columns=columns)
    frame = table.copy()
    for key in VARIANT_KEYS:
        if key not in frame:
            frame[key] = np.nan
    frame["epochs_total"] = frame["epochs_total"].fillna(frame.get("epochs"))
    parents = set(frame["parent_run"].dropna().astype(str)) if "parent_run" in frame else set()
    rows = []
    for keys, group in frame.groupby(VARIANT_KEYS, dropna=False, sort=False):
        row = dict(zip(VARIANT_KEYS, keys, strict=True))
        row["seeds"] = len(group)
        row["runs"] = ", ".join(str(name) for name in group.get("name", group.index))
        # a baseline that other runs start from (a slimming run that controls start from keeps its own name)
        parent = (row["method"] == BASELINE and "run_id" in group
                  and group["run_id"].astype(str).isin(parents).all())
        name = PARENT_LABEL if parent else str(row["variant"])
        epochs = row["epochs_total"]
        row["label"] = f"{name} · {int(epochs)} epochs" if pd.notna(epochs) else name
        for figure in FIGURES:
            values = group[figure] if figure in group else pd.Series(dtype=float)
            s = stat(values)
            row[f"{figure}_mean"], row[f"{figure}_std"] = s.mean, s.std
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


@dataclass(frozen=True)
class Claim:
    """A paper's claim, the selected runs' figures and whether the claim holds across seeds."""

    lesson: str
    paper: str
    measured: str
    verdict: str  # "holds", "does not hold", "within seed noise" or "not enough runs"
    # the same in a few words, for a table row a reader scans ('' where there is nothing shorter to say)
    paper_figure: str = ""
    measured_figure: str = ""


def figure_stat(table: pd.DataFrame, mask: pd.Series, figure: str) -> Stat:
    """Stat of `figure` over the rows of `table` that `mask` selects (no runs when the table lacks the figure)."""
    if figure not in table:
        return Stat(float("nan"), float("nan"), 0)
    return stat(table.loc[mask, figure])


def shared_seeds(table: pd.DataFrame, masks: Sequence[pd.Series]) -> tuple[list[pd.Series], str]:
    """`masks` (variants' rows of `table`) narrowed to the seeds every one of them holds, and a note for the
    measured text naming the seeds compared ('' when nothing was left out: all hold the same seeds, or the
    table has no `seed` column)."""
    if "seed" not in table:
        return list(masks), ""
    seeds = [set(table.loc[mask, "seed"].dropna()) for mask in masks]
    common = set.intersection(*seeds) if seeds else set()
    if all(have == common for have in seeds):
        return list(masks), ""
    narrowed = [mask & table["seed"].isin(common) for mask in masks]
    if not common:
        return narrowed, " (no seed in common: not compared)"
    named = ", ".join(f"{int(seed)}" if float(seed).is_integer() else str(seed) for seed in sorted(common))
    return narrowed, f" (compared on seed{'s' if len(common) > 1 else ''} {named}, the seeds they share)"


def verdict_of(better: Stat, worse: Stat, holds_if_greater: bool) -> str:
    """Verdict for the claim 'better > worse' (or '<' when holds_if_greater is False)."""
    if better.n == 0 or worse.n == 0:
        return "not enough runs"
    direction = better.mean > worse.mean if holds_if_greater else better.mean < worse.mean
    noise = beyond_noise(better, worse)
    if noise is None:
        return "holds (one seed: noise unknown)" if direction else "does not hold (one seed: noise unknown)"
    if not noise:
        return "within seed noise"
    return "holds" if direction else "does not hold"


def setting_label(setting: dict[str, object]) -> str:
    """'shapes · resnet20 w0.5 · 6 epochs': a setting (SETTING_KEYS) as a claim names it."""
    parts = [dataset_short_name(str(setting.get("dataset", "")))]
    if pd.notna(setting.get("model")):
        width = setting.get("width")
        parts.append(f"{setting['model']} w{float(width):g}" if pd.notna(width) else str(setting["model"]))
    if pd.notna(setting.get("epochs_total")):
        parts.append(f"{int(float(str(setting['epochs_total'])))} epochs")
    return " · ".join(p for p in parts if p)


Judged = TypeVar("Judged", bound="HasLesson")  # a Claim, or a control (prunelab.analysis.controls.Control)


class HasLesson(Protocol):
    """What `by_setting` names with its setting: a frozen dataclass with a `lesson`."""

    lesson: str


def by_setting(table: pd.DataFrame, judge: Callable[[pd.DataFrame], list[Judged]]) -> list[Judged]:
    """`judge`'s claims (or controls) within each setting of `table`; when several settings hold pruned runs, each
    names its setting, even if only one of them yields any (a setting of baselines alone, such as the
    demo's shorter `pretrain` runs, adds no names)."""
    keys = [key for key in SETTING_KEYS if key in table]
    if table.empty or not keys:
        return judge(table)
    judged = []
    for values, group in table.groupby(keys, dropna=False, sort=False):
        found = judge(group.reset_index(drop=True))
        if found:
            setting = dict(zip(keys, values if isinstance(values, tuple) else (values,), strict=True))
            judged.append((setting_label(setting), found))
    pruned = table[table["method"] != BASELINE] if "method" in table else table
    if len(judged) == 1 and pruned.groupby(keys, dropna=False).ngroups <= 1:
        return judged[0][1]
    return [replace(claim, lesson=f"{claim.lesson} ({label})")  # type: ignore[type-var]
            for label, found in judged for claim in found]


def in_setting_of(table: pd.DataFrame, run: str | Path) -> pd.DataFrame:
    """The rows of `table` (`prunelab.analysis.tables.ablation_table`) in the setting (SETTING_KEYS) of the run at
    `run`: the runs whose claims a page showing that run judges; no rows when the run is not in `table`."""
    keys = [key for key in SETTING_KEYS if key in table]
    if table.empty or "path" not in table:
        return table.iloc[0:0]
    row = table[table["path"].astype(str) == str(run)]
    if row.empty:
        return table.iloc[0:0]
    same = pd.Series(True, index=table.index)
    for key in keys:
        value = row.iloc[0][key]
        same &= table[key].isna() if pd.isna(value) else table[key] == value
    return table[same]


def budget_claims(table: pd.DataFrame) -> list[Claim]:
    """Each pruned variant against the equal-budget baseline, within each setting (`_budget_claims`)."""
    return by_setting(table, _budget_claims)


def with_run_figures(table: pd.DataFrame) -> pd.DataFrame:
    """`table` (an ablation table) with the figures each method's claims read from its runs' files beyond
    summary.json, within each setting (`MethodFacts.run_figures`: ManiDP's accuracy at a matched MACs reduction,
    from the runs' stored what-if curves)."""
    for facts in METHOD_FACTS.values():
        if facts.run_figures is not None:
            table = facts.run_figures(table, SETTING_KEYS)
    return table


def paired_difference(table: pd.DataFrame, mine: pd.Series, theirs: pd.Series, figure: str) -> Stat:
    """Stat over the seeds both masks hold of figure(mine, seed) - figure(theirs, seed)."""
    if figure not in table or "seed" not in table:
        return Stat(float("nan"), float("nan"), 0)
    a = table.loc[mine].groupby("seed")[figure].mean()
    b = table.loc[theirs].groupby("seed")[figure].mean()
    return stat((a - b).dropna())


def paired_verdict(difference: Stat, greater: bool) -> str:
    """'holds' when the mean seed-paired difference is beyond NOISE_Z standard errors in the claimed direction."""
    if difference.n == 0:
        return "not enough runs"
    direction = difference.mean > 0 if greater else difference.mean < 0
    if difference.n < 2:
        return "holds (one seed: noise unknown)" if direction else "does not hold (one seed: noise unknown)"
    if abs(difference.mean) <= NOISE_Z * difference.std / math.sqrt(difference.n):
        return "within seed noise"
    return "holds" if direction else "does not hold"


def method_forms(table: pd.DataFrame, method: str) -> list[str]:
    """The forms (`prunelab.analysis.tables.form_label`) of `method`'s runs in `table`, in order of appearance."""
    from prunelab.analysis.tables import form_label

    if "method" not in table:
        return []
    labels = [form_label(row) or "" for _, row in table[table["method"] == method].iterrows()]
    return list(dict.fromkeys(labels))


def in_form(table: pd.DataFrame, method: str, form: str) -> pd.DataFrame:
    """`table` with `method`'s runs narrowed to those of `form` (a `tables.form_label`); other methods' runs kept."""
    from prunelab.analysis.tables import form_label

    keep = [row["method"] != method or (form_label(row) or "") == form for _, row in table.iterrows()]
    return table[keep].reset_index(drop=True)


def per_form(table: pd.DataFrame, method: str, judge: Callable[[pd.DataFrame], list[Claim]]) -> list[Claim]:
    """`judge`'s claims within each form of `method` (a claim names its form when the runs hold several)."""
    forms = method_forms(table, method) or [""]
    claims = []
    for form in forms:
        part = in_form(table, method, form) if len(forms) > 1 else table
        suffix = f" [{form}]" if len(forms) > 1 and form else ""
        claims += [replace(c, lesson=c.lesson + suffix) for c in judge(part)]
    return claims


def _budget_claims(table: pd.DataFrame) -> list[Claim]:
    """Each pruned variant against the baseline with the same total training budget."""
    if "epochs_total" not in table or "method" not in table:
        return []
    claims = []
    baselines = table[table["method"] == BASELINE]
    pruned = table[table["method"].isin(list(BUDGET_REFERENCES))]
    for (method, variant, budget), group in pruned.groupby(["method", "variant", "epochs_total"], dropna=True):
        peers = baselines[baselines["epochs_total"] == budget]
        if peers.empty:
            continue
        rows = table.index.to_series()
        (ours, control), note = shared_seeds(table, [rows.isin(group.index), rows.isin(peers.index)])
        mine, theirs = figure_stat(table, ours, "test_acc"), figure_stat(table, control, "test_acc")
        reduction = figure_stat(table, ours, "macs_reduction")
        spread = f" ± {reduction.std:.1%}" if reduction.n >= 2 else ""
        fewer = f" at {reduction.mean:.1%}{spread} fewer MACs" if reduction.n else ""
        result = BUDGET_REFERENCES[method]
        change = result.top1 - result.baseline_top1
        paper = (f"{METHOD_FACTS[method].label}: {result.model} on CIFAR-10, "
                 f"{result.setting}, {'gains' if change >= 0 else 'loses'} {abs(change):.2f} points "
                 f"({result.top1:.2f}% vs {result.baseline_top1:.2f}% unpruned) at −{result.flops_reduction:.1%} "
                 f"FLOPs after {result.budget}.")
        gap = f"{(mine.mean - theirs.mean) * 100:+.1f} points" if mine.n and theirs.n else "no runs"
        claims.append(Claim(
            f"{variant} against the baseline at the same budget ({int(budget)} epochs in all)",
            paper,
            f"test accuracy: {variant} {mine.text('.1f', percent=True)}{fewer}; baseline "
            f"{theirs.text('.1f', percent=True)}{note}",
            _budget_verdict(mine, theirs),
            f"{change:+.2f} points at −{result.flops_reduction:.1%} FLOPs ({result.model})",
            f"{gap} at −{reduction.mean:.1%} MACs" if reduction.n else gap))
    return claims


# the paper's result each method's budget claim sets the runs against (`MethodFacts.budget_reference`)
BUDGET_REFERENCES = {
    name: next(r for r in references.PUBLISHED if r.method == name and r.model == facts.budget_reference)
    for name, facts in METHOD_FACTS.items() if facts.budget_reference is not None
}


def _budget_verdict(pruned: Stat, baseline: Stat) -> str:
    if pruned.n == 0 or baseline.n == 0:
        return "not enough runs"
    noise = beyond_noise(pruned, baseline)
    if noise is None:
        return "one seed: noise unknown"
    if not noise:
        return "within seed noise of the baseline"
    return "does not hold: below the baseline" if pruned.mean < baseline.mean else "holds: above the baseline"


CLAIM_COLUMNS = ["claim", "paper", "measured", "verdict"]


def claims_table(found: Sequence[Claim]) -> pd.DataFrame:
    """One row per claim (CLAIM_COLUMNS): the lesson, the paper's and the measured figure in a few words
    (the full sentence where a claim has no short form) and the verdict."""
    rows = [[c.lesson, c.paper_figure or c.paper, c.measured_figure or c.measured, c.verdict] for c in found]
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)


def claims(table: pd.DataFrame) -> list[Claim]:
    """Every claim the runs in `table` (an ablation table: finished runs) can speak to: each method's own
    (`MethodFacts.claims`, in the methods' order), then the budget claims, within each setting."""
    if table.empty:
        return []
    judges = [facts.claims for facts in METHOD_FACTS.values() if facts.claims is not None]
    return by_setting(table, lambda part: [*(c for judge in judges for c in judge(part)), *_budget_claims(part)])


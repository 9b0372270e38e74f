"""Network Slimming's claims (Liu et al., 2017, Figure 4) judged on the runs of an ablation table: as λ grows
the BN scales |γ| pile up at zero, so pruning the channels below one global threshold barely hurts.

`claims(table)` judges them within each setting (`prunelab.analysis.lessons.by_setting`: what the Slimming page
shows), `setting_claims` within one setting and each form of slimming (the method's `MethodFacts.claims`, which
`prunelab.analysis.lessons.claims` loops over).
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from prunelab.analysis.lessons import (
    Claim,
    Stat,
    beyond_noise,
    by_setting,
    figure_stat,
    per_form,
    shared_seeds,
    stat,
    verdict_of,
)
from prunelab.methods.slimming.config import NAME as SLIMMING
from prunelab.runs.run_format import NEAR_ZERO_GAMMA_KEY

# the lessons the claims name (the tours pick a claim by its lesson)
PILE_UP = "γ piles up at zero as λ grows"
PRUNING_BARELY_HURTS = "with a strong λ, pruning barely hurts before fine-tuning"


def claims(table: pd.DataFrame) -> list[Claim]:
    """Figure 4 of Liu et al. (2017), judged within each setting (`setting_claims`)."""
    return by_setting(table, setting_claims)


def setting_claims(table: pd.DataFrame) -> list[Claim]:
    """Figure 4 of Liu et al. (2017), within each form of slimming (`per_form`)."""
    return per_form(table, SLIMMING, form_claims)


def form_claims(table: pd.DataFrame) -> list[Claim]:
    """Figure 4 of Liu et al. (2017): |γ| piles up at zero as λ grows, so pruning barely hurts."""
    slim = table[table["method"] == SLIMMING] if "method" in table else table.iloc[0:0]
    if slim.empty or "sparsity_lambda" not in slim:
        return []
    lambdas = sorted(float(v) for v in slim["sparsity_lambda"].dropna().unique())
    if len(lambdas) < 2:
        return []
    low, high = lambdas[0], lambdas[-1]
    masks, note = shared_seeds(slim, [slim["sparsity_lambda"] == lam for lam in lambdas])
    at = dict(zip(lambdas, masks, strict=True))
    shares = {lam: figure_stat(slim, at[lam], NEAR_ZERO_GAMMA_KEY) for lam in lambdas}
    share_text = "; ".join(f"λ = {lam:g}: {shares[lam].text('.1f', percent=True)}" for lam in lambdas)
    steps = f"λ = {' → '.join(f'{lam:g}' for lam in lambdas)}"
    found = [Claim(PILE_UP,
                   "Network Slimming (Liu et al., 2017, Fig. 4): with λ = 0 the |γ| distribution is flat; "
                   "as λ grows it piles up near zero.",
                   f"share of |γ| below 0.05 after sparsity training: {share_text}{note}",
                   verdict_of(shares[high], shares[low], holds_if_greater=True),
                   "share of |γ| ≈ 0 grows with λ",
                   f"|γ| < 0.05: {_path(shares[lam] for lam in lambdas)} ({steps})")]
    after = {lam: figure_stat(slim, at[lam], "acc_after_prune") for lam in (low, high)}
    if after[low].n and after[high].n:
        found.append(_pruning_claim(slim, at, low, high, after, note))
    return found


def _pruning_claim(slim: pd.DataFrame, at: dict[float, pd.Series], low: float, high: float,
                   after: dict[float, Stat], note: str) -> Claim:
    """The paper's 'pruning barely hurts at a strong λ': the drop from the sparsity-trained network to the pruned
    one (seed by seed where the runs record both) is smaller at the largest λ than at the smallest. The
    accuracy before pruning is shown too: a λ whose sparsity training itself fails loses nothing by pruning."""
    before = {lam: figure_stat(slim, at[lam], "acc_before_prune") for lam in (low, high)}
    if before[low].n and before[high].n:
        drop = {lam: stat((slim.loc[at[lam], "acc_before_prune"] - slim.loc[at[lam], "acc_after_prune"]).dropna())
                for lam in (low, high)}
        verdict = verdict_of(drop[low], drop[high], holds_if_greater=True)
        measured = "; ".join(f"λ = {lam:g}: {before[lam].text('.1f', percent=True)} before pruning, "
                             f"{after[lam].text('.1f', percent=True)} right after (a drop of "
                             f"{drop[lam].text('.1f', percent=True)})" for lam in (low, high))
        if beyond_noise(before[high], before[low]) and before[high].mean < before[low].mean:
            measured += (f". The sparsity-trained network itself is lower at λ = {high:g} "
                         f"({before[high].mean:.1%} against {before[low].mean:.1%}): the smaller drop starts from a "
                         "lower point")
    else:  # runs that predate acc_before_prune: accuracy right after pruning alone
        verdict = verdict_of(after[high], after[low], holds_if_greater=True)
        measured = (f"accuracy right after pruning: λ = {low:g}: {after[low].text('.1f', percent=True)}; "
                    f"λ = {high:g}: {after[high].text('.1f', percent=True)}")
    return Claim(PRUNING_BARELY_HURTS,
                 "Network Slimming: the channels below the global threshold carry little, so accuracy right "
                 "after pruning stays close to the sparsity-trained network's.",
                 measured + note, verdict, "accuracy right after pruning stays high",
                 f"right after pruning: {_path([after[low], after[high]])} (λ = {low:g} → {high:g})")


def _path(stats: Iterable[Stat]) -> str:
    """'0% → 34% → 73%': the means of `stats` as percentages, in order."""
    return " → ".join(f"{s.mean:.0%}" if s.n else "?" for s in stats)

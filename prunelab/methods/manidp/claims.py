"""ManiDP's claims (Tang et al., 2021) judged on the runs of an ablation table: each term against its control,
the same variant with that term switched off (the paper's ablation), seed by seed where the claim says so.

`claims(table, figure)` judges them within each setting (`prunelab.analysis.lessons.by_setting`: what the
Per-image and Similarity pages show), `setting_claims` within one setting and each form of ManiDP (the method's
`MethodFacts.claims`, which `prunelab.analysis.lessons.claims` loops over). `with_matched_accuracy` adds the
figure the accuracy claims are judged on, read from the runs' stored what-if curves (`MethodFacts.run_figures`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from prunelab.analysis.lessons import (
    SETTING_KEYS,
    Claim,
    by_setting,
    figure_stat,
    paired_difference,
    paired_verdict,
    per_form,
    shared_seeds,
    verdict_of,
)
from prunelab.methods.manidp.config import MANIDP_VARIANTS
from prunelab.methods.manidp.config import NAME as MANIDP

SIMILARITY_PAIRS = [((False, True), (False, False)), ((True, True), (True, False))]
COMPLEXITY_PAIRS = [((True, False), (False, False)), ((True, True), (False, True))]
BOTH_PAIRS = [((True, True), (False, False))]  # the paper's full method against neither term: the net effect


@dataclass(frozen=True)
class TermClaim:
    """One claim about a ManiDP term, judged on `figure`: the variant with the term against the same variant
    without it (`pairs`), seed by seed when `paired`."""

    figure: str
    lesson: str
    paper: str
    label: str  # the figure as the measured text names it
    fmt: str
    greater: bool  # the claim holds if the term raises the figure
    pairs: list[tuple[tuple[bool, bool], tuple[bool, bool]]]
    paired: bool = False


MATCHED_LABEL = ("test accuracy at a matched MACs reduction (the median of the form's ManiDP runs, along each "
                 "run's what-if curve; seed-paired difference with the term minus without)")
MATCHED_PAPER = ("ManiDP (Tang et al., 2021), ablation table: at similar FLOPs, each term adds accuracy, and both "
                 "terms together give the best.")
TERM_CLAIMS = [
    TermClaim("similarity_rank_correlation",
              "the similarity term gives images with similar features similar sub-networks",
              "ManiDP (Tang et al., 2021): the similarity term keeps the manifold structure of the features in "
              "the sub-networks: image pairs with similar features get similar gates.",
              "Spearman ρ(R, T) over held-out test pairs", ".3f", True, SIMILARITY_PAIRS),
    TermClaim("similarity_gap_mean",
              "the similarity term lowers its own objective ‖T − R‖ (a check that the term trains, not the "
              "paper's claim)",
              "ManiDP: the term minimises ‖T − R‖²/N², so training with it lowers ‖T − R‖ almost by construction.",
              "mean ‖T − R‖_F over layers (the term's objective)", ".2f", False, SIMILARITY_PAIRS),
    TermClaim("complexity_quintile_gap",
              "the complexity term gives harder images larger sub-networks",
              "ManiDP: images with a loss above C are not pushed to be sparse; its visualisation shows the costliest "
              "sub-networks on cluttered, ambiguous images and the cheapest on clean ones.",
              "relative MACs, hardest minus easiest fifth of the test images by the parent model's loss "
              "(seed-paired difference with the term minus without)", ".3f", True, COMPLEXITY_PAIRS, paired=True),
    TermClaim("acc_at_matched", "the similarity term adds accuracy at matched MACs", MATCHED_PAPER, MATCHED_LABEL,
              ".3f", True, SIMILARITY_PAIRS, paired=True),
    TermClaim("acc_at_matched", "the complexity term adds accuracy at matched MACs", MATCHED_PAPER, MATCHED_LABEL,
              ".3f", True, COMPLEXITY_PAIRS, paired=True),
    # both terms at once against neither (a demo that ships only these two rows still answers the paper)
    TermClaim("acc_at_matched", "the two terms together add accuracy at matched MACs", MATCHED_PAPER,
              MATCHED_LABEL.replace("with the term minus without", "both minus neither"), ".3f", True, BOTH_PAIRS,
              paired=True),
    TermClaim("similarity_rank_correlation",
              "with both terms, images with similar features get more similar sub-networks",
              "ManiDP (Tang et al., 2021): the similarity term keeps the manifold structure of the features in "
              "the sub-networks: image pairs with similar features get similar gates.",
              "Spearman ρ(R, T) over held-out test pairs", ".3f", True, BOTH_PAIRS),
    TermClaim("complexity_quintile_gap", "with both terms, harder images get larger sub-networks",
              "ManiDP: images with a loss above C are not pushed to be sparse; its visualisation shows the costliest "
              "sub-networks on cluttered, ambiguous images and the cheapest on clean ones.",
              "relative MACs, hardest minus easiest fifth of the test images by the parent model's loss "
              "(seed-paired difference both minus neither)", ".3f", True, BOTH_PAIRS, paired=True),
]


def claims(table: pd.DataFrame, figure: str | None = None) -> list[Claim]:
    """Tang et al. (2021), judged within each setting (`setting_claims`)."""
    return by_setting(table, lambda part: setting_claims(part, figure))


def setting_claims(table: pd.DataFrame, figure: str | None = None) -> list[Claim]:
    """Tang et al. (2021), each term against its control (the same variant with that term switched off),
    within each form of ManiDP (`per_form`). `figure` keeps only the claims judged on that figure."""
    return per_form(table, MANIDP, lambda part: form_claims(part, figure))


def form_claims(table: pd.DataFrame, figure: str | None) -> list[Claim]:
    """The claims within one form: every TERM_CLAIMS entry (judged on `figure`, when given) on each pair of its
    variants the runs hold."""
    rows = {(c, s): _rows(table, c, s) for c in (False, True) for s in (False, True)}
    if not any(mask.any() for mask in rows.values()):
        return []
    if figure in (None, "acc_at_matched"):
        table = with_matched_accuracy(table)
    names = MANIDP_VARIANTS
    found = []
    for term in TERM_CLAIMS:
        if figure is not None and term.figure != figure:
            continue
        for with_term, without in term.pairs:
            (mine, theirs), note = shared_seeds(table, [rows[with_term], rows[without]])
            ours, control = figure_stat(table, mine, term.figure), figure_stat(table, theirs, term.figure)
            if not (ours.n and control.n):
                continue
            label = term.label
            if term.figure == "acc_at_matched":
                label += f", at {float(table.loc[mine | theirs, 'matched_reduction'].median()):.1%} fewer MACs"
            measured = f"{label}: {names[with_term]} {ours.text(term.fmt)}; {names[without]} " \
                       f"{control.text(term.fmt)}"
            if term.paired:
                difference = paired_difference(table, mine, theirs, term.figure)
                measured += f"; difference {difference.text(term.fmt)}"
                verdict = paired_verdict(difference, term.greater)
            else:
                verdict = verdict_of(ours, control, holds_if_greater=term.greater)
            found.append(Claim(f"{term.lesson} ({names[with_term]} vs {names[without]})", term.paper,
                               measured + note, verdict,
                               f"{term.label.split(' (')[0]} {'rises' if term.greater else 'falls'} with "
                               f"{'both terms' if term.pairs is BOTH_PAIRS else 'the term'}",
                               f"{ours.mean:{term.fmt}} with, {control.mean:{term.fmt}} without"))
    return found


def _rows(table: pd.DataFrame, complexity: bool, similarity: bool) -> pd.Series:
    if not {"method", "complexity", "similarity"} <= set(table.columns):
        return pd.Series(False, index=table.index)
    flags = table["complexity"].map(lambda v: bool(v) if isinstance(v, bool | np.bool_) else False)
    sims = table["similarity"].map(lambda v: bool(v) if isinstance(v, bool | np.bool_) else False)
    return (table["method"] == MANIDP) & (flags == complexity) & (sims == similarity)


def with_matched_accuracy(table: pd.DataFrame, setting: Sequence[str] = SETTING_KEYS) -> pd.DataFrame:
    """`table` with each ManiDP run's accuracy at its form's matched MACs reduction, within each setting
    (`prunelab.methods.manidp.evidence.with_matched_accuracy`; unchanged when it has that figure already); reads
    the runs' stored what-if curves."""
    from prunelab.methods.manidp.evidence import with_matched_accuracy as add

    return table if "acc_at_matched" in table else add(table, setting)

"""Random channels as the control of Network Slimming's criterion: each random-channels variant against the
slimming variant whose per-layer counts (and dense network after sparsity training) it took, seed by seed, at
exactly that variant's MACs (`prunelab.analysis.controls`).

Network Slimming (Liu et al., ICCV 2017) prunes the channels whose BN scale |γ| lies below one global threshold;
the claim a random-channels control tests is that this criterion picks better channels than chance at the same
per-layer counts and the same fine-tuning.
"""

from __future__ import annotations

import pandas as pd

from prunelab.analysis.controls import Control, Question, against_parents
from prunelab.analysis.lessons import Claim
from prunelab.methods.random.config import NAME as RANDOM
from prunelab.methods.slimming.config import NAME as SLIMMING

CRITERION = Question(
    question="Does the |γ| criterion matter?",
    lesson="slimming's |γ| criterion beats random channels at the same per-layer counts and fine-tuning",
    paper=("Network Slimming (Liu et al., ICCV 2017): the channels with small BN scales |γ| are the unimportant "
           "ones, so the global |γ| threshold decides which channels to prune."),
    matches="at this scale the |γ| criterion buys nothing measurable over channels drawn at random")


def _question(parent_method: str) -> Question | None:
    return CRITERION if parent_method == SLIMMING else None


def controls(table: pd.DataFrame) -> list[Control]:
    """Each random-channels variant against its slimming runs (one setting's runs: `MethodFacts.controls`)."""
    return against_parents(table, RANDOM, _question)


def setting_claims(table: pd.DataFrame) -> list[Claim]:
    """The controls as claims (`MethodFacts.claims`: the claims tables of the Ablations page and the reports)."""
    return [control.claim() for control in controls(table)]

"""From scratch as a control (`prunelab.analysis.controls`), seed by seed against the runs it is sized as:

- against a static pruned run (slimming): the same architecture, fresh weights, the same epochs in all. Network
  Slimming fine-tunes the weights it inherits; Liu et al., "Rethinking the Value of Network Pruning" (ICLR 2019),
  found that for Network Slimming on CIFAR the architecture trained from scratch typically matches (or beats)
  the fine-tuned one;
- against ManiDP: a uniformly thinner static network of the same mean MACs per image, the same epochs in all.
  ManiDP (Tang et al., CVPR 2021) claims that per-image sub-networks beat static pruning at similar FLOPs.
"""

from __future__ import annotations

import pandas as pd

from prunelab.analysis.controls import Control, Question, against_parents
from prunelab.analysis.lessons import Claim
from prunelab.methods.manidp.config import NAME as MANIDP
from prunelab.methods.random.config import NAME as RANDOM
from prunelab.methods.scratch.config import NAME as SCRATCH
from prunelab.methods.slimming.config import NAME as SLIMMING

INHERITED_WEIGHTS = Question(
    question="Do the inherited weights matter?",
    lesson="fine-tuning slimming's inherited weights beats training its architecture from scratch",
    paper=("Network Slimming (Liu et al., ICCV 2017) fine-tunes the pruned network's inherited weights; "
           "Liu et al., 'Rethinking the Value of Network Pruning' (ICLR 2019): for Network Slimming on CIFAR the "
           "pruned architecture trained from scratch often matches the fine-tuned one (the value lies in the "
           "architecture found)."),
    matches="at this scale the inherited weights buy nothing measurable, as Liu et al. (2019) found")
RANDOM_WEIGHTS = Question(
    question="Do the inherited weights matter?",
    lesson="fine-tuning random channels' inherited weights beats training their architecture from scratch",
    paper=("Liu et al., 'Rethinking the Value of Network Pruning' (ICLR 2019): a pruned architecture trained from "
           "scratch often matches the fine-tuned one."),
    matches="at this scale the inherited weights buy nothing measurable")
ROUTING = Question(
    question="Does per-image routing pay over a static network of equal average MACs?",
    lesson="ManiDP's per-image sub-networks beat a static network of equal average MACs",
    paper=("ManiDP (Tang et al., CVPR 2021): a sub-network per image, sized by the image's difficulty, is more "
           "accurate than static pruning at similar FLOPs."),
    matches="at this scale per-image routing buys nothing measurable over a thinner static network")
QUESTIONS = {SLIMMING: INHERITED_WEIGHTS, RANDOM: RANDOM_WEIGHTS, MANIDP: ROUTING}


def controls(table: pd.DataFrame) -> list[Control]:
    """Each from-scratch variant against the runs it is sized as (one setting's runs: `MethodFacts.controls`), the
    controls of slimming first (QUESTIONS' order)."""
    order = list(QUESTIONS)
    return sorted(against_parents(table, SCRATCH, QUESTIONS.get), key=lambda c: order.index(c.reference_method))


def setting_claims(table: pd.DataFrame) -> list[Claim]:
    """The controls as claims (`MethodFacts.claims`: the claims tables of the Ablations page and the reports)."""
    return [control.claim() for control in controls(table)]

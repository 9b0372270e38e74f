"""Network Slimming's formulas on the method card (`prunelab.analysis.method_card`), exactly as a run computed
them: the scope of the L1 term and the threshold, weight decay on γ, the prune ratio and the per-layer guard
from the run's config (the method's `MethodFacts.formulas`)."""

from __future__ import annotations

from typing import Any

from prunelab.analysis.method_card import Formula


def formulas(c: Any) -> list[Formula]:
    """The formulas of a run's slimming config (`SlimmingConfig`): the objective, the pruning rule and the
    fine-tuning, with the run's λ, ratio, scope and weight decay on γ."""
    scope = getattr(c, "prune_residual", False)
    where = "every BN" if scope else "each block's interior BN (bn_a)"
    decay = getattr(c, "bn_weight_decay", None)
    decay_text = "the run's weight decay" if decay is None else f"weight decay {decay:g}"
    return [
        Formula("objective", rf"L=\sum_i CE(f(x_i),y_i)+{c.sparsity_lambda:g}\sum_{{\gamma}}|\gamma|",
                f"L1 on the γ of {where} (a subgradient step); γ gets {decay_text}"),
        Formula("pruning", rf"\text{{keep }}c\iff|\gamma_c|>\theta,\ \theta=\text{{quantile}}_{{{c.prune_ratio:g}}}"
                           r"\{|\gamma|\}", f"one global threshold over {where}; at least "
                           f"{c.min_channels} channel(s) kept per layer"),
        Formula("fine-tuning", rf"\text{{{c.finetune_epochs} epochs on the smaller network}}"),
    ]

"""Network Slimming's method card (`prunelab.methods.slimming.formulas`, found through `MethodFacts.formulas`): the
formulas as each form computes them, with the run's own numbers."""

from __future__ import annotations

from prunelab.analysis.method_card import method_card
from prunelab.methods.baseline.config import BaselineConfig
from prunelab.methods.slimming.config import SlimmingConfig


def test_the_card_shows_each_forms_scope_and_weight_decay_on_gamma() -> None:
    reference = method_card(SlimmingConfig(form="reference", sparsity_lambda=1e-4, prune_ratio=0.7))
    notes = {f.label: f.note for f in reference.formulas}
    assert [f.label for f in reference.formulas] == ["objective", "pruning", "fine-tuning"]
    assert notes["objective"] == "L1 on the γ of every BN (a subgradient step); γ gets the run's weight decay"
    assert r"0.0001\sum_{\gamma}|\gamma|" in reference.formulas[0].latex
    assert r"\text{quantile}_{0.7}" in reference.formulas[1].latex
    assert reference.title == "Network Slimming, reference form (as the authors' code runs it)"
    prunelab = method_card(SlimmingConfig(form="prunelab", finetune_epochs=3, min_channels=2))
    notes = {f.label: f.note for f in prunelab.formulas}
    assert notes["objective"].startswith("L1 on the γ of each block's interior BN (bn_a)")
    assert notes["objective"].endswith("γ gets weight decay 0")
    assert notes["pruning"].endswith("at least 2 channel(s) kept per layer")
    assert prunelab.formulas[2].latex == r"\text{3 epochs on the smaller network}"
    assert [d.name for d in prunelab.departures] == ["interior_only_scope", "no_gamma_weight_decay"]


def test_a_method_without_formulas_gets_none() -> None:
    card = method_card(BaselineConfig())
    assert card.formulas == [] and card.title == "Baseline" and card.form is None

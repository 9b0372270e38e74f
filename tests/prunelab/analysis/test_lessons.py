"""Variants over seeds and the papers' claims: statistics against hand computations, verdicts, settings, the
budget claims and the methods' own claims found through the registry (each method's claims are tested beside its
package, in tests/prunelab/methods/<name>/)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from prunelab.analysis import lessons
from prunelab.methods.manidp.claims import claims as manidp_claims
from prunelab.methods.slimming.claims import claims as slimming_claims
from tests.prunelab.analysis.lesson_tables import variant_rows as _rows


def test_stat_and_the_noise_bound_against_hand_computations() -> None:
    s = lessons.stat([0.5, 0.7, 0.6])
    assert s.mean == pytest.approx(0.6) and s.std == pytest.approx(0.1) and s.n == 3
    assert lessons.stat([0.4, float("nan"), None]).n == 1 and math.isnan(lessons.stat([0.4]).std)
    a, b = lessons.Stat(1.0, 0.1, 4), lessons.Stat(0.8, 0.1, 4)
    # |1.0 - 0.8| = 0.2 > 2 * sqrt(0.01 / 4 + 0.01 / 4) = 0.141
    assert lessons.beyond_noise(a, b) is True
    assert lessons.beyond_noise(a, lessons.Stat(0.9, 0.1, 4)) is False
    assert lessons.beyond_noise(a, lessons.Stat(0.8, float("nan"), 1)) is None
    assert lessons.Stat(0.5, 0.01, 3).text(".1f", percent=True) == "50.0% ± 1.0% (n = 3)"


def test_variant_groups_average_over_seeds_only() -> None:
    table = pd.DataFrame(_rows("manidp", "ManiDP: both", {"test_acc": [0.6, 0.7, 0.8]})
                         + _rows("manidp", "ManiDP: both", {"test_acc": [0.5]}, epochs_total=12))
    groups = lessons.variant_groups(table)
    assert groups["seeds"].tolist() == [3, 1]  # a different budget is a different variant
    assert groups["test_acc_mean"].tolist() == pytest.approx([0.7, 0.5])
    assert groups["test_acc_std"].iloc[0] == pytest.approx(0.1) and np.isnan(groups["test_acc_std"].iloc[1])


def test_the_baseline_manidp_starts_from_is_named_apart_from_the_full_baseline() -> None:
    """Issue 31: a chart showed two points called 'baseline'; the one ManiDP runs start from is the pretrain."""
    pretrain = _rows("baseline", "baseline", {"test_acc": [0.6, 0.7]}, epochs_total=3)
    for row in pretrain:
        row["run_id"] = f"pre-{row['seed']}"
    manidp = _rows("manidp", "ManiDP: both", {"test_acc": [0.7, 0.7]})
    for row in manidp:
        row["parent_run"] = f"pre-{row['seed']}"
    full = _rows("baseline", "baseline", {"test_acc": [0.8, 0.8]}, parent_run=None)
    for row in full:
        row["run_id"] = f"full-{row['seed']}"
    groups = lessons.variant_groups(pd.DataFrame(pretrain + manidp + full))
    assert groups["label"].tolist() == [f"{lessons.PARENT_LABEL} · 3 epochs", "ManiDP: both · 6 epochs",
                                        "baseline · 6 epochs"]


def test_paired_difference_pairs_runs_by_seed() -> None:
    table = pd.DataFrame(_rows("manidp", "a", {"x": [1.0, 2.0, 3.0]}, group="a")
                         + _rows("manidp", "b", {"x": [0.5, 1.0, 3.5]}, group="b"))
    diff = lessons.paired_difference(table, table["group"] == "a", table["group"] == "b", "x")
    assert (diff.mean, diff.n) == (pytest.approx(1 / 3), 3)
    assert diff.std == pytest.approx(float(np.std([0.5, 1.0, -0.5], ddof=1)))


def test_budget_claims_only_compare_equal_budgets() -> None:
    rows = (_rows("baseline", "baseline", {"test_acc": [0.70, 0.72, 0.71]})
            + _rows("baseline", "baseline", {"test_acc": [0.9]}, epochs_total=30)
            + _rows("manidp", "ManiDP: both", {"test_acc": [0.60, 0.61, 0.62]}))
    found = lessons.budget_claims(pd.DataFrame(rows))
    assert len(found) == 1 and "6 epochs in all" in found[0].lesson
    assert found[0].verdict == "does not hold: below the baseline" and "baseline 71.0% ± 1.0%" in found[0].measured


def test_claims_never_pool_two_settings() -> None:
    """Two demos (shapes and a CIFAR-10 folder) side by side: each claim is judged within its own dataset
    and names it. Pooled, the CIFAR runs' spread would hide the shapes result (and vice versa)."""
    shapes = (_rows("slimming", "λ0", {"gamma_frac_below_0.05": [0.0, 0.01, 0.0]}, sparsity_lambda=0.0)
              + _rows("slimming", "λ5e-3", {"gamma_frac_below_0.05": [0.5, 0.52, 0.55]}, sparsity_lambda=5e-3))
    cifar = (_rows("slimming", "λ0", {"gamma_frac_below_0.05": [0.9, 0.92, 0.91]}, sparsity_lambda=0.0,
                   dataset="folder:data/cifar10-demo", width=1.0, epochs_total=16)
             + _rows("slimming", "λ5e-3", {"gamma_frac_below_0.05": [0.1, 0.12, 0.11]}, sparsity_lambda=5e-3,
                     dataset="folder:data/cifar10-demo", width=1.0, epochs_total=16))
    found = {c.lesson: c for c in slimming_claims(pd.DataFrame(shapes + cifar))}
    assert set(found) == {"γ piles up at zero as λ grows (shapes · resnet20 w0.5 · 6 epochs)",
                          "γ piles up at zero as λ grows (cifar10-demo · resnet20 w1 · 16 epochs)"}
    assert found["γ piles up at zero as λ grows (shapes · resnet20 w0.5 · 6 epochs)"].verdict == "holds"
    assert found["γ piles up at zero as λ grows (cifar10-demo · resnet20 w1 · 16 epochs)"].verdict == "does not hold"
    assert "52.3%" in found["γ piles up at zero as λ grows (shapes · resnet20 w0.5 · 6 epochs)"].measured
    pooled = slimming_claims(pd.DataFrame(shapes))  # one setting: no name added
    assert [c.lesson for c in pooled] == ["γ piles up at zero as λ grows"]


def test_a_claim_names_its_setting_beside_another_setting_of_pruned_runs() -> None:
    """The CIFAR-10 demo with one λ yields no slimming claim, yet its runs sit beside the shapes demo's: the
    shapes claim names its setting, so no reader takes it for CIFAR-10's. A setting of baselines alone (the
    demo's shorter `pretrain` runs) names nothing."""
    shapes = (_rows("slimming", "λ0", {"gamma_frac_below_0.05": [0.0, 0.01, 0.0]}, sparsity_lambda=0.0)
              + _rows("slimming", "λ5e-3", {"gamma_frac_below_0.05": [0.5, 0.52, 0.55]}, sparsity_lambda=5e-3))
    cifar = _rows("slimming", "λ1e-3", {"gamma_frac_below_0.05": [0.2, 0.3]}, sparsity_lambda=1e-3,
                  dataset="folder:data/cifar10-demo", width=1.0, epochs_total=16)
    pretrain = _rows("baseline", "baseline", {"test_acc": [0.5, 0.6]}, epochs_total=3)
    assert [c.lesson for c in slimming_claims(pd.DataFrame(shapes + cifar))] == [
        "γ piles up at zero as λ grows (shapes · resnet20 w0.5 · 6 epochs)"]
    assert [c.lesson for c in slimming_claims(pd.DataFrame(shapes + pretrain))] == [
        "γ piles up at zero as λ grows"]


def test_in_setting_of_keeps_the_runs_of_the_picked_runs_setting() -> None:
    rows = (_rows("slimming", "λ0", {"test_acc": [0.7, 0.8]})
            + _rows("slimming", "λ0", {"test_acc": [0.6]}, width=1.0)
            + _rows("baseline", "baseline", {"test_acc": [0.9]}, dataset="folder:data/cifar10-demo"))
    table = pd.DataFrame([{**row, "path": f"/runs/{i}"} for i, row in enumerate(rows)])
    assert lessons.in_setting_of(table, "/runs/1")["path"].tolist() == ["/runs/0", "/runs/1"]
    assert lessons.in_setting_of(table, "/runs/2")["path"].tolist() == ["/runs/2"]
    assert lessons.in_setting_of(table, "/runs/9").empty  # not a finished run of the table


def test_variants_are_compared_on_the_seeds_they_share() -> None:
    """A suite cut short: seeds 0 and 1 of one variant, seed 0 of the other. Seed 1 sits lower for every
    variant, so pooling it into one side only would flip the verdicts; each claim compares seed 0 alone and
    says so."""
    baseline = _rows("baseline", "baseline", {"test_acc": [0.86, 0.80]})
    pruned = _rows("manidp", "ManiDP: both", {"test_acc": [0.84], "similarity_gap_mean": [9.0]},
                   complexity=True, similarity=True)
    control = _rows("manidp", "ManiDP: complexity", {"test_acc": [0.85, 0.79], "similarity_gap_mean": [8.0, 20.0]},
                    complexity=True, similarity=False)
    table = pd.DataFrame(baseline + pruned + control)
    budget = {c.lesson: c for c in lessons.budget_claims(table)}["ManiDP: both against the baseline at the same "
                                                                 "budget (6 epochs in all)"]
    # pooled, the baseline's mean (83.0%) would sit below the pruned run's 84.0%
    assert budget.measured == ("test accuracy: ManiDP: both 84.0% (1 seed); baseline 86.0% (1 seed) "
                               "(compared on seed 0, the seeds they share)")
    similarity = manidp_claims(table, figure="similarity_gap_mean")
    assert len(similarity) == 1
    # pooled, the control's mean gap (14.0) would make the term look like it aligns T with R
    assert similarity[0].verdict == "does not hold (one seed: noise unknown)"
    assert similarity[0].measured.endswith("complexity only 8.00 (1 seed) (compared on seed 0, the seeds they share)")
    slim = pd.DataFrame(_rows("slimming", "λ0", {"gamma_frac_below_0.05": [0.3, 0.0]}, sparsity_lambda=0.0)
                        + _rows("slimming", "λ4e-3", {"gamma_frac_below_0.05": [0.2]}, sparsity_lambda=4e-3))
    assert slimming_claims(slim)[0].verdict == "does not hold (one seed: noise unknown)"
    disjoint = pd.DataFrame(baseline[1:] + pruned)  # baseline seed 1, pruned seed 0: nothing to compare
    assert lessons.budget_claims(disjoint)[0].verdict == "not enough runs"
    assert "no runs" in lessons.budget_claims(disjoint)[0].measured




def test_claims_are_each_methods_own_found_through_the_registry_then_the_budget_claims(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`claims` names no method: it judges every method's `MethodFacts.claims` within each setting, in the methods'
    order, then the budget claims; a method added to the registry with claims is judged with the others."""
    from prunelab.config import METHOD_FACTS
    from prunelab.methods.manidp.claims import setting_claims as manidp_setting_claims
    from prunelab.methods.slimming.claims import setting_claims as slimming_setting_claims

    rows = (_rows("baseline", "baseline", {"test_acc": [0.70, 0.72, 0.71]})
            + _rows("slimming", "λ0", {"gamma_frac_below_0.05": [0.0, 0.01, 0.0], "test_acc": [0.6, 0.6, 0.6]},
                    sparsity_lambda=0.0)
            + _rows("slimming", "λ5e-3", {"gamma_frac_below_0.05": [0.5, 0.52, 0.55]}, sparsity_lambda=5e-3)
            + _rows("manidp", "neither", {"similarity_gap_mean": [15, 15.5, 14.5]}, complexity=False,
                    similarity=False)
            + _rows("manidp", "similarity only", {"similarity_gap_mean": [9, 9.5, 8.5]}, complexity=False,
                    similarity=True))
    table = pd.DataFrame(rows).assign(acc_at_matched=np.nan, matched_reduction=np.nan)
    with_claims = [name for name, facts in METHOD_FACTS.items() if facts.claims is not None]
    assert with_claims == ["slimming", "manidp", "random", "scratch"]  # the controls' claims: none in this table
    found = lessons.claims(table)
    slimming, manidp, budget = (slimming_setting_claims(table), manidp_setting_claims(table),
                                lessons.budget_claims(table))
    assert slimming and manidp and budget and found == [*slimming, *manidp, *budget]
    assert found[0].lesson == "γ piles up at zero as λ grows"

    def judge(part: pd.DataFrame) -> list[lessons.Claim]:
        return [lessons.Claim("a new method's claim", "its paper", f"{len(part)} runs", "holds")]

    added = replace(METHOD_FACTS["random"], claims=judge)
    monkeypatch.setattr(lessons, "METHOD_FACTS", {**METHOD_FACTS, "random": added})
    assert lessons.claims(table) == [*slimming, *manidp, *judge(table), *budget]


def test_the_budget_claims_set_each_method_with_a_published_result_against_the_baseline() -> None:
    """The methods whose facts name a published result (`budget_reference`) get a budget claim, worded with the
    method's label and that result; a pruned method without one (random channels) gets none."""
    from prunelab.analysis import references
    from prunelab.config import METHOD_FACTS

    named = {name: facts.budget_reference for name, facts in METHOD_FACTS.items() if facts.budget_reference}
    assert named == {"slimming": "VGG-19", "manidp": "ResNet-56"}
    assert {name: r.model for name, r in lessons.BUDGET_REFERENCES.items()} == named
    assert all(r in references.PUBLISHED and r.method == name for name, r in lessons.BUDGET_REFERENCES.items())
    rows = (_rows("baseline", "baseline", {"test_acc": [0.70, 0.72, 0.71]})
            + _rows("slimming", "slim", {"test_acc": [0.80, 0.81, 0.82], "macs_reduction": [0.5, 0.5, 0.5]})
            + _rows("random", "random channels", {"test_acc": [0.60, 0.61, 0.62]}))
    found = lessons.budget_claims(pd.DataFrame(rows))
    assert [c.lesson for c in found] == ["slim against the baseline at the same budget (6 epochs in all)"]
    assert found[0].paper.startswith("Network Slimming: VGG-19 on CIFAR-10, 70% of all BN channels pruned")
    assert found[0].verdict == "holds: above the baseline" and found[0].measured_figure == "+10.0 points at −50.0% MACs"

"""Variants over seeds and the papers' claims: statistics against hand computations, verdicts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from prunelab.analysis import lessons


def _rows(method: str, variant: str, values: dict[str, list[float]], **fixed: object) -> list[dict]:
    n = len(next(iter(values.values())))
    base = {"method": method, "variant": variant, "dataset": "shapes", "model": "resnet20", "width": 0.5,
            "epochs_total": 6, **fixed}
    return [{**base, "name": f"{variant}-s{i}", "seed": i, **{k: v[i] for k, v in values.items()}}
            for i in range(n)]


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


def test_slimming_claims_hold_fail_or_are_within_noise() -> None:
    def table(shares_high: list[float]) -> pd.DataFrame:
        rows = (_rows("slimming", "λ0", {"gamma_frac_below_0.05": [0.0, 0.01, 0.0],
                                         "acc_after_prune": [0.1, 0.1, 0.12]}, sparsity_lambda=0.0)
                + _rows("slimming", "λ5e-3", {"gamma_frac_below_0.05": shares_high,
                                              "acc_after_prune": [0.4, 0.38, 0.42]}, sparsity_lambda=5e-3))
        return pd.DataFrame(rows)

    found = lessons.slimming_claims(table([0.5, 0.52, 0.55]))
    assert [c.verdict for c in found] == ["holds", "holds"]
    assert "λ = 0.005: 52.3% ± 2.5% (n = 3)" in found[0].measured
    assert lessons.slimming_claims(table([0.0, 0.02, 0.0]))[0].verdict == "within seed noise"


def test_manidp_claims_compare_each_term_with_its_control() -> None:
    rows = []
    for complexity, similarity, gap, rho, quintile in [
            (False, False, [15, 15.5, 14.5], [0.5, 0.52, 0.48], [0.01, 0.02, 0.00]),
            (True, False, [15, 15.2, 14.8], [0.5, 0.5, 0.5], [0.11, 0.12, 0.10]),
            (False, True, [9, 9.5, 8.5], [0.8, 0.82, 0.78], [0.05, -0.02, 0.03]),
            (True, True, [16, 17, 18], [0.51, 0.49, 0.5], [0.02, 0.06, 0.01])]:
        rows += _rows("manidp", f"{complexity}{similarity}",
                      {"similarity_gap_mean": gap, "similarity_rank_correlation": rho,
                       "complexity_quintile_gap": quintile}, complexity=complexity, similarity=similarity)
    found = {c.lesson: c for c in lessons.manidp_claims(pd.DataFrame(rows))}
    verdicts = {lesson: c.verdict for lesson, c in found.items()}
    similar = "the similarity term gives images with similar features similar sub-networks"
    assert verdicts[f"{similar} (similarity only vs neither)"] == "holds"
    assert verdicts[f"{similar} (both vs complexity only)"] == "within seed noise"
    objective = ("the similarity term lowers its own objective ‖T − R‖ (a check that the term trains, not the "
                 "paper's claim)")
    assert verdicts[f"{objective} (similarity only vs neither)"] == "holds"
    assert verdicts[f"{objective} (both vs complexity only)"] == "does not hold"
    harder = "the complexity term gives harder images larger sub-networks"
    # seed-paired: complexity only minus neither = 0.10, 0.10, 0.10 (std 0): beyond noise
    assert verdicts[f"{harder} (complexity only vs neither)"] == "holds"
    assert "difference 0.100 ± 0.000 (n = 3)" in found[f"{harder} (complexity only vs neither)"].measured
    # both minus similarity only = -0.03, 0.08, -0.02: mean 0.01, se 0.035: within noise
    assert verdicts[f"{harder} (both vs similarity only)"] == "within seed noise"


def test_paired_difference_pairs_runs_by_seed() -> None:
    table = pd.DataFrame(_rows("manidp", "a", {"x": [1.0, 2.0, 3.0]}, group="a")
                         + _rows("manidp", "b", {"x": [0.5, 1.0, 3.5]}, group="b"))
    diff = lessons.paired_difference(table, table["group"] == "a", table["group"] == "b", "x")
    assert (diff.mean, diff.n) == (pytest.approx(1 / 3), 3)
    assert diff.std == pytest.approx(float(np.std([0.5, 1.0, -0.5], ddof=1)))


def test_manidp_claims_are_judged_within_each_form() -> None:
    """A reference-form row is never compared with a prunelab-form control: each form is its own ablation."""
    rows = []
    for form, departures, gaps in [("reference", [], ([10.0, 10.1, 9.9], [12.0, 12.1, 11.9])),
                                   ("prunelab", ["small_gate_init", "post_relu_similarity_features",
                                                 "gates_only_similarity", "smoothed_gate_cosine",
                                                 "detached_complexity_weight", "pair_quantile_thresholds",
                                                 "sampled_initial_c"], ([3.0, 3.1, 2.9], [11.0, 11.1, 10.9]))]:
        for similarity, gap in zip((True, False), gaps, strict=True):
            rows += _rows("manidp", f"{form}{similarity}", {"similarity_gap_mean": gap}, complexity=False,
                          similarity=similarity, form=form, departures=departures)
    found = lessons.manidp_claims(pd.DataFrame(rows), figure="similarity_gap_mean")
    assert [c.lesson.rsplit("[", 1)[1] for c in found] == ["reference]", "prunelab]"]
    assert "similarity only 10.00 ± 0.10 (n = 3); neither 12.00" in found[0].measured
    assert "similarity only 3.00 ± 0.10 (n = 3); neither 11.00" in found[1].measured


def test_slimming_claims_are_judged_within_each_form() -> None:
    """Slimming in the reference scope (every BN, γ decayed) and in PruneLab's interior-only scope are two
    Figure-4 series: pooled by λ, one form's strong polarisation would hide the other's weak one."""
    rows = []
    for form, departures, shares in [("reference", [], ([0.0, 0.01, 0.0], [0.10, 0.12, 0.11])),
                                     ("prunelab", ["interior_only_scope", "no_gamma_weight_decay"],
                                      ([0.0, 0.0, 0.01], [0.70, 0.72, 0.74]))]:
        for lam, share in zip((0.0, 8e-3), shares, strict=True):
            rows += _rows("slimming", f"{form}{lam}", {"gamma_frac_below_0.05": share}, sparsity_lambda=lam,
                          form=form, departures=departures)
    found = lessons.slimming_claims(pd.DataFrame(rows))
    assert [c.lesson for c in found] == ["γ piles up at zero as λ grows [reference]",
                                        "γ piles up at zero as λ grows [prunelab]"]
    assert "λ = 0.008: 11.0%" in found[0].measured and "λ = 0.008: 72.0%" in found[1].measured
    # one form alone: no suffix, as before forms existed
    alone = lessons.slimming_claims(pd.DataFrame([r for r in rows if r["form"] == "prunelab"]))
    assert [c.lesson for c in alone] == ["γ piles up at zero as λ grows"]


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
    found = {c.lesson: c for c in lessons.slimming_claims(pd.DataFrame(shapes + cifar))}
    assert set(found) == {"γ piles up at zero as λ grows (shapes · resnet20 w0.5 · 6 epochs)",
                          "γ piles up at zero as λ grows (cifar10-demo · resnet20 w1 · 16 epochs)"}
    assert found["γ piles up at zero as λ grows (shapes · resnet20 w0.5 · 6 epochs)"].verdict == "holds"
    assert found["γ piles up at zero as λ grows (cifar10-demo · resnet20 w1 · 16 epochs)"].verdict == "does not hold"
    assert "52.3%" in found["γ piles up at zero as λ grows (shapes · resnet20 w0.5 · 6 epochs)"].measured
    pooled = lessons.slimming_claims(pd.DataFrame(shapes))  # one setting: no name added
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
    assert [c.lesson for c in lessons.slimming_claims(pd.DataFrame(shapes + cifar))] == [
        "γ piles up at zero as λ grows (shapes · resnet20 w0.5 · 6 epochs)"]
    assert [c.lesson for c in lessons.slimming_claims(pd.DataFrame(shapes + pretrain))] == [
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
    similarity = lessons.manidp_claims(table, figure="similarity_gap_mean")
    assert len(similarity) == 1
    # pooled, the control's mean gap (14.0) would make the term look like it aligns T with R
    assert similarity[0].verdict == "does not hold (one seed: noise unknown)"
    assert similarity[0].measured.endswith("complexity only 8.00 (1 seed) (compared on seed 0, the seeds they share)")
    slim = pd.DataFrame(_rows("slimming", "λ0", {"gamma_frac_below_0.05": [0.3, 0.0]}, sparsity_lambda=0.0)
                        + _rows("slimming", "λ4e-3", {"gamma_frac_below_0.05": [0.2]}, sparsity_lambda=4e-3))
    assert lessons.slimming_claims(slim)[0].verdict == "does not hold (one seed: noise unknown)"
    disjoint = pd.DataFrame(baseline[1:] + pruned)  # baseline seed 1, pruned seed 0: nothing to compare
    assert lessons.budget_claims(disjoint)[0].verdict == "not enough runs"
    assert "no runs" in lessons.budget_claims(disjoint)[0].measured


def test_the_ablation_is_judged_at_matched_macs_along_each_runs_curve(monkeypatch: pytest.MonkeyPatch) -> None:
    """The paper's ablation table compares the variants at matched FLOPs. Runs whose own MACs reductions differ
    are read at their form's median reduction along their what-if curves: in the reference form below the
    similarity-only runs look better by their own accuracy (fewer MACs removed) and are worse at matched MACs."""
    from prunelab.methods.manidp import evidence
    from prunelab.methods.manidp.config import MANIDP_DEPARTURES

    every_departure = [d.name for d in MANIDP_DEPARTURES]
    curves: dict[str, pd.DataFrame] = {}
    rows = []
    shift = [0.0, 0.01, -0.01]  # a seed's parent moves both of its variants
    wobble = [0.001, -0.001, 0.0]
    for form, departures, variants in [
            ("prunelab", every_departure, {False: (0.6, 0.90, 0.5), True: (0.4, 0.95, 0.5)}),
            ("reference", [], {False: (0.6, 0.95, 0.5), True: (0.3, 0.80, 0.3)})]:
        for similarity, (own, top, slope) in variants.items():
            for seed in range(3):
                path = f"{form}-{similarity}-s{seed}"
                grid = np.array([0.0, 0.2, 0.4, 0.6, 0.8])
                acc = top - slope * grid + shift[seed] + (wobble[seed] if similarity else 0.0)
                curves[path] = pd.DataFrame({"density": 1 - grid, "test_acc": acc, "macs_reduction": grid})
                rows.append({"method": "manidp", "variant": f"{form}{similarity}", "dataset": "shapes",
                             "model": "resnet20", "width": 0.5, "epochs_total": 6, "seed": seed, "path": path,
                             "name": path, "form": form, "departures": departures, "complexity": False,
                             "similarity": similarity, "macs_reduction": own,
                             "test_acc": top - slope * own + shift[seed]})
    monkeypatch.setattr(evidence, "accuracy_curve", lambda path: curves[str(path)])
    table = lessons.with_matched_accuracy(pd.DataFrame(rows))
    assert table.loc[table["form"] == "prunelab", "matched_reduction"].tolist() == pytest.approx([0.5] * 6)
    assert table.loc[table["form"] == "reference", "matched_reduction"].tolist() == pytest.approx([0.45] * 6)
    reference_neither = table[(table["form"] == "reference") & ~table["similarity"].astype(bool)]
    assert reference_neither["acc_at_matched"].tolist() == pytest.approx([0.725, 0.735, 0.715])
    found = {c.lesson.rsplit(" [", 1)[1]: c for c in lessons.manidp_claims(table, figure="acc_at_matched")
             if c.lesson.startswith("the similarity term adds accuracy at matched MACs")}
    assert found["prunelab]"].verdict == "holds"  # +0.05 at 50% fewer MACs in every seed
    assert "at 50.0% fewer MACs" in found["prunelab]"].measured
    assert found["reference]"].verdict == "does not hold"  # 0.665 against 0.725 at 45%, though 0.71 > 0.65 own
    assert "at 45.0% fewer MACs" in found["reference]"].measured


def test_runs_without_a_curve_get_no_matched_figure(monkeypatch: pytest.MonkeyPatch) -> None:
    from prunelab.methods.manidp import evidence

    monkeypatch.setattr(evidence, "accuracy_curve",
                        lambda path: pd.DataFrame(columns=["density", "test_acc", "macs_reduction"]))
    table = lessons.with_matched_accuracy(pd.DataFrame(
        _rows("manidp", "both", {"macs_reduction": [0.4, 0.5], "test_acc": [0.7, 0.7]}, path="p", complexity=True,
              similarity=True, form="reference", departures=[])))
    assert table["acc_at_matched"].isna().all()
    assert not [c for c in lessons.manidp_claims(table) if "matched" in c.lesson]


def test_pruning_barely_hurts_is_judged_on_the_drop_and_shows_the_starting_point() -> None:
    """At the strong λ the drop from the sparsity-trained network to the pruned one is what the paper says is
    small; when that network is itself far worse, the measured text says so."""
    rows = (_rows("slimming", "l0", {"acc_before_prune": [0.80, 0.82, 0.81], "acc_after_prune": [0.20, 0.25, 0.30],
                                     "gamma_frac_below_0.05": [0.0, 0.0, 0.0]}, sparsity_lambda=0.0)
            + _rows("slimming", "l8", {"acc_before_prune": [0.30, 0.32, 0.31], "acc_after_prune": [0.30, 0.31, 0.31],
                                       "gamma_frac_below_0.05": [0.9, 0.9, 0.9]}, sparsity_lambda=8e-3))
    claim = next(c for c in lessons.slimming_claims(pd.DataFrame(rows)) if "pruning barely hurts" in c.lesson)
    assert claim.verdict == "holds"  # drops 0.57 ± 0.05 against 0.003 ± 0.006
    assert "81.0% ± 1.0% (n = 3) before pruning, 25.0% ± 5.0% (n = 3) right after" in claim.measured
    assert "starts from a lower point" in claim.measured


def test_a_demo_of_both_and_neither_alone_is_judged_on_the_net_effect() -> None:
    """The CIFAR-10 reference rows are 'both' and 'neither' only: no single-term pair exists, and the two terms
    together are judged against neither (seed-paired where the claim is)."""
    rows = (_rows("manidp", "both", {"similarity_rank_correlation": [0.56, 0.57],
                                     "complexity_quintile_gap": [0.065, 0.040]}, complexity=True, similarity=True)
            + _rows("manidp", "neither", {"similarity_rank_correlation": [0.50, 0.56],
                                          "complexity_quintile_gap": [0.012, 0.027]}, complexity=False,
                    similarity=False))
    found = {c.lesson: c for c in lessons.manidp_claims(pd.DataFrame(rows))}
    assert sorted(found) == ["with both terms, harder images get larger sub-networks (both vs neither)",
                             "with both terms, images with similar features get more similar sub-networks "
                             "(both vs neither)"]
    harder = found["with both terms, harder images get larger sub-networks (both vs neither)"]
    # seed-paired differences 0.053 and 0.013: mean 0.033, se 0.020: within noise
    assert harder.verdict == "within seed noise" and "difference 0.033 ± 0.028 (n = 2)" in harder.measured
    assert "rises with both terms" in harder.paper_figure


def test_the_matched_reduction_moves_into_the_range_every_curve_covers() -> None:
    """A variant whose gates cut 79% of the MACs at every target density (CIFAR-10's reference form without
    terms) has no point at the median of the own reductions; the comparison moves to the range both cover."""
    from prunelab.methods.manidp.evidence import matched_reduction

    narrow = pd.DataFrame({"macs_reduction": [0.79, 0.80, 0.90], "test_acc": [0.82, 0.81, 0.14]})
    wide = pd.DataFrame({"macs_reduction": [0.18, 0.41, 0.86], "test_acc": [0.46, 0.82, 0.12]})
    own = pd.Series([0.41, 0.41, 0.79, 0.79])
    assert matched_reduction(own, [narrow, wide]) == pytest.approx(0.79)
    assert matched_reduction(own, [wide]) == pytest.approx(0.60)  # inside the one curve: the median
    apart = pd.DataFrame({"macs_reduction": [0.1, 0.2], "test_acc": [0.8, 0.7]})
    assert matched_reduction(own, [narrow, apart]) == pytest.approx(0.60)  # no shared range: the median

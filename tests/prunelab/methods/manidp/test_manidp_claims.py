"""ManiDP's claims (`prunelab.methods.manidp.claims`): each term against its control over seeds, within each
form, at matched MACs along each run's what-if curve; and the evidence table of the paper's own tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prunelab.analysis import lessons
from prunelab.methods.manidp import evidence
from prunelab.methods.manidp.claims import claims as manidp_claims
from prunelab.methods.manidp.claims import with_matched_accuracy
from prunelab.methods.manidp.config import MANIDP_DEPARTURES
from prunelab.methods.manidp.evidence import evidence_table, matched_reduction
from tests.prunelab.analysis.lesson_tables import variant_rows as _rows


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
    found = {c.lesson: c for c in manidp_claims(pd.DataFrame(rows))}
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
    found = manidp_claims(pd.DataFrame(rows), figure="similarity_gap_mean")
    assert [c.lesson.rsplit("[", 1)[1] for c in found] == ["reference]", "prunelab]"]
    assert "similarity only 10.00 ± 0.10 (n = 3); neither 12.00" in found[0].measured
    assert "similarity only 3.00 ± 0.10 (n = 3); neither 11.00" in found[1].measured


def test_the_ablation_is_judged_at_matched_macs_along_each_runs_curve(monkeypatch: pytest.MonkeyPatch) -> None:
    """The paper's ablation table compares the variants at matched FLOPs. Runs whose own MACs reductions differ
    are read at their form's median reduction along their what-if curves: in the reference form below the
    similarity-only runs look better by their own accuracy (fewer MACs removed) and are worse at matched MACs."""
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
    table = with_matched_accuracy(pd.DataFrame(rows))
    assert table.loc[table["form"] == "prunelab", "matched_reduction"].tolist() == pytest.approx([0.5] * 6)
    assert table.loc[table["form"] == "reference", "matched_reduction"].tolist() == pytest.approx([0.45] * 6)
    reference_neither = table[(table["form"] == "reference") & ~table["similarity"].astype(bool)]
    assert reference_neither["acc_at_matched"].tolist() == pytest.approx([0.725, 0.735, 0.715])
    found = {c.lesson.rsplit(" [", 1)[1]: c for c in manidp_claims(table, figure="acc_at_matched")
             if c.lesson.startswith("the similarity term adds accuracy at matched MACs")}
    assert found["prunelab]"].verdict == "holds"  # +0.05 at 50% fewer MACs in every seed
    assert "at 50.0% fewer MACs" in found["prunelab]"].measured
    assert found["reference]"].verdict == "does not hold"  # 0.665 against 0.725 at 45%, though 0.71 > 0.65 own
    assert "at 45.0% fewer MACs" in found["reference]"].measured


def test_runs_without_a_curve_get_no_matched_figure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evidence, "accuracy_curve",
                        lambda path: pd.DataFrame(columns=["density", "test_acc", "macs_reduction"]))
    table = with_matched_accuracy(pd.DataFrame(
        _rows("manidp", "both", {"macs_reduction": [0.4, 0.5], "test_acc": [0.7, 0.7]}, path="p", complexity=True,
              similarity=True, form="reference", departures=[])))
    assert table["acc_at_matched"].isna().all()
    assert not [c for c in manidp_claims(table) if "matched" in c.lesson]


def test_a_demo_of_both_and_neither_alone_is_judged_on_the_net_effect() -> None:
    """The CIFAR-10 reference rows are 'both' and 'neither' only: no single-term pair exists, and the two terms
    together are judged against neither (seed-paired where the claim is)."""
    rows = (_rows("manidp", "both", {"similarity_rank_correlation": [0.56, 0.57],
                                     "complexity_quintile_gap": [0.065, 0.040]}, complexity=True, similarity=True)
            + _rows("manidp", "neither", {"similarity_rank_correlation": [0.50, 0.56],
                                          "complexity_quintile_gap": [0.012, 0.027]}, complexity=False,
                    similarity=False))
    found = {c.lesson: c for c in manidp_claims(pd.DataFrame(rows))}
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
    narrow = pd.DataFrame({"macs_reduction": [0.79, 0.80, 0.90], "test_acc": [0.82, 0.81, 0.14]})
    wide = pd.DataFrame({"macs_reduction": [0.18, 0.41, 0.86], "test_acc": [0.46, 0.82, 0.12]})
    own = pd.Series([0.41, 0.41, 0.79, 0.79])
    assert matched_reduction(own, [narrow, wide]) == pytest.approx(0.79)
    assert matched_reduction(own, [wide]) == pytest.approx(0.60)  # inside the one curve: the median
    apart = pd.DataFrame({"macs_reduction": [0.1, 0.2], "test_acc": [0.8, 0.7]})
    assert matched_reduction(own, [narrow, apart]) == pytest.approx(0.60)  # no shared range: the median


def test_the_evidence_table_shows_each_manidp_variant_as_mean_and_spread() -> None:
    rows = (_rows("manidp", "ManiDP: both", {"test_acc": [0.70, 0.72], "macs_cv": [0.10, 0.12]}, complexity=True,
                  similarity=True)
            + _rows("manidp", "ManiDP: neither", {"test_acc": [0.65]}, complexity=False, similarity=False)
            + _rows("baseline", "baseline", {"test_acc": [0.80, 0.81]}))
    table = evidence_table(lessons.variant_groups(pd.DataFrame(rows)))
    assert table["variant"].tolist() == ["ManiDP: both", "ManiDP: neither"]  # no baseline row
    assert table["accuracy"].tolist() == ["71.0% ± 1.4%", "65.0%"]  # one seed: no spread
    assert table["MACs CV"].tolist() == ["0.110 ± 0.014", ""]  # a figure a variant lacks is blank
    assert evidence_table(lessons.variant_groups(pd.DataFrame(rows[-2:]))).empty

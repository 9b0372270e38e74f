"""Network Slimming's claims (`prunelab.methods.slimming.claims`): Figure 4 of Liu et al. judged over seeds,
within each form, and pruning's drop at a strong λ."""

from __future__ import annotations

import pandas as pd

from prunelab.methods.slimming.claims import claims as slimming_claims
from tests.prunelab.analysis.lesson_tables import variant_rows as _rows


def test_slimming_claims_hold_fail_or_are_within_noise() -> None:
    def table(shares_high: list[float]) -> pd.DataFrame:
        rows = (_rows("slimming", "λ0", {"gamma_frac_below_0.05": [0.0, 0.01, 0.0],
                                         "acc_after_prune": [0.1, 0.1, 0.12]}, sparsity_lambda=0.0)
                + _rows("slimming", "λ5e-3", {"gamma_frac_below_0.05": shares_high,
                                              "acc_after_prune": [0.4, 0.38, 0.42]}, sparsity_lambda=5e-3))
        return pd.DataFrame(rows)

    found = slimming_claims(table([0.5, 0.52, 0.55]))
    assert [c.verdict for c in found] == ["holds", "holds"]
    assert "λ = 0.005: 52.3% ± 2.5% (n = 3)" in found[0].measured
    assert slimming_claims(table([0.0, 0.02, 0.0]))[0].verdict == "within seed noise"


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
    found = slimming_claims(pd.DataFrame(rows))
    assert [c.lesson for c in found] == ["γ piles up at zero as λ grows [reference]",
                                        "γ piles up at zero as λ grows [prunelab]"]
    assert "λ = 0.008: 11.0%" in found[0].measured and "λ = 0.008: 72.0%" in found[1].measured
    # one form alone: no suffix, as before forms existed
    alone = slimming_claims(pd.DataFrame([r for r in rows if r["form"] == "prunelab"]))
    assert [c.lesson for c in alone] == ["γ piles up at zero as λ grows"]


def test_pruning_barely_hurts_is_judged_on_the_drop_and_shows_the_starting_point() -> None:
    """At the strong λ the drop from the sparsity-trained network to the pruned one is what the paper says is
    small; when that network is itself far worse, the measured text says so."""
    rows = (_rows("slimming", "l0", {"acc_before_prune": [0.80, 0.82, 0.81], "acc_after_prune": [0.20, 0.25, 0.30],
                                     "gamma_frac_below_0.05": [0.0, 0.0, 0.0]}, sparsity_lambda=0.0)
            + _rows("slimming", "l8", {"acc_before_prune": [0.30, 0.32, 0.31], "acc_after_prune": [0.30, 0.31, 0.31],
                                       "gamma_frac_below_0.05": [0.9, 0.9, 0.9]}, sparsity_lambda=8e-3))
    claim = next(c for c in slimming_claims(pd.DataFrame(rows)) if "pruning barely hurts" in c.lesson)
    assert claim.verdict == "holds"  # drops 0.57 ± 0.05 against 0.003 ± 0.006
    assert "81.0% ± 1.0% (n = 3) before pruning, 25.0% ± 5.0% (n = 3) right after" in claim.measured
    assert "starts from a lower point" in claim.measured

"""The shipped demo (assets/demo_runs) teaches what the papers teach, over seeds, at equal budgets.

These read the precomputed runs only (no training): when the code is right and the demo was made with
scripts/make_demo.py, each lesson holds; a change that breaks one shows here.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prunelab.analysis import lessons, tables
from prunelab.analysis.results import DEMO_RUNS_DIR, runs_table
from prunelab.runs.store import RunStore
from tests.helpers import check_shipped_controls, probe_arrays

DEMO = Path(DEMO_RUNS_DIR)
pytestmark = pytest.mark.skipif(not DEMO.is_dir(), reason="no bundled demo runs")


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return tables.ablation_table(runs_table([DEMO]))


def _by_lambda(table: pd.DataFrame, figure: str) -> dict[float, np.ndarray]:
    slim = table[table["method"] == "slimming"]
    return {float(lam): group[figure].to_numpy(dtype=float) for lam, group in slim.groupby("sparsity_lambda")}


def test_every_demo_run_is_finished_and_readable() -> None:
    entries = list(RunStore(DEMO).scan(check_artefacts=True))
    assert entries and all(not entry.broken and not entry.problems for entry in entries)
    assert all(entry.state == "done" for entry in entries)


def test_slimming_gammas_pile_up_at_zero_as_lambda_grows(table: pd.DataFrame) -> None:
    shares = _by_lambda(table, "gamma_frac_below_0.05")
    lambdas = sorted(shares)
    means = [shares[lam].mean() for lam in lambdas]
    assert len(lambdas) >= 3 and all(a < b for a, b in itertools.pairwise(means))
    assert means[0] <= 0.05 and means[-1] >= 0.30


def test_pruning_hurts_far_less_at_the_largest_lambda(table: pd.DataFrame) -> None:
    after = _by_lambda(table, "acc_after_prune")
    lambdas = sorted(after)
    assert after[lambdas[-1]].mean() >= after[lambdas[0]].mean() + 0.15


def test_similarity_term_lowers_t_minus_r_across_seeds(table: pd.DataFrame) -> None:
    manidp = table[table["method"] == "manidp"]
    gap = {(bool(c), bool(s)): g["similarity_gap_mean"].to_numpy(dtype=float)
           for (c, s), g in manidp.groupby(["complexity", "similarity"])}
    assert all(len(values) >= 3 for values in gap.values()) and len(gap) == 4
    neither, complexity = gap[(False, False)].mean(), gap[(True, False)].mean()
    similarity, both = gap[(False, True)].mean(), gap[(True, True)].mean()
    assert similarity < neither and both < complexity  # each term-on variant below its term-off control
    assert max(similarity, both) < min(neither, complexity)  # and both below both controls


def test_feature_similarity_is_signed_only_where_the_run_keeps_the_sign() -> None:
    """R from post-ReLU features (departure post_relu_similarity_features) is never negative; the reference
    form's R of conv_b's signed output goes negative (not in a diverged run whose features died)."""
    from prunelab.runs.store import RunDir

    probes = sorted(DEMO.glob("*/probe.npz"))
    assert probes
    signed = []
    for path in probes:
        post_relu = RunDir(path.parent).read_config().method.post_relu_similarity_features
        probe = probe_arrays(path.parent)
        lowest = min(float(probe[f"R_{i}"].min()) for i in range(len(probe["layer_names"])))
        if post_relu:
            assert lowest >= -1e-6, path.parent.name
        else:
            signed.append(lowest)
    assert signed and min(signed) < -0.05  # the demo holds reference-form runs, with signed R


def test_every_pruned_run_has_a_baseline_with_the_same_budget(table: pd.DataFrame) -> None:
    baselines = set(table.loc[table["method"] == "baseline", "epochs_total"].astype(int))
    pruned = table[table["method"].isin(["slimming", "manidp"])]
    assert not pruned.empty and set(pruned["epochs_total"].astype(int)) <= baselines
    manidp = pruned[pruned["method"] == "manidp"]
    # ManiDP's parent is referenced by run id (never a machine path), and its epochs count in the budget
    ids = set(table["run_id"])
    assert manidp["parent_run"].isin(ids).all()
    assert (manidp["epochs_total"] > manidp["epochs"]).all()


def test_the_ablations_page_claims_agree_with_the_demo(table: pd.DataFrame) -> None:
    found = {claim.lesson: claim for claim in lessons.claims(table)}
    for form in ("reference", "prunelab"):  # slimming's two scopes are two Figure-4 series
        assert found[f"γ piles up at zero as λ grows [{form}]"].verdict == "holds"
        assert found[f"with a strong λ, pruning barely hurts before fine-tuning [{form}]"].verdict == "holds"
    # in the reference scope (every BN, γ decayed) sparsity training at the largest λ itself fails at 3 epochs:
    # the claim says so instead of crediting pruning
    assert "starts from a lower point" in found["with a strong λ, pruning barely hurts before fine-tuning "
                                                "[reference]"].measured
    assert "starts from a lower point" not in found["with a strong λ, pruning barely hurts before fine-tuning "
                                                    "[prunelab]"].measured


def test_the_controls_ship_with_three_seeds_at_their_parents_macs_and_budget(table: pd.DataFrame) -> None:
    """suite controls against the demo's own runs (scripts/make_controls.py): random channels and from scratch at
    a slimming run's MACs exactly, a static network within 2% of its ManiDP run's mean MACs, every control at
    its parent's epochs in all, each paired with its own parent; and the Ablations page's controls over 3 seeds."""
    check_shipped_controls(table, seeds=3, epochs_total=6)

"""The shipped CIFAR-10 demo (assets/cifar10_runs) meets the quality bar it is shipped for.

Baseline >= 85% test accuracy; Network Slimming (some lambda > 0) within 2 points of the baseline; ManiDP
with both terms within 3 points at >= 40% fewer MACs per image; the per-image results cover >= 1,000 test
photographs, which ship with the runs. Every figure is a mean over the demo's seeds at equal training
budgets (runs compared only with the baseline of the same number of epochs in all). These read the
precomputed runs only (no training), and are skipped until scripts/make_cifar_demo.py has shipped them.
Whatever ships, `assets/` stays within its 40 MB budget (ASSETS_BUDGET): the demos of both forms fit because a
probe stores no cosines (they are derived on read) and only each variant's seed-0 run keeps the model a page
re-evaluates.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from prunelab.analysis import tables
from prunelab.analysis.results import CIFAR_DEMO_RUNS_DIR, runs_table
from prunelab.data.test_pack import TEST_PACK_FILE
from prunelab.methods.manidp.artefacts import PER_IMAGE
from prunelab.runs.run import Run
from prunelab.runs.store import RunStore
from tests.helpers import check_shipped_controls

DEMO = CIFAR_DEMO_RUNS_DIR
ASSETS = DEMO.parent
ASSETS_BUDGET = 40_000_000  # bytes, every demo together
BASELINE_BAR = 0.85
SLIMMING_GAP, MANIDP_GAP, MANIDP_MACS_CUT = 0.02, 0.03, 0.40
MIN_PER_IMAGE_ROWS = 1000

shipped = pytest.mark.skipif(not DEMO.is_dir(), reason="the CIFAR-10 demo is not shipped")


def test_assets_stay_within_their_budget() -> None:
    size = sum(path.stat().st_size for path in ASSETS.rglob("*") if path.is_file())
    assert size <= ASSETS_BUDGET, f"assets/ holds {size / 1e6:.1f} MB, over {ASSETS_BUDGET / 1e6:.0f} MB"


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return tables.ablation_table(runs_table([DEMO]))


def _baseline_acc(table: pd.DataFrame, budget: int) -> float:
    baseline = table[(table["method"] == "baseline") & (table["epochs_total"] == budget)]
    assert not baseline.empty, f"no baseline with {budget} epochs in all"
    return float(baseline["test_acc"].mean())


@shipped
def test_every_cifar_run_is_finished_and_its_photographs_ship() -> None:
    entries = list(RunStore(DEMO).scan(check_artefacts=True))
    assert entries and all(not entry.broken and not entry.problems for entry in entries)
    assert all(entry.state == "done" for entry in entries)
    assert (DEMO / TEST_PACK_FILE).is_file()


@shipped
def test_the_cifar_controls_ship_with_two_seeds_at_their_parents_macs_and_budget(table: pd.DataFrame) -> None:
    """The controls (scripts/make_controls.py) against the CIFAR-10 demo's own slimming (λ = 4e-3) and ManiDP runs,
    16 epochs in all, seeds 0 and 1."""
    check_shipped_controls(table, seeds=2, epochs_total=16)


@shipped
def test_cifar_baseline_reaches_85_percent(table: pd.DataFrame) -> None:
    budget = int(table.loc[table["method"] != "baseline", "epochs_total"].max())
    assert _baseline_acc(table, budget) >= BASELINE_BAR


@shipped
def test_cifar_slimming_stays_within_two_points(table: pd.DataFrame) -> None:
    slim = table[(table["method"] == "slimming") & (table["sparsity_lambda"] > 0)]
    assert not slim.empty
    best = max(float(group["test_acc"].mean()) for _, group in slim.groupby("sparsity_lambda"))
    assert best >= _baseline_acc(table, int(slim["epochs_total"].max())) - SLIMMING_GAP


@shipped
def test_cifar_manidp_stays_within_three_points_at_40_percent_fewer_macs(table: pd.DataFrame) -> None:
    both = table[(table["method"] == "manidp") & table["complexity"].astype(bool)
                 & table["similarity"].astype(bool)]
    assert not both.empty
    assert float(both["macs_reduction"].mean()) >= MANIDP_MACS_CUT
    assert float(both["test_acc"].mean()) >= _baseline_acc(table, int(both["epochs_total"].max())) - MANIDP_GAP
    rows = [Run(path).read(PER_IMAGE) for path in both["path"]]
    assert all(frame is not None and len(frame) >= MIN_PER_IMAGE_ROWS for frame in rows)


@shipped
@pytest.mark.slow
def test_cifar_slimming_what_if_runs_without_the_photographs_on_disk(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's dataset folder is not in the repository: the what-if reads the shipped test images and,
    at the run's own prune ratio, gives back the run's accuracy right after pruning. (Run from an empty
    folder, so a developer's prepared copy of the photographs, data/cifar10-demo, is not found.)"""
    monkeypatch.chdir(tmp_path)
    from prunelab.config import RunConfig
    from prunelab.data import DatasetError, load_dataset
    from prunelab.methods.slimming.reprune import what_if
    from prunelab.runs.store import RunDir

    run = next(path for path in sorted(DEMO.iterdir()) if path.name.endswith("slim-l1e-3-s0"))
    config: RunConfig = RunDir(run).read_config()
    with pytest.raises(DatasetError):
        load_dataset(config.data)
    summary = RunDir(run).read_summary()
    result = what_if(run, config.method.prune_ratio)
    assert result["acc"] == pytest.approx(summary["acc_after_prune"], abs=1e-6)  # float32 in summary.json

"""What the Slimming page opens on (`prunelab.methods.slimming.lesson_runs`): chosen by config, on synthetic
tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from prunelab.analysis.lesson_runs import preferred_form
from prunelab.methods.slimming import lesson_runs
from prunelab.methods.slimming.config import NAME as SLIMMING

SETTING = {"dataset": "shapes", "model": "resnet20", "width": 0.5, "epochs_total": 6, "state": "done"}


def test_the_lambda_comparison_is_one_seed_of_each_lambda(tmp_path: Path) -> None:
    rows = [{"path": str(tmp_path / f"l{lam}-s{seed}"), "method": "slimming", "seed": seed, "sparsity_lambda": lam,
             "prune_ratio": 0.5, "finetune_epochs": 3, **SETTING}
            for lam in (0.008, 0.0, 0.004) for seed in (2, 1, 0)]
    rows.append({**rows[0], "path": str(tmp_path / "other-budget"), "epochs_total": 12, "sparsity_lambda": 0.1})
    table = pd.DataFrame(rows)
    names = [Path(p).name for p in lesson_runs.lambda_comparison(table, tmp_path / "l0.004-s1")]
    assert names == ["l0.0-s1", "l0.004-s1", "l0.008-s1"]


def test_slimming_lessons_stay_within_one_form(tmp_path: Path) -> None:
    """The Slimming page opens on a new run's form (the authors' reference) and compares λ within that form."""
    rows = [{"path": str(tmp_path / f"{form}-l{lam}-s{seed}"), "method": "slimming", "seed": seed,
             "sparsity_lambda": lam, "prune_ratio": 0.5, "finetune_epochs": 3, "form": form, **SETTING}
            for form in ("prunelab", "reference") for lam in (0.0, 0.008) for seed in (1, 0)]
    table = pd.DataFrame(rows)
    assert Path(lesson_runs.opening_run(table)).name == f"{preferred_form(SLIMMING)}-l0.008-s0"
    names = [Path(p).name for p in lesson_runs.lambda_comparison(table, tmp_path / "prunelab-l0.008-s1")]
    assert names == ["prunelab-l0.0-s1", "prunelab-l0.008-s1"]
    names = [Path(p).name for p in lesson_runs.lambda_comparison(table, tmp_path / "reference-l0.0-s0")]
    assert names == ["reference-l0.0-s0", "reference-l0.008-s0"]


def test_the_slimming_page_opens_on_a_finished_run_of_the_largest_lambda() -> None:
    runs = pd.DataFrame([
        {"path": "/r/running", "method": "slimming", "state": "running", "seed": 0, "sparsity_lambda": 1e-2},
        {"path": "/r/l0-s0", "method": "slimming", "state": "done", "seed": 0, "sparsity_lambda": 0.0},
        {"path": "/r/l4-s1", "method": "slimming", "state": "done", "seed": 1, "sparsity_lambda": 4e-3},
        {"path": "/r/l4-s0", "method": "slimming", "state": "done", "seed": 0, "sparsity_lambda": 4e-3},
        {"path": "/r/base", "method": "baseline", "state": "done", "seed": 0, "sparsity_lambda": None},
    ])
    assert lesson_runs.opening_run(runs) == "/r/l4-s0"
    assert lesson_runs.opening_run(runs[runs["state"] != "done"]) is None

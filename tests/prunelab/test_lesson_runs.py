"""What the analysis pages open on (`prunelab.analysis.lesson_runs`): chosen by config, on synthetic tables and the
shipped demos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prunelab.analysis import lesson_runs, results
from prunelab.methods.manidp.artefacts import PROBE
from prunelab.runs.run import Run
from prunelab.runs.run_format import MODEL_FILE

SETTING = {"dataset": "shapes", "model": "resnet20", "width": 0.5, "epochs_total": 6, "state": "done"}


def _manidp(tmp_path: Path, name: str, seed: int, complexity: bool, similarity: bool, model: bool = True,
            **extra: object) -> dict:
    path = tmp_path / name
    path.mkdir()
    if model:
        (path / MODEL_FILE).write_bytes(b"x")
    return {"path": str(path), "method": "manidp", "seed": seed, "complexity": complexity,
            "similarity": similarity, "target_density": 0.7, "lambda_prime": 0.05, "gamma_sim": 3.0,
            "gamma_c": 1.0, **SETTING, **extra}


def test_manidp_run_is_the_full_method_with_its_model_at_the_lowest_seed(tmp_path: Path) -> None:
    rows = [_manidp(tmp_path, "sim-s2", 2, False, True), _manidp(tmp_path, "both-s1", 1, True, True),
            _manidp(tmp_path, "both-s0-nomodel", 0, True, True, model=False),
            _manidp(tmp_path, "ref-both-s0", 0, True, True, form="reference"),
            _manidp(tmp_path, "both-s0", 0, True, True, form=None)]
    # a new run's form (the authors' reference form) first; a run without a form is PruneLab's
    preferred = "ref-both-s0" if lesson_runs.PREFERRED_FORM == "reference" else "both-s0"
    assert Path(lesson_runs.manidp_run(pd.DataFrame(rows))).name == preferred
    assert Path(lesson_runs.manidp_run(pd.DataFrame(rows[:3] + rows[4:]))).name == "both-s0"
    # a table without the `form` column (runs made before it existed) is PruneLab's form throughout
    old = pd.DataFrame([{k: v for k, v in row.items() if k != "form"} for row in rows[:3]])
    assert Path(lesson_runs.manidp_run(old)).name == "both-s1"
    assert lesson_runs.manidp_run(pd.DataFrame(rows[:0])) is None


def test_similarity_comparison_is_the_term_on_against_off_at_the_same_seed(tmp_path: Path) -> None:
    rows = [_manidp(tmp_path, f"{variant}-s{seed}", seed, complexity, similarity)
            for seed in (0, 1) for variant, complexity, similarity in
            (("both", True, True), ("complexity", True, False), ("similarity", False, True), ("neither", False, False))]
    rows.append(_manidp(tmp_path, "complexity-s1-other-width", 1, True, False, width=1.0))
    rows.append(_manidp(tmp_path, "both-s3", 3, True, True))
    rows.append(_manidp(tmp_path, "neither-s3", 3, False, False))
    table = pd.DataFrame(rows)
    names = [Path(p).name for p in lesson_runs.similarity_comparison(table, tmp_path / "both-s1")]
    assert names == ["both-s1", "complexity-s1"]
    names = [Path(p).name for p in lesson_runs.similarity_comparison(table, tmp_path / "neither-s0")]
    assert names == ["similarity-s0", "neither-s0"]
    # no exact twin at seed 3: the run of that seed with the term off stands in
    names = [Path(p).name for p in lesson_runs.similarity_comparison(table, tmp_path / "both-s3")]
    assert names == ["both-s3", "neither-s3"]
    assert lesson_runs.similarity_comparison(table, tmp_path / "both-s9") == [str(tmp_path / "both-s9")]


def test_slimming_comparison_is_one_seed_of_each_lambda(tmp_path: Path) -> None:
    rows = [{"path": str(tmp_path / f"l{lam}-s{seed}"), "method": "slimming", "seed": seed, "sparsity_lambda": lam,
             "prune_ratio": 0.5, "finetune_epochs": 3, **SETTING}
            for lam in (0.008, 0.0, 0.004) for seed in (2, 1, 0)]
    rows.append({**rows[0], "path": str(tmp_path / "other-budget"), "epochs_total": 12, "sparsity_lambda": 0.1})
    table = pd.DataFrame(rows)
    names = [Path(p).name for p in lesson_runs.slimming_comparison(table, tmp_path / "l0.004-s1")]
    assert names == ["l0.0-s1", "l0.004-s1", "l0.008-s1"]


def test_slimming_lessons_stay_within_one_form(tmp_path: Path) -> None:
    """The Slimming page opens on a new run's form (the authors' reference) and compares λ within that form."""
    rows = [{"path": str(tmp_path / f"{form}-l{lam}-s{seed}"), "method": "slimming", "seed": seed,
             "sparsity_lambda": lam, "prune_ratio": 0.5, "finetune_epochs": 3, "form": form, **SETTING}
            for form in ("prunelab", "reference") for lam in (0.0, 0.008) for seed in (1, 0)]
    table = pd.DataFrame(rows)
    assert Path(lesson_runs.slimming_run(table)).name == f"{lesson_runs.PREFERRED_FORM}-l0.008-s0"
    names = [Path(p).name for p in lesson_runs.slimming_comparison(table, tmp_path / "prunelab-l0.008-s1")]
    assert names == ["prunelab-l0.0-s1", "prunelab-l0.008-s1"]
    names = [Path(p).name for p in lesson_runs.slimming_comparison(table, tmp_path / "reference-l0.0-s0")]
    assert names == ["reference-l0.0-s0", "reference-l0.008-s0"]


def test_heatmap_layer_is_where_feature_similarity_varies_most() -> None:
    flat = np.ones((4, 4))  # every probe image alike: all-red T and R, a blank T − R
    varied = np.array([[1, 0.2, 0.9, -0.1], [0.2, 1, 0.3, 0.5], [0.9, 0.3, 1, 0.0], [-0.1, 0.5, 0.0, 1]])
    assert lesson_runs.heatmap_layer([flat, varied, flat * 0.9]) == 1
    assert lesson_runs.heatmap_layer([]) == 0


@pytest.mark.parametrize("demo", [results.DEMO_RUNS_DIR, results.CIFAR_DEMO_RUNS_DIR], ids=["shapes", "cifar10"])
def test_the_shipped_demos_open_on_their_lessons(demo: Path) -> None:
    if not demo.is_dir():
        pytest.skip("demo not shipped")
    table = results.runs_table([demo])
    run = lesson_runs.manidp_run(table)
    row = table.set_index("path").loc[run]
    assert row["complexity"] and row["similarity"] and row["seed"] == 0 and (Path(run) / MODEL_FILE).is_file()
    pair = table.set_index("path").loc[lesson_runs.similarity_comparison(table, run)]
    assert list(pair["similarity"]) == [True, False] and pair["seed"].nunique() == 1 and run in pair.index
    probe = Run(run).read(PROBE)
    layer = lesson_runs.heatmap_layer(probe.R)
    off = ~np.eye(len(probe.R[layer]), dtype=bool)
    # not one colour: the page's shared T/R scale spans the values, and R's spread over it is visible
    assert probe.R[layer][off].max() - probe.R[layer][off].min() > 0.2
    slim = table[table["method"] == "slimming"]
    chosen = table.set_index("path").loc[lesson_runs.slimming_comparison(table, slim["path"].iloc[0])]
    assert sorted(chosen["sparsity_lambda"]) == sorted(slim["sparsity_lambda"].unique())
    assert chosen["seed"].nunique() == 1


def test_the_slimming_page_opens_on_a_finished_run_of_the_largest_lambda() -> None:
    import pandas as pd

    from prunelab.analysis.lesson_runs import slimming_run

    runs = pd.DataFrame([
        {"path": "/r/running", "method": "slimming", "state": "running", "seed": 0, "sparsity_lambda": 1e-2},
        {"path": "/r/l0-s0", "method": "slimming", "state": "done", "seed": 0, "sparsity_lambda": 0.0},
        {"path": "/r/l4-s1", "method": "slimming", "state": "done", "seed": 1, "sparsity_lambda": 4e-3},
        {"path": "/r/l4-s0", "method": "slimming", "state": "done", "seed": 0, "sparsity_lambda": 4e-3},
        {"path": "/r/base", "method": "baseline", "state": "done", "seed": 0, "sparsity_lambda": None},
    ])
    assert slimming_run(runs) == "/r/l4-s0"
    assert slimming_run(runs[runs["state"] != "done"]) is None

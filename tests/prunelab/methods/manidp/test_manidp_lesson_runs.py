"""What the Per-image and Similarity pages open on (`prunelab.methods.manidp.lesson_runs`): chosen by config, on
synthetic tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from prunelab.analysis.lesson_runs import preferred_form
from prunelab.methods.manidp import lesson_runs
from prunelab.methods.manidp.config import NAME as MANIDP
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
    preferred = "ref-both-s0" if preferred_form(MANIDP) == "reference" else "both-s0"
    assert Path(lesson_runs.opening_run(pd.DataFrame(rows))).name == preferred
    assert Path(lesson_runs.opening_run(pd.DataFrame(rows[:3] + rows[4:]))).name == "both-s0"
    # a table without the `form` column (runs made before it existed) is PruneLab's form throughout
    old = pd.DataFrame([{k: v for k, v in row.items() if k != "form"} for row in rows[:3]])
    assert Path(lesson_runs.opening_run(old)).name == "both-s1"
    assert lesson_runs.opening_run(pd.DataFrame(rows[:0])) is None


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


def test_heatmap_layer_is_where_feature_similarity_varies_most() -> None:
    flat = np.ones((4, 4))  # every probe image alike: all-red T and R, a blank T − R
    varied = np.array([[1, 0.2, 0.9, -0.1], [0.2, 1, 0.3, 0.5], [0.9, 0.3, 1, 0.0], [-0.1, 0.5, 0.0, 1]])
    assert lesson_runs.heatmap_layer([flat, varied, flat * 0.9]) == 1
    assert lesson_runs.heatmap_layer([]) == 0

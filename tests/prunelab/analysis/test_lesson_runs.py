"""What the analysis pages open on: the pieces every method's choice is made of (`prunelab.analysis.lesson_runs`),
and each method's choosers (`prunelab/methods/<name>/lesson_runs.py`, tested beside them) on the shipped demos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prunelab.analysis import lesson_runs, results
from prunelab.config import METHOD_CONFIGS
from prunelab.methods.manidp import lesson_runs as manidp_runs
from prunelab.methods.manidp.artefacts import PROBE
from prunelab.methods.slimming import lesson_runs as slimming_runs
from prunelab.runs.run import Run
from prunelab.runs.run_format import MODEL_FILE


def test_the_preferred_form_is_what_a_new_run_gets() -> None:
    """A lesson opens on the form a new run of the method gets (the authors' reference form for both methods with
    forms); a method without forms has PruneLab's, as a run whose config names no form."""
    for name, config in METHOD_CONFIGS.items():
        form = config.model_fields.get("form")
        expected = str(form.default) if form is not None else lesson_runs.DEFAULT_FORM
        assert lesson_runs.preferred_form(name) == expected
    assert lesson_runs.preferred_form("slimming") == lesson_runs.preferred_form("manidp") == "reference"
    assert lesson_runs.preferred_form("baseline") == "prunelab"


def test_finished_runs_carry_their_form_and_rows_match_by_config() -> None:
    runs = pd.DataFrame([
        {"path": "/r/a", "method": "manidp", "state": "done", "seed": 0, "form": "reference", "width": 0.5},
        {"path": "/r/b", "method": "manidp", "state": "done", "seed": 1, "form": None, "width": 0.5},
        {"path": "/r/c", "method": "manidp", "state": "running", "seed": 0, "form": "reference", "width": 0.5},
        {"path": "/r/d", "method": "slimming", "state": "done", "seed": 0, "form": "", "width": np.nan},
        {"path": "/r/e", "method": "slimming", "state": "done", "seed": 2, "form": "prunelab", "width": np.nan}])
    done = lesson_runs.finished(runs, "manidp")
    assert done["path"].tolist() == ["/r/a", "/r/b"] and done["form"].tolist() == ["reference", "prunelab"]
    assert lesson_runs.finished(runs.drop(columns="form"), "slimming")["form"].tolist() == ["prunelab"] * 2
    assert lesson_runs.finished(pd.DataFrame(), "manidp").empty
    row = lesson_runs.row_of(runs, Path("/r/d"))
    assert row is not None and row["seed"] == 0 and lesson_runs.row_of(runs, "/r/x") is None
    assert runs[lesson_runs.same(runs, row, ["width", "method", "absent"])]["path"].tolist() == ["/r/d", "/r/e"]
    assert lesson_runs.flag(runs.assign(similarity=[True, None, False, True, None]), "similarity").tolist() == [
        True, False, False, True, False]
    assert not lesson_runs.flag(runs, "similarity").any()
    slim = runs[runs["method"] == "slimming"]
    assert lesson_runs.at_seed(slim, 2) == "/r/e" and lesson_runs.at_seed(slim, 7) == "/r/d"


@pytest.mark.parametrize("demo", [results.DEMO_RUNS_DIR, results.CIFAR_DEMO_RUNS_DIR], ids=["shapes", "cifar10"])
def test_the_shipped_demos_open_on_their_lessons(demo: Path) -> None:
    if not demo.is_dir():
        pytest.skip("demo not shipped")
    table = results.runs_table([demo])
    run = manidp_runs.opening_run(table)
    row = table.set_index("path").loc[run]
    assert row["complexity"] and row["similarity"] and row["seed"] == 0 and (Path(run) / MODEL_FILE).is_file()
    pair = table.set_index("path").loc[manidp_runs.similarity_comparison(table, run)]
    assert list(pair["similarity"]) == [True, False] and pair["seed"].nunique() == 1 and run in pair.index
    probe = Run(run).read(PROBE)
    layer = manidp_runs.heatmap_layer(probe.R)
    off = ~np.eye(len(probe.R[layer]), dtype=bool)
    # not one colour: the page's shared T/R scale spans the values, and R's spread over it is visible
    assert probe.R[layer][off].max() - probe.R[layer][off].min() > 0.2
    slim = table[table["method"] == "slimming"]
    chosen = table.set_index("path").loc[slimming_runs.lambda_comparison(table, slim["path"].iloc[0])]
    assert sorted(chosen["sparsity_lambda"]) == sorted(slim["sparsity_lambda"].unique())
    assert chosen["seed"].nunique() == 1

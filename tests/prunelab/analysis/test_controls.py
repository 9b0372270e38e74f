"""Controls against the runs they derive from: each control run paired with its own parent, the paired verdict
(the claims' rule), the finding in plain words when a control matches its method, one variant over seeds whose
parents differ, the controls of both control methods found through the registry, and the controls table."""

from __future__ import annotations

import pandas as pd
import pytest

from prunelab.analysis import controls, lessons, tables
from prunelab.methods.random.claims import CRITERION
from prunelab.methods.scratch.claims import INHERITED_WEIGHTS, ROUTING
from tests.prunelab.analysis.lesson_tables import variant_rows

SLIM = "slimming λ=0.008, prune 50% of interior channels"


def runs(method: str, variant: str, acc: list[float], macs: float, prefix: str, parent: str | None = None,
         **fixed: object) -> list[dict]:
    """A variant's rows, run ids `<prefix>-s<seed>`, each naming `<parent>-s<seed>` as its parent."""
    rows = variant_rows(method, variant, {"test_acc": acc}, macs_per_image=macs, **fixed)
    for row in rows:
        row["run_id"] = f"{prefix}-s{row['seed']}"
        row["parent_run"] = f"{parent}-s{row['seed']}" if parent else None
    return rows


def table(slim: list[float], rand: list[float], scratch: list[float] | None = None,
          dynamic: list[float] | None = None, static: list[float] | None = None) -> pd.DataFrame:
    rows = runs("slimming", SLIM, slim, 5.8e6, "slim") + runs("random", f"random channels: counts of {SLIM}", rand,
                                                             5.8e6, "rand", "slim")
    if scratch is not None:
        rows += runs("scratch", f"from scratch: sized as {SLIM}", scratch, 5.8e6, "scratch", "slim")
    if dynamic is not None and static is not None:
        rows += runs("manidp", "ManiDP (prunelab): both", dynamic, 6.1e6, "manidp")
        rows += runs("scratch", "from scratch: sized as ManiDP (prunelab): both", static, 6.0e6, "static",
                     "manidp")
    return pd.DataFrame(rows)


def test_each_control_run_is_paired_with_its_own_parent() -> None:
    # seed 2's parent sits far below the others: paired, the control is 1 point under its parent every time
    found = controls.controls(table([0.72, 0.74, 0.60], [0.71, 0.73, 0.59]))
    assert len(found) == 1
    control = found[0]
    assert (control.question, control.lesson, control.paper) == (CRITERION.question, CRITERION.lesson,
                                                                  CRITERION.paper)
    assert control.reference == SLIM and control.reference_method == "slimming"
    assert control.control_method == "random" and control.control.startswith("random channels")
    assert control.difference.mean == pytest.approx(-0.01) and control.difference.n == 3
    assert control.acc.mean == pytest.approx((0.71 + 0.73 + 0.59) / 3)
    assert control.reference_macs.mean == control.macs.mean == 5.8e6
    # unpaired, the spread of seed 2 would hide it; paired, the criterion's point is beyond seed noise
    assert control.verdict == "holds" and "beats random channels" in control.finding


def test_a_control_that_matches_its_method_says_so_plainly() -> None:
    found = controls.controls(table([0.72, 0.74, 0.70], [0.73, 0.72, 0.71], scratch=[0.74, 0.75, 0.73]))
    assert [c.question for c in found] == [CRITERION.question, INHERITED_WEIGHTS.question]
    rand, scratch = found
    assert rand.verdict == "within seed noise"
    assert rand.finding.startswith(f"random channels: counts of {SLIM} matches {SLIM} at this scale (")
    assert "within seed noise" in rand.finding and rand.finding.endswith("That is the lesson.")
    assert CRITERION.matches in rand.finding
    # scratch is 2 points above slimming on every seed: the pipeline's claim does not hold, as Liu et al. found
    assert scratch.verdict == "does not hold" and scratch.difference.mean == pytest.approx(0.02)
    assert "Liu et al." in scratch.paper and "beats" in scratch.finding


def test_a_static_network_of_equal_mean_macs_controls_manidp() -> None:
    found = controls.controls(table([0.7, 0.7], [0.7, 0.7], dynamic=[0.72, 0.75], static=[0.69, 0.76]))
    static = next(c for c in found if c.reference_method == "manidp")
    assert static.question == ROUTING.question and "Tang et al." in static.paper
    assert static.difference.mean == pytest.approx(-0.01) and static.verdict == "within seed noise"
    assert static.macs.mean == pytest.approx(6.0e6) and static.reference_macs.mean == pytest.approx(6.1e6)


def test_one_seed_leaves_the_noise_unknown_and_lone_controls_are_left_out() -> None:
    found = controls.controls(table([0.72], [0.70]))
    assert found[0].verdict == "holds (one seed: noise unknown)" and "noise is unknown" in found[0].finding
    orphans = table([0.7, 0.7], [0.7, 0.7])
    orphans = orphans[orphans["method"] != "slimming"]  # the parents are not in the table
    assert controls.controls(orphans) == []
    assert controls.controls(pd.DataFrame()) == []


def test_controls_are_judged_within_each_setting_and_become_claims() -> None:
    shapes = table([0.72, 0.74, 0.70], [0.73, 0.72, 0.71])
    other = shapes.assign(dataset="cifar10", run_id=[f"c-{r}" for r in shapes["run_id"]],
                          parent_run=[f"c-{p}" if isinstance(p, str) else None for p in shapes["parent_run"]])
    found = controls.controls(pd.concat([shapes, other], ignore_index=True))
    assert len(found) == 2 and {c.lesson.rsplit(" (", 1)[1] for c in found} == {
        "shapes · resnet20 w0.5 · 6 epochs)", "cifar10 · resnet20 w0.5 · 6 epochs)"}
    claims = lessons.claims(shapes)  # the control methods' claims are their controls
    mine = [c for c in claims if c.lesson == CRITERION.lesson]
    assert len(mine) == 1 and mine[0].verdict == "within seed noise" and mine[0].paper == CRITERION.paper
    assert "That is the lesson." in mine[0].measured and "points (control − parent)" in mine[0].measured_figure


def test_the_controls_table_holds_the_method_then_its_control() -> None:
    found = controls.controls(table([0.72, 0.74, 0.70], [0.73, 0.72, 0.71], scratch=[0.74, 0.75, 0.73]))
    rows = controls.control_table(found)
    assert list(rows.columns) == controls.CONTROL_COLUMNS
    assert rows["role"].tolist() == ["method", "control", "method", "control"]
    assert rows["variant"].tolist()[:2] == [SLIM, f"random channels: counts of {SLIM}"]
    assert rows["accuracy"].iloc[0] == pytest.approx(0.72) and rows["seeds"].tolist() == [3, 3, 3, 3]
    assert pd.isna(rows["difference"].iloc[0]) and rows["verdict"].iloc[1] == "within seed noise"


def test_a_controls_seeds_form_one_variant_named_after_the_variant_it_controls() -> None:
    """Each seed's control names another parent run; the ablation table names its parent's variant instead."""
    rows = []
    for seed in (0, 1):
        common = {"state": "done", "test_acc": 0.7, "macs_per_image": 5e6, "dataset": "shapes",
                  "model": "resnet20", "width": 0.5, "seed": seed, "epochs_total": 6, "path": f"/r/{seed}"}
        rows.append({**common, "run_id": f"slim-s{seed}", "name": f"slim-s{seed}", "method": "slimming",
                     "sparsity_lambda": 0.008, "prune_ratio": 0.5, "prune_residual": False, "form": "prunelab",
                     "departures": ["interior_only_scope", "no_gamma_weight_decay"], "parent_run": None})
        rows.append({**common, "run_id": f"rand-s{seed}", "name": f"rand-s{seed}", "method": "random",
                     "init_from": f"slim-s{seed}", "parent_run": f"slim-s{seed}"})
        rows.append({**common, "run_id": f"scratch-s{seed}", "name": f"scratch-s{seed}", "method": "scratch",
                     "init_from": f"slim-s{seed}", "parent_run": f"slim-s{seed}"})
    ablation = tables.ablation_table(pd.DataFrame(rows))
    variants = dict(zip(ablation["name"], ablation["variant"], strict=True))
    slim = variants["slim-s0"]
    assert variants["rand-s0"] == variants["rand-s1"] == f"random channels: counts of {slim}"
    assert variants["scratch-s0"] == variants["scratch-s1"] == f"from scratch: sized as {slim}"
    groups = lessons.variant_groups(ablation)
    assert sorted(groups["seeds"]) == [2, 2, 2]
    assert lessons.PARENT_LABEL not in " ".join(groups["label"])  # a slimming run with controls keeps its name

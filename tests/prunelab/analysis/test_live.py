"""prunelab.analysis.live: curves in training order, phase spans (done and planned), boundaries, per-layer densities,
artefact listings of runs still being written, the home page's variants, strip run and which of the user's runs
its chart draws; demo folders."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prunelab.analysis import live, results
from prunelab.config import RunConfig
from prunelab.methods.slimming.artefacts import GammaHistory
from prunelab.runs.run_format import GAMMA_HISTORY_FILE, PRUNING_FILE
from prunelab.runs.store import RunStore


def metrics(*rows: tuple[str, int, int, float]) -> pd.DataFrame:
    """(phase, phase_index, epoch, test_acc) rows as metrics.jsonl would give them."""
    return pd.DataFrame([{"phase": p, "phase_index": i, "epoch": e, "test_acc": a, "train_loss": 1.0 - a}
                         for p, i, e, a in rows])


def slimming_config(epochs: int = 3, finetune: int = 2) -> RunConfig:
    return RunConfig.model_validate({"train": {"epochs": epochs},
                                     "method": {"name": "slimming", "finetune_epochs": finetune}})


def test_epoch_curves_order_steps_and_repeated_epochs() -> None:
    rows = metrics(("finetune", 1, 1, 0.6), ("sparsity", 0, 2, 0.5), ("sparsity", 0, 1, 0.3),
                   ("sparsity", 0, 2, 0.55))  # epoch 2 logged twice (a resumed run): the last row counts
    curves = live.epoch_curves(rows)
    assert curves["step"].tolist() == [1, 2, 3]
    assert curves["test_acc"].tolist() == [0.3, 0.55, 0.6]
    assert curves["phase_label"].tolist() == ["sparsity training", "sparsity training", "fine-tune"]
    assert np.isnan(curves["test_loss"]).all()  # a column no row has yet is there, empty
    assert live.epoch_curves(pd.DataFrame()).empty


def test_planned_phases_come_from_the_method() -> None:
    assert live.planned_phases(slimming_config(3, 2)) == [("sparsity", 3), ("finetune", 2)]
    assert live.planned_phases(RunConfig.model_validate({"train": {"epochs": 4}})) == [("train", 4)]
    assert live.planned_phases(None) == []


def test_phase_spans_show_planned_phases_and_the_prune_boundary() -> None:
    plan = live.planned_phases(slimming_config(3, 2))
    early = live.phase_spans(live.epoch_curves(metrics(("sparsity", 0, 1, 0.3))), plan)
    assert [(s.name, s.start, s.end, s.done, s.epochs) for s in early] == [
        ("sparsity", 0.5, 3.5, 1, 3), ("finetune", 3.5, 5.5, 0, 2)]
    assert live.boundaries(early) == [(3.5, "prune")]
    assert live.progress_text(live.epoch_curves(metrics(("sparsity", 0, 1, 0.3))), early) == \
        "sparsity training epoch 1/3 · 1 of 5 epochs in all"
    # a log that does not match the plan (another config): the logged phases only
    other = live.phase_spans(live.epoch_curves(metrics(("train", 0, 1, 0.3), ("train", 0, 2, 0.4))), plan)
    assert [(s.name, s.done, s.epochs) for s in other] == [("train", 2, 2)] and live.boundaries(other) == []
    assert live.progress_text(live.epoch_curves(pd.DataFrame()), early) == "no epoch finished yet"


def test_layer_density_curves_from_manidp_columns() -> None:
    curves = live.epoch_curves(pd.DataFrame([
        {"phase": "train", "phase_index": 0, "epoch": 1, "test_density": 0.8, "test_density_blocks.0.gate_a": 0.9,
         "test_density_blocks.0.gate_b": 0.7},
        {"phase": "train", "phase_index": 0, "epoch": 2, "test_density": 0.7, "test_density_blocks.0.gate_a": 0.8,
         "test_density_blocks.0.gate_b": 0.6},
    ]))
    layers = live.layer_density_curves(curves)
    assert sorted(set(layers["layer"])) == ["blocks.0.gate_a", "blocks.0.gate_b"]  # not the mean test_density
    last = layers[layers["step"] == 2].set_index("layer")["density"]
    assert last.to_dict() == {"blocks.0.gate_a": 0.8, "blocks.0.gate_b": 0.6}
    assert live.layer_density_curves(live.epoch_curves(metrics(("train", 0, 1, 0.5)))).empty
    per_image = pd.DataFrame({"macs": [1, 2], "density_a": [0.5, 1.0], "density_b": [0.25, 0.75]})
    assert live.final_layer_densities(per_image).to_dict("list") == {"layer": ["a", "b"], "density": [0.75, 0.5]}
    assert live.final_layer_densities(None).empty


def test_latest_gammas_is_the_last_recorded_epoch() -> None:
    history = GammaHistory(np.arange(3), ["bn1", "bn2"],
                                   [np.array([[1.0, 2.0], [0.5, 1.0], [0.1, 0.2]], dtype=np.float32),
                                    np.array([[3.0], [2.0], [0.3]], dtype=np.float32)],
                                   1e-3, np.array([0.9, 0.6, 0.15]))
    epoch, values, threshold = live.latest_gammas(history)
    assert epoch == 2 and np.allclose(sorted(values), [0.1, 0.2, 0.3]) and threshold == pytest.approx(0.15)
    assert live.latest_gammas(None) is None


def test_artefact_listing_of_a_run_being_written_and_of_a_finished_one(tmp_path) -> None:
    run = RunStore(tmp_path).create(slimming_config(), "slim")
    run.write_status(state="running")
    (run.path / GAMMA_HISTORY_FILE).write_bytes(b"x")
    (run.path / ".gamma_history.npz.123.tmp").write_bytes(b"partial")  # an atomic write in flight: hidden
    listing = live.artefact_listing(run.path, "slimming", "running").set_index("file")
    assert {"config.json", "status.json", GAMMA_HISTORY_FILE} <= set(listing.index)
    assert not any(name.startswith(".") for name in listing.index)
    assert listing.loc[PRUNING_FILE, "note"] == "not written yet" and listing.loc["summary.json", "note"] == \
        "not written yet"
    assert listing.loc[GAMMA_HISTORY_FILE, "note"] == ""
    done = live.artefact_listing(run.path, "slimming", "done").set_index("file")
    assert done.loc[PRUNING_FILE, "note"] == "missing"
    assert live.artefact_listing(tmp_path / "nowhere", "baseline", "done")["file"].tolist() == ["summary.json"]
    assert live.run_status(tmp_path / "nowhere")[0] == "broken"
    assert live.run_status(run.path)[0] in ("running", "interrupted")  # no owner lock: interrupted
    assert live.log_tail(tmp_path / "nowhere") == []


def _row(name: str, method: str, seed: int, acc: float, macs: float, demo: bool = True, **extra) -> dict:
    return {"run_id": name, "path": f"/runs/{name}", "name": name, "demo": demo, "method": method, "state": "done",
            "dataset": "shapes", "model": "resnet20", "width": 0.5, "seed": seed, "test_acc": acc,
            "macs_per_image": macs, "epochs": 6, "epochs_total": 6, "problem": None, "suite": "demo",
            "complexity": extra.pop("complexity", None), "similarity": extra.pop("similarity", None), **extra}


def test_variants_and_the_strip_run() -> None:
    runs = pd.DataFrame([
        _row("base-s0", "baseline", 0, 0.80, 10e6), _row("base-s1", "baseline", 1, 0.78, 10e6),
        _row("dp-neither-s0", "manidp", 0, 0.7, 6e6, complexity=False, similarity=False, lambda_prime=0.05,
             gamma_sim=3.0, target_density=0.7, macs_dense=10e6),
        _row("dp-both-s1", "manidp", 1, 0.72, 6e6, complexity=True, similarity=True, lambda_prime=0.05,
             gamma_sim=3.0, target_density=0.7, macs_dense=10e6),
        _row("dp-both-s0", "manidp", 0, 0.71, 6e6, complexity=True, similarity=True, lambda_prime=0.05,
             gamma_sim=3.0, target_density=0.7, macs_dense=10e6),
    ])
    variants = live.variants(runs)
    base = variants[variants["method"] == "baseline"].iloc[0]
    assert base["seeds"] == 2 and base["test_acc_mean"] == pytest.approx(0.79)
    assert base["label"] == "baseline · 6 epochs"
    assert live.strip_run(runs) == "/runs/dp-both-s0"  # both terms on, lowest seed
    assert live.strip_run(runs, dataset="cifar10") is None
    assert live.strip_run(runs.assign(demo=False)) is None  # the strip shows a demo run


def test_which_runs_the_home_chart_draws() -> None:
    demo = [_row("base-s0", "baseline", 0, 0.80, 10e6), _row("base-s1", "baseline", 1, 0.78, 10e6)]
    mine = [_row("same", "baseline", 0, 0.75, 10e6, demo=False),  # the demo's setting: drawn beside it
            _row("vgg", "baseline", 0, 0.70, 20e6, demo=False, model="vgg11"),  # another model: left off
            _row("wide", "baseline", 0, 0.74, 40e6, demo=False, width=1.0),  # another width: left off
            _row("cifar", "baseline", 0, 0.60, 10e6, demo=False, dataset="cifar10"),  # another dataset
            _row("training", "baseline", 0, 0.50, 10e6, demo=False, state="running"),  # not finished
            _row("no-acc", "baseline", 0, float("nan"), 10e6, demo=False)]  # no accuracy to draw
    runs = pd.DataFrame(demo + mine)
    assert live.user_runs(runs)["name"].tolist() == ["same", "vgg", "wide", "cifar"]
    variants, beside = live.chart_runs(runs)
    assert variants["label"].tolist() == ["baseline · 6 epochs"] and variants["seeds"].tolist() == [2]
    assert beside["name"].tolist() == ["same", "vgg", "wide", "cifar"]
    assert live.runs_beside(variants, beside)["name"].tolist() == ["same"]
    assert live.runs_beside(variants, beside)["macs_per_image"].tolist() == [10e6]
    assert live.other_settings(variants, beside) == 2  # vgg and wide; the CIFAR-10 run is on another chart
    assert live.other_settings(variants, beside.iloc[:0]) == 0 and live.runs_beside(variants.iloc[:0], beside).empty

    alone, nothing = live.chart_runs(pd.DataFrame(mine))  # no demo: the user's runs are the variants
    assert sorted(alone["dataset"] + "/" + alone["model"]) == ["cifar10/resnet20", "shapes/resnet20",
                                                                "shapes/resnet20", "shapes/vgg11"]
    assert nothing.empty
    empty, none = live.chart_runs(runs.iloc[:0])
    assert empty.empty and none.empty


def test_every_assets_runs_folder_is_a_demo(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    demo, second, empty, user = (tmp_path / "demo_runs", tmp_path / "cifar10_runs", tmp_path / "notes_runs",
                                 tmp_path / "runs")
    config = RunConfig()
    RunStore(demo).create(config, "a")
    RunStore(second).create(config, "b")
    empty.mkdir()
    RunStore(user).create(config, "mine")
    monkeypatch.setattr(results, "DEMO_RUNS_DIR", demo)
    monkeypatch.setenv("PRUNELAB_RUNS_DIR", str(user))
    monkeypatch.delenv(results.NO_DEMO_ENV, raising=False)
    assert results.run_roots() == [user, demo, second]  # a folder without runs is not a demo
    assert results.is_demo(second / "b") and not results.is_demo(user / "mine")
    monkeypatch.setenv(results.NO_DEMO_ENV, "1")
    assert results.run_roots() == [user] and results.is_demo(second / "b")  # hidden, still read-only

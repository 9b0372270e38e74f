"""ManiDP plug-in: formulas against plain references, ablation switches, thresholds, artefacts end to end."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import prunelab
from prunelab.methods import METHODS
from prunelab.methods.manidp.config import ManiDPConfig
from prunelab.methods.manidp.gates import COSINE_EPS, get_thresholds, install_gates, named_gates, records
from prunelab.methods.manidp.macs import build_plan
from prunelab.methods.manidp.method import (
    ManiDP,
    complexity_weights,
    remain_rate,
    similarity_loss,
    sparsity_loss,
    threshold_at_rank,
)
from prunelab.methods.manidp.report import balanced_probe
from prunelab.models import build_model, model_spec
from prunelab.runs.store import RunDir, RunStore
from prunelab.training.engine import Trainer, run_training
from tests.helpers import probe_arrays, tiny_config


def test_registered() -> None:
    assert METHODS["manidp"] is ManiDP


def test_complexity_weight_against_a_loop_including_ce_above_c() -> None:
    ce = torch.tensor([0.0, 0.1, 0.5, 0.99, 1.0, 1.5, 3.0])
    for c, lam, gamma_c in [(1.0, 2.0, 1.0), (1.0, 0.5, 2.0), (0.7, 1.0, 0.5), (1.0, 1.0, 0.0)]:
        expected = []
        for v in ce.tolist():
            easy = 1.0 if v < c else 0.0
            expected.append(lam * easy * (((c - v) / c) ** gamma_c if v < c else 0.0))
        got = complexity_weights(ce, c, lam, gamma_c)
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6, atol=1e-7)
        assert float(got.min()) >= 0.0 and float(got.max()) <= lam
    assert complexity_weights(ce, 1.0, 2.0, 1.0)[4:].eq(0).all()  # CE >= C: not pushed at all


def test_sparsity_and_similarity_losses_against_loops() -> None:
    rng = np.random.default_rng(0)
    pis = [rng.random((5, 4)).astype(np.float32), rng.random((5, 6)).astype(np.float32)]
    feats = [rng.normal(size=(5, 4)).astype(np.float32), rng.normal(size=(5, 6)).astype(np.float32)]
    weights = rng.random(5).astype(np.float32)
    expected_sparsity = sum(np.mean([weights[i] * pi[i].mean() for i in range(5)]) for pi in pis)
    got = sparsity_loss([torch.from_numpy(p) for p in pis], torch.from_numpy(weights))
    assert float(got) == pytest.approx(expected_sparsity, rel=1e-5)

    def cos(a: np.ndarray, b: np.ndarray, eps: float = 0.0) -> float:  # T smooths the norm by eps (gates.py)
        return float(a @ b / np.sqrt((a @ a + eps**2) * (b @ b + eps**2)))

    for smoothed in (False, True):  # the reference's F.normalize cosine; the departure smoothed_gate_cosine
        expected_similarity = 0.0
        for pi, feat in zip(pis, feats, strict=True):
            n = pi.shape[0]
            total = 0.0
            for i in range(n):
                for j in range(n):
                    total += (cos(pi[i], pi[j], COSINE_EPS if smoothed else 0.0) - cos(feat[i], feat[j])) ** 2
            expected_similarity += total / n**2
        got = similarity_loss([torch.from_numpy(p) for p in pis], [torch.from_numpy(f) for f in feats], smoothed)
        assert float(got) == pytest.approx(expected_similarity, rel=1e-5)


def test_threshold_keeps_a_fraction_eta_of_the_image_channel_pairs() -> None:
    rng = np.random.default_rng(1)
    for n, c in ((1, 1), (5, 4), (7, 7), (32, 16)):
        saliencies = rng.random((n, c)).astype(np.float32)
        for eta in (1.0, 0.9, 0.5, 0.37, 0.1):
            count = n * c
            k = math.ceil((1 - eta) * count - 1e-9)
            ordered = sorted(saliencies.flatten().tolist())
            expected = 0.0 if k == 0 else ordered[min(k, count - 1)]
            xi = threshold_at_rank(torch.tensor(saliencies), eta)
            assert xi == pytest.approx(expected)
            if 0 < k < count:  # exactly the count - k largest saliencies stay: mean density = eta
                assert int((saliencies >= xi).sum()) == count - k
    assert threshold_at_rank(torch.rand(4, 8), 1.0) == 0.0


def test_remain_rate_reaches_the_target_halfway_through_the_steps_and_stays() -> None:
    rates = [remain_rate(t, 100, 0.4) for t in range(101)]
    assert rates[0] == 1.0 and all(a >= b for a, b in itertools.pairwise(rates))
    assert rates[50] == pytest.approx(0.4) and rates[-1] == pytest.approx(0.4)  # RAMP_FRACTION = 0.5
    assert rates[49] > 0.4
    expected = 0.4 + 0.6 * (1 + math.cos(math.pi * 20 / 50)) / 2
    assert rates[20] == pytest.approx(expected)
    # even a one-epoch run of 3 steps trains its last steps at the target
    assert remain_rate(0, 3, 0.6) == 1.0 and remain_rate(2, 3, 0.6) == pytest.approx(0.6)


def test_balanced_probe_sorted_by_class() -> None:
    labels = torch.tensor([2, 0, 1, 1, 0, 2, 2, 0, 1, 0])
    probe = balanced_probe(labels, 7, 3)
    assert probe.tolist() == [1, 4, 7, 2, 3, 0, 5]  # 3 + 2 + 2, first positions of each class
    assert labels[probe].tolist() == sorted(labels[probe].tolist())


def _method(tmp_path: Path, **fields: object) -> tuple[ManiDP, torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    model = install_gates(build_model(model_spec("resnet20", 10, 0.25))).train()
    images = torch.randn(8, 3, 32, 32)
    config = tiny_config("manidp", train_size=100, test_size=20, model="resnet20", **fields)
    method = Trainer(config, RunDir(tmp_path / "run")).method  # the engine's own RunContext
    assert isinstance(method, ManiDP)
    method.plan = build_plan(model)
    method.complexity_c = 2.3
    return method, model, images


def _terms(method: ManiDP, model: torch.nn.Module, images: torch.Tensor) -> dict[str, float]:
    torch.manual_seed(0)
    logits = model(images)
    labels = torch.arange(8) % 10
    ce = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    return {k: float(v.detach()) for k, v in method.extra_loss(model, images, labels, logits, ce).items()}


def test_each_ablation_switch_changes_exactly_its_term(tmp_path: Path) -> None:
    method, model, images = _method(tmp_path)
    state = model.state_dict()
    full = _terms(method, model, images)
    assert set(full) == {"sparsity", "similarity"} and full["similarity"] > 0

    no_complexity, model2, _ = _method(tmp_path, complexity=False)
    model2.load_state_dict(state)
    ablated = _terms(no_complexity, model2, images)
    assert ablated["similarity"] == pytest.approx(full["similarity"])
    assert ablated["sparsity"] != pytest.approx(full["sparsity"])
    pis = [r.saliency for r in records(model2)]
    every_image = torch.full((8,), no_complexity.config.lambda_prime)  # one weight, lambda', for every image
    assert ablated["sparsity"] == pytest.approx(float(sparsity_loss(pis, every_image).detach()), rel=1e-6)

    no_similarity, model3, _ = _method(tmp_path, similarity=False)
    model3.load_state_dict(state)
    ablated = _terms(no_similarity, model3, images)
    assert set(ablated) == {"sparsity"} and ablated["sparsity"] == pytest.approx(full["sparsity"])

    weighted, model4, _ = _method(tmp_path, gamma_sim=2 * ManiDPConfig().gamma_sim)
    model4.load_state_dict(state)
    assert _terms(weighted, model4, images)["similarity"] == pytest.approx(2.0 * full["similarity"], rel=1e-6)


def test_gates_get_no_weight_decay_and_a_scaled_lr(tmp_path: Path) -> None:
    method, model, _ = _method(tmp_path, gate_lr_scale=2.0)
    groups = method.param_groups(model, None)  # type: ignore[arg-type]
    gate_params = {id(p) for _, g in named_gates(model) for p in g.parameters()}
    assert {id(p) for p in groups[1]["params"]} == gate_params
    assert groups[1]["weight_decay"] == 0.0 and groups[1]["lr_scale"] == 2.0
    assert not gate_params & {id(p) for p in groups[0]["params"]}


def test_init_from_loads_the_backbone_strictly(tmp_path) -> None:
    source = build_model(model_spec("resnet20", 10, 0.25))
    RunDir(tmp_path / "base").path.mkdir()
    RunDir(tmp_path / "base").save_torch("model.pt", {"model_state": source.state_dict()})
    RunDir(tmp_path / "base").write_summary({"method": "baseline", "dataset": "shapes", "model": "resnet20",
                                             "test_acc": 0.5, "params": 1, "macs_per_image": 1.0,
                                             "wall_time_s": 1.0, "epochs": 3, "epochs_total": 3})
    fields = {"train_size": 100, "test_size": 20, "model": "resnet20"}
    config = tiny_config("manidp", init_from="base", **fields)  # a run id under the same runs root
    run = RunStore(tmp_path).create(config, "new")
    method = Trainer(config, run).method
    model = method.prepare_model(build_model(model_spec("resnet20", 10, 0.25)), fresh=True)
    torch.testing.assert_close(model.conv_stem.weight, source.conv_stem.weight)
    logs = run.read_log_tail()
    assert len(named_gates(model)) == 18 and any("backbone initialised from run base" in line for line in logs)
    assert method.lineage() == {"parent_run": "base", "parent_epochs_total": 3}  # by run id, with its budget
    wrong = Trainer(tiny_config("manidp", init_from=str(tmp_path / "base"), **fields), run).method
    with pytest.raises(ValueError, match="backbone keys differ"):
        wrong.prepare_model(build_model(model_spec("resnet20", 10, 0.5)), fresh=True)


@pytest.fixture(scope="module")
def mani_run(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    # the prunelab form: pair-quantile thresholds, post-ReLU R (the reference form: test_reference_form.py)
    config = tiny_config("manidp", epochs=2, train_size=150, test_size=60, model="resnet20", width=0.25,
                         probe_size=20, target_density=0.5, form="prunelab")
    run = RunStore(tmp_path_factory.mktemp("runs")).create(config)
    with pytest.MonkeyPatch.context() as patch:  # fewer sliced / timed images keep the test short
        patch.setattr("prunelab.methods.manidp.method.VERIFY_IMAGES", 6)
        patch.setattr("prunelab.methods.manidp.method.LATENCY_IMAGES", 4)
        summary = run_training(config, run)
    return config, run, summary


@pytest.mark.slow
def test_end_to_end_artefacts(mani_run: tuple) -> None:
    _, run, summary = mani_run
    table = pd.read_parquet(run.file("per_image.parquet"))
    info = json.loads(run.file("manidp.json").read_text())
    layers = info["layers"]
    assert len(layers) == 18 and len(info["thresholds"]) == 18
    fixed = ["index", "label", "pred", "loss", "correct", "difficulty", "macs", "gate_macs"]
    assert list(table.columns) == [*fixed, *[f"density_{name}" for name in layers]]
    assert len(table) == 60 and table["index"].tolist() == list(range(60))
    assert (table["macs"] <= info["macs_dense"]).all() and table["difficulty"].notna().all()
    assert summary["macs_per_image"] == pytest.approx(table["macs"].mean())
    assert summary["macs_reduction"] == pytest.approx(1 - table["macs"].mean() / info["macs_dense"])
    assert summary["test_acc"] == pytest.approx(table["correct"].mean())
    assert info["macs_verification"]["passed"] and info["macs_verification"]["images_checked"] == 6
    assert info["executor_verification"]["passed"]
    for key in ("gate_macs_per_image", "latency_ms_b1_dense", "latency_ms_b1_sparse", "spearman_macs_loss",
                "spearman_macs_difficulty"):
        assert key in summary
    assert not {k for k in np.load(run.file("probe.npz")).files if k[:2] in ("T_", "R_")}  # derived, not stored
    probe = probe_arrays(run.path)
    assert probe["indices"].shape == (20,) and list(probe["layer_names"]) == layers
    assert np.all(np.diff(probe["labels"]) >= 0)
    gaps = []
    for i, channels in enumerate(info["channels"]):
        assert probe[f"gates_{i}"].shape == probe[f"features_{i}"].shape == (20, channels)
        assert probe[f"T_{i}"].shape == probe[f"R_{i}"].shape == (20, 20)
        assert probe[f"R_{i}"].min() >= -1e-6 and probe[f"features_{i}"].min() >= 0  # R from passed-on features
        np.testing.assert_allclose(np.diag(probe[f"R_{i}"]), 1.0, atol=1e-3)
        gaps.append(np.linalg.norm(probe[f"T_{i}"] - probe[f"R_{i}"]))
    assert summary["similarity_gap_mean"] == pytest.approx(float(np.mean(gaps)), rel=1e-5)
    assert summary["macs_per_image_with_gates"] == pytest.approx(summary["macs_per_image"] + info["gate_macs"])
    assert summary["epochs_total"] == 2 and summary["parent_run"] is None


@pytest.mark.slow
def test_metrics_log_every_term_and_the_schedule(mani_run: tuple) -> None:
    _, run, summary = mani_run
    rows = run.read_metrics()
    assert [r["epoch"] for r in rows] == [1, 2]
    for key in ("sparsity", "similarity", "similarity_objective", "eta", "complexity_c", "train_macs_per_image",
                "train_density", "test_density", "test_macs"):
        assert all(key in r for r in rows)
    # 3 steps an epoch: eta reaches the target after 3 of the 6 steps, i.e. by the end of epoch 1
    assert rows[0]["eta"] == pytest.approx(remain_rate(3, 6, 0.5)) == pytest.approx(0.5)
    # every logged test accuracy is that of the model as saved, and says at which density it was measured
    assert rows[-1]["test_acc"] == pytest.approx(summary["test_acc"])
    assert rows[-1]["test_density"] == pytest.approx(summary["density_mean"], abs=1e-6)
    assert rows[-1]["test_macs"] == pytest.approx(summary["macs_per_image"], rel=1e-6)
    assert 0.35 < rows[-1]["test_density"] < 0.65  # the mean density follows eta = 0.5
    assert json.loads(run.file("manidp.json").read_text())["eta"] == pytest.approx(0.5)  # final calibration
    assert rows[1]["complexity_c"] == pytest.approx(0.5 * rows[0]["train_ce"])  # C from the previous epoch


@pytest.mark.slow
def test_load_model_round_trip(mani_run: tuple) -> None:
    _, run, _ = mani_run
    model = prunelab.load_model(run.path)
    info = json.loads(run.file("manidp.json").read_text())
    assert get_thresholds(model) == pytest.approx(info["thresholds"])
    from prunelab.data import load_dataset, normalize

    config = run.read_config()
    data = load_dataset(config.data)
    table = pd.read_parquet(run.file("per_image.parquet"))
    with torch.no_grad():
        logits = model(normalize(data.test_images[:10], data.mean, data.std))
    assert logits.argmax(1).tolist() == table["pred"][:10].tolist()


@pytest.mark.slow
def test_a_run_whose_executor_departs_from_the_masked_model_fails_naming_the_unit(tmp_path, monkeypatch) -> None:
    from prunelab.methods.manidp.executor import SparseExecutor
    from prunelab.methods.manidp.unit_trace import VerificationError

    class Broken(SparseExecutor):  # a wrong bias in block 4's second convolution
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__(model)
            self.units["blocks.4.gate_b"].conv.bias.add_(1.0)

    monkeypatch.setattr("prunelab.methods.manidp.method.SparseExecutor", Broken)
    monkeypatch.setattr("prunelab.methods.manidp.method.VERIFY_IMAGES", 2)
    config = tiny_config("manidp", train_size=100, test_size=20, model="resnet20", probe_size=10, form="prunelab")
    run = RunStore(tmp_path).create(config)
    with pytest.raises(VerificationError, match=r"sparse executor differs .* first at unit blocks\.4"):
        run_training(config, run)
    status = run.read_status()
    assert status["state"] == "failed" and "blocks.4" in status["error"]


@pytest.mark.slow
def test_parent_budget_counts_in_epochs_total(tmp_path) -> None:
    store = RunStore(tmp_path)
    parent_config = tiny_config("baseline", epochs=2, train_size=100, test_size=20, model="resnet20")
    parent = store.create(parent_config, "parent")
    run_training(parent_config, parent)
    config = tiny_config("manidp", epochs=1, train_size=100, test_size=20, model="resnet20", probe_size=10,
                         init_from="parent")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("prunelab.methods.manidp.method.VERIFY_IMAGES", 2)
        patch.setattr("prunelab.methods.manidp.method.LATENCY_IMAGES", 2)
        summary = run_training(config, store.create(config, "child"))
    assert summary["epochs"] == 1 and summary["epochs_total"] == 3 and summary["parent_run"] == "parent"

"""ManiDP's reference form against the authors' code, and each PruneLab departure as a switch.

Reference read: huawei-noah/Efficient-Computing, Pruning/ManiDP/models/resnet_cifar.py (MaskBlock,
MaskedBasicblock: gate init, width and clamp; which tensors are pooled for R) and Pruning/ManiDP/main.py
(train: the attached complexity weight and cal_similarity_loss; adjust_remain_rate and the threshold update).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from prunelab.config import RunConfig
from prunelab.methods.manidp.config import MANIDP_DEPARTURES, ManiDPConfig
from prunelab.methods.manidp.gates import (
    REFERENCE_CLAMP_MAX,
    ChannelGate,
    GateStyle,
    install_gates,
    named_gates,
    records,
)
from prunelab.methods.manidp.macs import build_plan
from prunelab.methods.manidp.method import ManiDP, channel_mean_threshold, reference_remain_rate
from prunelab.methods.manidp.report import gate_dynamism
from prunelab.models import build_model, model_spec
from prunelab.runs.artefacts import read_config_file
from prunelab.runs.store import RunDir, RunStore
from prunelab.training.engine import Trainer, run_training
from tests.helpers import run_cli, tiny_config

PRUNELAB = GateStyle(small_init=True, post_relu_features=True, gates_only_similarity=True)


def test_forms_set_every_departure_and_record_them() -> None:
    reference, prunelab = ManiDPConfig(form="reference"), ManiDPConfig(form="prunelab")
    assert reference.departures == []
    assert prunelab.departures == [d.name for d in MANIDP_DEPARTURES] and len(prunelab.departures) == 7
    # the reference's loss weights (main.py: lambda_lasso 0.1, lambda_graph 0.1); PruneLab's own
    assert (reference.lambda_prime, reference.gamma_sim) == (0.1, 0.1)
    assert (prunelab.lambda_prime, prunelab.gamma_sim) == (0.05, 3.0)
    one = ManiDPConfig(form="reference", detached_complexity_weight=True)
    assert one.departures == ["detached_complexity_weight"]
    dumped = RunConfig(method=one).model_dump(mode="json")
    assert dumped["method"]["departures"] == ["detached_complexity_weight"]  # recorded in config.json
    assert RunConfig.model_validate(dumped).method == one  # and read back


def test_a_config_written_before_forms_reads_as_the_prunelab_form(tmp_path: Path) -> None:
    raw = RunConfig(method=ManiDPConfig(form="prunelab")).model_dump(mode="json")
    legacy = {key: value for key, value in raw["method"].items()
              if key not in {"form", "departures", *(d.field for d in MANIDP_DEPARTURES)}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**raw, "method": legacy}))
    config = read_config_file(path)
    assert config.method.form == "prunelab" and len(config.method.departures) == 7


def test_cli_form_flag_and_a_single_departure_flag(tmp_path: Path) -> None:
    from prunelab.cli.args import config_from_args
    from prunelab.cli.main import build_parser

    parser = build_parser()
    args = parser.parse_args(["run", "manidp", "--form", "prunelab"])
    assert config_from_args("manidp", args).method.departures == [d.name for d in MANIDP_DEPARTURES]
    args = parser.parse_args(["run", "manidp", "--detached-complexity-weight"])
    assert config_from_args("manidp", args).method.departures == ["detached_complexity_weight"]
    code, _, err = run_cli("run", "manidp", "--form", "authors", "--runs-dir", str(tmp_path))
    assert code == 2 and "form" in err and "reference" in err


def test_gate_init_width_and_clamp_match_the_reference() -> None:
    torch.manual_seed(0)
    narrow, wide = ChannelGate(16, 32), ChannelGate(256, 256)
    # hidden width: out_channels // (squeeze_rate // 2) below 80 output channels, else out // squeeze_rate
    assert (narrow.fc1.out_features, wide.fc1.out_features) == (32, 128)
    assert narrow.fc1.bias is None and wide.fc1.bias is None  # fc1 = Linear(..., bias=False)
    assert torch.all(wide.fc2.bias == 1.0)
    # Kaiming-normal (fan_in, gain sqrt 2): std = sqrt(2 / fan_in)
    assert float(wide.fc1.weight.detach().std()) == pytest.approx(math.sqrt(2 / 256), rel=0.05)
    assert float(wide.fc2.weight.detach().std()) == pytest.approx(math.sqrt(2 / 128), rel=0.05)
    huge = torch.full((2, 256, 2, 2), 1e6)
    assert float(wide.saliency(huge).detach().max()) == REFERENCE_CLAMP_MAX  # clamp(mask_before, max=clamp_max)
    small = ChannelGate(16, 32, PRUNELAB)  # the departure: hidden C_in, a bias, a small second weight
    assert small.fc1.out_features == 16 and small.fc1.bias is not None
    assert float(small.fc2.weight.detach().std()) < 0.2 and math.isinf(small.clamp_max)


def _pre_mask_outputs(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Per block, conv_a's output after BN+ReLU and conv_b's after BN (before the mask), by forward hooks."""
    seen: dict[str, torch.Tensor] = {}
    for name, module in model.named_modules():
        if name.endswith(".bn_a"):
            module.register_forward_hook(lambda _m, _i, out, n=name: seen.__setitem__(n, torch.relu(out)))
        elif name.endswith(".bn_b"):
            module.register_forward_hook(lambda _m, _i, out, n=name: seen.__setitem__(n, out))
    return seen


def test_reference_r_is_pooled_from_the_same_tensors_as_the_reference() -> None:
    torch.manual_seed(0)
    model = install_gates(build_model(model_spec("resnet20", 10, 0.25))).train()
    seen = _pre_mask_outputs(model)
    model(torch.randn(6, 3, 32, 32))
    expected = [seen[name].mean(dim=(2, 3)) for name in seen]  # forward order: bn_a, bn_b of each block
    recs = records(model)
    assert len(recs) == len(expected) == 18
    for record, pooled in zip(recs, expected, strict=True):
        torch.testing.assert_close(record.features, pooled)
        assert record.features.requires_grad  # attached: the term reaches the backbone
    assert min(float(r.features.detach().min()) for r in recs[1::2]) < 0  # conv_b's pooled output is signed


def _similarity_grads(style: GateStyle, form: str, tmp_path: Path) -> tuple[float, float]:
    """(|grad| on the backbone's conv weights, on the gates) from the similarity term alone."""
    torch.manual_seed(0)
    model = install_gates(build_model(model_spec("resnet20", 10, 0.25)), style).train()
    config = tiny_config("manidp", train_size=100, test_size=20, model="resnet20", form=form)
    method = Trainer(config, RunDir(tmp_path / form)).method
    assert isinstance(method, ManiDP)
    method.plan, method.complexity_c = build_plan(model), 2.3
    images, labels = torch.randn(8, 3, 32, 32), torch.arange(8) % 10
    logits = model(images)
    ce = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    method.extra_loss(model, images, labels, logits, ce)["similarity"].backward()
    convs = [m.weight for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]
    gates = [p for _, gate in named_gates(model) for p in gate.parameters()]
    total = lambda params: sum(float(p.grad.abs().sum()) for p in params if p.grad is not None)
    return total(convs), total(gates)


def test_the_similarity_term_trains_the_backbone_only_in_the_reference_form(tmp_path: Path) -> None:
    backbone, gates = _similarity_grads(GateStyle(), "reference", tmp_path)
    assert backbone > 0 and gates > 0
    backbone, gates = _similarity_grads(PRUNELAB, "prunelab", tmp_path)
    assert backbone == 0 and gates > 0


@pytest.mark.parametrize(("form", "reaches"), [("reference", True), ("prunelab", False)])
def test_the_complexity_weight_sends_a_gradient_into_the_loss_only_in_the_reference_form(
        tmp_path: Path, form: str, reaches: bool) -> None:
    torch.manual_seed(0)
    style = GateStyle() if form == "reference" else PRUNELAB
    model = install_gates(build_model(model_spec("resnet20", 10, 0.25)), style).train()
    config = tiny_config("manidp", train_size=100, test_size=20, model="resnet20", form=form, similarity=False)
    method = Trainer(config, RunDir(tmp_path / form)).method
    assert isinstance(method, ManiDP)
    method.plan = build_plan(model)
    images = torch.randn(8, 3, 32, 32)
    logits = model(images)
    ce = torch.nn.functional.cross_entropy(logits, torch.arange(8) % 10, reduction="none").detach()
    ce = ce.clone().requires_grad_(True)  # a leaf: where the sparsity term's gradient lands
    method.complexity_c = float(ce.detach().max()) + 1.0  # every image easier than C: every weight depends on CE_i
    method.extra_loss(model, images, torch.arange(8) % 10, logits, ce)["sparsity"].backward()
    got = ce.grad is not None and float(ce.grad.abs().sum()) > 0
    assert got is reaches
    if reaches:  # d/dCE_i of lambda' (C - CE_i) / C * s_i / N = -lambda' s_i / (C N) < 0
        assert bool((ce.grad < 0).all())


def test_reference_remain_rate_and_channel_mean_threshold_against_the_formulas() -> None:
    epochs, target = 5, 0.6
    rates = [reference_remain_rate(e, epochs, target) for e in range(epochs)]
    expected = [(1 - target) / 2 * math.cos(math.pi * (e + 1) / epochs) + (1 + target) / 2 for e in range(epochs)]
    assert rates == pytest.approx(expected) and rates[-1] == pytest.approx(target)
    means = torch.tensor([0.5, 0.1, 0.9, 0.3, 0.7, 0.2, 0.8])
    for eta in (1.0, 0.7, 0.5, 0.01):
        k = math.ceil(eta * 7)
        assert float(channel_mean_threshold(means, eta)) == sorted(means.tolist(), reverse=True)[k - 1]


def test_gate_dynamism_against_a_loop() -> None:
    rng = np.random.default_rng(0)
    masks = rng.random((40, 12)) < rng.random(12)
    macs = rng.integers(100, 200, size=40)
    figures = gate_dynamism(masks, macs)
    differ = 0
    for c in range(12):
        majority = masks[:, c].sum() * 2 >= 40
        differ += sum(int(masks[i, c] != majority) for i in range(40))
    assert figures["decision_disagreement"] == pytest.approx(differ / masks.size)
    assert figures["macs_cv"] == pytest.approx(np.std(macs) / np.mean(macs))
    assert gate_dynamism(np.ones((5, 3), bool), np.full(5, 7))["decision_disagreement"] == 0.0


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    store = RunStore(tmp_path_factory.mktemp("runs"))
    parent_config = tiny_config("baseline", epochs=1, train_size=150, test_size=60, model="resnet20")
    run_training(parent_config, store.create(parent_config, "parent"))
    config = tiny_config("manidp", epochs=3, train_size=150, test_size=60, model="resnet20", probe_size=20,
                         target_density=0.5, init_from="parent", form="reference")
    run = store.create(config, "child")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("prunelab.methods.manidp.method.VERIFY_IMAGES", 4)
        patch.setattr("prunelab.methods.manidp.method.LATENCY_IMAGES", 2)
        summary = run_training(config, run)
    return store, run, summary


@pytest.mark.slow
def test_a_reference_run_records_its_form_dynamism_and_the_parent_loss(reference_run: tuple) -> None:
    store, run, summary = reference_run
    assert summary["form"] == "reference" and summary["departures"] == []
    table = pd.read_parquet(run.file("per_image.parquet"))
    assert 0.0 <= summary["decision_disagreement"] <= 0.5 and summary["macs_cv"] >= 0
    assert summary["macs_cv"] == pytest.approx(table["macs"].std(ddof=0) / table["macs"].mean(), rel=1e-5)
    # parent_loss: the parent model's own cross-entropy on each test image, in dataset order
    import prunelab
    from prunelab.data import load_dataset, normalize

    parent = prunelab.load_model(store.root / "parent").eval()
    data = load_dataset(run.read_config().data)
    with torch.no_grad():
        logits = parent(normalize(data.test_images[:8], data.mean, data.std))
    expected = torch.nn.functional.cross_entropy(logits, data.test_labels[:8], reduction="none")
    np.testing.assert_allclose(table["parent_loss"][:8], expected.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_reference_thresholds_open_for_the_first_epoch_then_follow_the_epoch_cosine(reference_run: tuple) -> None:
    _, run, _ = reference_run
    rows = run.read_metrics()
    assert [r["eta"] for r in rows] == pytest.approx([reference_remain_rate(e, 3, 0.5) for e in range(3)])
    assert rows[0]["threshold_mean"] == 0.0  # main.py sets thresholds only after epochs >= 1 (0-based)
    assert rows[1]["threshold_mean"] > 0.0 and rows[2]["threshold_mean"] > 0.0
    info = json.loads(run.file("manidp.json").read_text())
    assert info["eta"] == pytest.approx(0.5)
    for key in ("train_macs_easy", "train_macs_hard"):
        assert all(key in r for r in rows)


def test_the_method_card_shows_the_formulas_each_form_computes() -> None:
    from prunelab.analysis.method_card import method_card

    reference = method_card(ManiDPConfig(form="reference"))
    assert reference.departures == [] and "reference form" in reference.title
    text = {f.label: f.latex for f in reference.formulas}
    assert r"\mathrm{sg}" not in text["complexity weight"] and "CE_i" in text["complexity weight"]
    assert r"\mathrm{sg}" not in text["similarity"] and "1000" in text["gate"]
    assert r"\lceil\eta(e)c_l\rceil" in text["thresholds"]
    prunelab = method_card(ManiDPConfig(form="prunelab"))
    assert [d.name for d in prunelab.departures] == [d.name for d in MANIDP_DEPARTURES]
    text = {f.label: f.latex for f in prunelab.formulas}
    assert r"\mathrm{sg}(CE_i)" in text["complexity weight"] and r"\mathrm{ReLU}(F^l)" in text["similarity"]
    assert r"\cos_\epsilon" in text["similarity"] and "quantile" in text["thresholds"]
    one = method_card(ManiDPConfig(form="reference", detached_complexity_weight=True, similarity=False))
    assert [d.name for d in one.departures] == ["detached_complexity_weight"]
    assert {f.label: f.latex for f in one.formulas}["similarity"] == "L_{sim}=0"


@pytest.mark.parametrize("form", ["reference", "prunelab"])
def test_the_what_if_recalibrates_with_the_runs_own_threshold_rule(tmp_path: Path, form: str) -> None:
    from prunelab.methods.manidp.method import threshold_tensor

    config = tiny_config("manidp", train_size=100, test_size=20, model="resnet20", form=form)
    method = Trainer(config, RunDir(tmp_path / form)).method
    assert isinstance(method, ManiDP)
    saliencies = torch.rand(50, 16) * torch.linspace(0.1, 2.0, 16)
    expected = (channel_mean_threshold(saliencies.mean(dim=0), 0.6) if form == "reference"
                else threshold_tensor(saliencies, 0.6))
    assert float(method.threshold_at(saliencies, 0.6)) == pytest.approx(float(expected))


def test_relative_macs_by_quintile_and_the_gap_against_a_loop() -> None:
    from prunelab.methods.manidp.report import quintile_gap, relative_macs_by_quintile

    rng = np.random.default_rng(1)
    difficulty = rng.random(103)
    macs = 1000 + 500 * difficulty + rng.normal(0, 20, 103)  # harder images cost more
    order = np.argsort(difficulty, kind="stable")
    bins = np.array_split(order, 5)
    expected = [float(np.mean(macs[b] / macs.mean())) for b in bins]
    np.testing.assert_allclose(relative_macs_by_quintile(macs, difficulty), expected)
    assert quintile_gap(macs, difficulty) == pytest.approx(expected[-1] - expected[0]) and expected[-1] > expected[0]
    assert quintile_gap(np.full(50, 7.0), rng.random(50)) == pytest.approx(0.0)  # a static sub-network


def test_rank_correlation_of_t_and_r_over_pairs() -> None:
    from scipy.stats import spearmanr

    from prunelab.methods.manidp.report import similarity_rank_correlation

    rng = np.random.default_rng(2)
    r = rng.random((6, 6))
    r = (r + r.T) / 2
    t = r ** 3  # a monotone function of R: rho = 1 over the pairs
    assert similarity_rank_correlation([t], [r]) == pytest.approx(1.0)
    noise = rng.random((6, 6))
    rows, cols = np.triu_indices(6, k=1)
    expected = spearmanr((noise + noise.T)[rows, cols], r[rows, cols]).statistic
    assert similarity_rank_correlation([noise + noise.T, t], [r, r]) == pytest.approx((expected + 1.0) / 2)


def test_accuracy_at_a_matched_reduction_interpolates_along_the_curve() -> None:
    from prunelab.methods.manidp.evidence import accuracy_at

    curve = pd.DataFrame({"macs_reduction": [0.5, 0.1, 0.3], "test_acc": [0.6, 0.8, 0.7]})
    assert accuracy_at(curve, 0.4) == pytest.approx(0.65)
    assert accuracy_at(curve, 0.1) == pytest.approx(0.8) and accuracy_at(curve, 0.6) is None


def test_backfilled_parent_loss_equals_the_one_training_wrote(reference_run: tuple, tmp_path: Path) -> None:
    """scripts/backfill_evidence.py --parents: a run made before ManiDP wrote parent_loss gets the same column
    from its parent's model.pt, lined up by test index, with its source recorded and the quintile gap added."""
    import shutil

    from scripts.backfill_evidence import main as backfill_main

    store, run, summary = reference_run
    shipped = tmp_path / "shipped"
    shutil.copytree(run.path, shipped / run.path.name)
    per_image = shipped / run.path.name / "per_image.parquet"
    written = pd.read_parquet(per_image)
    pd.read_parquet(per_image).drop(columns=["parent_loss"]).to_parquet(per_image)
    old = {k: v for k, v in summary.items() if k != "complexity_quintile_gap"}
    (shipped / run.path.name / "summary.json").write_text(json.dumps(old))
    assert backfill_main([str(shipped), "--parents", str(store.root)]) == 0
    again = pd.read_parquet(per_image)
    np.testing.assert_allclose(again["parent_loss"], written["parent_loss"], rtol=1e-4, atol=1e-5)
    after = json.loads((shipped / run.path.name / "summary.json").read_text())
    assert "retrained parent parent" in after["parent_loss_source"]
    assert after["complexity_quintile_gap"] == pytest.approx(summary["complexity_quintile_gap"], abs=1e-4)

"""ManiDP gates: architecture, open initialisation, masks pi * 1[pi >= xi], placement in VGG and ResNet."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from prunelab.methods.manidp.gates import (
    COSINE_EPS,
    OPEN_BIAS,
    ChannelGate,
    GateStyle,
    cosine_matrix,
    gate_hidden,
    get_thresholds,
    install_gates,
    named_gates,
    normalized_cosine_matrix,
    records,
    set_thresholds,
    threshold_mask,
)
from prunelab.models import BasicBlock, ConvUnit, NoGate, build_model, model_spec

PRUNELAB = GateStyle(small_init=True, post_relu_features=True, gates_only_similarity=True)  # form "prunelab"


def gated(name: str, width: float = 0.25) -> torch.nn.Module:
    """A gated model whose gates have trained-looking (random) second layers instead of the open init."""
    torch.manual_seed(0)
    model = install_gates(build_model(model_spec(name, 10, width))).eval()
    for _, gate in named_gates(model):
        torch.nn.init.normal_(gate.fc2.weight, 0.0, 0.2)
    return model


def reference_saliency(gate: ChannelGate, inputs: torch.Tensor) -> torch.Tensor:
    pooled = inputs.mean(dim=(2, 3))
    bias = gate.fc1.bias if gate.fc1.bias is not None else 0.0
    hidden = torch.clamp(pooled @ gate.fc1.weight.T + bias, min=0)
    return torch.clamp(hidden @ gate.fc2.weight.T + gate.fc2.bias, min=0, max=gate.clamp_max)


def test_small_gate_init_architecture_and_open_initialisation() -> None:
    """The departure small_gate_init (form prunelab); the reference's init: test_reference_form.py."""
    gate = ChannelGate(64, 32, PRUNELAB)
    assert (gate.fc1.in_features, gate.fc1.out_features, gate.fc2.out_features) == (64, 32, 32)
    # squeeze ratio 1 for narrow layers, else 2
    assert gate_hidden(16, 8, small_init=True) == 16 and gate_hidden(64, 8, small_init=True) == 32
    assert torch.all(gate.fc2.bias == OPEN_BIAS) and 0.05 < float(gate.fc2.weight.detach().std()) < 0.2
    inputs, outputs = torch.rand(3, 64, 4, 4), torch.randn(3, 32, 4, 4)
    gated_out = gate(inputs, outputs)
    record = gate.record
    assert record is not None and record.mask.all()  # every channel starts open ...
    pi = record.saliency.detach()
    assert float((pi - 1).abs().max()) < 0.5  # ... with pi near 1, so the network starts near the plain one
    assert not torch.allclose(pi[0], pi[1])  # ... but not identical across images (see GATE_INIT_STD)
    torch.testing.assert_close(gated_out, outputs * pi[:, :, None, None])
    # R's features are the pooled features the layer passes on, after its activation: never negative
    torch.testing.assert_close(record.features, torch.relu(outputs).mean(dim=(2, 3)))


def test_mask_is_pi_times_indicator_with_a_keep_one_guard() -> None:
    pi = torch.tensor([[0.1, 0.5, 0.9, 0.3], [0.2, 0.1, 0.05, 0.0]])
    mask = threshold_mask(pi, 0.3)
    assert mask.tolist() == [[False, True, True, True], [True, False, False, False]]  # row 2: argmax only
    open_mask = threshold_mask(torch.tensor([[0.0, 0.2, 0.0], [0.0, 0.0, 0.0]]), 0.0)
    assert open_mask.tolist() == [[False, True, False], [True, False, False]]  # pi = 0 is pruned at xi = 0
    gate = ChannelGate(8, 4)
    torch.nn.init.normal_(gate.fc2.weight)
    gate.threshold.fill_(0.95)
    inputs, outputs = torch.randn(5, 8, 3, 3), torch.randn(5, 4, 3, 3)
    out = gate(inputs, outputs)
    pi_ref = reference_saliency(gate, inputs)
    keep = (pi_ref >= 0.95).float()
    keep[torch.arange(5), pi_ref.argmax(1)] = 1.0
    torch.testing.assert_close(out, outputs * (pi_ref * keep)[:, :, None, None])


def test_vgg_gates_sit_on_every_conv_unit_and_see_the_unit_input() -> None:
    model = gated("vgg11")
    units = [u for u in model.features if isinstance(u, ConvUnit)]
    names = [name for name, _ in named_gates(model)]
    assert len(names) == len(units) == 8 and names[0] == "features.0.gate"
    seen = {}
    unit = units[2]
    unit.register_forward_pre_hook(lambda m, args: seen.update(unit_in=args[0]))
    unit.gate.register_forward_pre_hook(lambda m, args: seen.update(gate_in=args[0], gate_out=args[1]))
    x = torch.randn(2, 3, 32, 32)
    model(x)
    assert seen["gate_in"] is seen["unit_in"]
    torch.testing.assert_close(seen["gate_out"], torch.relu(unit.bn(unit.conv(seen["unit_in"]))))
    for u in units:
        assert (u.gate.in_channels, u.gate.out_channels) == (u.conv.in_channels, u.conv.out_channels)


def test_resnet_masks_conv_a_after_relu_and_conv_b_before_the_residual_add() -> None:
    model = gated("resnet20")
    assert len(named_gates(model)) == 2 * len(model.blocks)  # stem and shortcuts are not gated
    block: BasicBlock = model.blocks[3]  # a downsampling block with a projection shortcut
    assert isinstance(block.shortcut, torch.nn.Sequential)
    channels = block.conv_a.in_channels
    x = torch.rand(4, channels, 32, 32) * torch.rand(4, channels, 1, 1) * 4  # post-ReLU-like, varied pools
    with torch.no_grad():
        pre_a = torch.relu(block.bn_a(block.conv_a(x)))
        pi_a = reference_saliency(block.gate_a, x)
        block.gate_a.threshold.fill_(float(pi_a.median()))
        mid = pre_a * (pi_a * threshold_mask(pi_a, block.gate_a.threshold))[:, :, None, None]
        pre_b = block.bn_b(block.conv_b(mid))
        pi_b = reference_saliency(block.gate_b, mid)  # gate_b sees the masked conv_a output
        block.gate_b.threshold.fill_(float(pi_b.median()))
        expected = torch.relu(pre_b * (pi_b * threshold_mask(pi_b, block.gate_b.threshold))[:, :, None, None]
                              + block.shortcut(x))
        torch.testing.assert_close(block(x), expected)
    assert not threshold_mask(pi_a, block.gate_a.threshold).all()


def test_install_is_idempotent_and_thresholds_round_trip_through_state_dict() -> None:
    model = gated("resnet20")
    gates = [g for _, g in named_gates(model)]
    install_gates(model)
    assert [g for _, g in named_gates(model)] == gates
    values = [0.1 * i for i in range(len(gates))]
    set_thresholds(model, values)
    fresh = install_gates(build_model(model_spec("resnet20", 10, 0.25)))
    fresh.load_state_dict(model.state_dict())
    assert get_thresholds(fresh) == pytest.approx(values)
    assert not any(isinstance(b.gate_a, NoGate) for b in fresh.blocks)


@pytest.mark.parametrize(("style", "attached"), [(GateStyle(), True), (PRUNELAB, False)])
def test_records_hold_saliency_features_and_masks(style: GateStyle, attached: bool) -> None:
    torch.manual_seed(0)
    model = install_gates(build_model(model_spec("vgg11", 10, 0.25)), style).train()
    model(torch.randn(3, 3, 32, 32))
    for (_, gate), record in zip(named_gates(model), records(model), strict=True):
        assert record.saliency.shape == record.features.shape == record.mask.shape == (3, gate.out_channels)
        # reference: R's features stay attached (the term trains the backbone); gates_only_similarity: detached
        assert record.mask.dtype == torch.bool and record.features.requires_grad is attached


def test_cosine_matrix_matches_a_loop() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.random((6, 5)).astype(np.float32)
    vectors[2] = 0.0  # an all-zero gate vector has cosine 0 with everything
    expected = np.zeros((6, 6))
    for i in range(6):
        for j in range(6):
            norms = np.sqrt((vectors[i] @ vectors[i] + COSINE_EPS**2) * (vectors[j] @ vectors[j] + COSINE_EPS**2))
            expected[i, j] = vectors[i] @ vectors[j] / norms
    np.testing.assert_allclose(cosine_matrix(torch.from_numpy(vectors)).numpy(), expected, atol=1e-6)
    rows = torch.from_numpy(vectors)  # for vectors much longer than eps: the plain cosine
    torch.testing.assert_close(cosine_matrix(rows)[0, 1], F.cosine_similarity(rows[:1], rows[1:2])[0],
                               atol=2e-4, rtol=0)
    zero = torch.zeros(2, 4, requires_grad=True)  # a dead gate vector: finite, bounded gradient
    cosine_matrix(zero).sum().backward()
    assert zero.grad is not None and torch.isfinite(zero.grad).all()


@pytest.mark.parametrize("name", ["vgg11", "resnet20"])
def test_feature_similarity_r_is_never_negative_in_training(name: str) -> None:
    """post_relu_similarity_features: R^l from features after the activation (conv_b is signed before it)."""
    torch.manual_seed(0)
    model = install_gates(build_model(model_spec(name, 10, 0.25)), PRUNELAB).train()
    model(torch.randn(16, 3, 32, 32))
    for record in records(model):
        assert float(record.features.min()) >= 0.0
        assert float(cosine_matrix(record.features).min()) >= -1e-6


@pytest.mark.parametrize("name", ["vgg11", "resnet20"])
@pytest.mark.slow
@pytest.mark.timeout(1200)  # vgg11: 78 s on a loaded 2-core machine, the slowest non-browser test
def test_optimising_the_similarity_term_alone_lowers_t_minus_r(name: str) -> None:
    """On a fixed batch, SGD on the similarity term (gate parameters, form prunelab) brings T toward R."""
    from prunelab.methods.manidp.method import similarity_loss

    torch.manual_seed(0)
    model = install_gates(build_model(model_spec(name, 10, 0.25)), PRUNELAB).train()
    images = torch.rand(24, 3, 32, 32) * torch.rand(24, 3, 1, 1) * 3  # images of varied colour and contrast
    params = [p for _, gate in named_gates(model) for p in gate.parameters()]
    optimizer = torch.optim.SGD(params, lr=0.2, momentum=0.9)

    def gap() -> float:
        with torch.no_grad():
            model(images)
            return sum(float(torch.linalg.matrix_norm(cosine_matrix(r.saliency) - cosine_matrix(r.features)))
                       for r in records(model))

    before = gap()
    for _ in range(100):
        model(images)
        recs = records(model)
        loss = similarity_loss([r.own_saliency for r in recs], [r.features for r in recs])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert gap() < 0.6 * before  # measured: vgg11 59.6 -> 22.5, resnet20 90.3 -> 43.4


@pytest.mark.parametrize("smoothed", [False, True])
def test_the_probe_reader_derives_t_and_r_as_the_training_code_computes_them(smoothed: bool) -> None:
    """artefacts.cosine_rows (numpy, the reader) against cosine_matrix / normalized_cosine_matrix (torch, training),
    a near-dead and an all-zero row included."""
    from prunelab.methods.manidp.artefacts import COSINE_EPS as READER_EPS
    from prunelab.methods.manidp.artefacts import cosine_rows

    vectors = torch.rand(12, 7)
    vectors[3] = 1e-4
    vectors[5] = 0.0
    expected = cosine_matrix(vectors) if smoothed else normalized_cosine_matrix(vectors)
    derived = cosine_rows(vectors.numpy(), READER_EPS if smoothed else None)
    assert derived.dtype == np.float32
    np.testing.assert_allclose(derived, expected.numpy(), rtol=1e-6, atol=1e-6)

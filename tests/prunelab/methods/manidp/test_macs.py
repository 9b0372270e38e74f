"""Per-image MACs from the masks agree exactly with FlopCounterMode on the physically sliced sub-network."""

from __future__ import annotations

import pytest
import torch

from prunelab.methods.manidp.gates import gates_of, install_gates, records, set_thresholds
from prunelab.methods.manidp.macs import FULL, active_counts, build_plan, slice_for_image, verify_macs
from prunelab.models import ConvUnit, build_model, model_spec
from prunelab.training.flops import count_macs


def gated_with_half_masks(name: str, images: torch.Tensor) -> torch.nn.Module:
    """A gated model with perturbed BN statistics and thresholds at the median saliency of `images`."""
    torch.manual_seed(1)
    model = install_gates(build_model(model_spec(name, 10, 0.25))).eval()
    for gate in gates_of(model):  # trained-looking gates instead of the open initialisation
        torch.nn.init.normal_(gate.fc2.weight, 0.0, 0.2)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0.0, 0.1)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_(0.0, 0.2)
    with torch.no_grad():
        model(images)
    set_thresholds(model, [float(r.saliency.median()) for r in records(model)])
    return model


@pytest.mark.parametrize("name", ["vgg11", "resnet20"])
def test_mask_formula_equals_flop_counter_on_the_sliced_network(name: str) -> None:
    images = torch.randn(4, 3, 32, 32)
    model = gated_with_half_masks(name, images)
    with torch.no_grad():
        model(images)
    counts = active_counts([r.mask for r in records(model)])
    plan = build_plan(model)
    assert (counts < torch.tensor(plan.gate_channels)).any()  # masks really prune something
    check = verify_macs(model, images, plan)
    assert check == {**check, "images_checked": 4, "max_abs_diff": 0, "passed": True, "output_passed": True}
    macs = plan.macs(counts)
    assert len(set(macs.tolist())) > 1 and (macs < plan.dense_macs()).all()


@pytest.mark.parametrize("name", ["vgg11", "resnet20"])
def test_sliced_network_is_built_with_build_model_and_reproduces_the_masked_model(name: str) -> None:
    images = torch.randn(2, 3, 32, 32)
    model = gated_with_half_masks(name, images)
    sliced, logits = slice_for_image(model, images[:1])
    assert type(sliced) is type(model)
    torch.testing.assert_close(sliced(images[:1]), logits, atol=1e-5, rtol=1e-4)
    kept = [int(r.mask[0].sum()) for r in records(model)]
    if name == "vgg11":
        widths = [u.conv.out_channels for u in sliced.features if isinstance(u, ConvUnit)]
        assert widths == kept
    else:
        assert [b.conv_a.out_channels for b in sliced.blocks] == kept[0::2]
        assert [b.conv_b.out_channels for b in sliced.blocks] == kept[1::2]


def test_plan_dense_and_gate_macs_match_the_flop_counter() -> None:
    for name in ("vgg11", "resnet20"):
        plain = build_model(model_spec(name, 10, 0.25))
        dense = count_macs(plain)
        model = install_gates(plain)
        plan = build_plan(model)
        assert plan.dense_macs() == dense
        assert plan.gate_macs == count_macs(model) - dense  # the gates' own Linear layers


def test_formula_by_hand_for_the_first_vgg_conv_and_the_classifier() -> None:
    model = install_gates(build_model(model_spec("vgg11", 10, 0.25)))
    plan = build_plan(model)
    first, classifier = plan.terms[0], plan.terms[-1]
    assert (first.coef, first.in_gate, first.in_width, first.out_gate) == (3 * 3 * 32 * 32, FULL, 3, 0)
    assert (classifier.coef, classifier.in_gate, classifier.out_gate) == (1, len(plan.gate_names) - 1, FULL)
    counts = torch.tensor([list(plan.gate_channels), [1] * len(plan.gate_channels)])
    macs = plan.macs(counts)
    assert int(macs[0]) == plan.dense_macs()
    expected = 9 * 32 * 32 * 3 * 1 + 10 * 1  # first conv from the image + classifier
    for term in plan.terms[1:-1]:
        expected += term.coef * 1 * 1
    assert int(macs[1]) == expected


def test_active_counts() -> None:
    masks = [torch.tensor([[True, False, True], [False, False, True]]), torch.tensor([[True], [True]])]
    assert active_counts(masks).tolist() == [[2, 1], [1, 1]]

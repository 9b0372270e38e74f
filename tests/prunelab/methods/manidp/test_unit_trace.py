"""Locating where a re-implementation of a gated network departs from the masked model."""

from __future__ import annotations

import pytest
import torch

from prunelab.methods.manidp.executor import SparseExecutor
from prunelab.methods.manidp.gates import GateStyle, install_gates, named_gates
from prunelab.methods.manidp.unit_trace import describe_divergence, first_divergent_unit, unit_outputs
from prunelab.models import build_model, model_spec


def gated(name: str) -> torch.nn.Module:
    """Gates with trained-looking second layers on logits of order 1 (small init: the reference's Kaiming
    init on random backbones grows the logits to 1e2 and more, where 1e-3 is no tolerance to test with)."""
    torch.manual_seed(0)
    model = install_gates(build_model(model_spec(name, 10, 0.25)), GateStyle(small_init=True)).eval()
    for _, gate in named_gates(model):
        torch.nn.init.normal_(gate.fc2.weight, 0.0, 0.3)
        gate.threshold.fill_(0.9)
    return model


def test_first_divergent_unit_compares_kept_channels_of_sliced_outputs() -> None:
    full = torch.zeros(1, 4, 2, 2)
    full[:, [0, 2]] = 1.0
    reference = {"a": (full, torch.tensor([0, 2])), "b": (torch.ones(1, 3, 1, 1), None)}
    same = {"a": torch.ones(1, 2, 2, 2), "b": torch.ones(1, 3, 1, 1)}
    assert first_divergent_unit(reference, same, 1e-6) is None
    off = {"a": torch.ones(1, 2, 2, 2), "b": torch.ones(1, 3, 1, 1) * 1.5}
    assert first_divergent_unit(reference, off, 1e-3) == ("b", pytest.approx(0.5))
    wrong_width = {"a": torch.ones(1, 3, 2, 2)}
    assert first_divergent_unit(reference, wrong_width, 1e-3)[0] == "a"


@pytest.mark.parametrize(("name", "unit", "break_it"), [
    ("vgg11", "features.4", lambda ex: ex.units["features.4.gate"].conv.bias.add_(1.0)),
    ("resnet20", "blocks.5", lambda ex: ex.units["blocks.5.gate_a"].conv.bias.add_(1.0)),
])
def test_a_broken_executor_is_located_at_its_unit(name: str, unit: str, break_it) -> None:
    model = gated(name)
    images = torch.randn(3, 3, 32, 32)
    executor = SparseExecutor(model)
    assert "no unit's output differs" in describe_divergence("the executor", model, images, executor, 1e-3)
    break_it(executor)
    message = describe_divergence("the sparse executor", model, images, executor, 1e-3)
    assert f"first at unit {unit} " in message and "tolerance 0.001" in message


def test_sliced_sub_networks_match_unit_by_unit() -> None:
    model = gated("resnet20")
    reference, logits = unit_outputs(model, torch.randn(1, 3, 32, 32))
    assert list(reference) == [f"blocks.{i}" for i in range(9)] and logits.shape == (1, 10)
    message = describe_divergence("the sliced sub-network", model, torch.randn(2, 3, 32, 32), "sliced", 1e-4)
    assert "no unit's output differs beyond the tolerance" in message

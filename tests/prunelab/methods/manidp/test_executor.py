"""The sparse executor runs only the active channels and matches the masked dense model."""

from __future__ import annotations

import pytest
import torch

from prunelab.methods.manidp.executor import SparseExecutor, max_abs_diff
from prunelab.methods.manidp.gates import install_gates, records, set_thresholds
from tests.prunelab.methods.manidp.test_macs import gated_with_half_masks


@pytest.mark.parametrize("name", ["vgg11", "resnet20"])
@pytest.mark.slow
def test_executor_equals_masked_dense_model(name: str) -> None:
    images = torch.randn(8, 3, 32, 32)
    model = gated_with_half_masks(name, images)
    executor = SparseExecutor(model)
    assert max_abs_diff(model, executor, images) < 1e-4
    with torch.no_grad():
        model(images)
    assert any(not r.mask.all() for r in records(model))


@pytest.mark.parametrize("name", ["vgg11", "resnet20"])
def test_executor_keeps_the_most_salient_channel_when_every_saliency_is_below_threshold(name: str) -> None:
    images = torch.randn(3, 3, 32, 32)
    model = gated_with_half_masks(name, images)
    set_thresholds(model, [1e6] * len(records(model)))
    with torch.no_grad():
        model(images)
    assert all(int(m) == 1 for r in records(model) for m in r.mask.sum(dim=1))
    assert max_abs_diff(model, SparseExecutor(model), images) < 1e-4


def test_executor_needs_a_gated_model_and_one_image() -> None:
    from prunelab.models import build_model, model_spec

    with pytest.raises(TypeError, match="gated model"):
        SparseExecutor(build_model(model_spec("resnet20", 10, 0.25)))
    executor = SparseExecutor(install_gates(build_model(model_spec("vgg11", 10, 0.25))))
    with pytest.raises(ValueError, match="one image"):
        executor(torch.randn(2, 3, 32, 32))

"""The inference paths of prunelab.speed compute what they replace (no timing here: see benchmarks/bench_speed.py).

- the batched sparse executor equals the masked gated model for several batch sizes and densities;
- BN folding leaves the function unchanged (static, compact and gated networks);
- every execution form (BN-folded, frozen TorchScript, channels-last, onnxruntime where installed) equals eager;
- the realistic-width builders use the real pruning decisions: a global threshold, calibrated gates.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prunelab.methods.manidp.gates import records, set_recording
from prunelab.methods.slimming.pruning import verify_compact
from prunelab.models import spec_of
from prunelab.speed.alignment import align_channels
from prunelab.speed.batched_executor import BatchedSparseExecutor, padded_union
from prunelab.speed.bn_folding import fold_bn
from prunelab.speed.forms import available_forms, build_form, max_abs_diff, onnxruntime_available
from prunelab.speed.workloads import calibrated_gated_network, random_network, slimmed_pair
from prunelab.training.flops import count_macs

WIDTH = 0.25  # tiny networks: the tests check functions, not speed


def relative_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


@pytest.fixture(scope="module")
def calibration() -> torch.Tensor:
    return torch.randn(48, 3, 32, 32, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def images() -> torch.Tensor:  # not the calibration images: no saliency sits exactly on a threshold
    return torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize("name", ["vgg11", "resnet20"])
@pytest.mark.parametrize("density", [0.3, 0.5, 0.8])
def test_batched_executor_equals_the_masked_model(name: str, density: float, calibration: torch.Tensor,
                                                  images: torch.Tensor) -> None:
    gated = calibrated_gated_network(random_network(name, WIDTH), density, calibration)
    layouts = (True, False) if density == 0.5 else (True,)
    for channels_last in layouts:
        executor = BatchedSparseExecutor(gated, channels_last=channels_last)
        for batch in (1, 3, 16):
            x = images[:batch]
            with torch.no_grad():
                expected = gated(x)
            assert relative_diff(executor(x), expected) < 1e-4, (name, density, batch, channels_last)


@pytest.mark.parametrize("name", ["vgg11", "resnet20"])
def test_batched_executor_computes_the_padded_union_and_no_more(name: str, calibration: torch.Tensor,
                                                                images: torch.Tensor) -> None:
    gated = calibrated_gated_network(random_network(name, WIDTH), 0.3, calibration)
    executor = BatchedSparseExecutor(gated, simd_channels=1)
    executor(images[:4])
    set_recording(gated, True)
    with torch.no_grad():
        gated(images[:4])
    unions = [int(r.mask.any(dim=0).sum()) for r in records(gated)]
    widths = [r.mask.shape[1] for r in records(gated)]
    computed = executor.last_widths
    if name == "vgg11":
        assert computed == unions
    else:  # conv_a on its union, conv_b at the full width of the residual stream
        assert computed[0::2] == unions[0::2] and computed[1::2] == widths[1::2]
    assert sum(computed) < sum(widths)  # the batch really skips channels


def test_padded_union_rounds_up_to_whole_blocks() -> None:
    keep = torch.zeros(3, 16, dtype=torch.bool)
    keep[0, [1, 5]] = True
    keep[2, [5, 9, 12]] = True
    assert padded_union(keep, 1).tolist() == [1, 5, 9, 12]
    assert padded_union(keep, 8).tolist() == [0, 1, 2, 3, 4, 5, 9, 12]  # 4 used + 4 spare = one block
    keep[1, :10] = True
    assert padded_union(keep, 8) is None  # 11 channels round up to 16: the whole layer


@pytest.mark.parametrize("name", ["vgg11", "resnet20"])
def test_bn_folding_keeps_the_function(name: str, calibration: torch.Tensor, images: torch.Tensor) -> None:
    dense = random_network(name, WIDTH)
    compact, _, _ = slimmed_pair(dense, 0.5)
    gated = calibrated_gated_network(dense, 0.5, calibration)
    for model in (dense, compact, gated):
        folded = fold_bn(model)
        assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
        assert spec_of(folded) == spec_of(model)
        with torch.no_grad():
            assert relative_diff(folded(images), model(images)) < 1e-5
    assert any(isinstance(m, nn.BatchNorm2d) for m in compact.modules())  # the original is untouched


@pytest.mark.parametrize("name", ["vgg11", "resnet20"])
@pytest.mark.slow
def test_every_execution_form_of_the_compact_network_equals_eager(name: str, images: torch.Tensor) -> None:
    compact, _, _ = slimmed_pair(random_network(name, 0.125), 0.5)
    forms = available_forms()
    assert {"eager", "bn_folded", "bn_folded_cl", "frozen", "frozen_cl"} <= set(forms)
    assert ("onnxruntime" in forms) == ("onnxruntime_aligned" in forms) == onnxruntime_available()
    with torch.no_grad():
        scale = float(compact(images).abs().max())
    for form in forms:
        forward = build_form(compact, form, images[:1], threads=1)
        for batch in (1, 5):  # built from a batch of one, run at any batch size
            assert max_abs_diff(forward, compact, images[:batch]) < 1e-4 * scale, (form, batch)
    with pytest.raises(ValueError, match="unknown form"):
        build_form(compact, "tensorrt", images[:1])


@pytest.mark.parametrize("name", ["vgg11", "resnet20"])
def test_channel_alignment_pads_with_zero_channels(name: str, images: torch.Tensor) -> None:
    compact, _, _ = slimmed_pair(random_network(name, 0.25), 0.5)
    aligned = align_channels(compact)
    spec = spec_of(aligned)
    prunable = ([w for w in spec["layers"] if w != "M"] if name == "vgg11"
                else [mid for mid, _, _ in spec["blocks"]])  # a ResNet's residual stream is never pruned
    assert all(w % 8 == 0 for w in prunable)
    assert spec_of(compact) != spec
    assert count_macs(aligned, (3, 32, 32)) > count_macs(compact, (3, 32, 32))  # the compact widths were odd
    with torch.no_grad():
        assert relative_diff(aligned(images), compact(images)) < 1e-5


@pytest.mark.parametrize("name", ["vgg16", "resnet56"])
def test_slimmed_pair_prunes_by_one_global_threshold(name: str, images: torch.Tensor) -> None:
    dense = random_network(name, WIDTH)
    compact, masked, facts = slimmed_pair(dense, 0.5)
    assert facts["channels_removed"] == round(0.5 * facts["channels_total"])
    kept = [layer["channels_after"] / layer["channels_before"] for layer in facts["layers"]]
    assert min(kept) < max(kept)  # one threshold over all layers, not 50% of every layer
    assert verify_compact(compact, masked, images)["passed"]


@pytest.mark.parametrize("density", [0.3, 0.7])
def test_gates_are_calibrated_to_the_target_density(density: float, calibration: torch.Tensor) -> None:
    gated = calibrated_gated_network(random_network("resnet20", WIDTH), density, calibration)
    set_recording(gated, True)
    with torch.no_grad():
        gated(calibration)
    densities = [float(r.mask.float().mean()) for r in records(gated)]
    assert all(abs(d - density) < 0.08 for d in densities), densities
    with pytest.raises(ValueError, match="density"):
        calibrated_gated_network(random_network("vgg11", WIDTH), 0.0, calibration)

"""Channel alignment: pad a pruned network's widths to a multiple of the CPU's vector width with zero channels.

A global threshold leaves widths such as 9, 37 or 141. onnxruntime's fast CPU convolutions (MLAS, NCHWc
layout) work on blocks of 8 channels on AVX2, and layers of other widths gain little: measured on the 2-core
reference machine, a compact ResNet-56 with such widths ran 1.22x (batch 1) and 1.01x (batch 64) faster
than the dense one under onnxruntime, and 1.41x and 1.38x once padded to whole blocks (docs/benchmarks.md,
"Speed"). `align_channels` rebuilds the network with every prunable width rounded up to `multiple`
(VGG: every conv unit; ResNet: the block-inner width, the residual stream is never pruned)
and fills the new channels with zeros: zero filters, BN scale and shift 0 (running variance 1), zero input
columns in the next layer. A zero channel outputs ReLU(0) = 0 and contributes nothing downstream, so the
function is unchanged; the aligned network does slightly more MACs than the compact one (a speedup measured on
it is still set against the compact network's MACs ratio, which is the conservative choice).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from prunelab.models import build_model, spec_of

SIMD_CHANNELS = 8  # float32 lanes of an AVX2 register: the channel block of onnxruntime's and oneDNN's kernels


def round_up(channels: int, multiple: int = SIMD_CHANNELS) -> int:
    return -(-int(channels) // multiple) * multiple


def aligned_spec(model: nn.Module, multiple: int = SIMD_CHANNELS) -> dict:
    """The spec of `model` with every prunable width rounded up to `multiple`."""
    spec = copy.deepcopy(spec_of(model))
    if spec["family"] == "vgg":
        spec["layers"] = [w if w == "M" else round_up(w, multiple) for w in spec["layers"]]
    else:
        spec["blocks"] = [[round_up(mid, multiple), out, stride] for mid, out, stride in spec["blocks"]]
    return spec


@torch.no_grad()
def align_channels(model: nn.Module, multiple: int = SIMD_CHANNELS) -> nn.Module:
    """A copy of the static `model` (eval mode) with zero channels appended up to whole `multiple`s."""
    aligned = build_model(aligned_spec(model, multiple)).to(next(model.parameters()).device).eval()
    target = aligned.state_dict()
    for key, value in model.state_dict().items():
        slot = target[key]
        if slot.shape == value.shape:
            slot.copy_(value)
            continue
        slot.fill_(1.0 if key.endswith("running_var") else 0.0)
        slot[tuple(slice(0, n) for n in value.shape)].copy_(value)
    aligned.load_state_dict(target)
    return aligned

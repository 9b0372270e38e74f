"""Execution forms of a static network on the CPU: the same function, run in different ways.

| form | what runs |
|---|---|
| `eager` | the `nn.Module` as trained: conv, BatchNorm and ReLU as separate PyTorch ops, NCHW |
| `bn_folded` | BatchNorm folded into the convolutions (`prunelab.speed.bn_folding`), eager, NCHW |
| `bn_folded_cl` | the same in channels-last memory format (oneDNN convolutions without layout reorders) |
| `frozen` | the BN-folded network traced and frozen by TorchScript: no Python between ops, NCHW |
| `frozen_cl` | the same in channels-last |
| `onnxruntime` | the BN-folded network exported to ONNX and run by onnxruntime (only where it is installed) |
| `onnxruntime_aligned` | the same after `alignment.align_channels`: widths padded with zero channels to blocks of 8 |

`build_form(model, form, example)` returns a callable `images [B, C, H, W] -> logits [B, K]` (a torch tensor
for every form); every form accepts any batch size. `torch.compile` is not among them: on the 2-core
reference machine compiling a dense and a compact ResNet-56 for one batch size took 104 s, and the compiled
dense network was slower at batch 1 than the frozen graph (10.6 against 8.8 ms), so the frozen TorchScript
graph stands for the compiled form.
"""

from __future__ import annotations

import copy
import importlib.util
import io
import warnings
from collections.abc import Callable

import torch
from torch import nn

from prunelab.export.onnx import INPUT_NAME, OUTPUT_NAME, run_onnx, session
from prunelab.speed.alignment import align_channels
from prunelab.speed.bn_folding import fold_bn

Forward = Callable[[torch.Tensor], torch.Tensor]
FORMS: tuple[str, ...] = ("eager", "bn_folded", "bn_folded_cl", "frozen", "frozen_cl", "onnxruntime",
                          "onnxruntime_aligned")
ONNX_FORMS = ("onnxruntime", "onnxruntime_aligned")
FORM_LABELS = {
    "eager": "eager (conv + BN)", "bn_folded": "BN folded", "bn_folded_cl": "BN folded, channels-last",
    "frozen": "frozen TorchScript graph", "frozen_cl": "frozen graph, channels-last", "onnxruntime": "onnxruntime",
    "onnxruntime_aligned": "onnxruntime, widths padded to 8",
}


def onnxruntime_available() -> bool:
    """True when both `onnx` (the exporter needs it) and `onnxruntime` are installed."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))


def available_forms() -> tuple[str, ...]:
    return tuple(f for f in FORMS if f not in ONNX_FORMS or onnxruntime_available())


class _ChannelsLast:
    """Runs `forward` on a channels-last copy of its input (the conversion is part of the form's cost)."""

    def __init__(self, forward: Forward) -> None:
        self.forward = forward

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward(images.contiguous(memory_format=torch.channels_last))


class _OnnxRuntime:
    """An onnxruntime session over an ONNX export with a dynamic batch axis; returns torch tensors."""

    def __init__(self, model: nn.Module, example: torch.Tensor, threads: int) -> None:
        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation notices
            torch.onnx.export(model, (example,), buffer, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}, dynamo=False)
        # the export module's session: no busy-waiting pool threads, which on 2 cores steal the CPU from
        # whatever runs next (the sparse executor timed right after onnxruntime: 38.6 ms spinning, 24.7 not)
        self.session = session(buffer.getvalue(), max(1, threads))

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(run_onnx(self.session, images.contiguous()))


def _frozen(model: nn.Module, example: torch.Tensor) -> Forward:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation notice
        return torch.jit.freeze(torch.jit.trace(model, example))


def build_form(model: nn.Module, form: str, example: torch.Tensor, threads: int | None = None) -> Forward:
    """`model` (a static PruneLab VGG or ResNet) in execution form `form`; `example` is one input batch
    (traced and exported forms are shape-generic in the batch size). `threads`: onnxruntime's intra-op
    threads (default: torch's current number)."""
    if form not in FORMS:
        raise ValueError(f"unknown form {form!r}; allowed: {', '.join(FORMS)}")
    model = copy.deepcopy(model).cpu().float().eval()
    example = example.detach().cpu().float()
    if form == "eager":
        return model
    folded = fold_bn(align_channels(model) if form == "onnxruntime_aligned" else model)
    if form == "bn_folded":
        return folded
    if form == "bn_folded_cl":
        return _ChannelsLast(folded.to(memory_format=torch.channels_last))
    if form == "frozen":
        return _frozen(folded, example)
    if form == "frozen_cl":
        channels_last = example.contiguous(memory_format=torch.channels_last)
        return _ChannelsLast(_frozen(folded.to(memory_format=torch.channels_last), channels_last))
    if not onnxruntime_available():
        raise RuntimeError("the onnxruntime form needs the onnx and onnxruntime packages")
    return _OnnxRuntime(folded, example, threads if threads is not None else torch.get_num_threads())


@torch.no_grad()
def max_abs_diff(forward: Forward, reference: nn.Module, images: torch.Tensor) -> float:
    """Largest |forward(x) - reference(x)| over the logits of `images` (reference in eval mode)."""
    reference.eval()
    return float((forward(images) - reference(images)).abs().max())

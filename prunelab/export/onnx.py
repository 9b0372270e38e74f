"""A run's final model as an ONNX file (`torch.onnx.export`), checked with onnxruntime against PyTorch.

What is exported is what `prunelab.load_model(run)` rebuilds from `model.pt`:
- a baseline: the plain network;
- Network Slimming: the compact, physically smaller network after fine-tuning;
- ManiDP: the dense network with its gates. ONNX has no per-image sparse execution: the file computes
  every channel of every gated layer and multiplies the pruned ones by zero (the masks), so its cost is
  the dense MACs plus the gates', whatever the per-image sub-networks are (`MANIDP_NOTE`).

`export_onnx(run, out)` first checks what it reads (config.json, summary.json, model.pt, which must belong
to this run: `prunelab.runs.model_file`), then writes a single file (weights inside, batch dimension dynamic)
through a temporary file in the same folder, runs it with onnxruntime on test images of the run's dataset and
keeps it only if its outputs match PyTorch's within `TOLERANCE`; `latency_comparison` times onnxruntime and
PyTorch on the CPU with `prunelab.training.latency.measure_latency_ms`.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from prunelab.config import METHOD_FACTS
from prunelab.export.common import (
    ExportError,
    check_writable_folder,
    failed,
    open_finished_run,
    run_artefact,
    sample_test_images,
)
from prunelab.methods.manidp.config import NAME as MANIDP
from prunelab.runs.artefacts import SUMMARY
from prunelab.runs.run_format import MODEL_FILE, SUMMARY_FILE, RunStoreError
from prunelab.runs.store import RunDir
from prunelab.training.latency import measure_latency_ms

TOLERANCE = 1e-3  # largest |onnxruntime - PyTorch| logit difference accepted, times max(1, max |logits|)
CHECK_IMAGES = 64
INPUT_NAME, OUTPUT_NAME = "images", "logits"
LATENCY_REPEATS = {1: 30, 64: 8}  # batch size -> timed repeats (median reported), as the slimming summary
KINDS = {name: facts.model_kind for name, facts in METHOD_FACTS.items()}  # what each method's model.pt is
NOTES = {name: facts.model_note for name, facts in METHOD_FACTS.items() if facts.model_note}
MANIDP_NOTE = next(iter(NOTES.values()), "")  # the dense-with-masks note (a gated method's facts)


@dataclass
class OnnxExport:
    """What was exported and how it was checked."""

    path: Path
    run_id: str
    method: str
    kind: str
    note: str | None
    bytes: int
    params: int
    macs_per_image: float | None  # what the file computes per image (ManiDP: dense + gates)
    opset: int
    images_checked: int
    checked_on: str
    max_abs_diff: float
    tolerance: float = TOLERANCE
    export_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path)}


def load_inference_model(run: RunDir) -> nn.Module:
    """`prunelab.load_model(run)` on the CPU in eval mode, with ManiDP's per-forward records switched off
    (they keep tensors for the losses and the artefacts; an exported graph has no use for them)."""
    from prunelab.training.engine import load_model

    try:
        model = load_model(run, map_location="cpu").float().eval()
    except RunStoreError as error:  # missing, corrupt, or another run's (prunelab.runs.model_file)
        raise ExportError(f"run {run.run_id}: {getattr(error, 'short', error)}") from None
    except Exception as error:  # noqa: BLE001 - e.g. weights that do not fit the network they name
        raise failed(f"run {run.run_id}: loading {MODEL_FILE}", error) from None
    for module in model.modules():  # gates of any gated method carry a `recording` switch
        if hasattr(module, "recording"):
            module.recording = False
            module.record = None
    return model


def export_onnx(run: RunDir, out: str | Path, check_images: int = CHECK_IMAGES) -> OnnxExport:
    """Export `run`'s final model to `out` (.onnx), check it with onnxruntime; ExportError on bad input.

    Everything the export reads (config.json, model.pt and whether it belongs to this run, summary.json) is
    checked before anything is written; `out` is then written through a temp file in its folder, renamed
    into place only once it is complete and matches PyTorch within TOLERANCE. A failed export leaves an
    existing `out` as it was."""
    out = Path(out)
    config = open_finished_run(run, (MODEL_FILE, SUMMARY_FILE))
    summary = run_artefact(run, SUMMARY) or {}
    if out.is_dir():
        raise ExportError(f"--out {out} is a folder; give a file name such as {out / (run.run_id + '.onnx')}")
    model = load_inference_model(run)
    method = config.method.name
    macs = summary.get("macs_per_image")
    if method == MANIDP and summary.get("macs_dense") is not None:
        macs = float(summary["macs_dense"]) + float(summary.get("gate_macs_per_image") or 0.0)
    check_writable_folder(out.parent if str(out.parent) else Path("."), "the ONNX file in")
    images, _, checked_on = sample_test_images(config, check_images)
    started = time.time()
    try:
        fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp.onnx")
    except OSError as error:
        raise ExportError(f"cannot write {out}: {error.strerror or error}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        opset = _export(model, images, tmp)
        diff = max_abs_diff(model, tmp, images)
        with torch.no_grad():  # logits of order 1 get TOLERANCE; a diverged run's larger ones, in proportion
            tolerance = TOLERANCE * max(1.0, float(model(images).abs().max()))
        if not diff <= tolerance:
            raise ExportError(f"run {run.run_id}: onnxruntime's outputs differ from PyTorch's by {diff:.2e} "
                              f"(more than {tolerance:g}); nothing was written")
        os.chmod(tmp, 0o644)  # an ordinary file, not mkstemp's owner-only one
        os.replace(tmp, out)
    except ExportError:
        raise
    except OSError as error:
        raise ExportError(f"cannot write {out}: {error.strerror or error}") from None
    except Exception as error:  # noqa: BLE001 - the exporter or onnxruntime refused the model: one line
        raise failed(f"run {run.run_id}: the ONNX export", error) from None
    finally:
        tmp.unlink(missing_ok=True)
    return OnnxExport(
        path=out, run_id=run.run_id, method=method, kind=KINDS.get(method, f"{method} network"),
        note=NOTES.get(method), bytes=out.stat().st_size,
        params=sum(p.numel() for p in model.parameters()), macs_per_image=macs, opset=opset,
        images_checked=int(images.shape[0]), checked_on=checked_on, max_abs_diff=diff,
        export_s=time.time() - started)


def _export(model: nn.Module, images: torch.Tensor, path: Path) -> int:
    """torch.onnx.export (the torch.export-based exporter) with a dynamic batch; returns the opset."""
    batch = torch.export.Dim("batch", min=1, max=4096)
    sample = images[:2] if images.shape[0] >= 2 else torch.cat([images, images])[:2]
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's progress lines and deprecation notes
        program = torch.onnx.export(model, (sample,), dynamo=True, external_data=False, verbose=False,
                                    input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                    dynamic_shapes=({0: batch},))
    if program is None:
        raise ExportError("torch.onnx.export returned no program")
    program.save(str(path), external_data=False)
    opsets = {entry.domain: entry.version for entry in program.model_proto.opset_import}
    return int(opsets.get("", 0))


def session(source: str | Path | bytes, threads: int | None = None) -> Any:
    """An onnxruntime CPU inference session of an ONNX file (or its bytes), with `threads` intra-op threads
    (default: torch's, so both runtimes get the same CPU)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    # no busy-waiting between runs: spinning threads would steal the CPU from PyTorch (and from training
    # runs sharing the machine); measured here, PyTorch's batch-1 latency went from 2 ms to 800 ms beside it
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    data = source if isinstance(source, bytes) else str(source)
    return onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def run_onnx(sess: Any, images: torch.Tensor) -> np.ndarray:
    """Logits of `images` [N, C, H, W] through an onnxruntime session."""
    return sess.run([OUTPUT_NAME], {INPUT_NAME: images.detach().cpu().float().numpy()})[0]


def max_abs_diff(model: nn.Module, onnx_file: str | Path | bytes, images: torch.Tensor) -> float:
    """Largest |onnxruntime - PyTorch| over the logits of `images`."""
    with torch.inference_mode():
        expected = model(images).float().numpy()
    got = run_onnx(session(onnx_file), images)
    return float(np.abs(got - expected).max()) if expected.size else 0.0


def latency_comparison(run: RunDir, onnx_file: str | Path | bytes,
                       batch_sizes: tuple[int, ...] = (1, 64)) -> dict[str, float]:
    """Median CPU milliseconds per batch, now, on this machine: {'pytorch_ms_b1', 'onnxruntime_ms_b1', ...}.

    Both runtimes get torch's thread count and the same random input shape (`measure_latency_ms`)."""
    model = load_inference_model(run)
    sess = session(onnx_file)
    shape = tuple(int(d) for d in sess.get_inputs()[0].shape[1:])
    figures: dict[str, float] = {"threads": float(torch.get_num_threads())}
    for batch in batch_sizes:  # one runtime after the other, never interleaved
        figures[f"pytorch_ms_b{batch}"] = measure_latency_ms(
            model, batch, shape, repeats=LATENCY_REPEATS.get(batch, 10), warmup=2)
    for batch in batch_sizes:
        figures[f"onnxruntime_ms_b{batch}"] = measure_latency_ms(
            lambda x: run_onnx(sess, x), batch, shape, repeats=LATENCY_REPEATS.get(batch, 10), warmup=2)
    return figures


def onnx_bytes(run: RunDir) -> tuple[bytes, OnnxExport]:
    """The checked ONNX file of `run` as bytes (for a download), with its export record."""
    with tempfile.TemporaryDirectory(prefix="prunelab-onnx-") as folder:
        record = export_onnx(run, Path(folder) / f"{run.run_id}.onnx")
        return record.path.read_bytes(), record

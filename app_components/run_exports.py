"""A run's exports in the app: the run detail view (ONNX file, TensorBoard bundle) and the Slimming page's
ONNX panel (download, and onnxruntime's CPU latency next to PyTorch's).

Files are made by `prunelab.export` only when asked for (a download button's deferred data, or the
panel's button) and kept per run and modification time, so a run that changes is exported again.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import streamlit as st

from app_components import common, viewer_mode
from prunelab.analysis import results
from prunelab.config import METHOD_FACTS
from prunelab.export import ExportError
from prunelab.export.onnx import latency_comparison, onnx_bytes
from prunelab.export.tensorboard import bundle_zip
from prunelab.runs.run import Run
from prunelab.runs.run_format import METRICS_FILE, MODEL_FILE, SUMMARY_FILE, RunStoreError
from prunelab.runs.store import RunDir


@functools.lru_cache(maxsize=8)
def _onnx(path: str, mtime: float) -> tuple[bytes, Any]:
    return onnx_bytes(RunDir(Path(path)))


@functools.lru_cache(maxsize=8)
def _tensorboard_zip(path: str, mtime: float) -> bytes:
    return bundle_zip(RunDir(Path(path)))


def onnx_file(path: str | Path) -> bytes:
    """The run's checked ONNX file (cached per run and modification time)."""
    return _onnx(str(path), Run(path).newest_version())[0]


def tensorboard_bundle(path: str | Path) -> bytes:
    """The run's TensorBoard export as a zip (cached per run and modification time)."""
    return _tensorboard_zip(str(path), Run(path).newest_version())


def can_export_onnx(path: Path) -> bool:
    return (path / MODEL_FILE).is_file() and (path / SUMMARY_FILE).is_file()


def why_no_onnx(path: Path) -> str:
    """Why `path` cannot be exported to ONNX, in a sentence that is true of it: a finished bundled demo run
    ships without its final model.pt (left out to keep the repository small), a finished run of one's own
    has lost it, an unfinished one has not written it yet."""
    if Run(path).state != "done":
        return "The ONNX export needs a finished run (model.pt and summary.json); this one has not finished."
    if (path / MODEL_FILE).is_file():
        return "The ONNX export needs the run's summary.json, which this finished run lacks."
    if results.is_demo(path):
        return ("The bundled demo runs ship without their final model (model.pt), to keep the repository small, "
                "so they cannot be exported." + viewer_mode.offer(
                    " Train a run of your own on the **Runs** page (e.g. `python -m prunelab run slimming --lambda "
                    "1e-3`) and export it here."))
    return "This finished run has no model.pt (deleted?), so it cannot be exported."


def run_detail(path: Path) -> None:
    """The selected run: where it ran, and its exports for download."""
    run = Run(path)
    try:
        status = run.status or {"state": "broken"}
    except RunStoreError:
        status = {"state": "broken"}
    try:
        config = run.config
    except RunStoreError:
        config = None
    method = config.method.name if config is not None else "?"
    with st.container(border=True):
        ray = status.get("backend") == "ray"
        where = f" · trained on Ray, node {common.md_code(status.get('node'))}" if ray else ""
        state = common.md_text(status.get("state", "unknown"))
        st.markdown(f"**Run {common.md_code(path.name)}** · {method} · {state}{where}")
        if config is None:
            st.caption("No exports: this run's config.json cannot be read.")
            return
        onnx, board = st.columns(2)
        if can_export_onnx(path):
            onnx.download_button("Download ONNX model", data=lambda: onnx_file(path), file_name=f"{path.name}.onnx",
                                 mime="application/octet-stream", key=f"onnx_{path.name}", icon=":material/download:")
            facts = METHOD_FACTS.get(method)
            onnx.caption((facts.model_note or f"The {facts.model_kind}." if facts else "The final model.")
                         + " Checked with onnxruntime against PyTorch on test images (within 1e-3).")
        else:
            onnx.caption(f"ONNX: {why_no_onnx(path)}")
        if (path / METRICS_FILE).is_file():
            board.download_button("Download TensorBoard bundle (zip)", data=lambda: tensorboard_bundle(path),
                                  file_name=f"tensorboard-{path.name}.zip", mime="application/zip",
                                  key=f"tb_{path.name}", icon=":material/download:")
            board.caption("Scalars per epoch and phase, |γ| histograms (slimming), hparams with final figures, "
                          "gate embedding with image sprites (ManiDP). Unzip, then "
                          f"`tensorboard --logdir tensorboard-{path.name}`.")
        else:
            board.caption("TensorBoard: no epoch has finished yet (metrics.jsonl).")


@st.cache_data(show_spinner="Exporting to ONNX and timing both runtimes…", max_entries=16)
def _onnx_with_latency(path: str, mtime: float) -> dict[str, Any]:
    data, record = _onnx(path, mtime)
    return {"bytes": data, "record": record.as_dict(), "latency": latency_comparison(RunDir(Path(path)), data)}


def onnx_panel(path: Path, summary: dict[str, Any] | None) -> None:
    """The Slimming page's ONNX section: export on request, then the file and both runtimes' latency."""
    if not can_export_onnx(path):
        st.info(why_no_onnx(path))
        return
    key = f"onnx_shown_{path}"
    if not st.session_state.get(key):
        if st.button("Export to ONNX and time it", key="slim_onnx"):
            st.session_state[key] = True
            st.rerun()
        st.caption("Exports the compact network with torch.onnx, checks onnxruntime's outputs against PyTorch's on "
                   "test images, then times both on this machine's CPU (batch 1 and 64).")
        return
    try:
        result = _onnx_with_latency(str(path), Run(path).newest_version())
    except ExportError as error:
        st.error(f"Cannot export this run: {common.md_text(error)}")
        return
    record, latency = result["record"], result["latency"]
    for col, batch in zip(st.columns(2), (1, 64), strict=True):
        torch_ms, ort_ms = latency[f"pytorch_ms_b{batch}"], latency[f"onnxruntime_ms_b{batch}"]
        col.metric(f"PyTorch, batch {batch}", f"{torch_ms:.2f} ms")
        col.metric(f"onnxruntime, batch {batch}", f"{ort_ms:.2f} ms", f"{ort_ms / torch_ms - 1:+.0%} vs PyTorch",
                   delta_color="inverse")
    trained = (summary or {}).get("latency_ms_b1_after")
    st.caption(f"Measured now on this CPU with {latency['threads']:.0f} thread(s), median of repeated runs"
               + (f"; PyTorch at batch 1 measured {trained:.2f} ms when the run finished." if trained else ".")
               + f" onnxruntime's outputs match PyTorch's within {record['max_abs_diff']:.1e} on "
               f"{record['checked_on']}.")
    st.download_button("Download the ONNX file", data=result["bytes"], file_name=f"{path.name}.onnx",
                       mime="application/octet-stream", key="slim_onnx_download", icon=":material/download:")

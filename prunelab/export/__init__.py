"""Exports of finished runs into the tools users already use.

- `prunelab.export.onnx`: a run's final model as an ONNX file, checked with onnxruntime against PyTorch;
  onnxruntime's CPU latency next to PyTorch's.
- `prunelab.export.tensorboard`: a run's metrics, |gamma| histograms, hyperparameters with final figures
  and ManiDP gate embeddings as TensorBoard event files (and a zip bundle of them).
- `prunelab.export.handout`: the guided tours of both papers over a folder of runs as one HTML file that needs
  no server and no network.

Each reads a run directory only through the store's checked readers, and reads and checks everything it needs
(a model file must belong to the run: `prunelab.runs.model_file`) before it writes; its output is written
beside its target and renamed into place: bad input raises `ExportError` (one line) before anything is
written, and an existing output is replaced only by a complete new one (a failed export leaves it as it was).
"""

from prunelab.export.common import ExportError, open_finished_run, resolve_run

__all__ = ["ExportError", "open_finished_run", "resolve_run"]

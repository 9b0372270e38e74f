"""A finished ManiDP run's gated model, ready to be re-evaluated with the method's own code.

`gated_run(path)` loads `model.pt` (gates and their thresholds xi^l) on the CPU and builds the run's
`Trainer` and `ManiDP` method object around it without training anything, so the what-if (`whatif.py`)
and the sub-network space (`subnet_space.py`) call the very functions the run used: `ManiDP.calibrate`
(the quantile rule on the run's calibration sample of training images) and the run context's `evaluate`
with `ManiDP.eval_extras` (per-image loss, prediction and MACs from the masks: the evaluation `finalize`
wrote per_image.parquet from). Nothing is written to the run directory.

When the run's training images are not on this machine (a demo trained on a dataset outside the
repository ships only its test images, `prunelab.data.test_pack`), the test images stand in for the
training split, so the calibration sample is drawn from them (`prunelab.data.test_pack.dataset_or_pack`,
which slimming's what-if shares): `calibration_images` says which.

The object is cached per (run directory, model.pt modification time and size). Its model is shared, so
every use that changes the thresholds holds `lock` and restores `saved_thresholds` before releasing it.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Any

from prunelab.data.test_pack import dataset_or_pack
from prunelab.methods.manidp.config import NAME as MANIDP
from prunelab.methods.manidp.gates import get_thresholds, set_thresholds
from prunelab.runs.run_format import MODEL_FILE, RunStoreError
from prunelab.runs.store import RunDir


class GatedModelMissing(RunStoreError):
    """The run has no model.pt (not finished, or a demo run shipped without it)."""

    def __init__(self, run_name: str) -> None:
        super().__init__(f"{run_name} has no {MODEL_FILE} (the gated model with its thresholds): the run has not "
                         "finished, or it was shipped without its model")


class GatedRun:
    """model (gated, eval mode, CPU), trainer and method of one finished ManiDP run."""

    def __init__(self, path: Path) -> None:
        from prunelab.training.engine import Trainer, load_model

        run = RunDir(path)
        config = run.read_config()
        if config.method.name != MANIDP:
            raise ValueError(f"{path.name} is a {config.method.name!r} run; this needs a ManiDP run")
        if not run.file(MODEL_FILE).is_file():
            raise GatedModelMissing(path.name)
        # evaluated on the CPU in float32, whatever device the run trained on
        cpu = config.model_copy(update={"train": config.train.model_copy(update={"device": "cpu"})})
        self.path = path
        self.config = cpu
        dataset, self.calibration_images = dataset_or_pack(path.parent, cpu.data)
        self.trainer: Any = Trainer(cpu, run, dataset=dataset)
        self.method: Any = self.trainer.method
        self.model = load_model(run)
        self.method.prepare_model(self.model, fresh=False)  # the run's MACs plan and layer names
        self.saved_thresholds: list[float] = get_thresholds(self.model)
        self.lock = threading.Lock()

    def evaluate_test(self) -> dict[str, Any]:
        """Per test image at the model's current thresholds: loss, pred, label, active channels per gated
        layer (`counts`) and MACs from the masks, as numpy arrays (the run's own final evaluation)."""
        from prunelab.methods.manidp.report import per_image_arrays

        return per_image_arrays(self.trainer.context.evaluate(self.model, "test"))

    @property
    def plan(self) -> Any:
        return self.method.plan

    @property
    def layer_names(self) -> list[str]:
        return list(self.method.layer_names)

    def restore(self) -> None:
        """Put the run's own thresholds back (call while holding `lock`)."""
        set_thresholds(self.model, self.saved_thresholds)


def model_key(path: str | Path) -> tuple[str, int, int]:
    """(resolved run directory, model.pt mtime in ns, its size): what a cached GatedRun is valid for.
    Raises GatedModelMissing when model.pt does not exist."""
    resolved = Path(path).resolve()
    try:
        stat = (resolved / MODEL_FILE).stat()
    except OSError:
        raise GatedModelMissing(resolved.name) from None
    return str(resolved), stat.st_mtime_ns, stat.st_size


def gated_run(path: str | Path) -> GatedRun:
    """The cached GatedRun of a finished ManiDP run (rebuilt when model.pt changes)."""
    return _cached(*model_key(path))


@functools.lru_cache(maxsize=4)
def _cached(path: str, mtime_ns: int, size: int) -> GatedRun:
    return GatedRun(Path(path))

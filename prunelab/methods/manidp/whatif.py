"""ManiDP what-if: a finished run at another target density, without training.

`what_if(run_dir, density)` recalibrates the thresholds xi^l of the run's saved gated model (model.pt)
at remain rate eta = density, with the run's own rule (`ManiDP.threshold_at`: with pair_quantile_thresholds,
per layer the saliency at rank ceil((1 - eta) M) of the M (image, channel) saliencies of the run's
calibration sample, so a fraction eta of them is kept; in the reference form, the channel at rank
ceil(eta c_l) of the channel means over that sample: the reference takes them over an epoch's training
images, in training mode, which a finished run no longer has), repeated until the thresholds settle, see
`recalibrate`, then evaluates every test image as the run's final evaluation did (`GatedRun.evaluate_test`).
No weight changes, so this shows what the
thresholds alone buy or cost: the network was trained at its own target density.

Compared with the run as trained (`per_image.parquet`), each image falls in a cost group by the rank
of its MACs within its own setting: the cheaper half is `cheap`, the costlier half `costly` (tied MACs
share a group). `moved` lists the images whose group changed. (With thirds, no image of a real run
ever jumped from the cheapest third to the costliest: the moves were all into or out of the middle.)

Results are kept in memory per (run, model.pt and per_image.parquet versions, density): a second call
with the same density costs nothing; a new density costs a few calibration passes (over up to 2,000
training images) and one test pass.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from prunelab.methods.manidp.artefacts import PER_IMAGE
from prunelab.methods.manidp.config import NAME as MANIDP
from prunelab.methods.manidp.gated_run import gated_run, model_key
from prunelab.methods.manidp.gates import set_thresholds
from prunelab.runs.artefacts import ArtefactError
from prunelab.runs.run import Run
from prunelab.runs.run_format import PER_IMAGE_FILE, RunStoreError

GROUPS = ("cheap", "costly")
DENSITY_DECIMALS = 4  # densities are cached to this many decimals
CALIBRATION_TOLERANCE = 1e-3  # relative threshold change below which the recalibration has settled


@dataclass(frozen=True)
class WhatIf:
    """One run at one target density next to the run as trained."""

    density: float  # the target remain rate eta the thresholds were calibrated at
    thresholds: list[float]  # xi^l per gated layer
    layer_names: list[str]
    density_measured: float  # mean over test images and gated layers of the fraction of channels kept
    test_acc: float
    macs_dense: int
    macs: dict[str, float]  # mean, std, min, p10, median, p90, max of the per-image MACs
    trained: dict[str, float]  # test_acc, density and the same MACs figures of the run as trained
    per_image: pd.DataFrame  # index, label, pred, loss, correct, macs, group and the trained *_trained columns
    moves: pd.DataFrame  # [2 x 2] image counts: rows = group as trained, columns = group at this density
    calibration: Calibration  # passes, and what the thresholds keep of the calibration sample

    @property
    def reachable(self) -> float:
        """The largest mean density any thresholds give on the calibration sample: a gate that outputs
        pi = 0 prunes its channel at every threshold."""
        return float(np.mean(self.calibration.nonzero))

    @property
    def moved(self) -> pd.DataFrame:
        """Images whose cost group differs from the run as trained (cheapest first)."""
        rows = self.per_image[self.per_image["group"] != self.per_image["group_trained"]]
        return rows.sort_values(["macs", "index"], kind="stable")

    @property
    def became_wrong(self) -> int:
        """How many test images the run classified right as trained and wrong at this density."""
        return int((self.per_image["correct_trained"] & ~self.per_image["correct"]).sum())

    @property
    def became_right(self) -> int:
        """How many test images the run classified wrong as trained and right at this density."""
        return int((~self.per_image["correct_trained"] & self.per_image["correct"]).sum())

    def crossed(self, before: str, after: str) -> pd.DataFrame:
        """Images that were in group `before` as trained and are in group `after` here."""
        rows = self.per_image[(self.per_image["group_trained"] == before) & (self.per_image["group"] == after)]
        return rows.sort_values(["macs", "index"], kind="stable")


def cost_groups(macs: np.ndarray) -> np.ndarray:
    """'cheap' / 'costly' per image: the cheaper and the costlier half by MACs rank (tied MACs share their
    average rank, hence a group)."""
    values = np.asarray(macs, dtype=float)
    if values.size == 0:
        return np.array([], dtype=object)
    share = rankdata(values, method="average") / values.size
    return np.where(share <= 0.5, "cheap", "costly").astype(object)


def macs_figures(macs: np.ndarray) -> dict[str, float]:
    """Mean, standard deviation (population), min, 10th / 50th / 90th percentile and max."""
    values = np.asarray(macs, dtype=float)
    p10, median, p90 = np.percentile(values, [10, 50, 90])
    return {"mean": float(values.mean()), "std": float(values.std()), "min": float(values.min()),
            "p10": float(p10), "median": float(median), "p90": float(p90), "max": float(values.max())}


def what_if(run_dir: str | Path, density: float) -> WhatIf:
    """The run's gated model recalibrated at target density `density` in (0, 1], on its test images.

    Raises ValueError for a density outside (0, 1] or a run that is not ManiDP,
    `prunelab.methods.manidp.gated_run.GatedModelMissing` when model.pt is missing, RunStoreError when
    per_image.parquet is missing, ArtefactError when it is corrupt, DatasetError when the run's
    dataset cannot be loaded.
    """
    density = float(density)
    if not np.isfinite(density) or not 0.0 < density <= 1.0:
        raise ValueError(f"target density must lie in (0, 1], got {density}")
    path, model_mtime, model_size = model_key(run_dir)
    table = Path(path) / PER_IMAGE_FILE
    try:
        table_mtime = table.stat().st_mtime_ns
    except OSError:
        raise RunStoreError(f"{Path(path).name} has no {PER_IMAGE_FILE} yet: the run has not finished") from None
    return _what_if(path, model_mtime, model_size, table_mtime, round(density, DENSITY_DECIMALS))


@functools.lru_cache(maxsize=64)
def _what_if(path: str, model_mtime: int, model_size: int, table_mtime: int, density: float) -> WhatIf:
    return compute(path, density)


def compute(run_dir: str | Path, density: float, on_pass: Callable[[int, int], None] | None = None) -> WhatIf:
    """`what_if` without its cache, reporting each calibration pass to `on_pass(passes, most)` (a progress
    bar's steps: the test pass follows the last)."""
    path = Path(run_dir)
    trained = Run(path).require(PER_IMAGE)
    run = gated_run(path)
    with run.lock:
        try:
            calibration = recalibrate(run, density, on_pass)
            result = run.evaluate_test()
        finally:
            run.restore()
    return _compare(run, density, calibration, result, trained)


@dataclass(frozen=True)
class Calibration:
    """Settled thresholds and what they keep of the calibration sample."""

    thresholds: list[float]
    passes: int  # calibration passes until no threshold moved by more than CALIBRATION_TOLERANCE
    kept: list[float]  # per layer, the fraction of calibration (image, channel) pairs kept (pi >= xi, pi > 0)
    nonzero: list[float]  # per layer, the fraction with pi > 0: the most any threshold can keep
    images: str  # "training" (the run's own calibration sample) or "test" (its training images are absent)


def recalibrate(run: Any, density: float, on_pass: Callable[[int, int], None] | None = None) -> Calibration:
    """Thresholds at remain rate `density` that hold for the network as it runs at that density.

    The run's rule ranks the saliencies of one pass over its calibration sample
    (`ManiDP.calibration_saliencies`, then `ManiDP.threshold_at` per layer),
    made with the thresholds then in effect, and a layer's saliencies depend on the masks of the layers
    before it. Starting from the saved thresholds, the pass is repeated with the new thresholds in effect
    until no threshold moves by more than CALIBRATION_TOLERANCE (relative): pass k fixes layer k for
    good, so at most L + 1 passes for L gated layers. One pass only would calibrate deeper layers for
    the trained density's masks: measured on a run trained at 0.5, a what-if at 0.9 then kept 0.81.
    The thresholds are left set on `run.model`. `on_pass(passes, most)` is called after each pass.
    """
    previous = np.asarray(run.saved_thresholds, dtype=float)
    passes, saliencies, done = 0, [], False
    while not done:
        saliencies = run.method.calibration_saliencies(run.model)
        thresholds = np.asarray([float(run.method.threshold_at(pi, density)) for pi in saliencies])
        set_thresholds(run.model, [float(x) for x in thresholds])
        change = np.abs(thresholds - previous) / np.maximum(np.abs(previous), 1e-12)
        previous, passes = thresholds, passes + 1
        done = float(change.max(initial=0.0)) <= CALIBRATION_TOLERANCE or passes > len(previous)
        if on_pass is not None:
            on_pass(passes, len(previous) + 1)
    # the last pass ran with the previous pass's thresholds, equal to these within the tolerance
    kept = [float(((pi >= xi) & (pi > 0)).float().mean()) for pi, xi in zip(saliencies, previous, strict=True)]
    nonzero = [float((pi > 0).float().mean()) for pi in saliencies]
    return Calibration([float(x) for x in previous], passes, kept, nonzero, run.calibration_images)


def _compare(run: Any, density: float, calibration: Calibration, result: dict[str, np.ndarray],
             trained: pd.DataFrame) -> WhatIf:
    channels = np.asarray(run.plan.gate_channels, dtype=float)
    return assemble(Path(run.path), density, calibration, run.layer_names, result,
                    float((result["counts"] / channels).mean()), int(run.plan.dense_macs()), trained)


def assemble(path: Path, density: float, calibration: Calibration, layer_names: list[str],
             result: dict[str, np.ndarray], density_measured: float, macs_dense: int, trained: pd.DataFrame) -> WhatIf:
    """The WhatIf of per-image `result` (loss, pred, label, macs per test image) at `density` against the run
    as trained (`trained`: its per_image.parquet); also what a precomputed curve (`prunelab.analysis.views`) is read
    back with."""
    count = len(result["loss"])
    if len(trained) != count or not np.array_equal(trained["index"].to_numpy(), np.arange(count)):
        raise ArtefactError(path / PER_IMAGE_FILE,
                            f"has {len(trained)} rows for the {count} test images of the run's dataset")
    macs = np.asarray(result["macs"]).astype(np.int64)
    frame = pd.DataFrame({
        "index": np.arange(count, dtype=np.int64), "label": np.asarray(result["label"]).astype(np.int64),
        "pred": np.asarray(result["pred"]).astype(np.int64), "loss": np.asarray(result["loss"]).astype(np.float32),
        "correct": np.asarray(result["pred"]) == np.asarray(result["label"]), "macs": macs,
        "group": cost_groups(macs),
        "pred_trained": trained["pred"].to_numpy(np.int64), "loss_trained": trained["loss"].to_numpy(np.float32),
        "correct_trained": trained["correct"].to_numpy(bool), "macs_trained": trained["macs"].to_numpy(np.int64),
        "group_trained": cost_groups(trained["macs"].to_numpy()),
    })
    density_columns = [c for c in trained.columns if c.startswith("density_")]
    trained_density = (float(trained[density_columns].to_numpy(float).mean()) if density_columns
                       else float("nan"))
    moves = pd.crosstab(pd.Categorical(frame["group_trained"], GROUPS), pd.Categorical(frame["group"], GROUPS),
                        dropna=False).reindex(index=list(GROUPS), columns=list(GROUPS), fill_value=0)
    moves.index.name, moves.columns.name = "as trained", "at this density"
    return WhatIf(
        density=density, thresholds=calibration.thresholds, layer_names=list(layer_names),
        density_measured=float(density_measured),
        test_acc=float(frame["correct"].mean()), macs_dense=int(macs_dense), macs=macs_figures(macs),
        trained={"test_acc": float(frame["correct_trained"].mean()), "density": trained_density,
                 **{f"macs_{k}": v for k, v in macs_figures(frame["macs_trained"].to_numpy()).items()}},
        per_image=frame, moves=moves, calibration=calibration)


def target_density(run_dir: str | Path) -> float | None:
    """The run's own target density (config.json), or None when it cannot be read."""
    from prunelab.runs.store import RunDir

    try:
        method = RunDir(run_dir).read_config().method
    except RunStoreError:
        return None
    return float(method.target_density) if method.name == MANIDP else None

"""Views of a finished ManiDP run computed ahead of time, so its pages draw them at once.

Two views need the run's gated model (model.pt) and take tens of seconds each on a CPU: the what-if at
another target density (`prunelab.methods.manidp.whatif`: several calibration passes and a test pass) and the UMAP of
every test image's gate vectors and features (`prunelab.methods.manidp.subnet_space`). `precompute(run)` computes both
and writes them as two small files into the run directory (names in `prunelab.runs.run_format`):

- `whatif_curve.parquet`: per density of a grid (`DENSITY_GRID` and the run's own), every test image's
  prediction, loss (float16 where it fits: the page shows 2-3 decimals) and MACs; the thresholds, calibration passes and
  measured density ride in the file's metadata. The figures the page shows are rebuilt from it with
  `prunelab.methods.manidp.whatif.assemble`, so they are the ones `what_if` gives (tested).
- `subnet_umap.npz`: every UMAP the Similarity page offers (gate vectors and features; all layers and each
  layer), quantised to 8 bits per axis (a point moves by at most 1/510 of the axis range: under a pixel
  on the page).

A slimming run gets a third, `whatif_prune.json.gz`: its re-pruning (`prunelab.methods.slimming.reprune`)
at every prune ratio the Slimming page's slider offers (`PRUNE_RATIOS`), a few kB.

Each file names the SHA-1 of the model file it was computed from; a file for another model is ignored.
The demo makers call `precompute` for every run with a model (`scripts/precompute_views.py` does it for a
folder of existing runs). For a run without the files a page computes a view only when asked: into the
run directory, or, for a read-only demo run, into the derived-file cache (`subnet_space.derived_dir`);
`whatif_densities` / `load_whatif` / `load_umap` read either place. Every write is atomic. In viewer mode
(`prunelab.runs.viewer`) a write into a run directory is refused (`ViewerModeError`, before anything is computed);
the derived-file cache is no runs folder and stays writable.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from prunelab.methods.manidp.artefacts import PER_IMAGE
from prunelab.methods.manidp.config import NAME as MANIDP
from prunelab.methods.slimming.config import NAME as SLIMMING
from prunelab.runs import viewer
from prunelab.runs.reading import (
    ArtefactError,
    gunzip_bounded,
    open_run_file,
    parse_json,
    read_npz_file,
    read_run_bytes,
)
from prunelab.runs.run import Run
from prunelab.runs.run_format import (
    DENSE_MODEL_FILE,
    MODEL_FILE,
    PER_IMAGE_FILE,
    PRUNE_CURVE_FILE,
    UMAP_FILE,
    WHATIF_CURVE_FILE,
    RunStoreError,
    atomic_write,
    atomic_write_bytes,
    atomic_write_npz,
)

log = logging.getLogger("prunelab.analysis.views")

DENSITY_GRID = tuple(round(0.1 * step, 2) for step in range(2, 11))  # 0.2 ... 1.0, and the run's own density
PRUNE_RATIOS = tuple(round(0.05 * step, 2) for step in range(20))  # 0 ... 0.95: the Slimming page's slider
KINDS = ("gates", "features")
ALL_LAYERS = None  # the UMAP of every gated layer concatenated
LEVELS = 255  # UMAP coordinates are stored as uint8 steps between each axis's min and max
Report = Callable[[float, str], None]  # progress: (fraction done, message with the time left)


# ----------------------------------------------------------------------------------------------
# where the files are, and whether they belong to the run's current model


def model_digest(run_dir: str | Path, name: str = MODEL_FILE) -> str:
    """SHA-1 of the run's model.pt (or `name`; cached per file version); FileNotFoundError when it has none."""
    file = Path(run_dir).resolve() / name
    stat = file.stat()
    return _digest(str(file), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _digest(file: str, mtime_ns: int, size: int) -> str:
    return hashlib.sha1(Path(file).read_bytes()).hexdigest()


def cache_dir(run_dir: str | Path) -> Path:
    """Where a view of a read-only (demo) run computed on request goes: the derived-file cache."""
    from prunelab.methods.manidp.subnet_space import derived_dir

    return derived_dir(run_dir)


def _view_file(run_dir: Path, out_dir: str | Path | None, name: str) -> Path:
    """Where a computed view goes: `out_dir` (a cache folder, created here) or the run directory itself
    (never created: a run deleted meanwhile is not brought back; refused in viewer mode)."""
    if out_dir is None:
        viewer.refuse(f"cannot write {name} into run {run_dir.name}")
        return run_dir / name
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return Path(out_dir) / name


def _places(run_dir: str | Path, name: str) -> list[Path]:
    places = [Path(run_dir) / name]
    with contextlib.suppress(OSError, RunStoreError):  # no model.pt: nothing can be cached for it either
        places.append(cache_dir(run_dir) / name)
    return places


def _stat_key(file: Path) -> tuple[str, int, int] | None:
    try:
        stat = file.stat()
    except OSError:
        return None
    return str(file), stat.st_mtime_ns, stat.st_size


class _Clock:
    """Fraction done and time left of `total` steps of roughly equal cost."""

    def __init__(self, total: int, report: Report | None) -> None:
        self.total, self.report, self.started = max(total, 1), report, time.perf_counter()

    def step(self, done: float, what: str) -> None:
        if self.report is None:
            return
        elapsed = time.perf_counter() - self.started
        left = elapsed / done * (self.total - done) if done > 0 else None
        eta = f"about {left:.0f} s left" if left is not None else "estimating the time left"
        self.report(min(done / self.total, 1.0), f"{what} ({eta})")


# ----------------------------------------------------------------------------------------------
# the what-if curve


def _read_curve(run_dir: str | Path) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    """The curve file of the run's current model (run directory first, then the cache), or None."""
    try:
        digest = model_digest(run_dir)
    except OSError:
        return None
    for file in _places(run_dir, WHATIF_CURVE_FILE):
        key = _stat_key(file)
        if key is None:
            continue
        read = _read_curve_file(*key)
        if read is not None and read[1].get("model_sha1") == digest:
            return read
    return None


@functools.lru_cache(maxsize=16)
def _read_curve_file(file: str, mtime_ns: int, size: int) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    try:
        with open_run_file(Path(file)) as handle:
            frame = pd.read_parquet(handle)
        meta = dict(frame.attrs.get("prunelab") or {})
    except Exception as error:  # noqa: BLE001 - an unreadable file is computed again
        log.warning("%s cannot be read (%s); it is ignored", file, error)
        return None
    return frame, meta


def whatif_accuracy(run_dir: str | Path) -> pd.DataFrame:
    """Per stored target density of the run's what-if curve: test accuracy and MACs reduction (1 - mean MACs /
    dense MACs), read straight from the curve (columns density, test_acc, macs_reduction; empty without one)."""
    columns = ["density", "test_acc", "macs_reduction"]
    read = _read_curve(run_dir)
    if read is None:
        return pd.DataFrame(columns=columns)
    frame, meta = read
    labels = Run(run_dir).require(PER_IMAGE)["label"].to_numpy(np.int64)
    rows = []
    for key in meta["densities"]:
        part = frame[frame["density"] == np.float32(float(key))]
        if len(part) != len(labels):
            continue
        rows.append({"density": float(key),
                     "test_acc": float((part["pred"].to_numpy(np.int64) == labels).mean()),
                     "macs_reduction": 1.0 - float(part["macs"].to_numpy(np.float64).mean()) / int(meta["macs_dense"])})
    return pd.DataFrame(rows, columns=columns).sort_values("density").reset_index(drop=True)


def whatif_densities(run_dir: str | Path) -> list[float]:
    """The target densities whose what-if is stored for the run's current model (ascending)."""
    read = _read_curve(run_dir)
    return sorted(float(d) for d in read[1]["densities"]) if read is not None else []


def load_whatif(run_dir: str | Path, density: float) -> Any:
    """The stored `prunelab.methods.manidp.whatif.WhatIf` at `density` (4 decimals), or None when it is not stored."""
    from prunelab.methods.manidp.whatif import DENSITY_DECIMALS, Calibration, assemble

    read = _read_curve(run_dir)
    if read is None:
        return None
    frame, meta = read
    key = f"{round(float(density), DENSITY_DECIMALS):g}"
    if key not in meta["densities"]:
        return None
    info = meta["densities"][key]
    rows = frame[frame["density"] == np.float32(float(key))]
    trained = Run(run_dir).require(PER_IMAGE)
    result = {"loss": rows["loss"].to_numpy(), "pred": rows["pred"].to_numpy(), "macs": rows["macs"].to_numpy(),
              "label": trained["label"].to_numpy()}
    calibration = Calibration(info["thresholds"], int(info["passes"]), info["kept"], info["nonzero"], info["images"])
    return assemble(Path(run_dir), float(key), calibration, meta["layer_names"], result, info["density_measured"],
                    int(meta["macs_dense"]), trained)


def compute_whatif(run_dir: str | Path, densities: Iterable[float], out_dir: str | Path | None = None,
                   report: Report | None = None) -> Path:
    """Compute the what-if at each of `densities` not stored yet and write the curve (with what was stored)
    to `out_dir` (default: the run directory); returns the file."""
    from prunelab.methods.manidp.gated_run import gated_run
    from prunelab.methods.manidp.whatif import DENSITY_DECIMALS, compute

    path = Path(run_dir)
    file = _view_file(path, out_dir, WHATIF_CURVE_FILE)  # first: a viewer refuses before anything is computed
    digest = model_digest(path)
    stored = _read_curve(path)
    frames, meta = ([stored[0]], dict(stored[1])) if stored is not None else ([], {"densities": {}})
    meta = {**meta, "densities": dict(meta["densities"]), "model_sha1": digest}
    wanted = [round(float(d), DENSITY_DECIMALS) for d in densities]
    todo = [d for d in dict.fromkeys(wanted) if f"{d:g}" not in meta["densities"]]
    most_passes = len(gated_run(path).saved_thresholds) + 2  # calibration passes at most, and the test pass
    clock = _Clock(len(todo) * most_passes, report)
    for done, density in enumerate(todo):
        def on_pass(passes: int, most: int, done: int = done, density: float = density) -> None:
            clock.step(done * most_passes + passes, f"density {density:g}: calibration pass {passes}")

        clock.step(done * most_passes, f"density {density:g}")
        result = compute(path, density, on_pass)
        frames.append(pd.DataFrame({  # compact: ~10 kB per density for 2,000 test images
            "density": np.float32(density), "pred": _compact_int(result.per_image["pred"].to_numpy(np.int64)),
            "loss": _compact_loss(result.per_image["loss"].to_numpy(np.float32)),
            "macs": _compact_int(result.per_image["macs"].to_numpy(np.int64))}))
        meta["layer_names"], meta["macs_dense"] = list(result.layer_names), int(result.macs_dense)
        calibration = result.calibration
        meta["densities"][f"{density:g}"] = {
            "thresholds": calibration.thresholds, "passes": calibration.passes, "kept": calibration.kept,
            "nonzero": calibration.nonzero, "images": calibration.images,
            "density_measured": result.density_measured}
        _write_curve(file, frames, meta)  # after each density: an interrupted run keeps what it computed
    if not todo:
        _write_curve(file, frames, meta)
    clock.step(clock.total, "what-if stored")
    return file


def _compact_loss(values: np.ndarray) -> np.ndarray:
    """float16 (the page shows a loss to 2-3 decimals) unless a loss is beyond its range (a diverged run)."""
    return values.astype(np.float16) if not values.size or np.abs(values).max() < 6e4 else values


def _compact_int(values: np.ndarray) -> np.ndarray:
    """The smallest signed integer type that holds `values` exactly."""
    for kind in (np.int8, np.int16, np.int32):
        if not values.size or np.abs(values).max() <= np.iinfo(kind).max:
            return values.astype(kind)
    return values


def _write_curve(file: Path, frames: list[pd.DataFrame], meta: dict[str, Any]) -> None:
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        {"density": [], "pred": [], "loss": [], "macs": []})
    frame.attrs["prunelab"] = meta
    atomic_write(file, lambda handle: frame.to_parquet(handle, index=False, compression="zstd",
                                                                  compression_level=19))


# ----------------------------------------------------------------------------------------------
# the UMAPs of the sub-network space


def _umap_key(kind: str, layer: int | None) -> str:
    return f"{kind}_{'all' if layer is None else layer}"


def load_umap(run_dir: str | Path, kind: str, layer: str | None = ALL_LAYERS) -> np.ndarray | None:
    """The stored UMAP [N, 2] (float32) of every test image's `kind` vectors at gated layer `layer` (its name;
    None: all layers), or None when it is not stored for the run's current model."""
    try:
        digest = model_digest(run_dir)
    except OSError:
        return None
    for file in _places(run_dir, UMAP_FILE):
        key = _stat_key(file)
        arrays = _read_umaps(*key) if key is not None else None
        if arrays is None or str(arrays.get("model_sha1")) != digest:
            continue
        names = [str(name) for name in arrays["layer_names"]]
        if layer is not None and layer not in names:
            return None
        name = _umap_key(kind, None if layer is None else names.index(layer))
        if name not in arrays:
            return None
        low, high = arrays[f"{name}_range"].astype(np.float32)
        return (low + arrays[name].astype(np.float32) / LEVELS * (high - low)).astype(np.float32)
    return None


@functools.lru_cache(maxsize=16)
def _read_umaps(file: str, mtime_ns: int, size: int) -> dict[str, np.ndarray] | None:
    try:
        return read_npz_file(Path(file))
    except ArtefactError as error:
        log.warning("%s; it is ignored", error)
        return None


def _quantise(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    low, high = points.min(axis=0), points.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    steps = np.rint((points - low) / span * LEVELS).astype(np.uint8)
    return steps, np.stack([low, low + span]).astype(np.float32)


def compute_umaps(run_dir: str | Path, layers: Sequence[str | None] | None = None, out_dir: str | Path | None = None,
                  report: Report | None = None) -> Path:
    """The UMAPs of both kinds at `layers` (layer names, None for all layers concatenated; default: every
    one the Similarity page offers), added to what `out_dir` (default: the run directory) holds for the
    run's current model and written as one file there; returns the file."""
    from prunelab.methods.manidp.subnet_space import embedding, subnet_vectors

    path = Path(run_dir)
    file = _view_file(path, out_dir, UMAP_FILE)  # first: a viewer refuses before anything is computed
    digest = model_digest(path)
    clock = _Clock(1, report)
    clock.step(0, "gate vectors and features of every test image")
    names = subnet_vectors(path).layer_names
    key = _stat_key(file)
    held = _read_umaps(*key) if key is not None else None
    arrays: dict[str, np.ndarray] = dict(held) if held is not None and str(held.get("model_sha1")) == digest else {}
    arrays.update({"model_sha1": np.array(digest), "layer_names": np.array(names)})
    wanted = [ALL_LAYERS, *names] if layers is None else list(layers)
    todo = [(kind, layer) for kind in KINDS for layer in wanted
            if _umap_key(kind, None if layer is None else names.index(layer)) not in arrays]
    clock = _Clock(len(todo), report)
    for done, (kind, layer) in enumerate(todo):
        clock.step(done, f"UMAP of the {kind}, {'all layers' if layer is None else layer}")
        points = embedding(path, kind, layer)
        if points is None:
            continue
        name = _umap_key(kind, None if layer is None else names.index(layer))
        arrays[name], arrays[f"{name}_range"] = _quantise(np.asarray(points, dtype=np.float32))
    atomic_write_npz(file, arrays, compressed=True)
    clock.step(clock.total, "UMAPs stored")
    return file


# ----------------------------------------------------------------------------------------------
# slimming: the re-pruning at every prune ratio


def _read_prune_curve(run_dir: str | Path) -> dict[str, Any] | None:
    try:
        digest = model_digest(run_dir, DENSE_MODEL_FILE)
    except OSError:
        return None
    key = _stat_key(Path(run_dir) / PRUNE_CURVE_FILE)
    held = _read_prune_file(*key) if key is not None else None
    return held if held is not None and held.get("dense_sha1") == digest else None


@functools.lru_cache(maxsize=32)
def _read_prune_file(file: str, mtime_ns: int, size: int) -> dict[str, Any] | None:
    try:
        return parse_json(Path(file), gunzip_bounded(Path(file), read_run_bytes(Path(file))))
    except (OSError, ValueError, ArtefactError) as error:
        log.warning("%s cannot be read (%s); it is ignored", file, error)
        return None


def load_prune(run_dir: str | Path, ratio: float) -> dict[str, Any] | None:
    """The stored `reprune.what_if` of a slimming run at `ratio` (2 decimals), or None when not stored."""
    held = _read_prune_curve(run_dir)
    return None if held is None else held["ratios"].get(f"{round(float(ratio), 2):g}")


def prune_what_if(run_dir: str | Path, ratio: float) -> dict[str, Any]:
    """The slimming what-if at `ratio`: stored, or computed now (`reprune.what_if`)."""
    from prunelab.methods.slimming.reprune import what_if

    stored = load_prune(run_dir, ratio)
    return stored if stored is not None else what_if(run_dir, ratio)


def compute_prune(run_dir: str | Path, ratios: Iterable[float] = PRUNE_RATIOS, report: Report | None = None) -> Path:
    """Re-prune a slimming run at each of `ratios` (`reprune.what_if`) and store the results in the run."""
    from prunelab.methods.slimming.reprune import what_if

    path = Path(run_dir)
    viewer.refuse(f"cannot write {PRUNE_CURVE_FILE} into run {path.name}")
    todo = [round(float(r), 2) for r in ratios]
    held = {"dense_sha1": model_digest(path, DENSE_MODEL_FILE), "ratios": {}}
    clock = _Clock(len(todo), report)
    for done, ratio in enumerate(todo):
        clock.step(done, f"prune ratio {ratio:g}")
        held["ratios"][f"{ratio:g}"] = what_if(path, ratio)
    file = path / PRUNE_CURVE_FILE
    text = json.dumps(held, separators=(",", ":"), default=lambda value: value.item())  # numpy scalars
    atomic_write_bytes(file, gzip.compress(text.encode(), mtime=0))
    clock.step(clock.total, "re-pruning stored")
    return file


# ----------------------------------------------------------------------------------------------
# everything, for the demo makers


def grid_of(run_dir: str | Path, densities: Sequence[float] = DENSITY_GRID) -> list[float]:
    """`densities` and the run's own target density."""
    from prunelab.methods.manidp.whatif import target_density

    own = target_density(run_dir)
    return sorted({*(float(d) for d in densities), *([own] if own is not None else [])})


def precompute(run_dir: str | Path, densities: Sequence[float] = DENSITY_GRID,
               layers: Sequence[str | None] | None = None, report: Report | None = None) -> list[Path]:
    """Both views of a finished ManiDP run with a model.pt (the what-if at `densities` and the run's own, the
    UMAPs at `layers`, default every one), or a slimming run's re-pruning at every ratio, into its run
    directory; [] for any other run."""
    path = Path(run_dir)
    if (path / DENSE_MODEL_FILE).is_file():
        return [compute_prune(path, report=report)]
    if not (path / MODEL_FILE).is_file() or not (path / PER_IMAGE_FILE).is_file():
        return []
    return [compute_whatif(path, grid_of(path, densities), report=report),
            compute_umaps(path, layers, report=report)]


def precompute_folder(runs_dir: str | Path, densities: Sequence[float] = DENSITY_GRID,
                      report: Callable[[Path, float, str], None] | None = None) -> list[Path]:
    """`precompute` for every finished ManiDP run with a model and slimming run in `runs_dir`; returns the files
    written."""
    from prunelab.runs.store import RunStore

    written: list[Path] = []
    for entry in sorted(RunStore(runs_dir).iter_runs(), key=lambda info: info.run_id):
        if entry.state != "done" or entry.config.method.name not in (MANIDP, SLIMMING):
            continue
        run_report = (lambda fraction, message, run=entry.path: report(run, fraction, message)) if report else None
        written += precompute(entry.path, densities, report=run_report)
    return written

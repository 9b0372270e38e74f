"""Sub-network space over every test image of a ManiDP run: gate vectors, pooled features, their UMAP.

A run saves gate vectors only for its probe images (`probe.npz`, 64 by default). `subnet_vectors(run)`
computes them for every test image from the saved gated model (model.pt, at its own thresholds, on the
CPU) in one test pass: per gated layer l, the saliencies pi^l(x) [N, C_l] (what decides the image's
sub-network) and the pooled features p(F^l(x)) [N, C_l] the layer passes on, plus each image's MACs
from its masks (equal to per_image.parquet's: the same model and thresholds). `embedding(run, kind,
layer)` is the UMAP (cosine metric, fixed random_state) of those vectors, one layer or all layers
concatenated (`prunelab.analysis.tables.concat_layers`).

Both are derived files, never written into the run directory (a demo run is read-only): they live in
`<cache dir>/derived/<run id>-<key>/` (cache dir: `$PRUNELAB_CACHE_DIR` or `~/.cache/prunelab`), where
the key hashes the run's path and model.pt's modification time and size, so a changed model gets new
files. Every file is written atomically (`prunelab.runs.run_format.atomic_write_npz`); one that cannot be
read is computed again.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from prunelab.analysis import tables
from prunelab.data.base import default_cache_dir
from prunelab.methods.manidp.gated_run import gated_run, model_key
from prunelab.methods.manidp.gates import records, set_recording
from prunelab.runs.run_format import atomic_write_npz

log = logging.getLogger("prunelab.methods.manidp.subnet_space")

VECTORS_FILE = "test_vectors.npz"
KINDS = ("gates", "features")
ALL_LAYERS = None  # `layer` value meaning every gated layer, concatenated


@dataclass
class SubnetVectors:
    """Per gated layer, the gate saliencies and pooled features of every test image (dataset order)."""

    indices: np.ndarray  # int [N]: test-set positions (0..N-1)
    labels: np.ndarray  # int [N]
    layer_names: list[str]
    gates: list[np.ndarray]  # per layer float32 [N, C_l] (pi)
    features: list[np.ndarray]  # per layer float32 [N, C_l] (pooled, after the activation, before masking)
    macs: np.ndarray  # int64 [N]: MACs of each image's sub-network from its masks (gates excluded)

    def vectors(self, kind: str) -> list[np.ndarray]:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        return self.gates if kind == "gates" else self.features


def derived_dir(run_dir: str | Path, cache_dir: str | Path | None = None) -> Path:
    """Where the derived files of this run's current model.pt live (not created here)."""
    path, mtime_ns, size = model_key(run_dir)
    digest = hashlib.sha1(f"{path}\n{mtime_ns}\n{size}".encode()).hexdigest()[:12]
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / "derived" / f"{Path(path).name}-{digest}"


def subnet_vectors(run_dir: str | Path, cache_dir: str | Path | None = None) -> SubnetVectors:
    """Gate vectors and pooled features of every test image (read from the derived file, or computed once)."""
    file = derived_dir(run_dir, cache_dir) / VECTORS_FILE
    cached = _read_vectors(file)
    if cached is not None:
        return cached
    vectors = compute_vectors(run_dir)
    arrays: dict[str, np.ndarray] = {"indices": vectors.indices, "labels": vectors.labels,
                                     "layer_names": np.array(vectors.layer_names), "macs": vectors.macs}
    for i in range(len(vectors.layer_names)):
        arrays[f"gates_{i}"] = vectors.gates[i]
        arrays[f"features_{i}"] = vectors.features[i]
    try:
        file.parent.mkdir(parents=True, exist_ok=True)  # the derived-file cache, made on first use
        atomic_write_npz(file, arrays, compressed=True)
    except OSError as error:  # a read-only cache only costs the recomputation next time
        log.warning("could not write %s: %s", file, error)
    return vectors


@torch.no_grad()
def compute_vectors(run_dir: str | Path) -> SubnetVectors:
    """One pass over the run's test images with its saved gated model at its own thresholds."""
    run = gated_run(run_dir)
    gates: list[list[np.ndarray]] = []
    features: list[list[np.ndarray]] = []
    labels: list[np.ndarray] = []
    macs: list[np.ndarray] = []
    with run.lock:
        run.restore()
        model = run.model.eval()
        set_recording(model, True)
        for images, targets, _ in run.trainer.context.loader("test", shuffle=False, augment=False):
            model(images)
            batch = records(model)
            gates.append([r.saliency.float().cpu().numpy() for r in batch])
            features.append([r.features.float().cpu().numpy() for r in batch])
            counts = torch.stack([r.mask.sum(dim=1) for r in batch], dim=1)
            macs.append(run.plan.macs(counts).cpu().numpy())
            labels.append(targets.cpu().numpy())
    per_layer = list(zip(*gates, strict=True)), list(zip(*features, strict=True))
    label_array = np.concatenate(labels).astype(np.int64)
    return SubnetVectors(
        indices=np.arange(len(label_array), dtype=np.int64), labels=label_array, layer_names=run.layer_names,
        gates=[np.concatenate(parts).astype(np.float32) for parts in per_layer[0]],
        features=[np.concatenate(parts).astype(np.float32) for parts in per_layer[1]],
        macs=np.concatenate(macs).astype(np.int64))


def _read_vectors(file: Path) -> SubnetVectors | None:
    if not file.is_file():
        return None
    try:
        with np.load(file, allow_pickle=False) as arrays:
            names = [str(name) for name in arrays["layer_names"]]
            return SubnetVectors(
                indices=np.asarray(arrays["indices"], dtype=np.int64), labels=np.asarray(arrays["labels"], np.int64),
                layer_names=names, gates=[np.asarray(arrays[f"gates_{i}"]) for i in range(len(names))],
                features=[np.asarray(arrays[f"features_{i}"]) for i in range(len(names))],
                macs=np.asarray(arrays["macs"], dtype=np.int64))
    except (OSError, ValueError, KeyError) as error:
        log.warning("derived file %s cannot be read (%s); computing it again", file, error)
        return None


def embedding(run_dir: str | Path, kind: str = "gates", layer: str | None = ALL_LAYERS,
              cache_dir: str | Path | None = None) -> np.ndarray | None:
    """UMAP [N, 2] of every test image's `kind` vectors at `layer` (None: all layers concatenated);
    None when there are too few images. Cached next to the vectors."""
    vectors = subnet_vectors(run_dir, cache_dir)
    per_layer = vectors.vectors(kind)
    if layer is ALL_LAYERS:
        data, tag = tables.concat_layers(per_layer), "all"
    else:
        if layer not in vectors.layer_names:
            raise ValueError(f"{layer!r} is not a gated layer of this run ({', '.join(vectors.layer_names)})")
        position = vectors.layer_names.index(layer)
        data, tag = per_layer[position], str(position)
    file = derived_dir(run_dir, cache_dir) / f"umap_{kind}_{tag}.npz"
    if file.is_file():
        try:
            with np.load(file, allow_pickle=False) as arrays:
                points = np.asarray(arrays["embedding"], dtype=np.float32)
            if points.shape == (len(data), 2):
                return points
        except (OSError, ValueError, KeyError) as error:
            log.warning("derived file %s cannot be read (%s); computing it again", file, error)
    points = tables.umap_embedding(data)
    if points is not None:
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_npz(file, {"embedding": points})
        except OSError as error:
            log.warning("could not write %s: %s", file, error)
    return points

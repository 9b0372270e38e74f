"""The pieces every dataset loader shares: ``ImageDataset`` (uint8 tensors in memory), ``DatasetError``,
the ``.npz`` decode cache and ``finalize_dataset`` (subsetting, channel statistics).

The bottom of ``prunelab.data``: the loaders (``shapes``, ``torchvision_sets``, ``folder``) and the
dispatcher (``dataset.load_dataset``) build on it; it imports none of them.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from prunelab.runs.run_format import atomic_write_npz

logger = logging.getLogger("prunelab.data")


class DatasetError(Exception):
    """A dataset cannot be loaded; the message says what is missing, where, and the allowed values."""


@dataclass(repr=False, eq=False)
class ImageDataset:
    """A classification dataset held as uint8 tensors ``[N,3,32,32]``; image index = tensor position."""

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    class_names: list[str]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    hflip: bool
    train_difficulty: torch.Tensor | None = None
    test_difficulty: torch.Tensor | None = None
    source: str = field(default="")

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image (always ``(3, 32, 32)``)."""
        c, h, w = self.train_images.shape[1:]
        return int(c), int(h), int(w)

    @property
    def train_size(self) -> int:
        """Number of training images."""
        return int(self.train_images.shape[0])

    @property
    def test_size(self) -> int:
        """Number of test images."""
        return int(self.test_images.shape[0])

    def __repr__(self) -> str:
        return (
            f"ImageDataset(name={self.name!r}, train={self.train_size}, test={self.test_size}, "
            f"classes={self.num_classes}, image_shape={self.image_shape}, hflip={self.hflip})"
        )


# ----------------------------------------------------------------------------------------------
# helpers shared by the loaders


def default_cache_dir() -> Path:
    """``$PRUNELAB_CACHE_DIR`` or ``~/.cache/prunelab``."""
    env = os.environ.get("PRUNELAB_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "prunelab"


def resolve_cache_dir(cache_dir: str | Path | None) -> Path:
    """The cache directory to use (created on demand by :func:`save_npz`)."""
    return Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Write an uncompressed ``.npz`` atomically (temp file + rename); failures only log a warning."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)  # the cache folder, made on first use
        atomic_write_npz(path, arrays)
    except OSError as exc:
        logger.warning("could not write dataset cache %s: %s", path, exc)


def load_npz(path: Path) -> dict[str, np.ndarray] | None:
    """Read an ``.npz`` file (a dataset cache or a run artefact) into memory, or ``None`` when it is
    missing or unreadable (a warning names the file)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except Exception as exc:  # noqa: BLE001 - corrupt or truncated file (a cache is then regenerated)
        logger.warning("cannot read %s: %s", path, exc)
        return None


def channel_stats(
    images: torch.Tensor, chunk: int = 4096
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Per-channel mean and std of uint8 images in [0, 1] (exact, from per-channel value histograms)."""
    if images.shape[0] == 0:
        return (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    levels = torch.arange(256, dtype=torch.float64) / 255.0
    means, variances = [], []
    for c in range(images.shape[1]):
        hist = torch.zeros(256, dtype=torch.float64)
        for start in range(0, images.shape[0], chunk):
            values = images[start : start + chunk, c].reshape(-1)
            hist += torch.bincount(values, minlength=256).to(torch.float64)
        prob = hist / hist.sum()
        mean_c = (prob * levels).sum()
        means.append(mean_c)
        variances.append((prob * (levels - mean_c) ** 2).sum())
    mean = torch.stack(means)
    var = torch.stack(variances).clamp(min=1e-12)
    std = var.sqrt().clamp(min=1e-3)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)  # type: ignore[return-value]


def subset_indices(total: int, size: int | None, seed: int) -> torch.Tensor | None:
    """Indices of the first ``size`` items of a deterministic shuffle (sorted), or ``None`` for all."""
    if size is None or size >= total:
        if size is not None and size > total:
            logger.warning("requested %d images but only %d are available; using all", size, total)
        return None
    g = torch.Generator().manual_seed(int(seed))
    chosen = torch.randperm(total, generator=g)[:size]
    return torch.sort(chosen).values


def _take(tensor: torch.Tensor | None, idx: torch.Tensor | None) -> torch.Tensor | None:
    if tensor is None or idx is None:
        return tensor
    return tensor[idx].contiguous()


def finalize_dataset(
    name: str,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    class_names: list[str],
    *,
    hflip: bool,
    train_size: int | None,
    test_size: int | None,
    seed: int,
    train_difficulty: torch.Tensor | None = None,
    test_difficulty: torch.Tensor | None = None,
    source: str = "",
) -> ImageDataset:
    """Apply the size limits (deterministic shuffle), compute mean/std and build the dataset."""
    train_idx = subset_indices(train[0].shape[0], train_size, seed)
    test_idx = subset_indices(test[0].shape[0], test_size, seed + 1)
    train_images = _take(train[0], train_idx)
    test_images = _take(test[0], test_idx)
    assert train_images is not None and test_images is not None
    mean, std = channel_stats(train_images)
    return ImageDataset(
        name=name,
        train_images=train_images,
        train_labels=_take(train[1], train_idx).to(torch.int64),  # type: ignore[union-attr]
        test_images=test_images,
        test_labels=_take(test[1], test_idx).to(torch.int64),  # type: ignore[union-attr]
        class_names=list(class_names),
        mean=mean,  # type: ignore[arg-type]
        std=std,  # type: ignore[arg-type]
        hflip=hflip,
        train_difficulty=_take(train_difficulty, train_idx),
        test_difficulty=_take(test_difficulty, test_idx),
        source=source,
    )

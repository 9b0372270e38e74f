"""``ImageDataset`` (uint8 tensors in memory) and ``load_dataset`` (dispatch, subsetting, caching).

Three sources: the embedded procedural ``shapes`` set, torchvision sets (cifar10, cifar100, svhn,
mnist, fashion-mnist) and ``folder:PATH`` (ImageFolder layout). Decoded arrays are cached as ``.npz``
in ``cache_dir`` (default ``$PRUNELAB_CACHE_DIR`` or ``~/.cache/prunelab``) and finished datasets are
kept in a small in-process LRU cache so the runs of a suite share the tensors.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from prunelab.config import DataConfig

logger = logging.getLogger("prunelab.data")

SHAPES_DEFAULT_TRAIN = 10_000
SHAPES_DEFAULT_TEST = 2_000
MEMORY_CACHE_SIZE = 4


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
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, **arrays)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
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


# ----------------------------------------------------------------------------------------------
# shapes


def load_shapes(
    train_size: int | None, test_size: int | None, seed: int, cache_dir: str | Path | None = None
) -> ImageDataset:
    """The procedural shapes dataset (generated, then cached as ``.npz`` keyed by seed/sizes/version)."""
    from prunelab.data.shapes import CLASS_NAMES, SHAPES_VERSION, generate_shapes

    n_train = SHAPES_DEFAULT_TRAIN if train_size is None else int(train_size)
    n_test = SHAPES_DEFAULT_TEST if test_size is None else int(test_size)
    filename = f"shapes_v{SHAPES_VERSION}_seed{seed}_train{n_train}_test{n_test}.npz"
    path = resolve_cache_dir(cache_dir) / filename
    cached = load_npz(path)
    if cached is not None and {"train_images", "train_labels", "train_difficulty"} <= cached.keys():
        logger.info("shapes: loaded %d+%d images from cache %s", n_train, n_test, path)
        arrays = {key: torch.from_numpy(value) for key, value in cached.items()}
    else:
        start = time.perf_counter()
        train_images, train_labels, train_diff = generate_shapes(n_train, seed, "train")
        test_images, test_labels, test_diff = generate_shapes(n_test, seed, "test")
        logger.info("shapes: generated %d+%d images in %.1fs", n_train, n_test, time.perf_counter() - start)
        arrays = {
            "train_images": train_images,
            "train_labels": train_labels,
            "train_difficulty": train_diff,
            "test_images": test_images,
            "test_labels": test_labels,
            "test_difficulty": test_diff,
        }
        mean, std = channel_stats(arrays["train_images"])
        arrays["mean"] = torch.tensor(mean, dtype=torch.float64)
        arrays["std"] = torch.tensor(std, dtype=torch.float64)
        save_npz(path, **{key: value.numpy() for key, value in arrays.items()})
    if "mean" in arrays and "std" in arrays:
        mean = tuple(float(v) for v in arrays["mean"])
        std = tuple(float(v) for v in arrays["std"])
    else:
        mean, std = channel_stats(arrays["train_images"])
    return ImageDataset(
        name="shapes",
        train_images=arrays["train_images"],
        train_labels=arrays["train_labels"].to(torch.int64),
        test_images=arrays["test_images"],
        test_labels=arrays["test_labels"].to(torch.int64),
        class_names=list(CLASS_NAMES),
        mean=mean,  # type: ignore[arg-type]
        std=std,  # type: ignore[arg-type]
        hflip=True,
        train_difficulty=arrays["train_difficulty"].to(torch.float32),
        test_difficulty=arrays["test_difficulty"].to(torch.float32),
        source=f"procedural (seed {seed})",
    )


# ----------------------------------------------------------------------------------------------
# dispatch + in-process cache

_MEMORY: OrderedDict[tuple, ImageDataset] = OrderedDict()
_LOCK = threading.RLock()


def clear_memory_cache() -> None:
    """Forget the datasets kept in this process (tests, or to free memory)."""
    with _LOCK:
        _MEMORY.clear()


def _memory_key(cfg: DataConfig, cache_dir: Path) -> tuple[tuple, dict | None]:
    """Key of the in-process cache (plus the folder listing, reused by the loader)."""
    key: tuple = (cfg.dataset, cfg.train_size, cfg.test_size, cfg.data_seed, str(cache_dir))
    scan = None
    if cfg.dataset.startswith("folder:"):
        from prunelab.data.folder import scan_folder

        scan = scan_folder(cfg.dataset[len("folder:") :])
        key += (scan["fingerprint"],)
    elif cfg.dataset != "shapes":
        key += (str(Path(cfg.data_dir or "data").expanduser().resolve()),)
    return key, scan


def load_dataset(cfg: DataConfig, cache_dir: str | Path | None = None) -> ImageDataset:
    """Load the dataset named by ``cfg.dataset`` with ``cfg.train_size``/``cfg.test_size`` applied.

    ``"shapes"`` is generated (``train_size`` images, default 10,000 + 2,000 test); torchvision names
    and ``"folder:PATH"`` keep the first N images of a deterministic shuffle seeded by ``data_seed``.
    Raises :class:`DatasetError` with an actionable message when the data cannot be found.
    """
    cache = resolve_cache_dir(cache_dir)
    with _LOCK:
        key, scan = _memory_key(cfg, cache)
        hit = _MEMORY.get(key)
        if hit is not None:
            _MEMORY.move_to_end(key)
            return hit
        from prunelab.data.shapes import single_thread

        with single_thread():
            dataset = _load_uncached(cfg, cache, scan)
        _MEMORY[key] = dataset
        while len(_MEMORY) > MEMORY_CACHE_SIZE:
            _MEMORY.popitem(last=False)
        return dataset


def _load_uncached(cfg: DataConfig, cache: Path, scan: dict | None = None) -> ImageDataset:
    from prunelab.resources import ResourceError, check_dataset_fits

    images = (len(scan["train"]), len(scan["test"])) if scan is not None else None
    try:  # before anything is generated, decoded or read
        check_dataset_fits(cfg, images)
    except ResourceError as error:
        raise DatasetError(str(error)) from None
    name = cfg.dataset
    if name == "shapes":
        return load_shapes(cfg.train_size, cfg.test_size, cfg.data_seed, cache)
    if name.startswith("folder:"):
        from prunelab.data.folder import load_folder

        path = name[len("folder:") :]
        return load_folder(path, cfg.train_size, cfg.test_size, cfg.data_seed, cache, scan=scan)
    from prunelab.data.torchvision_sets import TORCHVISION_SETS, load_torchvision

    if name in TORCHVISION_SETS:
        return load_torchvision(name, cfg.data_dir, cfg.train_size, cfg.test_size, cfg.data_seed, cache)
    allowed = ", ".join(["shapes", *TORCHVISION_SETS])
    raise DatasetError(f"unknown dataset {name!r}; allowed: {allowed} or folder:PATH")

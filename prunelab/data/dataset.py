"""``ImageDataset`` (uint8 tensors in memory) and ``load_dataset`` (dispatch, subsetting, caching).

Three sources: the embedded procedural ``shapes`` set, torchvision sets (cifar10, cifar100, svhn,
mnist, fashion-mnist) and ``folder:PATH`` (ImageFolder layout). Decoded arrays are cached as ``.npz``
in ``cache_dir`` (default ``$PRUNELAB_CACHE_DIR`` or ``~/.cache/prunelab``) and finished datasets are
kept in a small in-process LRU cache so the runs of a suite share the tensors.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from pathlib import Path

import torch

from prunelab.config import DataConfig
from prunelab.data.base import (
    DatasetError,
    ImageDataset,
    channel_stats,
    load_npz,
    resolve_cache_dir,
    save_npz,
)

logger = logging.getLogger("prunelab.data")

SHAPES_DEFAULT_TRAIN = 10_000
SHAPES_DEFAULT_TEST = 2_000
MEMORY_CACHE_SIZE = 4


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
    from prunelab.training.resources import ResourceError, check_dataset_fits

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

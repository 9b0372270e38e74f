"""Test-image packs: the test split of a dataset, shipped beside runs whose training data is not here.

The CIFAR-10 demo is trained on the PNG release (``folder:PATH``), which is not part of the repository.
Its pages still need the test images (galleries, image picker, sub-network map, what-if), so
``scripts/make_cifar_demo.py`` writes the test split the runs were evaluated on into the demo folder
as ``test_images.npz`` (`TEST_PACK_FILE`): uint8 images ``[N,3,32,32]`` in the runs' test order,
labels, class names, the normalisation statistics, and what identifies the test split: the runs'
``dataset`` string, ``test_size`` (-1: the dataset's default) and ``data_seed``. A pack that holds a
run's test split is read before the dataset itself (no decoding or generating).

``load_test_pack`` returns it as an ``ImageDataset`` with an empty training split, so code that reads
a run's test images does not care where they came from; it refuses a pack of another test split.
``dataset_or_pack`` is what every re-evaluation of a finished run (ManiDP's and slimming's what-if, the
sub-network space) loads: the run's dataset when it is on this machine, else the pack beside the run,
with its test images standing in as the training split.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from prunelab.config import DataConfig
from prunelab.data.base import DatasetError, ImageDataset
from prunelab.runs.reading import ArtefactError, read_npz_file
from prunelab.runs.run_format import TEST_PACK_FILE, atomic_write_npz

__all__ = ["TEST_PACK_FILE", "dataset_or_pack", "load_test_pack", "write_test_pack"]
_KEYS = {"dataset", "test_size", "data_seed", "test_images", "test_labels", "class_names", "mean", "std", "hflip"}


def _split(data: DataConfig) -> tuple[str, int, int]:
    """What identifies a test split: (dataset, test_size or -1 for the default, data_seed)."""
    return data.dataset, -1 if data.test_size is None else int(data.test_size), int(data.data_seed)


def write_test_pack(folder: str | Path, data: DataConfig, dataset: ImageDataset) -> Path:
    """Write `dataset`'s test split (loaded from `data`) to ``folder/test_images.npz`` (atomically);
    returns the path."""
    path = Path(folder) / TEST_PACK_FILE
    name, test_size, data_seed = _split(data)
    path.parent.mkdir(parents=True, exist_ok=True)  # the demo's runs folder (atomic_write makes no folder)
    atomic_write_npz(path, {
        "dataset": np.array(name),
        "test_size": np.array(test_size, dtype=np.int64),
        "data_seed": np.array(data_seed, dtype=np.int64),
        "test_images": dataset.test_images.numpy(),
        "test_labels": dataset.test_labels.numpy().astype(np.int64),
        "class_names": np.array(dataset.class_names),
        "mean": np.array(dataset.mean, dtype=np.float64),
        "std": np.array(dataset.std, dtype=np.float64),
        "hflip": np.array(dataset.hflip),
    }, compressed=True)
    return path


def load_test_pack(folder: str | Path, data: DataConfig) -> ImageDataset | None:
    """The pack in `folder` for runs with data config `data` as a test-only ``ImageDataset``; None when
    the folder has no pack. Raises DatasetError when the pack is unreadable, incomplete or holds
    another test split (another dataset, test size or data seed)."""
    path = Path(folder) / TEST_PACK_FILE
    try:
        stat = path.stat()
    except OSError:
        return None
    arrays = _read(str(path), stat.st_mtime_ns, stat.st_size)
    if arrays is None or not arrays.keys() >= _KEYS:
        missing = sorted(_KEYS - arrays.keys()) if arrays is not None else ["(unreadable file)"]
        raise DatasetError(f"test-image pack {path} is corrupt: missing {', '.join(missing)}")
    held = (str(arrays["dataset"]), int(arrays["test_size"]), int(arrays["data_seed"]))
    if held != _split(data):
        raise DatasetError(f"test-image pack {path} holds {_describe(held)}, not {_describe(_split(data))}")
    images, labels = arrays["test_images"], arrays["test_labels"]
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (3, 32, 32) \
            or labels.shape != (images.shape[0],):
        raise DatasetError(f"test-image pack {path} is corrupt: images {images.dtype}{list(images.shape)}, "
                           f"labels {list(labels.shape)}; expected uint8 [N, 3, 32, 32] and [N]")
    empty = torch.zeros((0, 3, 32, 32), dtype=torch.uint8)
    return ImageDataset(
        name=data.dataset,
        train_images=empty,
        train_labels=torch.zeros(0, dtype=torch.int64),
        test_images=torch.from_numpy(np.ascontiguousarray(images)),
        test_labels=torch.from_numpy(labels.astype(np.int64)),
        class_names=[str(name) for name in arrays["class_names"]],
        mean=tuple(float(v) for v in arrays["mean"]),  # type: ignore[arg-type]
        std=tuple(float(v) for v in arrays["std"]),  # type: ignore[arg-type]
        hflip=bool(arrays["hflip"]),
        source=str(path),
    )


def dataset_or_pack(folder: str | Path, data: DataConfig) -> tuple[ImageDataset, Literal["training", "test"]]:
    """The dataset of `data` and "training"; when it cannot be loaded (a demo trained on a dataset outside
    the repository), the test-image pack in `folder` (the runs folder) with its test images standing in as
    the training split, and "test". Raises the dataset's DatasetError when there is no such pack."""
    from prunelab.data.dataset import load_dataset

    try:
        return load_dataset(data), "training"
    except DatasetError as error:
        pack = load_test_pack(folder, data)
        if pack is None or pack.test_size == 0:
            raise error from None
    stand_in = dataclasses.replace(pack, train_images=pack.test_images, train_labels=pack.test_labels,
                                   train_difficulty=pack.test_difficulty)
    return stand_in, "test"


@functools.lru_cache(maxsize=4)
def _read(path: str, mtime_ns: int, size: int) -> dict[str, np.ndarray] | None:
    """The pack's arrays, read once per version of the file (a page asks for images many times); None when it
    cannot be read (a bounded, checked read: `prunelab.runs.reading.read_npz_file`; the log says why)."""
    try:
        return read_npz_file(Path(path))
    except ArtefactError as error:
        logging.getLogger("prunelab.data.test_pack").warning("%s", error)
        return None


def _describe(split: tuple[str, int, int]) -> str:
    name, test_size, data_seed = split
    size = "its default test split" if test_size < 0 else f"{test_size} test images"
    return f"{name!r} ({size}, data seed {data_seed})"

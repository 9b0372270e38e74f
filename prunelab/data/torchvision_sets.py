"""torchvision datasets (cifar10, cifar100, svhn, mnist, fashion-mnist) as uint8 ``[N,3,32,32]``.

Files are read from ``data_dir`` (default ``./data``); when missing, a download is attempted and an
offline failure becomes a one-line :class:`DatasetError` saying which files to put where. The
converted arrays are cached once per split as ``.npz`` in the cache directory.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prunelab.data.base import (
    DatasetError,
    ImageDataset,
    finalize_dataset,
    load_npz,
    resolve_cache_dir,
    save_npz,
)

logger = logging.getLogger("prunelab.data")


@dataclass(frozen=True)
class TorchvisionSpec:
    """How to build one torchvision dataset and where its files live."""

    title: str
    cls_name: str
    split_kwarg: str  # "train" (bool) or "split" ("train"/"test")
    location: str  # folder inside data_dir where torchvision looks for the files
    what: str  # what the user must put there
    hflip: bool


TORCHVISION_SETS: dict[str, TorchvisionSpec] = {
    "cifar10": TorchvisionSpec(
        "CIFAR-10", "CIFAR10", "train", "cifar-10-batches-py", "the extracted python version", True
    ),
    "cifar100": TorchvisionSpec(
        "CIFAR-100", "CIFAR100", "train", "cifar-100-python", "the extracted python version", True
    ),
    "svhn": TorchvisionSpec("SVHN", "SVHN", "split", "", "train_32x32.mat and test_32x32.mat", False),
    "mnist": TorchvisionSpec("MNIST", "MNIST", "train", "MNIST/raw", "the four *-ubyte(.gz) files", False),
    "fashion-mnist": TorchvisionSpec(
        "Fashion-MNIST", "FashionMNIST", "train", "FashionMNIST/raw", "the four *-ubyte(.gz) files", False
    ),
}


def _construct(spec: TorchvisionSpec, root: Path, train: bool, download: bool) -> Any:
    import torchvision.datasets as tvd

    cls = getattr(tvd, spec.cls_name)
    if spec.split_kwarg == "split":
        return cls(str(root), split="train" if train else "test", download=download)
    return cls(str(root), train=train, download=download)


def _open(name: str, spec: TorchvisionSpec, root: Path, train: bool) -> Any:
    """Open a split from disk, downloading when missing; offline failure -> DatasetError."""
    try:
        return _construct(spec, root, train, download=False)
    except (RuntimeError, FileNotFoundError, OSError):
        pass
    logger.info("%s not found in %s; trying to download", spec.title, root)
    try:
        return _construct(spec, root, train, download=True)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = root / spec.location if spec.location else root
        raise DatasetError(
            f"{spec.title} not found in {where} and download failed (offline? {reason}). "
            f"Put {spec.what} there, or use --dataset folder:PATH"
        ) from exc


def to_uint8_nchw(data: Any, layout: str) -> torch.Tensor:
    """Convert torchvision ``.data`` into uint8 ``[N,3,32,32]``.

    ``layout``: ``"nhwc"`` (CIFAR), ``"nchw"`` (SVHN) or ``"nhw"`` (MNIST-style 28x28 grey, padded
    by 2 pixels to 32x32 and repeated to three channels).
    """
    array = torch.as_tensor(np.asarray(data))
    if layout == "nhwc":
        array = array.permute(0, 3, 1, 2)
    elif layout == "nhw":
        array = torch.nn.functional.pad(array, (2, 2, 2, 2)).unsqueeze(1).expand(-1, 3, -1, -1)
    elif layout != "nchw":
        raise ValueError(f"unknown layout {layout!r}")
    return array.to(torch.uint8).contiguous()


def _labels_of(ds: Any) -> torch.Tensor:
    labels = getattr(ds, "targets", None)
    if labels is None:
        labels = ds.labels
    return torch.as_tensor(np.asarray(labels), dtype=torch.int64)


def _class_names(name: str, ds: Any) -> list[str]:
    if name == "svhn":
        return [str(i) for i in range(10)]
    if name == "mnist":
        return [str(i) for i in range(10)]
    return [str(c) for c in ds.classes]


def _load_split(
    name: str, spec: TorchvisionSpec, root: Path, train: bool, cache: Path
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    split = "train" if train else "test"
    path = cache / f"tv_{name}_{split}.npz"
    cached = load_npz(path)
    if cached is not None and {"images", "labels", "class_names"} <= cached.keys():
        return (
            torch.from_numpy(cached["images"]),
            torch.from_numpy(cached["labels"]).to(torch.int64),
            [str(c) for c in cached["class_names"]],
        )
    start = time.perf_counter()
    ds = _open(name, spec, root, train)
    layout = {"svhn": "nchw", "mnist": "nhw", "fashion-mnist": "nhw"}.get(name, "nhwc")
    images = to_uint8_nchw(ds.data, layout)
    labels = _labels_of(ds)
    names = _class_names(name, ds)
    elapsed = time.perf_counter() - start
    logger.info("%s %s: converted %d images in %.1fs", spec.title, split, len(labels), elapsed)
    save_npz(path, images=images.numpy(), labels=labels.numpy(), class_names=np.array(names))
    return images, labels, names


def load_torchvision(
    name: str,
    data_dir: str | None,
    train_size: int | None,
    test_size: int | None,
    seed: int,
    cache_dir: str | Path | None = None,
) -> ImageDataset:
    """Load a torchvision dataset by PruneLab name (see ``TORCHVISION_SETS``)."""
    spec = TORCHVISION_SETS.get(name)
    if spec is None:
        raise DatasetError(f"unknown torchvision dataset {name!r}; allowed: {', '.join(TORCHVISION_SETS)}")
    root = Path(data_dir or "data").expanduser()
    cache = resolve_cache_dir(cache_dir)
    train_images, train_labels, names = _load_split(name, spec, root, True, cache)
    test_images, test_labels, _ = _load_split(name, spec, root, False, cache)
    return finalize_dataset(
        name,
        (train_images, train_labels),
        (test_images, test_labels),
        names,
        hflip=spec.hflip,
        train_size=train_size,
        test_size=test_size,
        seed=seed,
        source=f"torchvision {spec.cls_name} ({root})",
    )

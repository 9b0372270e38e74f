"""``folder:PATH`` datasets in ImageFolder layout: ``PATH/train/<class>/*.png`` and ``PATH/test/<class>/``.

Images are decoded once with PIL in a thread pool, converted to RGB, resized to 32x32 and cached as
uint8 ``.npz`` keyed by the absolute path, the file count and the latest modification time, so a
second load only lists the files and reads one array.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
FOLDER_VERSION = 1
SIZE = 32


def _list_split(
    split_dir: Path, classes: list[str] | None = None
) -> tuple[list[str], list[tuple[str, int]], float]:
    """Class names and ``(file, label)`` pairs of one split, plus the latest mtime seen."""
    if classes is None:
        classes = sorted(entry.name for entry in os.scandir(split_dir) if entry.is_dir())
    files: list[tuple[str, int]] = []
    latest = 0.0
    for label, name in enumerate(classes):
        class_dir = split_dir / name
        if not class_dir.is_dir():
            continue
        entries = sorted(
            (entry for entry in os.scandir(class_dir) if entry.name.lower().endswith(IMAGE_EXTENSIONS)),
            key=lambda entry: entry.name,
        )
        for entry in entries:
            if not entry.is_file():
                continue
            latest = max(latest, entry.stat().st_mtime)
            files.append((entry.path, label))
    return classes, files, latest


def folder_problem(root: str | Path) -> str | None:
    """Why `root` cannot be a folder dataset at all (missing, or a file), or None."""
    root = Path(root)
    layout = "folder:PATH needs PATH/train/<class>/*.png and PATH/test/<class>/*.png (ImageFolder layout)"
    if root.is_dir():
        return None
    if root.exists():
        return f"folder dataset {str(root)!r} is a file, not a folder; {layout}"
    return f"folder dataset {str(root)!r} does not exist; {layout}"


def _scan(root: Path) -> dict:
    """Validate the layout and list every image; raises DatasetError with what is wrong."""
    problem = folder_problem(root)
    if problem is not None:
        raise DatasetError(problem)
    for split in ("train", "test"):
        if not (root / split).is_dir():
            raise DatasetError(
                f"folder dataset {root} has no {split}/ subfolder; expected {root}/train/<class>/*.png "
                f"and {root}/test/<class>/*.png (ImageFolder layout)"
            )
    classes, train_files, train_mtime = _list_split(root / "train")
    if not classes:
        raise DatasetError(f"{root}/train has no class subfolders; expected {root}/train/<class>/*.png")
    test_classes = sorted(entry.name for entry in os.scandir(root / "test") if entry.is_dir())
    if test_classes != classes:
        missing = sorted(set(classes) - set(test_classes))
        extra = sorted(set(test_classes) - set(classes))
        raise DatasetError(
            f"folder dataset {root}: test/ classes differ from train/ classes "
            f"(missing in test: {missing or 'none'}; not in train: {extra or 'none'})"
        )
    _, test_files, test_mtime = _list_split(root / "test", classes)
    extensions = "|".join(ext.lstrip(".") for ext in IMAGE_EXTENSIONS)
    for split, files in (("train", train_files), ("test", test_files)):
        counts = np.bincount(np.array([label for _, label in files], dtype=np.int64), minlength=len(classes))
        empty = [classes[i] for i in range(len(classes)) if counts[i] == 0]
        if empty:
            raise DatasetError(
                f"folder dataset {root}: no images ({extensions}) in {split}/ "
                f"for class(es) {', '.join(empty)}"
            )
    return {
        "classes": classes,
        "train": train_files,
        "test": test_files,
        "count": len(train_files) + len(test_files),
        "mtime": max(train_mtime, test_mtime),
    }


def _fingerprint_of(root: Path, scan: dict) -> str:
    text = f"v{FOLDER_VERSION}|{root}|{scan['count']}|{scan['mtime']:.6f}|{','.join(scan['classes'])}"
    return hashlib.sha1(text.encode()).hexdigest()[:16]


SCAN_REUSE_S = 300.0  # a listing is reused this long while no directory of the dataset changed
_SCANS: dict[Path, tuple[tuple, float, dict]] = {}
_SCANS_LOCK = threading.Lock()


def _directory_signature(root: Path) -> tuple:
    """Modification times of the root, its splits and their class folders: adding, removing or
    renaming an image changes one of them (rewriting a file in place does not)."""
    signature = []
    for directory in (root, root / "train", root / "test"):
        signature.append((str(directory), directory.stat().st_mtime_ns))
        for entry in os.scandir(directory):
            if directory != root and entry.is_dir():
                signature.append((entry.path, entry.stat().st_mtime_ns))
    return tuple(signature)


def scan_folder(path: str | Path) -> dict:
    """List and validate a folder dataset: ``classes``, ``train``/``test`` (file, label) pairs,
    ``count``, ``mtime`` and ``fingerprint`` (absolute path + file count + latest mtime).

    Listing CIFAR-10's 60,000 files takes ~0.3 s, and every `load_dataset` call needs the
    fingerprint, so a listing is reused for `SCAN_REUSE_S` seconds while `_directory_signature`
    (a few dozen stat calls) is unchanged."""
    root = Path(path).expanduser().resolve()
    try:
        signature = _directory_signature(root) if (root / "train").is_dir() and (root / "test").is_dir() else None
        with _SCANS_LOCK:
            cached = _SCANS.get(root)
        if signature is not None and cached is not None and cached[0] == signature \
                and time.monotonic() - cached[1] < SCAN_REUSE_S:
            return cached[2]
        scan = _scan(root)
    except OSError as exc:
        raise DatasetError(f"cannot list folder dataset {root}: {exc}") from exc
    scan["root"] = root
    scan["fingerprint"] = _fingerprint_of(root, scan)
    if signature is not None:
        with _SCANS_LOCK:
            _SCANS[root] = (signature, time.monotonic(), scan)
    return scan


def _decode(path: str) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as img:
            if img.format == "JPEG":
                img.draft("RGB", (SIZE * 2, SIZE * 2))  # fast DCT downscaling for big photos
            rgb = img.convert("RGB")
            if rgb.size != (SIZE, SIZE):
                rgb = rgb.resize((SIZE, SIZE), Image.Resampling.BILINEAR, reducing_gap=2.0)
            return np.asarray(rgb, dtype=np.uint8)
    except Exception as exc:
        raise DatasetError(f"cannot read image {path}: {exc}") from exc


def decode_images(files: list[str], split: str = "", workers: int | None = None) -> np.ndarray:
    """Decode image files into uint8 ``[N,3,32,32]`` with a thread pool, logging progress."""
    out = np.empty((len(files), SIZE, SIZE, 3), dtype=np.uint8)
    if not files:
        return out.transpose(0, 3, 1, 2)
    workers = workers or min(16, (os.cpu_count() or 2) * 2)
    start = time.perf_counter()
    last_log = start
    step = max(1, len(files) // 20)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, array in enumerate(pool.map(_decode, files, chunksize=64)):
            out[i] = array
            now = time.perf_counter()
            if (i + 1) % step == 0 and now - last_log >= 2.0:
                last_log = now
                logger.info("decoding %s images: %d/%d (%.0fs)", split, i + 1, len(files), now - start)
    logger.info("decoded %d %s images in %.1fs", len(files), split, time.perf_counter() - start)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def load_folder(
    path: str | Path,
    train_size: int | None,
    test_size: int | None,
    seed: int,
    cache_dir: str | Path | None = None,
    scan: dict | None = None,
) -> ImageDataset:
    """Load ``PATH/train`` and ``PATH/test`` (ImageFolder layout) as a 32x32 RGB ``ImageDataset``.

    ``scan`` is an optional result of :func:`scan_folder` for the same path (saves listing twice).
    """
    if scan is None:
        scan = scan_folder(path)
    root, key = scan["root"], scan["fingerprint"]
    cache_path = resolve_cache_dir(cache_dir) / f"folder_{root.name or 'root'}_{key}.npz"
    cached = load_npz(cache_path)
    if cached is not None and {"train_images", "train_labels", "test_images", "test_labels"} <= cached.keys():
        logger.info("folder %s: loaded %d images from cache %s", root, scan["count"], cache_path)
        arrays = cached
    else:
        logger.info("folder %s: decoding %d images (%d classes)", root, scan["count"], len(scan["classes"]))
        arrays = {
            "train_images": decode_images([f for f, _ in scan["train"]], "train"),
            "train_labels": np.array([label for _, label in scan["train"]], dtype=np.int64),
            "test_images": decode_images([f for f, _ in scan["test"]], "test"),
            "test_labels": np.array([label for _, label in scan["test"]], dtype=np.int64),
        }
        save_npz(cache_path, **arrays)
    return finalize_dataset(
        f"folder:{path}",
        (torch.from_numpy(arrays["train_images"]), torch.from_numpy(arrays["train_labels"])),
        (torch.from_numpy(arrays["test_images"]), torch.from_numpy(arrays["test_labels"])),
        scan["classes"],
        hflip=True,
        train_size=train_size,
        test_size=test_size,
        seed=seed,
        source=str(root),
    )

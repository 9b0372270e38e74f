"""What every export shares: finding a run, checking it has what an export needs (every file it reads is
read and checked before anything is written), test images, one-line errors."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import TypeVar

import torch

from prunelab.config import RunConfig
from prunelab.runs.artefacts import CONFIG
from prunelab.runs.reading import Artefact, ArtefactError
from prunelab.runs.run import Run
from prunelab.runs.run_format import CONFIG_FILE, RunStoreError
from prunelab.runs.store import RunDir, RunStore

log = logging.getLogger("prunelab.export")
T = TypeVar("T")


class ExportError(Exception):
    """An export that cannot be made as asked (unknown run, missing artefact, unwritable output): one line."""


def resolve_run(run: str | Path, runs_dir: str | Path | None = None) -> RunDir:
    """A run by directory path, or by id under `runs_dir`; ExportError naming it when there is none."""
    path = Path(run)
    if path.is_dir() and (path / CONFIG_FILE).is_file():
        return RunDir(path)
    store = RunStore(runs_dir)
    try:
        return store.open(str(run))
    except RunStoreError:
        raise ExportError(f"no run {str(run)!r} in {store.root} (give a run id listed by `python -m prunelab list` "
                          "or a run directory)") from None


def open_finished_run(run: RunDir, needs: tuple[str, ...]) -> RunConfig:
    """The run's config, after checking the files in `needs` exist (a run that has not finished lacks
    them); ExportError naming the first missing file and the run's state."""
    try:
        config = Run(run.path).require(CONFIG)
    except RunStoreError as error:
        raise ExportError(f"run {run.run_id}: {getattr(error, 'short', error)}") from None
    for name in needs:
        if not run.file(name).is_file():
            state = run.state
            if state == "done":  # finished, but the file was not kept (the bundled demo has no weights)
                raise ExportError(f"run {run.run_id} is done but has no {name}, which this export needs")
            raise ExportError(f"run {run.run_id} has no {name} (state {state}): this export needs a finished run")
    return config


def run_artefact(run: RunDir, artefact: Artefact[T]) -> T | None:
    """The run's artefact through `Run` (None when missing); ExportError naming the file when corrupt."""
    try:
        return Run(run.path).read(artefact)
    except ArtefactError as error:
        raise ExportError(f"run {run.run_id}: {error.short}") from None


def failed(what: str, error: BaseException) -> ExportError:
    """An unexpected error while making an export, as the one-line ExportError the CLI prints."""
    text = " ".join(str(error).split()) or type(error).__name__
    text = text if len(text) <= 300 else text[:297] + "..."
    if isinstance(error, OSError):
        where = getattr(error, "filename", None)
        return ExportError(f"cannot write {where or what}: {error.strerror or text}")
    return ExportError(f"{what} failed ({type(error).__name__}: {text}); nothing was written")


def check_writable_folder(folder: Path, what: str) -> None:
    """ExportError unless `folder` exists (or can be made) and new files can be written in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ExportError(f"cannot write {what} {folder}: {error.strerror or error}") from None
    if not folder.is_dir():
        raise ExportError(f"cannot write {what} {folder}: not a folder")
    try:  # a real file, not os.access: root passes that check on read-only mounts and /proc
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".prunelab-write-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise ExportError(f"cannot write {what} {folder}: {error.strerror or error}") from None


def sample_test_images(config: RunConfig, count: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Up to `count` normalised test images of the run's dataset [N, C, H, W], their labels, and where
    they came from; random normal images (said so) when the dataset cannot be loaded here."""
    from prunelab.data import load_dataset, normalize

    try:
        data = load_dataset(config.data)
    except Exception as error:  # noqa: BLE001 - DatasetError, a missing download: fall back, and say so
        log.warning("cannot load %s for the check (%s): using random images", config.data.dataset, error)
        generator = torch.Generator().manual_seed(0)
        return (torch.randn((count, 3, 32, 32), generator=generator), torch.zeros(count, dtype=torch.long),
                f"{count} random images ({config.data.dataset} could not be loaded here)")
    n = min(count, data.test_size)
    images = normalize(data.test_images[:n], data.mean, data.std).contiguous()
    return images, data.test_labels[:n], f"the first {n} test images of {config.data.dataset}"

"""One way to read a run: `Run(path).read(ARTEFACT)`, checked on read and cached by file version.

Every reader of a run directory (the pages, the CLI, the exports, the lessons, the scripts) reads through
a `Run`; writers use `RunDir` (`prunelab.runs.store`). An artefact is a file with its reader
(`prunelab.runs.reading.Artefact`): the core's (`CONFIG`, `STATUS`, `SUMMARY`, `METRICS`, in
`prunelab.runs.artefacts`) and each method's own (`prunelab.methods.<name>.artefacts`, e.g. slimming's
`GAMMA_HISTORY`). `read` gives the artefact's typed content, or None (or the artefact's empty value) when
the file does not exist, and raises `ArtefactError` naming the file when it is corrupt.

What `read` returns is cached in this process by the file's version (its modification time and size):
the same file is parsed and checked once however many pages, charts and claims ask for it, and a file
rewritten by a running run is read again. The cache hands out shared objects: arrays come back read-only,
DataFrames and dicts as copies, so no caller can change what the next one reads.
"""

from __future__ import annotations

import copy
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from prunelab.runs.artefacts import CONFIG, METRICS, STATUS, SUMMARY
from prunelab.runs.reading import Artefact, ArtefactError, read_text_tail
from prunelab.runs.run_format import LOG_FILE

T = TypeVar("T")
CACHE_ENTRIES = 256  # parsed files kept in memory (the shipped demos hold about 300 files)
FileVersion = tuple[int, int]  # (mtime_ns, size)

_cache: OrderedDict[tuple[str, FileVersion], Any] = OrderedDict()
_cache_lock = threading.Lock()


class Run:
    """A run directory, read-only: one accessor per artefact (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    @property
    def run_id(self) -> str:
        return self.path.name

    def file(self, name: str) -> Path:
        return self.path / name

    def has(self, artefact: Artefact[Any] | str) -> bool:
        """Whether the artefact's file exists (it may still be corrupt: `read` says)."""
        return self.file(artefact if isinstance(artefact, str) else artefact.file).is_file()

    def version(self, artefact: Artefact[Any] | str) -> FileVersion | None:
        """The file's (mtime_ns, size), None when it does not exist: what its cached content is keyed by."""
        try:
            stat = self.file(artefact if isinstance(artefact, str) else artefact.file).stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def newest_version(self, names: Iterable[str] | None = None) -> float:
        """The newest modification time of the run's files (of `names` only, when given; 0.0 when none exists): a
        key for a whole run."""
        if names is None:
            try:
                names = [entry.name for entry in os.scandir(self.path) if entry.is_file()]
            except OSError:
                return 0.0
        newest = 0.0
        for name in names:
            try:
                newest = max(newest, self.file(name).stat().st_mtime)
            except OSError:
                continue
        return newest

    def read(self, artefact: Artefact[T]) -> T | None:
        """The artefact's content (see the module docstring); ArtefactError when its file is corrupt."""
        version = self.version(artefact)
        if version is None:
            return artefact.absent() if artefact.absent is not None else None
        key = (str(self.file(artefact.file)), version)
        with _cache_lock:
            if key in _cache:
                _cache.move_to_end(key)
                return _handed_out(_cache[key])
        try:
            content = artefact.read(self.file(artefact.file))
        except ArtefactError as error:
            if error.missing:  # removed since it was seen
                return artefact.absent() if artefact.absent is not None else None
            raise
        value = artefact.parse(content, self) if artefact.parse is not None else content
        _freeze(value)
        with _cache_lock:
            _cache[key] = value
            while len(_cache) > CACHE_ENTRIES:
                _cache.popitem(last=False)
        return _handed_out(value)

    def require(self, artefact: Artefact[T]) -> T:
        """`read`, with ArtefactError (missing) when the file does not exist."""
        value = self.read(artefact)
        if value is None:
            raise ArtefactError(self.file(artefact.file))
        return value

    # the core's files ------------------------------------------------------------------------------
    @property
    def config(self) -> Any:
        """config.json as a RunConfig (None when missing; ArtefactError when invalid)."""
        return self.read(CONFIG)

    @property
    def status(self) -> dict[str, Any] | None:
        return self.read(STATUS)

    @property
    def summary(self) -> dict[str, Any] | None:
        """summary.json (None until the run has finished)."""
        return self.read(SUMMARY)

    @property
    def metrics(self) -> Any:
        """metrics.jsonl as a DataFrame, one row per phase and epoch (empty before the first)."""
        return self.read(METRICS)

    def log_tail(self, lines: int = 20) -> list[str]:
        """The last `lines` lines of log.txt ([] before it is written; a log that is not a regular file of the run
        gives one line saying so), read from its end and decoded leniently."""
        try:
            return read_text_tail(self.file(LOG_FILE)).splitlines()[-lines:]
        except ArtefactError as error:
            return [f"({error.short})"]

    @property
    def state(self) -> str:
        """The state in status.json, or "broken" when status.json is missing or invalid."""
        try:
            status = self.status
        except ArtefactError:
            return "broken"
        return str(status["state"]) if status is not None else "broken"


def clear_cache() -> None:
    """Forget every cached file (tests)."""
    with _cache_lock:
        _cache.clear()


def _freeze(value: Any) -> None:
    """Make the arrays a cached value holds read-only (so no reader can change them for the next)."""
    if isinstance(value, np.ndarray):
        value.flags.writeable = False
    elif isinstance(value, dict):
        for item in value.values():
            _freeze(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _freeze(item)
    elif hasattr(value, "__dataclass_fields__"):
        for name in value.__dataclass_fields__:
            _freeze(getattr(value, name))


def _handed_out(value: Any) -> Any:
    """What a reader gets of a cached value: DataFrames and dicts copied, everything else shared."""
    if isinstance(value, dict):
        return copy.deepcopy(value)
    if hasattr(value, "copy") and type(value).__name__ == "DataFrame":
        return value.copy()
    return value

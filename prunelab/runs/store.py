"""Run store: one directory per run, written atomically, listed without trusting any one run.

Layout (see docs/architecture.md): config.json, status.json, metrics.jsonl, summary.json,
checkpoint.pt, model.pt, log.txt, traceback.txt and method artefacts.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prunelab.config import RunConfig, sanitize_name
from prunelab.runs import viewer
from prunelab.runs.reading import read_json_file
from prunelab.runs.run_format import (
    ACTIVE_STATES,
    CONFIG_FILE,
    LOCK_FILE,
    LOG_FILE,
    METRICS_FILE,
    STATUS_FILE,
    SUMMARY_FILE,
    RunStoreError,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_torch,
    json_default,
)

if TYPE_CHECKING:
    import torch

log = logging.getLogger("prunelab.runs.store")

DEFAULT_RUNS_DIR = "runs"
RUN_FILES = (CONFIG_FILE, STATUS_FILE)  # a directory holding either is a run (maybe a broken one)
KEEP_ON_RESTART = (CONFIG_FILE, STATUS_FILE, LOG_FILE, LOCK_FILE)


def default_runs_dir() -> Path:
    return Path(os.environ.get("PRUNELAB_RUNS_DIR", DEFAULT_RUNS_DIR))


def describe_os_error(error: OSError) -> str:
    """One line for a failed write: 'cannot write /runs/x/status.json: No space left on device'."""
    where = f" {error.filename}" if getattr(error, "filename", None) else ""
    return f"cannot write{where}: {error.strerror or error}"


def _first_line(error: BaseException) -> str:
    """The gist of a torch.load error, without PyTorch's advice to retry with `weights_only=False`
    (unsafe: it would run whatever code the file carries)."""
    text = " ".join(str(error).split())
    if "WeightsUnpickler error:" in text:  # keep only the unpickler's own reason
        text = text.split("WeightsUnpickler error:", 1)[1]
    text = text.split(" Please use `torch.serialization")[0].split(" Check the documentation")[0]
    text = text.split(". ")[0].strip().rstrip(".")
    return text or type(error).__name__


@dataclass
class RunDir:
    """A handle on one run directory; every write is atomic."""

    path: Path

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self._lock = threading.Lock()

    @property
    def run_id(self) -> str:
        return self.path.name

    def file(self, name: str) -> Path:
        return self.path / name

    # config
    def write_config(self, config: RunConfig) -> None:
        atomic_write_json(self.file(CONFIG_FILE), {"run_id": self.run_id, **config.model_dump(mode="json")})

    def read_config(self) -> RunConfig:
        """config.json as a RunConfig; ArtefactError (a RunStoreError) when missing or invalid."""
        from prunelab.runs.artefacts import read_config_file

        return read_config_file(self.file(CONFIG_FILE))

    # status
    def read_status(self) -> dict[str, Any]:
        """status.json, checked against its schema (prunelab.runs.artefacts.StatusFile)."""
        return self._read_json_file(STATUS_FILE)

    def write_status(self, **fields: Any) -> dict[str, Any]:
        """Merge `fields` into status.json (creating it) and stamp `updated_at`."""
        with self._lock:
            try:
                status = read_json_file(self.file(STATUS_FILE))
            except RunStoreError:
                status = {}
            if not isinstance(status, dict):
                status = {}
            status.update(fields)
            status["updated_at"] = time.time()
            atomic_write_json(self.file(STATUS_FILE), status)
            return status

    def force_status(self, **fields: Any) -> bool:
        """`write_status`, falling back to rewriting status.json in place when no new file can be made
        (a full disk still takes a few bytes in the file's own block). False if nothing could be written."""
        try:
            self.write_status(**fields)
            return True
        except OSError as error:
            log.warning("could not write the status of %s atomically: %s", self.run_id, error)
        try:
            with self._lock:
                status = read_json_file(self.file(STATUS_FILE))
                if not isinstance(status, dict):
                    raise ValueError("status.json is not a JSON object")
                status.update(fields, updated_at=time.time())
                data = json.dumps(status, indent=2, default=json_default).encode()
                with open(self.file(STATUS_FILE), "r+b") as handle:
                    handle.write(data)
                    handle.truncate()
                    handle.flush()
                    os.fsync(handle.fileno())
            return True
        except (OSError, ValueError, RunStoreError) as error:
            log.warning("could not write the status of %s at all: %s", self.run_id, error)
            return False

    @property
    def state(self) -> str:
        """The state in status.json, or "broken" when status.json is missing or invalid."""
        try:
            return str(self.read_status()["state"])
        except RunStoreError:
            return "broken"

    # metrics
    def append_metrics(self, row: dict[str, Any]) -> None:
        """Append one JSON line; a torn last line (crash mid-write) is skipped by `read_metrics`."""
        line = json.dumps({**row, "time": time.time()}, default=json_default)
        with self._lock, open(self.file(METRICS_FILE), "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def read_metrics(self) -> list[dict[str, Any]]:
        """metrics.jsonl's rows (`prunelab.runs.artefacts.read_metrics_file`); [] before the first."""
        from prunelab.runs.artefacts import ArtefactError, read_metrics_file

        try:
            return read_metrics_file(self.file(METRICS_FILE))
        except ArtefactError as error:
            if error.missing:
                return []
            raise

    def truncate_metrics(self, keep: Any) -> None:
        """Rewrite metrics.jsonl keeping the rows for which `keep(row)` is true (used on resume)."""
        rows = [row for row in self.read_metrics() if keep(row)]
        atomic_write_bytes(self.file(METRICS_FILE), "".join(json.dumps(r) + "\n" for r in rows).encode())

    # summary and artefacts
    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write_json(self.file(SUMMARY_FILE), summary)

    def read_summary(self) -> dict[str, Any]:
        """summary.json, checked against its schema (prunelab.runs.artefacts.SummaryFile)."""
        return self._read_json_file(SUMMARY_FILE)

    def write_json(self, name: str, obj: Any) -> None:
        atomic_write_json(self.file(name), obj)

    def read_json(self, name: str) -> Any:
        return self._read_json_file(name)

    def log(self, message: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        with self._lock, open(self.file(LOG_FILE), "a", encoding="utf-8") as handle:
            handle.write(f"[{stamp}] {message}\n")

    def read_log_tail(self, lines: int = 20) -> list[str]:
        """`Run.log_tail` (the owner of a run reads its log as any reader does)."""
        from prunelab.runs.run import Run

        return Run(self.path).log_tail(lines)

    # checkpoints
    def save_torch(self, name: str, obj: dict[str, Any]) -> None:
        """torch.save to a temp file then rename; only tensors and plain containers (weights_only loadable)."""
        atomic_write_torch(self.file(name), obj)

    def load_torch(self, name: str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
        import torch  # on first use: listing and reading runs needs no torch

        from prunelab.runs.reading import ArtefactError, open_run_file

        path = self.file(name)
        try:
            with open_run_file(path) as handle:
                try:
                    return torch.load(handle, map_location=map_location, weights_only=True)
                except Exception as error:  # noqa: BLE001 - any unpickling problem is a corrupt file
                    raise RunStoreError(f"{path} is corrupt or not a PruneLab checkpoint "
                                        f"({_first_line(error)})") from None
        except ArtefactError as error:
            raise RunStoreError(f"{path} does not exist" if error.missing else str(error)) from None

    # restarts and leftovers
    def remove_temp_files(self) -> list[str]:
        """Delete temp files of atomic writes a killed owner left behind (call while owning the run)."""
        removed = []
        for path in self.path.glob(".*.tmp*"):
            try:
                path.unlink()
                removed.append(path.name)
            except OSError as error:
                log.warning("could not remove %s: %s", path, error)
        return sorted(removed)

    def clear_for_restart(self) -> list[str]:
        """Remove everything a training leg wrote (checkpoint, metrics, artefacts, summary); keep
        config.json, status.json, log.txt and the owner lock. Returns the removed names."""
        import shutil

        removed = []
        for path in sorted(self.path.iterdir()):
            if path.name in KEEP_ON_RESTART:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path.name)
        return removed

    def _read_json_file(self, name: str) -> Any:
        """Parsed JSON of `name`, checked against its schema when it is a known artefact."""
        from prunelab.runs.artefact_checks import validate_json
        from prunelab.runs.reading import read_json_file

        path = self.file(name)
        return validate_json(path, read_json_file(path))


@dataclass
class RunInfo:
    """What the listing knows about a run: enough for a table row."""

    run_id: str
    path: Path
    config: RunConfig
    status: dict[str, Any]
    summary: dict[str, Any] | None
    problems: list[str] = field(default_factory=list)  # '<file> is missing' / '<file> is corrupt: ...'

    @property
    def state(self) -> str:
        return str(self.status.get("state", "unknown"))

    @property
    def broken(self) -> bool:
        return bool(self.problems)


@dataclass
class BrokenRun:
    """A run directory whose config.json or status.json cannot be used: listed so it can be deleted."""

    run_id: str
    path: Path
    problems: list[str]
    config: RunConfig | None = None
    state: str = "broken"
    broken: bool = True


class RunStore:
    """The runs root: create, open, list and delete run directories."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_runs_dir()

    def create(self, config: RunConfig, run_id: str | None = None) -> RunDir:
        """A new run directory with config.json and a `queued` status (refused in viewer mode: `ViewerModeError`)."""
        viewer.refuse("cannot create a run")
        self.root.mkdir(parents=True, exist_ok=True)
        base = sanitize_name(run_id or self._auto_id(config)) or "run"
        candidate, counter = base, 1
        while True:
            try:
                (self.root / candidate).mkdir()
                break
            except FileExistsError:
                counter += 1
                candidate = f"{base}-{counter}"
        run = RunDir(self.root / candidate)
        try:
            run.write_config(config)
            run.write_status(state="queued", phase=None, epoch=0, fraction=0.0, error=None, created_at=time.time())
        except BaseException:  # e.g. a full disk: leave no half-made run behind
            import shutil

            shutil.rmtree(run.path, ignore_errors=True)
            raise
        return run

    @staticmethod
    def _auto_id(config: RunConfig) -> str:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        label = config.name or f"{config.method.name}-{config.model.name}-{config.data.dataset.split(':')[0]}"
        return f"{stamp}-{label}"

    def open(self, run_id: str | Path) -> RunDir:
        """Open an existing run by id (under the root) or by path; raises RunStoreError if not a run."""
        path = Path(run_id)
        if not path.is_dir():
            name = sanitize_name(str(run_id))
            if name != str(run_id):
                raise RunStoreError(f"invalid run id {run_id!r}")
            path = self.root / name
        if not any((path / name).is_file() for name in RUN_FILES):
            raise RunStoreError(f"{path} is not a PruneLab run directory (no config.json)")
        return RunDir(path)

    def scan(self, check_artefacts: bool = False) -> Iterator[RunInfo | BrokenRun]:
        """Every run directory, newest first: a RunInfo, or a BrokenRun when config.json or status.json
        cannot be used. A RunInfo's `problems` names a corrupt summary.json and, with `check_artefacts`,
        every missing or corrupt method artefact (prunelab.runs.artefact_checks.run_problems)."""
        if not self.root.is_dir():
            return
        for path in self._run_paths():
            try:
                entry = self._scan_one(path, check_artefacts)
            except Exception as error:  # noqa: BLE001 - one unreadable run never fails the listing of the others
                log.warning("run directory %s cannot be read: %s", path, error)
                entry = BrokenRun(path.name, path, [f"cannot be read ({type(error).__name__}: {error})"])
            if entry is not None:
                yield entry

    def _scan_one(self, path: Path, check_artefacts: bool) -> RunInfo | BrokenRun | None:
        """`scan`'s entry for one directory (None: not a run directory)."""
        run = RunDir(path)
        if not any(run.file(name).is_file() for name in RUN_FILES):
            log.warning("skipping %s: not a run directory (no config.json or status.json)", path)
            return None
        config, problems = None, []
        try:
            config = run.read_config()
            status = run.read_status()
        except RunStoreError as error:
            problems.append(getattr(error, "short", str(error)))
            return BrokenRun(path.name, path, problems, config)
        summary = None
        if run.file(SUMMARY_FILE).exists():
            try:
                summary = run.read_summary()
            except RunStoreError as error:
                problems.append(getattr(error, "short", str(error)))
        if check_artefacts:
            from prunelab.runs.artefact_checks import run_problems

            found = run_problems(path, config.method.name, str(status["state"]))
            problems += [problem for problem in found if problem not in problems]
        return RunInfo(path.name, path, config, status, summary, problems)

    def _run_paths(self) -> list[Path]:
        def mtime(path: Path) -> float:
            try:
                return path.stat().st_mtime
            except OSError:
                return 0.0

        paths = [p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")]
        return sorted(paths, key=mtime, reverse=True)

    def iter_runs(self) -> Iterator[RunInfo]:
        """Every run whose config.json and status.json are valid, newest first; broken run directories
        are skipped with a warning (`scan` lists them)."""
        for entry in self.scan():
            if isinstance(entry, BrokenRun):
                log.warning("skipping run directory %s: %s", entry.path, "; ".join(entry.problems))
                continue
            if entry.problems:
                log.warning("run %s: %s", entry.run_id, "; ".join(entry.problems))
            yield entry

    def list_runs(self) -> list[RunInfo]:
        return list(self.iter_runs())

    def delete(self, run_id: str) -> str:
        """Delete a run that nobody owns; returns what was done.

        Refused (RunStoreError naming the owner) while the run is queued or running with a live owner;
        the run is claimed for the deletion, so nobody can start it meanwhile. A symlinked run: only the
        link is removed, its target is kept. Refused in viewer mode (`ViewerModeError`).
        """
        import shutil

        viewer.refuse(f"cannot delete run {run_id}")

        from prunelab.runs import ownership

        name = str(run_id)
        link = self.root / name if sanitize_name(name) == name else Path(name)
        if link.is_symlink():
            target = os.path.realpath(link)
            link.unlink()
            return f"removed the link {link} (its target {target} is kept)"
        run = self.open(run_id)
        try:
            status = run.read_status()
        except RunStoreError:
            status = {}  # a broken run can always be deleted
        state = ownership.effective_state(run.path, status)
        if state in ACTIVE_STATES:
            lock = ownership.read_lock(run.path)
            owner = f" by {lock.describe()}" if lock is not None else ""
            raise RunStoreError(f"run {run.run_id} is {state}{owner}; cancel it before deleting")
        try:
            lock = ownership.acquire(run.path, ownership.new_token())
        except ownership.RunBusyError as error:
            raise RunStoreError(f"{error}; cancel it before deleting") from None
        except OSError as error:
            raise RunStoreError(f"cannot delete run {run.run_id}: {error.strerror or error}") from None
        try:
            shutil.rmtree(run.path)
        except OSError as error:
            raise RunStoreError(f"cannot delete run {run.run_id}: {error.strerror or error} "
                                f"({getattr(error, 'filename', None) or run.path})") from None
        finally:
            lock.release()
        return f"deleted {run.path}"

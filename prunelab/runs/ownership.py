"""One owner per run: an exclusive `owner.lock` in the run directory, kept fresh by a heartbeat.

Whoever trains a run (`prunelab run`, `resume`, a `JobManager` job) or deletes it first *claims* it:
`acquire(run_path, token)` hard-links a complete lock file `{"pid", "host", "token", "since"}` into place
(`os.link` fails if one exists, so exactly one claimant wins; filesystems without hard links fall back to
`O_CREAT | O_EXCL`). The owner keeps the file open and refreshes its mtime every `HEARTBEAT_S` seconds
(the mtime *is* the heartbeat, so the content never changes and is never read half-written).

A lock is *stale* when its owner is gone: this host and a dead pid, this very process with nobody in it
holding the token, or a heartbeat older than `STALE_AFTER_S` (other hosts, pid reuse, a frozen process).
A live owner may hand a run over by giving its token to the next owner (`acquire(..., handoff_from=token)`:
a Ray suite's driver holds its queued runs until the task that trains one starts on a worker).
A stale lock is taken over safely: under a guard file created with O_EXCL (one claimant at a time), it
is removed only if it is still the very file judged stale (same inode and mtime), and the claim is
retried (the exclusive create decides who wins). An owner whose lock was taken over (it was frozen past
the staleness bound) sees it at its next heartbeat (`OwnerLock.beat()` returns False) and stops.

`effective_state(run_path, status)` is the state every view shows: status.json's state, except that a
queued/running run without a live owner is `interrupted`. Runs written before locks existed fall back to
the owner fields and `heartbeat_at` in status.json (`status_orphan_reason`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prunelab.runs.run_format import ACTIVE_STATES, LOCK_FILE

HEARTBEAT_S = 2.0  # how often an owner refreshes its lock
STALE_AFTER_S = 12.0  # a lock not refreshed for this long (six heartbeats) has no owner
CLAIM_ATTEMPTS = 200  # tries of create / judge / take over before giving up (each takes milliseconds)
GUARD_STALE_S = 30.0  # a takeover guard older than this was left by a claimant that died mid-takeover

_LIVE_TOKENS: set[str] = set()  # owner tokens held by live claims / managers in this process
_LIVE_LOCK = threading.Lock()


class RunBusyError(Exception):
    """Another live process owns the run; the message names it (pid, host, since when)."""


def new_token() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def register_token(token: str) -> None:
    with _LIVE_LOCK:
        _LIVE_TOKENS.add(token)


def release_token(token: str) -> None:
    with _LIVE_LOCK:
        _LIVE_TOKENS.discard(token)


def token_is_live(token: str | None) -> bool:
    with _LIVE_LOCK:
        return token is not None and token in _LIVE_TOKENS


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    except OSError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# reading a lock


@dataclass(frozen=True)
class LockInfo:
    """What `owner.lock` says, with its heartbeat (mtime) and inode."""

    pid: int | None
    host: str | None
    token: str | None
    since: float | None
    heartbeat_at: float
    inode: int

    def describe(self, now: float | None = None) -> str:
        """'process 123 on host since 12:00:01 (heartbeat 1 s ago)'."""
        now = time.time() if now is None else now
        since = time.strftime("%H:%M:%S", time.localtime(self.since)) if self.since else "an unknown time"
        who = f"process {self.pid} on {self.host}" if self.pid is not None else "a process that is claiming it"
        return f"{who} since {since} (heartbeat {max(0.0, now - self.heartbeat_at):.0f} s ago)"


def read_lock(run_path: str | Path) -> LockInfo | None:
    """The run's lock, or None when it has none (a lock that cannot be parsed has unknown owner fields)."""
    from prunelab.runs.reading import ArtefactError, open_run_file, parse_json

    path = Path(run_path) / LOCK_FILE
    raw = b""
    try:
        with open_run_file(path, limit=0) as handle:
            stat = os.fstat(handle.fileno())
            raw = handle.read(4096)
    except ArtefactError as error:
        if error.missing:
            return None
        try:  # not a regular file: a lock nobody can parse, its owner unknown
            stat = os.lstat(path)
        except OSError:
            return None
    try:
        fields: dict[str, Any] = parse_json(path, raw.decode("utf-8", errors="replace"))
        if not isinstance(fields, dict):
            raise ValueError("not an object")
    except (ValueError, ArtefactError):
        fields = {}
    pid = fields.get("pid")
    return LockInfo(pid=int(pid) if isinstance(pid, int) else None, host=fields.get("host"),
                    token=fields.get("token"), since=fields.get("since"), heartbeat_at=stat.st_mtime,
                    inode=stat.st_ino)


def stale_reason(lock: LockInfo, now: float | None = None, stale_after_s: float = STALE_AFTER_S) -> str | None:
    """Why the lock's owner is gone, or None while it is alive."""
    now = time.time() if now is None else now
    if token_is_live(lock.token):
        return None
    if now - lock.heartbeat_at > stale_after_s:
        return f"no heartbeat for {now - lock.heartbeat_at:.0f} s"
    if lock.pid is None or lock.host != socket.gethostname():
        return None
    if lock.pid == os.getpid():
        return "its owner in this process has stopped"
    if not pid_alive(lock.pid):
        return f"owner process {lock.pid} is gone"
    return None


def status_orphan_reason(status: dict[str, Any], now: float | None = None,
                         stale_after_s: float = STALE_AFTER_S) -> str | None:
    """Owner check from status.json alone (runs without a lock): token, heartbeat_at/updated_at, pid."""
    now = time.time() if now is None else now
    if token_is_live(status.get("owner")):
        return None
    beat = float(status.get("heartbeat_at") or status.get("updated_at") or 0.0)
    if now - beat > stale_after_s:
        return f"no heartbeat for {now - beat:.0f} s"
    pid, host = status.get("owner_pid"), status.get("owner_host")
    if pid is None or host != socket.gethostname():
        return None
    if int(pid) == os.getpid():
        return "its manager in this process has stopped"
    if not pid_alive(int(pid)):
        return f"owner process {pid} is gone"
    return None


def orphan_reason(run_path: str | Path, status: dict[str, Any], now: float | None = None,
                  stale_after_s: float = STALE_AFTER_S) -> str | None:
    """Why a run has no live owner (the lock decides; without one, status.json), or None when owned."""
    lock = read_lock(run_path)
    if lock is not None:
        return stale_reason(lock, now, stale_after_s)
    return status_orphan_reason(status, now, stale_after_s)


def effective_state(run_path: str | Path, status: dict[str, Any], stale_after_s: float = STALE_AFTER_S) -> str:
    """The state to show: status.json's, but `interrupted` for a queued/running run whose owner is gone."""
    state = str(status.get("state", "unknown"))
    if state in ACTIVE_STATES and orphan_reason(run_path, status, stale_after_s=stale_after_s) is not None:
        return "interrupted"
    return state


def owner_alive(run_path: str | Path, stale_after_s: float = STALE_AFTER_S) -> bool | None:
    """None without a lock, else whether its owner is alive (a cache key that flips when an owner dies)."""
    lock = read_lock(run_path)
    return None if lock is None else stale_reason(lock, stale_after_s=stale_after_s) is None


# ---------------------------------------------------------------------------------------------
# holding a lock


class OwnerLock:
    """A claimed run: the lock file stays open; `beat()` refreshes it, `release()` removes it."""

    def __init__(self, path: Path, token: str, fd: int, took_over: str | None) -> None:
        self.path = path
        self.token = token
        self.took_over = took_over  # why the previous (stale) lock was taken over, if one was
        self._fd: int | None = fd
        self._inode = os.fstat(fd).st_ino

    def held(self) -> bool:
        """True while the lock file in the run directory is still this one."""
        try:
            return self._fd is not None and os.stat(self.path).st_ino == self._inode
        except FileNotFoundError:
            return False

    def beat(self) -> bool:
        """Refresh the heartbeat; False when the lock was taken over (the owner should stop)."""
        if self._fd is None:
            return False
        with contextlib.suppress(OSError):  # read-only or failing disk: the lock still names the owner
            os.utime(self._fd)
        if self.held():
            return True
        time.sleep(0.2)  # a takeover that grabbed a fresh lock by mistake puts it back at once
        return self.held()

    def release(self) -> None:
        """Remove the lock if it is still ours; idempotent."""
        if self._fd is None:
            return
        try:
            if self.held():
                os.unlink(self.path)
        except OSError:
            pass  # the run directory went away or became read-only: nothing left to release
        finally:
            os.close(self._fd)
            self._fd = None


def acquire(run_path: str | Path, token: str, stale_after_s: float = STALE_AFTER_S,
            handoff_from: str | None = None) -> OwnerLock:
    """Claim the run for `token`; raises RunBusyError naming a live owner, OSError if the lock cannot be written.

    `handoff_from`: the token of a live owner that hands the run over (a Ray suite's driver holds its
    queued runs and passes its token to the task that trains one); its lock is taken over like a stale one.
    """
    run_path = Path(run_path)
    path = run_path / LOCK_FILE
    content = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "token": token,
                          "since": time.time()}).encode()
    took_over: str | None = None
    for _ in range(CLAIM_ATTEMPTS):
        fd = _create_exclusive(path, content)
        if fd is not None:
            return OwnerLock(path, token, fd, took_over)
        lock = read_lock(run_path)
        if lock is None:
            continue  # released meanwhile
        reason = stale_reason(lock, stale_after_s=stale_after_s)
        if reason is None and handoff_from is not None and lock.token == handoff_from:
            reason = "handed over by its submitter"
        if reason is None:
            raise RunBusyError(f"run {run_path.name} is owned by {lock.describe()}")
        if _take_over(path, lock):
            took_over = f"took over from {lock.describe()}: {reason}"
    raise RunBusyError(f"run {run_path.name}: could not claim it, its {LOCK_FILE} keeps changing")


def _create_exclusive(path: Path, content: bytes) -> int | None:
    """Put a complete lock file at `path` unless one exists; its open fd, or None if one exists."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.claim")
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
    linked = False
    try:
        os.write(fd, content)
        os.fsync(fd)
        try:
            os.link(tmp, path)  # fails if a lock exists: exactly one claimant links its file
        except FileExistsError:
            return None
        except OSError as error:  # no hard links here: exclusive create, then write
            if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
            return _create_in_place(path, content)
        linked = True
        return fd
    finally:
        if not linked:
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _create_in_place(path: Path, content: bytes) -> int | None:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
    except FileExistsError:
        return None
    try:
        os.write(fd, content)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    return fd


def _take_over(path: Path, judged: LockInfo) -> bool:
    """Remove the stale lock `judged`; False if another claimant is at it or the lock is no longer that one.

    Removals are serialised by a guard file created with O_EXCL: under it, the lock is removed only if it
    is still the very file judged stale (same inode and mtime), so a fresh lock is never removed.
    """
    guard = path.with_name(f".{path.name}.takeover")
    try:
        fd = os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        _break_stale_guard(guard)
        time.sleep(0.01)  # another claimant is taking over: look again in a moment
        return False
    try:
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            return False
        if stat.st_ino != judged.inode or stat.st_mtime != judged.heartbeat_at:
            return False
        os.unlink(path)
        return True
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(guard)


def _break_stale_guard(guard: Path) -> None:
    """A takeover guard lives for milliseconds; one older than GUARD_STALE_S belongs to a dead claimant."""
    with contextlib.suppress(OSError):
        if time.time() - os.stat(guard).st_mtime > GUARD_STALE_S:
            os.unlink(guard)

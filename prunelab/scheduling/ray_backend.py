"""Suites on Ray: every run of a suite is a Ray task, scheduled by Ray on a local instance or a cluster.

`RaySuiteRunner(runs_dir)` is the driver's side. `submit_suite(suite)` creates each run directory in the
run store (state `queued`, `backend: "ray"` in status.json) and submits one Ray task per run with its CPU
and GPU share (`num_cpus` / `num_gpus`, fractional GPUs allowed). A ManiDP run that starts from its
suite's `pretrain` gets the parent task's ObjectRef as an argument, so Ray itself starts it only after the
parent has finished: there is no scheduler here, only Ray's.

Ownership (`prunelab.runs.ownership`). Every change of a run's state goes through `prunelab.runs.run_life`, as the
local scheduler's does (this module never imports `prunelab.scheduling.jobs`). The driver holds the owner lock of
every queued run and keeps it fresh, so a queued run shows `queued` in every view. The task (`train_run`)
takes the lock over with the driver's token (`handoff_from`), writes the node it runs on into status.json
and trains through `prunelab.training.engine.run_training` exactly as a local run: same files, same checkpoints, so
`list`, `jobs`, the pages and `resume` work on it unchanged. While it trains, its heartbeat also writes the
live progress (fraction, batch, ETA) into status.json, which is what `jobs` and the app's Jobs panel show.

A worker that dies leaves a lock whose owner is gone: on its own host the dead pid shows at once, on
another host the heartbeat stops; every view then shows the run `interrupted` (`effective_state`). The
driver, told by Ray that the task ended without a result, records it: `interrupted` when the run had
started (resume continues it from its last epoch checkpoint: `python -m prunelab resume RUN`), `failed`
or `cancelled` when it never started. Tasks are not retried by Ray (`max_retries=0`): a run is resumed on
purpose, from its checkpoint.

The runs folder must be the same folder for the driver and every worker: one machine, or a shared
filesystem mounted at the same path on every node (README, "Suites on Ray"). A task that cannot see the
run its driver queued (no run there, or not locked by this driver) fails with that message and trains
nothing. Without a shared filesystem, `copy_back=True` (`--copy-back`): each task trains in a temporary
folder of its node and returns the finished run directory (zip bytes, through Ray's object store); the
driver, which owns the run meanwhile, unpacks it into the store. A run that depends on another gets the
parent's archive too (its `init_from` model). Live progress is then not visible before a run ends, and a
run whose worker dies comes back with nothing (failed; resume restarts it).

In viewer mode (`prunelab.runs.viewer`) no runner is made, and one made before refuses submit, submit a suite and
cancel with a `ViewerModeError` in one line.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import signal
import socket
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prunelab.runs import ownership, viewer
from prunelab.runs.ownership import HEARTBEAT_S, STALE_AFTER_S, OwnerLock, new_token
from prunelab.runs.run_format import (
    ACTIVE_STATES,
    CHECKPOINT_FILE,
    CONFIG_FILE,
    FINAL_STATES,
    LOCK_FILE,
    RunDeleted,
    RunStoreError,
    atomic_write,
)
from prunelab.runs.run_life import (
    JobError,
    claim_lock,
    claim_run,
    mark_interrupted,
    record_copied_back,
    record_end,
    record_queued,
    record_unstarted_end,
    take_over,
)
from prunelab.runs.store import RunDir, RunStore
from prunelab.scheduling.limits import RAY_NUM_CPUS, RAY_NUM_GPUS
from prunelab.scheduling.protocol import JobInfo

if TYPE_CHECKING:
    from prunelab.config import RunConfig
    from prunelab.scheduling.suites import Suite, SuiteRun

log = logging.getLogger("prunelab.scheduling.ray_backend")

BACKEND = "ray"
CONNECT_TIMEOUT_S = 5.0  # how long the reachability check of --address waits
# "1": the app's suite form may join a Ray cluster at the address its user types (`connect`); off by default
ALLOW_ADDRESS_ENV = "PRUNELAB_ALLOW_RAY_ADDRESS"
ADDRESS_OFF = (f"joining a Ray cluster by its address is off on this server; its operator turns it on by starting "
               f"the app with {ALLOW_ADDRESS_ENV}=1 (leave the address empty for a local Ray instance)")
# HOST:PORT or ray://HOST:PORT: a host name or IPv4 address, or an IPv6 address in brackets; nothing else
_ADDRESS = re.compile(r"(?:ray://)?(?P<host>[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?|\[[0-9A-Fa-f:.]+\])"
                      r":(?P<port>[0-9]{1,5})")
POLL_S = 0.5
# environment variables every task sees as the driver does (dataset cache, demo switch, runs folder)
FORWARDED_ENV = ("PRUNELAB_CACHE_DIR", "PRUNELAB_NO_DEMO", "PRUNELAB_RUNS_DIR")


class RayBackendError(Exception):
    """Ray cannot be used as asked (not installed, address unreachable, bad resources): one line."""


# ---------------------------------------------------------------------------------------------
# connecting


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayBackendError("the Ray backend needs the `ray` package: pip install -r requirements.txt") from None
    return ray


def address_allowed() -> bool:
    """Whether this server's operator lets the app join a Ray cluster at an address typed into its form
    (`PRUNELAB_ALLOW_RAY_ADDRESS=1`): the server then connects where it is told and unpickles Ray's results."""
    return os.environ.get(ALLOW_ADDRESS_ENV, "").strip() == "1"


def parse_address(address: str) -> tuple[str, int]:
    """(host, port) of a `HOST:PORT` or `ray://HOST:PORT` address (an IPv6 host in brackets); a RayBackendError
    in one line for anything else (no white space, no control character, a port from 1 to 65535)."""
    match = _ADDRESS.fullmatch(address)
    if match is None or not 0 < int(match["port"]) < 65536:
        raise RayBackendError(f"Ray address {address!r} is not HOST:PORT (e.g. 10.0.0.5:6379, the head node's "
                              "address that `ray start --head` prints), ray://HOST:PORT or auto")
    return match["host"].strip("[]"), int(match["port"])


def check_address(address: str) -> None:
    """Fail fast, in one line, when `address` is not `HOST:PORT`, `ray://HOST:PORT` or auto (`parse_address`),
    or nothing listens there."""
    if address == "auto":
        return
    host, port = parse_address(address)
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        raise RayBackendError(f"cannot reach a Ray cluster at {address}: {reason}; start one with "
                              "`ray start --head` there, or leave out --address to start a local instance") from None


def check_resources(num_cpus: float, num_gpus: float) -> None:
    """Each run's CPU and GPU share within `prunelab.scheduling.limits` (RAY_NUM_CPUS, RAY_NUM_GPUS) and Ray's
    rule for GPUs; RayBackendError (one line naming the limit) otherwise."""
    for limit, value in ((RAY_NUM_CPUS, num_cpus), (RAY_NUM_GPUS, num_gpus)):
        if not limit.contains(value):
            raise RayBackendError(limit.refusal(value))
    if num_gpus > 1 and num_gpus != int(num_gpus):
        raise RayBackendError(f"--num-gpus above 1 must be a whole number (Ray's rule), got {num_gpus:g}")


def runtime_env() -> dict[str, Any]:
    """What every task on a cluster needs to import this very PruneLab (the package shipped by Ray to
    every node) and see the driver's PruneLab settings. A local instance started here needs none: its
    workers inherit this process's environment and working directory."""
    package = Path(__file__).resolve().parents[1]  # prunelab/, this module's package's parent
    env = {name: os.environ[name] for name in FORWARDED_ENV if name in os.environ}
    return {"py_modules": [str(package)], "env_vars": env}


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[Any]:
    """Connected to Ray for the block: to the cluster at `address`, or to a local instance started here
    (and stopped after). An existing connection of this process (a test, a notebook) is used as it is."""
    ray = import_ray()
    if address:
        check_address(address)
    if ray.is_initialized():
        yield ray
        return
    try:
        if address:
            ray.init(address=address, log_to_driver=False, runtime_env=runtime_env())
        else:
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    except Exception as error:  # noqa: BLE001 - ConnectionError, RuntimeError, ...: one line for the user
        raise _connect_error(address, error) from None
    try:
        yield ray
    finally:
        ray.shutdown()


_HOST_LOCK = threading.Lock()
_HOST: dict[str, Any] = {}  # where `connect` connected this process: {"address": ADDR or "local", "thread"}


def connect(address: str | None = None, timeout_s: float = 300.0) -> Any:
    """Connect this long-lived process (the app's server) to Ray once; later calls reuse the connection.

    `ray.init` runs in a daemon thread that then lives as long as the process: the processes of a local
    instance (GCS, raylet) are started with a parent-death signal, which Linux sends when the *thread*
    that started them ends, and a Streamlit script thread ends after every rerun. Asking for another
    cluster than the connected one is a RayBackendError, and so is any address (ADDRESS_OFF) unless the operator
    allowed joining one (`address_allowed`): the app hands over what its user typed."""
    if address:
        if not address_allowed():
            raise RayBackendError(ADDRESS_OFF)
        check_address(address)
    ray = import_ray()
    wanted = address or "local"
    with _HOST_LOCK:
        if ray.is_initialized():
            connected = _HOST.get("address")
            if connected is not None and connected != wanted:
                raise RayBackendError(f"this process is connected to Ray at {connected}; restart it to use "
                                      f"{wanted} instead")
            return ray
        ready, stop, failure = threading.Event(), threading.Event(), []

        def host() -> None:
            try:
                if address:
                    ray.init(address=address, log_to_driver=False, runtime_env=runtime_env())
                else:
                    ray.init(address="local", include_dashboard=False, log_to_driver=False)
            except Exception as error:  # noqa: BLE001 - reported by the caller in one line
                failure.append(error)
            finally:
                ready.set()
            stop.wait()

        thread = threading.Thread(target=host, name="prunelab-ray-host", daemon=True)
        thread.start()
        if not ready.wait(timeout_s):
            raise RayBackendError(f"Ray did not start within {timeout_s:.0f} s")
        if failure:
            raise _connect_error(address, failure[0])
        _HOST.update(address=wanted, thread=thread)
        return ray


def _connect_error(address: str | None, error: BaseException) -> RayBackendError:
    where = f"the Ray cluster at {address}" if address else "a local Ray instance"
    hint = ""
    if address and "RAY_AUTH_MODE" not in os.environ:  # Ray sends its token to an explicit address only if told
        hint = ("; a cluster with token authentication (Ray's default) also needs RAY_AUTH_MODE=token here and "
                "the cluster's token (~/.ray/auth_token from the head node, or RAY_AUTH_TOKEN)")
    return RayBackendError(f"cannot connect to {where}: {_first_line(error)}{hint}")


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


# ---------------------------------------------------------------------------------------------
# the task: one run, on a worker


def node_fields() -> dict[str, Any]:
    """Where this task runs: `node` (host name), the Ray node id and IP, the worker's pid."""
    fields: dict[str, Any] = {"node": socket.gethostname(), "ray_worker_pid": os.getpid()}
    import ray

    if ray.is_initialized():  # inside a Ray worker (never start Ray just to ask)
        context = ray.get_runtime_context()
        fields.update(ray_node_id=context.get_node_id(), ray_task_id=context.get_task_id(),
                      ray_node_ip=ray.util.get_node_ip_address())
    return fields


def train_run(spec: dict[str, Any], *parents: dict[str, Any]) -> dict[str, Any]:
    """Train one queued run on this worker: the body of each Ray task. Returns {run_id, state, error, node}
    (with `copy_back`, also `archive`: the finished run directory as zip bytes).

    `spec`: `run_path`, `run_id`, `handoff_from` (the driver's token), `num_cpus`, `copy_back`, `config` (the
    run's config as JSON). `parents` are the results of the tasks this run depends on (Ray passes them once
    they have finished).
    """
    with cancel_as_flag() as cancel:
        return _train_run(spec, parents, cancel)


@contextlib.contextmanager
def cancel_as_flag() -> Iterator[threading.Event]:
    """While a task runs, turn `ray.cancel`'s interrupt into an Event the task polls.

    `ray.cancel(ref, force=False)` interrupts the task's thread with a simulated SIGINT
    (`_thread.interrupt_main`), raised as KeyboardInterrupt on whatever line that thread is on. Early in a
    task that is `import torch`. A half-imported torch then stays in the reused worker, and every later task
    there fails with "partially initialized module 'torch'". Or an import swallows the interrupt, and the
    cancel is lost: the run trains to its end. So SIGINT only sets the Event. The task checks it before it
    trains and every `POLL_S` while it trains (stop at the next batch boundary, checkpoints kept), and the
    previous handler comes back when the task ends. Ray runs a task on the worker's main thread; called off
    it (where Python allows no handler, and `interrupt_main` does not land), this sets none.
    """
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested
        return
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, lambda _signum, _frame: requested.set())
    try:
        yield requested
    finally:
        signal.signal(signal.SIGINT, previous)


def _train_run(spec: dict[str, Any], parents: tuple[dict[str, Any], ...], cancel: threading.Event) -> dict[str, Any]:
    node = socket.gethostname()
    failed_parent = next((p for p in parents if p.get("state") != "done"), None)
    if failed_parent is not None:  # the driver still owns the run and records this
        detail = f": {failed_parent['error']}" if failed_parent.get("error") else ""
        return {"run_id": spec["run_id"], "state": "failed", "node": node,
                "error": f"dependency {failed_parent['run_id']} ended {failed_parent.get('state')}{detail}; "
                         "this run needs its finished model"}
    if spec.get("copy_back"):
        return _train_copy_back(spec, parents, cancel)
    run = RunDir(Path(spec["run_path"]))
    lock = ownership.read_lock(run.path) if run.file(CONFIG_FILE).is_file() else None
    if lock is None or lock.token != spec["handoff_from"]:
        return {"run_id": run.run_id, "state": "failed", "node": node,
                "error": f"the runs folder {run.path.parent} on node {node} is not the driver's (its run is "
                         "missing or not queued by this suite): share it at the same path on every node, or "
                         "use --copy-back"}
    return _train(run, spec["handoff_from"], float(spec["num_cpus"]), cancel)


def _train_copy_back(spec: dict[str, Any], parents: tuple[dict[str, Any], ...],
                     cancel: threading.Event) -> dict[str, Any]:
    """Train in a folder of this node and send the finished run directory back (the driver unpacks it)."""
    from prunelab.config import RunConfig

    with tempfile.TemporaryDirectory(prefix="prunelab-ray-") as folder:
        root = Path(folder)
        for parent in parents:  # a parent's finished run, next to this one: `init_from` finds it by id
            if parent.get("archive"):
                (root / parent["run_id"]).mkdir()
                unpack_run(parent["archive"], root / parent["run_id"])
        run = RunStore(root).create(RunConfig.model_validate(spec["config"]), spec["run_id"])
        result = _train(run, None, float(spec["num_cpus"]), cancel)
        result["archive"] = pack_run(run.path)
        return result


def pack_run(path: Path) -> bytes:
    """A run directory as zip bytes (without its owner lock and temp files)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(path.rglob("*")):
            if file.is_file() and file.name != LOCK_FILE and not file.name.startswith("."):
                archive.write(file, file.relative_to(path).as_posix())
    return buffer.getvalue()


def unpack_run(data: bytes, path: Path) -> list[str]:
    """Write the files of a `pack_run` archive into the existing run directory `path`, each atomically;
    returns their names. RunDeleted when `path` is gone (deleted while its run trained elsewhere)."""
    if not path.is_dir():
        raise RunDeleted(path)
    names = []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for member in archive.infolist():
            name = Path(member.filename)
            if member.is_dir() or name.is_absolute() or ".." in name.parts or name.name == LOCK_FILE:
                continue
            if len(name.parts) > 1:  # a folder inside the run
                (path / name.parent).mkdir(parents=True, exist_ok=True)
            atomic_write(path / name, archive.read(member))
            names.append(name.as_posix())
    return names


def _train(run: RunDir, handoff_from: str | None, num_cpus: float, cancel: threading.Event) -> dict[str, Any]:
    from prunelab.runs.progress import Progress
    from prunelab.training.engine import cpu_threads, run_training

    config = run.read_config()
    progress = Progress(run.run_id)
    threads = config.train.threads or max(1, round(num_cpus))
    with claim_run(run, handoff_from=handoff_from, backend=BACKEND, on_lost=progress.request_cancel,
                   progress=progress, **node_fields()):
        state = run.state
        if state != "queued":  # someone else settled it meanwhile (e.g. marked it interrupted)
            return {"run_id": run.run_id, "state": state, "node": socket.gethostname(),
                    "error": f"not trained: the run was {state} when its task started"}
        resume = run.file(CHECKPOINT_FILE).exists()
        run.log(f"training on Ray node {socket.gethostname()} (worker pid {os.getpid()})")
        finished = threading.Event()

        def target() -> None:
            try:
                with cpu_threads(threads):
                    run_training(config, run, progress, resume=resume)
            except BaseException:  # noqa: BLE001, S110 - run_training recorded it in status.json
                pass
            finally:
                finished.set()

        def stop_if_asked() -> None:
            if cancel.is_set() and not progress.cancel_requested:
                progress.log("cancel requested through Ray")
                run.log("cancel requested through Ray")
                progress.request_cancel()

        stop_if_asked()  # cancelled while the task started (imports, taking the run over): stops at batch 1
        threading.Thread(target=target, name=f"prunelab-ray-{run.run_id}", daemon=True).start()
        while not finished.wait(POLL_S):
            stop_if_asked()
    if not run.path.is_dir():  # deleted while it trained: nothing was written back, nothing to read
        return {"run_id": run.run_id, "state": "failed", "error": str(RunDeleted(run.path)),
                "node": socket.gethostname()}
    status = run.read_status()
    return {"run_id": run.run_id, "state": status["state"], "error": status.get("error"),
            "node": socket.gethostname()}


# ---------------------------------------------------------------------------------------------
# the driver


@dataclass
class _RayRun:
    run: RunDir
    name: str | None
    method: str
    suite: str | None
    depends_on: tuple[str, ...]
    ref: Any = None
    lock: OwnerLock | None = None  # the driver's, until the task takes the run over
    result: dict[str, Any] | None = None  # set once the task has ended and the run is settled
    failure: str | None = None  # why the task ended without a result (Ray's error)
    cancel_requested: bool = False
    submitted_at: float = field(default_factory=time.time)

    @property
    def run_id(self) -> str:
        return self.run.run_id


class RaySuiteRunner:
    """Runs suites as Ray tasks (the driver side): a `prunelab.scheduling.protocol.Scheduler`, as the `JobManager`
    is. Needs a Ray connection (`ray_session`) while runs are active."""

    def __init__(self, runs_dir: str | Path | None = None, *, num_cpus: float = 1.0, num_gpus: float = 0.0,
                 copy_back: bool = False, heartbeat_s: float = HEARTBEAT_S,
                 stale_after_s: float = STALE_AFTER_S) -> None:
        viewer.refuse("cannot start the Ray runner")
        check_resources(num_cpus, num_gpus)
        self.copy_back = copy_back
        self.ray = import_ray()
        self.store = RunStore(Path(runs_dir).resolve() if runs_dir is not None else None)
        self.runs_dir = self.store.root.resolve()
        self.num_cpus, self.num_gpus = float(num_cpus), float(num_gpus)
        self.stale_after_s = stale_after_s
        self.token = new_token()
        ownership.register_token(self.token)
        self._cond = threading.Condition()
        self._runs: dict[str, _RayRun] = {}
        self._stopping = False
        self._heartbeat_s = heartbeat_s
        self._monitor = threading.Thread(target=self._watch, name="prunelab-ray-monitor", daemon=True)
        self._monitor.start()

    # submission -------------------------------------------------------------------------------
    def submit(self, config: RunConfig, num_cpus: float | None = None, num_gpus: float | None = None) -> str:
        """Create one run (queued) and submit its Ray task, with `num_cpus` CPUs and `num_gpus` GPUs (default:
        the runner's); returns its run id."""
        from prunelab.scheduling.suites import SuiteRun

        viewer.refuse("cannot start a run")

        return self._submit_runs((SuiteRun("run", config),), num_cpus, num_gpus)[0]

    def submit_suite(self, suite: Suite, num_cpus: float | None = None, num_gpus: float | None = None) -> list[str]:
        """Create every run of the suite (queued) and submit one Ray task per run, each with `num_cpus` CPUs
        and `num_gpus` GPUs (default: the runner's); returns the run ids."""
        viewer.refuse("cannot start a suite")
        return self._submit_runs(suite.runs, num_cpus, num_gpus)

    def _submit_runs(self, runs: Sequence[SuiteRun], num_cpus: float | None, num_gpus: float | None) -> list[str]:
        if not self.ray.is_initialized():
            raise JobError("not connected to Ray")
        cpus = self.num_cpus if num_cpus is None else float(num_cpus)
        gpus = self.num_gpus if num_gpus is None else float(num_gpus)
        check_resources(cpus, gpus)
        total = self.ray.cluster_resources()  # a task no node can hold would wait forever: say so now
        for name, wanted in (("CPU", cpus), ("GPU", gpus)):
            if wanted > total.get(name, 0.0):
                raise RayBackendError(f"each run asks for {wanted:g} {name}(s) but the Ray cluster has "
                                      f"{total.get(name, 0.0):g}; lower --num-{name.lower()}s")
        remote = self.ray.remote(train_run)
        ids: dict[str, str] = {}
        for item in runs:
            config, depends = item.config, ()
            if item.init_from is not None:
                parent = ids[item.init_from]
                config, depends = item.with_init_from(parent), (parent,)
            entry = self._create(config, depends, cpus, gpus)
            with self._cond:
                if self._stopping:
                    self._settle_unstarted(entry, "cancelled", "cancelled: the Ray runner has been shut down")
                    raise JobError("the Ray runner has been shut down")
                parents = [self._runs[dep].ref for dep in depends]
                spec = {"run_path": str(entry.run.path), "run_id": entry.run_id, "handoff_from": self.token,
                        "num_cpus": cpus, "copy_back": self.copy_back, "config": config.model_dump(mode="json")}
                try:
                    entry.ref = remote.options(
                        name=f"prunelab:{entry.run_id}", num_cpus=cpus, num_gpus=gpus, max_retries=0,
                        retry_exceptions=False,
                    ).remote(spec, *parents)
                except Exception as error:  # noqa: BLE001 - Ray refused the task: the run must not stay queued
                    self._settle_unstarted(entry, "failed", f"Ray did not take the task: {_first_line(error)}")
                    raise
                self._runs[entry.run_id] = entry
                self._cond.notify_all()
            ids[item.key] = entry.run_id
        return list(ids.values())

    def _create(self, config: Any, depends: Sequence[str], cpus: float, gpus: float) -> _RayRun:
        run = self.store.create(config)
        lock = claim_lock(run, self.token, self.stale_after_s)
        share = f"{cpus:g} CPU" + (f", {gpus:g} GPU" if gpus else "")
        note = f"queued on Ray ({share})" + (f" after {', '.join(depends)}" if depends else "")
        if self.copy_back:
            note += "; trained in a folder of its node and copied back here when it ends"
        try:
            record_queued(run, self.token, backend=BACKEND, trains_here=False, depends_on=depends, message=note)
            run.log(note)
        except BaseException:
            lock.release()
            raise
        return _RayRun(run, config.name, config.method.name, config.suite, tuple(depends), lock=lock)

    # control ----------------------------------------------------------------------------------
    def cancel(self, run_id: str) -> bool:
        """Cancel a queued run's task, or ask a running one to stop at its next batch; False if ended."""
        viewer.refuse(f"cannot cancel run {run_id}")
        return self._cancel(run_id)

    def _cancel(self, run_id: str) -> bool:
        with self._cond:
            entry = self._runs.get(run_id)
            if entry is None or entry.result is not None:
                return False
            entry.cancel_requested = True
        self.ray.cancel(entry.ref, force=False, recursive=False)
        return True

    def shutdown(self, cancel_running: bool = True, timeout: float | None = 30.0) -> None:
        """Cancel what is still queued or running (if asked), wait until every run is settled, stop."""
        if cancel_running:
            for job in self.jobs():
                if job.state in ACTIVE_STATES:
                    self._cancel(job.run_id)
        self.wait(timeout=timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            for entry in self._runs.values():
                if entry.lock is not None:  # never handed over and not settled (timeout): keep it honest
                    self._settle_unstarted(entry, "cancelled", "cancelled: the Ray driver stopped")
        self._monitor.join(timeout=5.0)
        ownership.release_token(self.token)

    # reading ----------------------------------------------------------------------------------
    def jobs(self) -> list[JobInfo]:
        """Every run of this runner, in submission order, as its status.json says (owner liveness applied)."""
        with self._cond:
            entries = list(self._runs.values())
        return [self._info(entry) for entry in entries]

    def job(self, run_id: str) -> JobInfo:
        """One run of this runner, as `jobs()` shows it; JobError when it was not submitted here."""
        with self._cond:
            entry = self._runs.get(run_id)
        if entry is None:
            raise JobError(f"no job {run_id!r} in this Ray runner")
        return self._info(entry)

    def _info(self, entry: _RayRun) -> JobInfo:
        try:
            status = entry.run.read_status()
        except RunStoreError as error:
            status = {"state": "failed", "error": str(error)}
        state = ownership.effective_state(entry.run.path, status, self.stale_after_s)
        if entry.result is None and state in FINAL_STATES and status.get("state") in ACTIVE_STATES:
            state = "running"  # the driver is settling it this moment
        progress = {**status, "state": state, "log": entry.run.read_log_tail(10)}
        return JobInfo(run_id=entry.run_id, state=state, progress=progress, name=entry.name, method=entry.method,
                       suite=entry.suite, depends_on=entry.depends_on, error=status.get("error"),
                       submitted_at=entry.submitted_at, path=entry.run.path)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every submitted run is settled; False if `timeout` seconds passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while any(entry.result is None for entry in self._runs.values()):
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(POLL_S if remaining is None else min(POLL_S, remaining))
        return True

    # the monitor thread: heartbeats, hand-overs and ended tasks -------------------------------
    def _watch(self) -> None:
        last_beat = 0.0
        while True:
            with self._cond:
                if self._stopping:
                    return
                pending = [entry for entry in self._runs.values() if entry.result is None]
            if time.monotonic() - last_beat >= self._heartbeat_s:
                last_beat = time.monotonic()
                self._beat(pending)
            if not self.ray.is_initialized():  # disconnected (shut down): nothing to ask Ray until reconnected
                with self._cond:
                    self._cond.wait(4 * POLL_S)
                continue
            refs = [entry.ref for entry in pending if entry.ref is not None and entry.failure is None]
            if not refs:
                with self._cond:
                    self._cond.wait(POLL_S)
                self._retry_settle(pending)
                continue
            try:
                ready, _ = self.ray.wait(refs, num_returns=len(refs), timeout=POLL_S, fetch_local=True)
            except Exception:  # noqa: BLE001 - Ray went away (shutdown): runs are settled by their owners
                log.exception("ray.wait failed")
                with self._cond:
                    self._cond.wait(POLL_S)
                continue
            ready_set = set(ready)
            for entry in pending:
                if entry.ref in ready_set:
                    self._task_ended(entry)
            self._retry_settle(pending)

    def _beat(self, pending: list[_RayRun]) -> None:
        """Keep the locks of queued runs fresh; a lock the task has taken over is let go."""
        for entry in pending:
            lock = entry.lock
            if lock is None:
                continue
            try:
                if lock.beat():
                    continue
            except OSError as error:
                log.warning("heartbeat of %s failed: %s", entry.run_id, error)
                continue
            with self._cond:
                lock.release()  # not ours any more: only closes our handle
                entry.lock = None

    def _task_ended(self, entry: _RayRun) -> None:
        try:
            result = self.ray.get(entry.ref)
        except Exception as error:  # noqa: BLE001 - the worker died, the task was cancelled, a dependency failed
            entry.failure = _first_line(error)
            cancelled = type(error).__name__ == "TaskCancelledError" or entry.cancel_requested
            self._settle_failure(entry, cancelled)
            return
        with self._cond:
            if entry.lock is not None and not entry.lock.held():
                entry.lock.release()
                entry.lock = None
            if entry.lock is not None and result.get("archive") is not None:  # trained elsewhere: unpack
                self._settle_copied(entry, result)
                return
            if entry.lock is not None:  # the task never took the run over (e.g. no shared runs folder)
                self._settle_unstarted(entry, "failed", str(result.get("error") or "the task did not train"))
                return
            if entry.run.state not in ACTIVE_STATES:
                entry.result = result
                self._cond.notify_all()
                return
            entry.failure = f"the task returned with the run still {entry.run.state}"
        self._settle_started(entry)  # never leave a run queued or running behind a finished task

    def _settle_copied(self, entry: _RayRun, result: dict[str, Any]) -> None:
        """Write a run trained in a folder of its node (`copy_back`) into the store (caller holds `_cond`)."""
        try:
            names = unpack_run(result["archive"], entry.run.path)
            record_copied_back(entry.run, result.get("node"), len(names))
        except OSError as error:
            self._settle_unstarted(entry, "failed", f"cannot write the run copied back from "
                                                    f"{result.get('node')}: {error.strerror or error}")
            return
        if entry.lock is not None:
            entry.lock.release()
            entry.lock = None
        entry.result = {key: value for key, value in result.items() if key != "archive"}
        self._cond.notify_all()

    def _settle_failure(self, entry: _RayRun, cancelled: bool) -> None:
        """The task ended without a result: record what became of its run."""
        with self._cond:
            if entry.lock is not None and entry.lock.held():  # never started: the driver still owns it
                if cancelled:
                    self._settle_unstarted(entry, "cancelled", "cancelled before it started")
                else:
                    self._settle_unstarted(entry, "failed", self._unstarted_reason(entry))
                return
            if entry.lock is not None:
                entry.lock.release()
                entry.lock = None
        self._settle_started(entry)

    def _unstarted_reason(self, entry: _RayRun) -> str:
        for dep in entry.depends_on:
            parent = self._runs.get(dep)
            if parent is not None and parent.result is not None and parent.result.get("state") != "done":
                detail = f": {parent.result['error']}" if parent.result.get("error") else ""
                return (f"dependency {dep} ended {parent.result.get('state')}{detail}; "
                        "this run needs its finished model")
        return f"its Ray task ended before training: {entry.failure}"

    def _settle_unstarted(self, entry: _RayRun, state: str, message: str) -> None:
        """Final state of a run the driver still owns (caller holds `_cond`)."""
        record_unstarted_end(entry.run, state, message)
        if entry.lock is not None:
            entry.lock.release()
            entry.lock = None
        entry.result = {"run_id": entry.run_id, "state": state, "error": message if state == "failed" else None}
        self._cond.notify_all()

    def _settle_started(self, entry: _RayRun) -> None:
        """A task that had taken its run over ended without a result (its worker died, or it was cancelled
        hard): a run it left queued/running is marked `interrupted` once its lock is stale; resume continues it."""
        try:
            status = entry.run.read_status()
        except RunStoreError as error:
            self._done(entry, {"run_id": entry.run_id, "state": "failed", "error": str(error)})
            return
        state = str(status.get("state"))
        if state not in ACTIVE_STATES:
            self._done(entry, {"run_id": entry.run_id, "state": state, "error": status.get("error")})
            return
        held = ownership.read_lock(entry.run.path)
        reason = "it left no owner" if held is None else ownership.stale_reason(held, stale_after_s=self.stale_after_s)
        if reason is None:
            return  # a worker on another host: its heartbeat has not gone stale yet; retried by the monitor
        lock = take_over(entry.run, self.stale_after_s)
        if lock is None:
            return  # someone else is taking it over (a resume): retried
        try:
            state = entry.run.state
            where = entry.run.read_status().get("node") or "its node"
            why = f"its Ray task on {where} ended without finishing ({entry.failure}; {reason})"
            if entry.cancel_requested and state in ACTIVE_STATES:  # cancelled while it was being taken over
                record_end(entry.run, "cancelled", "cancelled through Ray")
            elif state == "running":
                mark_interrupted(entry.run, state, why)
            elif state == "queued":  # taken over, never trained: nothing to continue from
                record_end(entry.run, "failed", why, error=why, line=f"failed: {why}")
        finally:
            lock.release()
        final = entry.run.state
        self._done(entry, {"run_id": entry.run_id, "state": final, "error": entry.failure})

    def _retry_settle(self, pending: list[_RayRun]) -> None:
        for entry in pending:
            if entry.failure is not None and entry.result is None:
                self._settle_started(entry)

    def _done(self, entry: _RayRun, result: dict[str, Any]) -> None:
        with self._cond:
            entry.result = result
            self._cond.notify_all()

    def __enter__(self) -> RaySuiteRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown(cancel_running=True)

"""One owner per run (`owner.lock`): atomic claims, stale takeover, liveness in every view, delete."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import prunelab
from prunelab.analysis import results
from prunelab.runs import ownership
from prunelab.runs.ownership import LOCK_FILE, RunBusyError, acquire, effective_state
from prunelab.runs.progress import Cancelled, Progress
from prunelab.runs.run_format import RunStoreError
from prunelab.runs.store import RunDir, RunStore
from prunelab.scheduling.jobs import JobError, JobManager, list_jobs
from prunelab.training.engine import run_training
from tests.helpers import HOLD_SCRIPT, child_env, held_cli, run_cli, tiny_config

REPO = Path(prunelab.__file__).resolve().parents[1]
TINY = ["--train-size", "100", "--test-size", "50", "--width", "0.25", "--batch-size", "50", "--threads", "1"]


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def plant_lock(run_path: Path, pid: int, host: str | None = None, age_s: float = 0.0) -> None:
    """The owner.lock a process left behind (written directly, as a killed owner leaves it)."""
    lock = run_path / LOCK_FILE
    lock.write_text(f'{{"pid": {pid}, "host": "{host or socket.gethostname()}", "token": "gone", "since": 1.0}}')
    stamp = time.time() - age_s
    os.utime(lock, (stamp, stamp))


def make_run(tmp_path: Path, epochs: int = 1) -> RunDir:
    return RunStore(tmp_path / "runs").create(tiny_config(epochs=epochs, train_size=150, test_size=50))


# ---------------------------------------------------------------------------------------------
# the lock itself


def test_second_claim_is_refused_naming_the_owner(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    ownership.register_token("first")
    try:
        lock = acquire(run.path, "first")
        with pytest.raises(RunBusyError) as refused:
            acquire(run.path, "second")
        text = str(refused.value)
        assert f"process {os.getpid()} on {socket.gethostname()} since " in text and "heartbeat" in text
        assert lock.held() and lock.beat()
        lock.release()
        assert not run.file(LOCK_FILE).exists()
        acquire(run.path, "first").release()  # free again
    finally:
        ownership.release_token("first")


@pytest.mark.parametrize(("pid", "host", "age_s", "reason"), [
    ("dead", None, 0.0, "is gone"),  # this host, dead pid
    ("self", None, 0.0, "in this process has stopped"),  # our pid, token not held
    ("live", "elsewhere", 3600.0, "no heartbeat for"),  # other host: only the heartbeat tells
])
def test_stale_locks_are_taken_over(tmp_path: Path, pid: str, host: str | None, age_s: float,
                                    reason: str) -> None:
    run = make_run(tmp_path)
    pids = {"dead": dead_pid(), "self": os.getpid(), "live": 1}
    plant_lock(run.path, pids[pid], host, age_s)
    lock = acquire(run.path, "taker")
    assert lock.took_over is not None and reason in lock.took_over
    assert ownership.read_lock(run.path).token == "taker"
    lock.release()


def test_a_fresh_lock_of_another_host_is_respected(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    plant_lock(run.path, 1, "elsewhere", age_s=1.0)
    with pytest.raises(RunBusyError, match="process 1 on elsewhere"):
        acquire(run.path, "taker")


def race_for(run_path: Path, tokens: list[str]) -> tuple[list[ownership.OwnerLock], list[str]]:
    """Every token claims the run at the same moment (one thread each); (locks won, refusals)."""
    barrier = threading.Barrier(len(tokens))
    won: list[ownership.OwnerLock] = []
    refused: list[str] = []

    def claim(token: str) -> None:
        barrier.wait()
        try:
            won.append(acquire(run_path, token))
        except RunBusyError as error:
            refused.append(str(error))

    threads = [threading.Thread(target=claim, args=(token,)) for token in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return won, refused


def test_racing_takeovers_leave_exactly_one_owner(tmp_path: Path) -> None:
    """Eight claimants at once on a stale lock, twenty times: exactly one wins each time."""
    run = make_run(tmp_path)
    for round_ in range(20):
        plant_lock(run.path, dead_pid() if round_ == 0 else 999_999_999)
        tokens = [f"racer-{round_}-{i}" for i in range(8)]
        for token in tokens:
            ownership.register_token(token)
        won, refused = race_for(run.path, tokens)
        assert len(won) == 1 and len(refused) == len(tokens) - 1, (won, refused)
        assert won[0].held() and ownership.read_lock(run.path).token == won[0].token
        assert not [p.name for p in run.path.iterdir() if p.name.startswith(f".{LOCK_FILE}")]
        won[0].release()
        for token in tokens:
            ownership.release_token(token)


def test_an_owner_notices_a_takeover_at_its_next_beat(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    lock = acquire(run.path, "frozen")  # token not registered: this process counts it as stopped
    taker = acquire(run.path, "taker")
    assert taker.took_over is not None
    assert not lock.beat()
    lock.release()  # does not remove the taker's lock
    assert taker.held()
    taker.release()


def test_effective_state_from_status_and_lock(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    run.write_status(state="running")
    assert effective_state(run.path, run.read_status()) == "running"  # fresh status, no lock (legacy)
    plant_lock(run.path, dead_pid())
    assert effective_state(run.path, run.read_status()) == "interrupted"
    plant_lock(run.path, 1, "elsewhere", age_s=ownership.STALE_AFTER_S + 5)
    assert effective_state(run.path, run.read_status()) == "interrupted"
    plant_lock(run.path, 1, "elsewhere")
    assert effective_state(run.path, run.read_status()) == "running"
    run.write_status(state="done")
    assert effective_state(run.path, run.read_status()) == "done"


# ---------------------------------------------------------------------------------------------
# two resumes of one run, as real processes

RACE_SCRIPT = """
import os, pathlib, sys, time
from prunelab.cli import main
go = pathlib.Path(sys.argv[1])
(go.parent / f"ready-{os.getpid()}").write_text("ready")
while not go.exists():
    time.sleep(0.005)
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.slow
def test_two_resume_processes_started_together_train_exactly_once(tmp_path: Path) -> None:
    config = tiny_config(epochs=3, train_size=150, test_size=50)
    runs = tmp_path / "runs"
    run = RunStore(runs).create(config, "contested")
    progress = Progress()
    progress.add_listener(lambda snap: progress.request_cancel() if snap.get("epoch") == 2 else None)
    with pytest.raises(Cancelled):
        run_training(config, run, progress)
    run.write_status(state="running")  # what a SIGKILLed owner leaves: running, and its lock
    plant_lock(run.path, dead_pid())

    go = tmp_path / "go"
    argv = [sys.executable, "-c", RACE_SCRIPT, str(go), "resume", run.run_id, "--runs-dir", str(runs)]
    procs = [subprocess.Popen(argv, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    deadline = time.time() + 120
    while len(list(tmp_path.glob("ready-*"))) < 2:  # both have imported prunelab and wait for the go file
        assert time.time() < deadline and all(proc.poll() is None for proc in procs)
        time.sleep(0.05)
    go.write_text("go")
    outcomes = [(proc, *proc.communicate(timeout=300)) for proc in procs]
    winners = [o for o in outcomes if o[0].returncode == 0]
    losers = [o for o in outcomes if o[0].returncode != 0]
    assert len(winners) == 1 and len(losers) == 1, [(o[0].returncode, o[2][-300:]) for o in outcomes]
    (winner, out, _), (_, _, err) = winners[0], losers[0]
    assert out.strip().splitlines()[-1] == str(run.path)
    assert f"is owned by process {winner.pid} on {socket.gethostname()} since" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert [(row["phase"], row["epoch"]) for row in run.read_metrics()] == [("train", 1), ("train", 2),
                                                                            ("train", 3)]
    assert run.state == "done" and not run.file(LOCK_FILE).exists()
    assert run.file("log.txt").read_text().count("resumed from train epoch 1") == 1


# ---------------------------------------------------------------------------------------------
# a killed CLI run in every view, then deleted



def state_column(table: str) -> str:
    """The `state` cell of the first row of a fixed-width CLI table."""
    header, row = table.splitlines()[:2]
    start = header.index("state")
    return row[start:].split()[0]


def shown_states(runs: Path, run_id: str) -> dict[str, str]:
    """The run's state in `list`, `jobs`, the app's runs table and `list_jobs`."""
    table = results.runs_table([runs])
    (job,) = [job for job in list_jobs(runs) if job.run_id == run_id]
    return {"list": state_column(run_cli("list", "--runs-dir", str(runs))[1]),
            "jobs": state_column(run_cli("jobs", "--runs-dir", str(runs))[1]),
            "runs_table": str(table.loc[table.run_id == run_id, "state"].item()), "list_jobs": job.state}


@pytest.mark.slow
def test_a_killed_cli_run_is_interrupted_in_every_view_then_deletable(tmp_path: Path) -> None:
    runs, marker = tmp_path / "runs", tmp_path / "holding"
    argv = ["run", "baseline", "--epochs", "2", *TINY, "--runs-dir", str(runs), "--name", "victim"]
    with held_cli(HOLD_SCRIPT, marker, argv) as child:
        (info,) = RunStore(runs).list_runs()
        assert set(shown_states(runs, info.run_id).values()) == {"running"}
        before = results.roots_signature([runs])
        with pytest.raises(RunStoreError, match=rf"running by process {child.pid} .*cancel it"):
            results.delete_run(info.path)
    killed_at = time.time()
    assert set(shown_states(runs, info.run_id).values()) == {"interrupted"}
    assert time.time() - killed_at < 5.0
    assert results.roots_signature([runs]) != before  # the app's cached table is recomputed
    assert RunDir(info.path).state == "running"  # nothing was rewritten to get there
    assert results.delete_run(info.path) == f"deleted {info.path}"
    assert not info.path.exists()


def test_delete_removes_a_symlinked_run_link_but_keeps_its_target(tmp_path: Path) -> None:
    elsewhere = make_run(tmp_path / "elsewhere")
    elsewhere.write_status(state="done")
    runs = tmp_path / "runs"
    runs.mkdir()
    link = runs / "linked"
    link.symlink_to(elsewhere.path, target_is_directory=True)
    message = results.delete_run(link)
    assert "removed the link" in message and str(elsewhere.path) in message and "kept" in message
    assert not link.exists() and not link.is_symlink() and elsewhere.file("config.json").is_file()


# ---------------------------------------------------------------------------------------------
# job manager claims


def test_manager_jobs_hold_the_lock_until_they_end(tmp_path: Path) -> None:
    manager = JobManager(tmp_path / "runs")
    try:
        run_id = manager.submit(tiny_config(epochs=1, train_size=100, test_size=50))
        lock = ownership.read_lock(manager.store.root / run_id)
        assert lock is not None and lock.token == manager.token and lock.pid == os.getpid()
        with pytest.raises(RunStoreError, match="cancel it"):
            manager.store.delete(run_id)
        assert manager.wait(run_id, timeout=120)
        assert not (manager.store.root / run_id / LOCK_FILE).exists()
        assert manager.store.open(run_id).state == "done"
    finally:
        manager.shutdown()


def test_resume_of_a_run_owned_elsewhere_names_the_owner(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    run.write_status(state="interrupted")
    plant_lock(run.path, 1, "elsewhere")
    manager = JobManager(run.path.parent, recover=False)
    try:
        with pytest.raises(JobError, match="owned by process 1 on elsewhere"):
            manager.resume(run.run_id)
    finally:
        manager.shutdown()

"""Shared helpers of the benchmark scripts: interleaved timing, statistics, machine facts, JSON, runs.

Benchmarks measure; they never assert. Every timing is taken side by side in one process: the
contenders run in alternating order (round robin, order rotated every round) after a warm-up, and
a ratio is reported as the median of the per-round ratios, with the spread of those ratios, so a
load spike on the shared machine hits both sides of a ratio rather than one of them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # scripts run as `python benchmarks/x.py` from the repository root
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from prunelab.config import DataConfig, RunConfig  # noqa: E402
from prunelab.data import ImageDataset, load_dataset  # noqa: E402
from prunelab.runs.store import RunDir, RunStore  # noqa: E402
from prunelab.training.engine import Trainer, run_training  # noqa: E402

DEFAULT_DATASET = "shapes"


# --- statistics ---------------------------------------------------------------------------------
def summarize(values: Sequence[float]) -> dict[str, Any]:
    """Median and spread of repeated measurements: {"median", "q25", "q75", "min", "max", "n", "values"}.

    Quartiles use `statistics.quantiles(method="inclusive")`; with one value they equal it.
    """
    data = sorted(float(v) for v in values)
    if not data:
        return {"median": None, "q25": None, "q75": None, "min": None, "max": None, "n": 0, "values": []}
    q25, q75 = (statistics.quantiles(data, n=4, method="inclusive")[i] for i in (0, 2)) if len(data) > 1 \
        else (data[0], data[0])
    return {"median": statistics.median(data), "q25": q25, "q75": q75, "min": data[0], "max": data[-1],
            "n": len(data), "values": [round(v, 6) for v in values]}


def pairwise_ratio(numerator: Sequence[float], denominator: Sequence[float]) -> dict[str, Any]:
    """Summary of the per-round ratios numerator[i] / denominator[i] (same round = same machine load)."""
    if len(numerator) != len(denominator):
        raise ValueError(f"{len(numerator)} numerators for {len(denominator)} denominators")
    return summarize([n / d for n, d in zip(numerator, denominator, strict=True) if d > 0])


def fmt(stats: dict[str, Any], digits: int = 3) -> str:
    """'median [q25, q75]' for logs and the doc."""
    if stats.get("median") is None:
        return "n/a"
    return f"{stats['median']:.{digits}f} [{stats['q25']:.{digits}f}, {stats['q75']:.{digits}f}]"


# --- timing --------------------------------------------------------------------------------------
# Which clock the CPU timings read. "cpu" = CPU time of the calling thread (time.thread_time): with
# ONE torch thread all of a forward/backward runs in it, and time spent descheduled by other
# processes on a loaded machine is not counted. "wall" = time.perf_counter (needed for CUDA, worker
# processes, several threads, the app).
_CLOCK = {"name": "wall"}


def set_clock(name: str) -> None:
    if name not in ("cpu", "wall"):
        raise ValueError(f"clock must be 'cpu' or 'wall', got {name!r}")
    _CLOCK["name"] = name


def clock_name() -> str:
    return _CLOCK["name"]


def now() -> float:
    """Seconds on the selected clock (only differences are meaningful)."""
    return time.thread_time() if _CLOCK["name"] == "cpu" else time.perf_counter()


def synchronize(device: torch.device | str | None) -> None:
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device: torch.device | str | None = None) -> float:
    """Seconds of one call of `fn` (CUDA work is synchronised before and after)."""
    synchronize(device)
    start = now()
    fn()
    synchronize(device)
    return now() - start


def interleaved(contenders: dict[str, Callable[[], Any]], rounds: int, warmup: int = 1,
                device: torch.device | str | None = None) -> dict[str, list[float]]:
    """Seconds per call of each contender over `rounds` rounds, after `warmup` untimed rounds.

    Round r runs every contender once, the order rotated by r, so no contender always goes first.
    """
    names = list(contenders)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(warmup + rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            seconds = timed(contenders[name], device)
            if r >= warmup:
                times[name].append(seconds)
    return times


def per_call_ms(fn: Callable[[], Any], calls: int) -> float:
    """Median milliseconds of `calls` back-to-back calls of `fn` (one CPU sample of a latency)."""
    samples = []
    for _ in range(calls):
        start = now()
        fn()
        samples.append((now() - start) * 1000.0)
    return statistics.median(samples)


# --- machine and provenance -----------------------------------------------------------------------
def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def git_commit() -> dict[str, Any]:
    """HEAD of the repository and whether the working tree differs from it."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30,
                                 check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    status = git("status", "--porcelain")
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(status) if status is not None else None}


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "clock": clock_name(),
        "torch_version": torch.__version__, "python": platform.python_version(),
        "platform": platform.platform(), "processor": platform.processor(),
        "cuda_available": torch.cuda.is_available(), "load_average": load_average(),
    }
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name(0)
        info["cuda_version"] = torch.version.cuda
    for package in ("torch_pruning", "streamlit"):
        try:
            info[f"{package}_version"] = __import__(package).__version__
        except ImportError:
            info[f"{package}_version"] = None
    return info


def provenance() -> dict[str, Any]:
    """What every result file carries: machine, git commit, time and the command line."""
    return {"machine": machine_info(), "git": git_commit(), "time": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "argv": sys.argv}


def write_json(path: str | Path, obj: dict[str, Any]) -> None:
    """Write `obj` as indented JSON (atomically: temp file then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def log(message: str) -> None:
    load = load_average()
    print(f"[{time.strftime('%H:%M:%S')} load {load[0] if load else '?'}] {message}", flush=True)


# --- arguments, data and runs ----------------------------------------------------------------
def add_common_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--dataset", default=DEFAULT_DATASET,
                        help="shapes (default), a torchvision name, or folder:PATH (train/, test/)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as one JSON object here")
    parser.add_argument("--work", type=Path, default=None,
                        help="folder for the training runs (default: a temporary folder, deleted)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: stable timings on a shared, loaded machine)")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="CPU timings read thread CPU time (default; needs --threads 1) or wall time")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="full", action="store_false",
                      help="small sizes: a few minutes on 2 CPU cores (default)")
    mode.add_argument("--full", dest="full", action="store_true", help="bigger sizes and more repeats")
    parser.set_defaults(full=False)
    return parser


def apply_threads(threads: int, clock: str = "wall") -> None:
    """Fix torch's intra-op CPU threads and the clock of every CPU timing in this process.

    Thread CPU time misses work done by other threads, so it is only used with one thread.
    """
    torch.set_num_threads(max(1, threads))
    set_clock(clock if threads == 1 else "wall")


def data_config(dataset: str, train_size: int | None, test_size: int | None, seed: int = 0) -> DataConfig:
    return DataConfig(dataset=dataset, train_size=train_size, test_size=test_size, data_seed=seed)


def get_dataset(dataset: str, train_size: int | None, test_size: int | None, seed: int = 0) -> ImageDataset:
    return load_dataset(data_config(dataset, train_size, test_size, seed))


class WorkDir:
    """The benchmark's runs folder: given by --work (kept) or a temporary one (deleted on close)."""

    def __init__(self, path: Path | None) -> None:
        self.keep = path is not None
        self.path = Path(path) if path is not None else Path(tempfile.mkdtemp(prefix="prunelab-bench-"))
        self.path.mkdir(parents=True, exist_ok=True)
        self.store = RunStore(self.path / "runs")

    def scratch(self, name: str) -> RunDir:
        """A fresh run directory outside the runs folder (for trainers used only to time epochs)."""
        path = self.path / "scratch" / name
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return RunDir(path)

    def close(self) -> None:
        if not self.keep:
            shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> WorkDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_config(method: dict[str, Any], dataset: str, train_size: int | None, test_size: int | None,
               model: str, width: float, epochs: int, batch_size: int, name: str, device: str = "cpu",
               seed: int = 0, lr: float = 0.05, **train_extra: Any) -> RunConfig:
    """A validated benchmark RunConfig (`train_extra`: more TrainConfig fields, e.g. amp=False)."""
    return RunConfig.model_validate({
        "name": name, "suite": "benchmark",
        "data": {"dataset": dataset, "train_size": train_size, "test_size": test_size, "data_seed": seed},
        "model": {"name": model, "width": width},
        "train": {"epochs": epochs, "batch_size": batch_size, "lr": lr, "device": device, "seed": seed,
                  "eval_batch_size": 500, **train_extra},
        "method": method,
    })


def ensure_run(work: WorkDir, run_id: str, config: RunConfig, dataset: ImageDataset | None = None) -> RunDir:
    """Train `config` into runs/<run_id> unless a finished run with the same config is already there."""
    path = work.store.root / run_id
    if path.is_dir():
        run = RunDir(path)
        try:
            same = run.read_config().model_dump(exclude={"name"}) == config.model_dump(exclude={"name"})
            if same and run.state == "done":
                log(f"reusing finished run {run_id}")
                return run
        except Exception:  # noqa: BLE001 - unreadable: train again
            pass
        shutil.rmtree(path)
    log(f"training run {run_id} ({config.method.name}, {config.model.name} w{config.model.width}, "
        f"{config.train.epochs} epochs)")
    started = time.perf_counter()
    run = work.store.create(config, run_id)
    run_training(config, run, dataset=dataset)
    log(f"run {run_id} done in {time.perf_counter() - started:.1f} s")
    return run


def trainer_for(config: RunConfig, run: RunDir, dataset: ImageDataset) -> Trainer:
    return Trainer(config, run, dataset=dataset)


def run_section(description: str, measure: Callable[[str, bool, WorkDir, int], dict[str, Any]]) -> None:
    """Script entry point of one benchmark section: parse the common flags, measure, print, write JSON.

    `measure(dataset, full, work, seed)` returns the section's JSON object.
    """
    parser = add_common_args(argparse.ArgumentParser(description=description))
    args = parser.parse_args()
    apply_threads(args.threads, args.clock)
    with WorkDir(args.work) as work:
        result = measure(args.dataset, args.full, work, args.seed)
    result["provenance"] = provenance()
    print({k: v for k, v in result.items() if not isinstance(v, dict | list)})
    if args.out:
        write_json(args.out, result)

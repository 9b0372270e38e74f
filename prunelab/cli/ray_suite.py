"""`python -m prunelab suite NAME ... --backend ray [--address ADDR]`: a suite's runs as Ray tasks.

`add_backend_arguments(parser)` adds the flags to `suite`; `cmd_suite` (prunelab.cli.jobs) calls
`check_backend_arguments` first and hands a built suite to `run_suite_on_ray` when `--backend ray`.
An unreachable address, a bad CPU/GPU share or a missing `ray` package is bad input (one line, exit
status 2) found before any run directory is made.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from prunelab.cli.args import UsageError, at_most, runs_root
from prunelab.cli.display import watch_suite
from prunelab.scheduling.limits import RAY_NUM_CPUS, RAY_NUM_GPUS

BACKENDS = ("local", "ray")
POLL_S = 0.5


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("backend")
    group.add_argument("--backend", default="local",
                       help="local (default: threads of this process) or ray (each run a Ray task)")
    group.add_argument("--address", help="ray: the cluster to join, HOST:PORT of its head node (or auto); "
                                         "default: start a local Ray instance on this machine")
    group.add_argument("--num-cpus", type=float, default=1.0,
                       help=f"ray: CPUs of each run's task (default 1, {at_most(RAY_NUM_CPUS)})")
    group.add_argument("--num-gpus", type=float, default=0.0,
                       help="ray: GPUs of each run's task, fractions allowed (e.g. 0.5: two runs share a GPU; "
                            f"{at_most(RAY_NUM_GPUS)})")
    group.add_argument("--copy-back", action="store_true",
                       help="ray, without a shared filesystem: each run trains in a folder of its node and the "
                            "finished run is copied back into the runs folder here (no live progress)")


def check_backend_arguments(args: argparse.Namespace) -> None:
    """The backend flags make sense together; UsageError (one line) otherwise."""
    if args.backend not in BACKENDS:
        raise UsageError(f"unknown backend {args.backend!r}; allowed: {', '.join(BACKENDS)}")
    if args.backend == "local":
        flags = (("--address", args.address, None), ("--num-cpus", args.num_cpus, 1.0),
                 ("--num-gpus", args.num_gpus, 0.0), ("--copy-back", args.copy_back, False))
        given = [flag for flag, value, default in flags if value != default]
        if given:
            raise UsageError(f"{', '.join(given)} apply only with --backend ray")
        return
    if args.max_concurrent != 1:
        raise UsageError("--max-concurrent applies to the local backend; on Ray, --num-cpus and --num-gpus "
                         "decide how many runs share the cluster")
    from prunelab.scheduling.ray_backend import RayBackendError, check_resources

    try:
        check_resources(args.num_cpus, args.num_gpus)
    except RayBackendError as error:
        raise UsageError(str(error)) from None
    if args.device == "cuda" and args.num_gpus == 0:
        raise UsageError("--device cuda on Ray needs a GPU share per run: give --num-gpus (e.g. 1 or 0.5)")


def run_suite_on_ray(args: argparse.Namespace, suite: Any, weights_of: Any) -> tuple[list[Any], Path] | None:
    """Connect to Ray, submit every run of `suite` as a task and show progress until all have ended.

    Returns the final jobs and the runs folder, or None when cancelled with Ctrl-C."""
    from prunelab.scheduling.ray_backend import RayBackendError, RaySuiteRunner, ray_session

    with contextlib.ExitStack() as stack:
        try:
            ray = stack.enter_context(ray_session(args.address))
        except RayBackendError as error:
            raise UsageError(str(error)) from None
        runner = RaySuiteRunner(runs_root(args), num_cpus=args.num_cpus, num_gpus=args.num_gpus,
                                copy_back=args.copy_back)
        try:
            run_ids = runner.submit_suite(suite)
        except RayBackendError as error:  # e.g. a share no node of the cluster can hold: before any run exists
            runner.shutdown(cancel_running=True)
            raise UsageError(str(error)) from None
        except BaseException:
            runner.shutdown(cancel_running=True)
            raise
        weights = {run_id: weights_of(item.config) for run_id, item in zip(run_ids, suite.runs, strict=True)}
        print(f"suite {suite.suite_id}: {len(run_ids)} runs on Ray ({len(ray.nodes())} node(s)) in "
              f"{runner.runs_dir}", file=sys.stderr)
        jobs = watch_suite(runner, weights, POLL_S)
    return None if jobs is None else (jobs, runner.runs_dir)

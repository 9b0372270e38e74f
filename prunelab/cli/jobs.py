"""CLI commands backed by the job manager: `resume RUN`, `suite NAME`, `jobs`.

`prunelab.cli.main.build_parser` calls `add_job_commands(subparsers)`. Bad input raises `UsageError`
(one line, exit status 2); a run or suite that does not end `done` exits with status 1; Ctrl-C
cancels at the next batch boundary (everything saved is kept) and exits with status 130.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from prunelab.cli.args import (
    COMMON_FLAGS,
    SUITE_SET_FIELDS,
    UsageError,
    add_data_model_arguments,
    add_method_arguments,
    add_runs_dir,
    add_training_arguments,
    at_most,
    config_from_args,
    method_settings_from_args,
    runs_root,
    within,
)
from prunelab.cli.display import ProgressBar, format_table, watch_suite
from prunelab.cli.ray_suite import add_backend_arguments, check_backend_arguments, run_suite_on_ray
from prunelab.config import SWEEP_PARAMS, RunConfig
from prunelab.methods.baseline.config import NAME as BASELINE
from prunelab.runs.progress import accuracy_text
from prunelab.runs.run_format import CONFIG_FILE
from prunelab.runs.safe_text import printable
from prunelab.scheduling.limits import JOBS_RECENT, MAX_CONCURRENT, SEEDS, SUITE_RUNS, SWEEP_VALUES
from prunelab.scheduling.suites import CONTROLS_LAMBDAS, SLIMMING_LAMBDAS, format_values
from prunelab.training.preflight import check_dataset_available, check_suite_runnable

POLL_S = 0.5
RUNS_DIR_HELP = "runs root (default ./runs or $PRUNELAB_RUNS_DIR)"


def _sweep_params_text() -> str:
    """'sparsity_lambda (lambda), prune_ratio (ratio), ... or target_density (density)'."""
    names = [f"{p.name} ({', '.join(p.aliases)})" if p.aliases else p.name for p in SWEEP_PARAMS.values()]
    return f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else "".join(names)


def add_job_commands(sub: Any) -> None:
    """Add `resume`, `suite` and `jobs` to the `python -m prunelab` subparsers."""
    resume = sub.add_parser("resume", help="continue an interrupted, cancelled or failed run "
                                           "from its last epoch checkpoint")
    resume.add_argument("run", help="run id (directory name under the runs dir) or run directory path")
    resume.add_argument("--from-scratch", action="store_true",
                        help="restart the run in place with its config: checkpoint, metrics and artefacts "
                             "are removed (e.g. after a corrupt checkpoint)")
    add_runs_dir(resume, RUNS_DIR_HELP)
    resume.set_defaults(func=cmd_resume)

    suite = sub.add_parser("suite", help="run a suite of runs to the end: demo, slimming, ablation, controls or sweep")
    suite.add_argument("suite", metavar="NAME", help="demo, slimming, ablation, controls or sweep")
    add_runs_dir(suite, RUNS_DIR_HELP)
    add_data_model_arguments(suite)
    add_training_arguments(suite, "E: sparsity epochs of slimming, and of ManiDP's pretrain run unless "
                                  "--pretrain-epochs (default 3)")
    suite.add_argument("--finetune-epochs", type=int,
                       help="F: slimming fine-tune epochs, and ManiDP's unless --pretrain-epochs (--epochs / 2); "
                            "baselines train E + F")
    suite.add_argument("--pretrain-epochs", type=int,
                       help="P: epochs of ManiDP's parent run, pretrain (default E); the ManiDP runs then "
                            "train E + F - P, so a shorter parent gives the gates a longer phase")
    suite.add_argument("--manidp-lr-scale", type=float,
                       help="the ManiDP runs' lr over the baseline's --lr (default 0.5, the paper's for fine-tuning "
                            "a converged model; a short --pretrain-epochs parent may train better at 1.0)")
    suite.add_argument("--seeds", type=int, default=1,
                       help=f"N runs per variant with train seeds 0..N-1 (default 1: the --seed given; "
                            f"{at_most(SEEDS)}; a suite has {at_most(SUITE_RUNS)} runs)")
    suite.add_argument("--method", help="sweep: slimming or manidp (default: the parameter's method)")
    suite.add_argument("--param", help=f"sweep: {_sweep_params_text()}")
    suite.add_argument("--values", help=f"sweep: comma-separated values, e.g. 0,1e-4,1e-3 ({at_most(SWEEP_VALUES)})")
    suite.add_argument("--lambdas", help="demo, slimming and controls: the slimming runs' L1 weights, "
                                         f"comma-separated (default {format_values(SLIMMING_LAMBDAS)}; controls: "
                                         f"{format_values(CONTROLS_LAMBDAS)}), e.g. 0,1e-3,4e-3 "
                                         f"({at_most(SWEEP_VALUES)})")
    suite.add_argument("--max-concurrent", type=int, default=1,
                       help=f"runs trained at once (default 1, {at_most(MAX_CONCURRENT)}: threads of this process)")
    add_method_arguments(suite, skip=SUITE_SET_FIELDS)  # e.g. --target-density: every ManiDP run of the suite
    add_backend_arguments(suite)
    suite.set_defaults(func=cmd_suite)

    jobs = sub.add_parser("jobs", help="table of queued, running and recent runs with their progress")
    add_runs_dir(jobs, RUNS_DIR_HELP)
    jobs.add_argument("--recent", type=int, default=10,
                      help=f"finished runs to show (default 10, {at_most(JOBS_RECENT)})")
    jobs.set_defaults(func=cmd_jobs)


# ---------------------------------------------------------------------------------------------
# resume


def cmd_resume(args: argparse.Namespace) -> int:
    from prunelab.scheduling.jobs import JobError, JobManager

    given = Path(args.run)
    root = given.parent if given.is_dir() and (given / CONFIG_FILE).is_file() else runs_root(args)
    manager = JobManager(root)
    try:
        run_id = manager.resume(args.run, from_scratch=args.from_scratch)
    except JobError as error:
        manager.shutdown()
        raise UsageError(str(error)) from None
    except OSError:  # reported in one line by `main`
        manager.shutdown()
        raise
    bar = ProgressBar()
    try:
        while not manager.wait(run_id, timeout=POLL_S):
            bar(manager.progress(run_id))
    except KeyboardInterrupt:
        manager.shutdown(cancel_running=True)
        bar.close()
        print(printable(f"cancelled; saved so far: {manager.job(run_id).path}"), file=sys.stderr)
        return 130
    bar(manager.progress(run_id))
    bar.close()
    manager.shutdown()
    job = manager.job(run_id)
    if job.state != "done":
        print(printable(f"error: run {run_id} ended {job.state}: {job.error or ''}".rstrip(": ")), file=sys.stderr)
        return 130 if job.state == "cancelled" else 1
    summary = _read_summary(job.path)
    if summary:
        print(f"test accuracy {summary['test_acc']:.4f}, {summary['macs_per_image'] / 1e6:.2f} M MACs per "
              f"image, {summary['params'] / 1e3:.1f} k params")
    print(printable(job.path))
    return 0


# ---------------------------------------------------------------------------------------------
# suite


def build_suite_from_args(args: argparse.Namespace) -> Any:
    """The Suite named on the command line, validated; raises UsageError with one line."""
    from prunelab.scheduling.suites import SUITES, build_suite, parse_values, sweep

    within(MAX_CONCURRENT, args.max_concurrent)  # the counts first: refused before anything is read or made
    within(SEEDS, args.seeds)
    common = argparse.Namespace(**{k: v for k, v in vars(args).items() if k in COMMON_FLAGS})
    base = config_from_args(BASELINE, common)  # data, model and training flags, validated
    settings = {method: {field: value for field, (_, value) in fields.items()}
                for method, fields in method_settings_from_args(args, skip=SUITE_SET_FIELDS).items()}
    check_dataset_available(base)
    try:
        if args.suite == "sweep":
            if not args.param or not args.values:
                raise UsageError("suite sweep needs --param and --values, "
                                 "e.g. --param sparsity_lambda --values 0,1e-4")
            values = parse_values(args.values)
            if args.lambdas is not None:
                raise UsageError("--lambdas applies to the demo, slimming and controls suites; "
                                 "a sweep takes --values")
            suite = sweep(args.method, args.param, values, base, args.epochs, args.finetune_epochs,
                          seeds=args.seeds, method_settings=settings, pretrain_epochs=args.pretrain_epochs,
                          manidp_lr_scale=args.manidp_lr_scale)
        elif args.suite not in SUITES:
            raise UsageError(f"unknown suite {args.suite!r}; allowed: {', '.join([*SUITES, 'sweep'])}")
        else:
            for flag in ("method", "param", "values"):
                if getattr(args, flag) is not None:
                    raise UsageError(f"--{flag} applies only to 'suite sweep'")
            lambdas = None if args.lambdas is None else parse_values(args.lambdas, "--lambdas")
            suite = build_suite(args.suite, base, args.epochs, args.finetune_epochs, seeds=args.seeds,
                                method_settings=settings, lambdas=lambdas, pretrain_epochs=args.pretrain_epochs,
                                manidp_lr_scale=args.manidp_lr_scale)
    except ValueError as error:
        raise UsageError(str(error)) from None
    check_suite_runnable([item.config for item in suite.runs])  # memory, before any run directory exists
    return suite


def run_weight(config: RunConfig) -> float:
    """Relative cost of a run for the overall bar: its epochs over every phase."""
    return float(config.train.epochs + getattr(config.method, "finetune_epochs", 0))


def cmd_suite(args: argparse.Namespace) -> int:
    from prunelab.scheduling.jobs import JobManager

    check_backend_arguments(args)
    suite = build_suite_from_args(args)
    if args.backend == "ray":
        return _suite_on_ray(args, suite)
    manager = JobManager(runs_root(args), max_concurrent=args.max_concurrent)
    try:
        run_ids = manager.submit_suite(suite)
    except OSError:  # e.g. a read-only runs folder: reported in one line by `main`
        manager.shutdown()
        raise
    weights = {run_id: run_weight(item.config) for run_id, item in zip(run_ids, suite.runs, strict=True)}
    print(f"suite {suite.suite_id}: {len(run_ids)} runs in {manager.runs_dir}", file=sys.stderr)
    jobs = watch_suite(manager, weights, POLL_S)
    if jobs is None:
        return 130
    print(format_table(suite_rows(jobs), SUITE_COLUMNS))
    print(f"suite {suite.suite_id}: {sum(j.state == 'done' for j in jobs)}/{len(jobs)} runs done "
          f"in {manager.runs_dir}")
    return 0 if all(job.state == "done" for job in jobs) else 1


def _suite_on_ray(args: argparse.Namespace, suite: Any) -> int:
    outcome = run_suite_on_ray(args, suite, run_weight)
    if outcome is None:
        return 130
    jobs, runs_dir = outcome
    rows = suite_rows(jobs)
    for row, job in zip(rows, jobs, strict=True):
        row["node"] = str(job.progress.get("node") or "")
    print(format_table(rows, (*SUITE_COLUMNS[:3], "node", *SUITE_COLUMNS[3:])))
    print(f"suite {suite.suite_id}: {sum(j.state == 'done' for j in jobs)}/{len(jobs)} runs done on Ray in {runs_dir}")
    return 0 if all(job.state == "done" for job in jobs) else 1


SUITE_COLUMNS = ("run", "method", "state", "test_acc", "MMACs/img", "params", "wall_s", "error")


def suite_rows(jobs: list[Any]) -> list[dict[str, str]]:
    """Final table rows: state and the headline figures of each run's summary.json."""
    rows = []
    for job in jobs:
        summary = _read_summary(job.path) or {}
        acc, macs = summary.get("test_acc"), summary.get("macs_per_image")
        params, wall = summary.get("params"), summary.get("wall_time_s")
        rows.append({
            "run": job.name or job.run_id, "method": job.method or "", "state": job.state,
            "test_acc": f"{acc:.4f}" if acc is not None else "",
            "MMACs/img": f"{macs / 1e6:.2f}" if macs is not None else "",
            "params": f"{params / 1e3:.1f}k" if params is not None else "",
            "wall_s": f"{wall:.0f}" if wall is not None else "",
            "error": (job.error or "")[:60] if job.state != "done" else "",
        })
    return rows


def _read_summary(path: Path | None) -> dict[str, Any] | None:
    from prunelab.runs.run import Run
    from prunelab.runs.run_format import RunStoreError

    if path is None:
        return None
    try:
        return Run(path).summary
    except RunStoreError:
        return None


# ---------------------------------------------------------------------------------------------
# jobs


JOBS_COLUMNS = ("run", "suite", "method", "state", "where", "phase", "epoch", "progress", "ETA", "test_acc",
               "updated")


def cmd_jobs(args: argparse.Namespace) -> int:
    from prunelab.scheduling.jobs import list_jobs

    within(JOBS_RECENT, args.recent)
    root = runs_root(args)
    jobs = list_jobs(root, recent=args.recent)
    if not jobs:
        print(f"no jobs in {root}")
        return 0
    print(format_table([job_row(job) for job in jobs], JOBS_COLUMNS))
    return 0


def job_row(job: Any) -> dict[str, str]:
    """One `jobs` table row from a JobInfo (live or read from status.json)."""
    snap = job.progress
    metrics = snap.get("metrics") or {}
    eta = snap.get("eta_s")
    updated = snap.get("updated_at")
    return {
        "run": job.run_id, "suite": job.suite or "", "method": job.method or "", "state": job.state,
        "where": f"ray:{snap.get('node') or '?'}" if snap.get("backend") == "ray" else str(snap.get("backend") or ""),
        "phase": str(snap.get("phase") or ""),
        "epoch": f"{snap.get('epoch') or 0}/{snap.get('epochs_total') or 0}",
        "progress": f"{100 * float(snap.get('fraction') or 0.0):.0f}%",
        "ETA": f"{eta:.0f}s" if eta and job.state == "running" else "",
        "test_acc": accuracy_text(metrics, digits=4).removeprefix("test acc "),
        "updated": time.strftime("%H:%M:%S", time.localtime(updated)) if updated else "",
    }

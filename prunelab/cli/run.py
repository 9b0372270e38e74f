"""`python -m prunelab run METHOD`: train one run in this process, with a progress bar on stderr."""

from __future__ import annotations

import argparse
import sys

from prunelab.cli.args import config_from_args, runs_root
from prunelab.cli.display import ProgressBar
from prunelab.runs.safe_text import printable
from prunelab.training.preflight import check_runnable


def cmd_run(args: argparse.Namespace) -> int:
    from prunelab.data import DatasetError
    from prunelab.runs.progress import Cancelled, Progress
    from prunelab.runs.run_format import RunDeleted
    from prunelab.runs.run_life import claim_run
    from prunelab.runs.store import RunStore
    from prunelab.training.engine import run_training

    config = config_from_args(args.method, args)
    check_runnable(config)  # before the run directory exists and before any image is loaded
    store = RunStore(runs_root(args))
    run = store.create(config, config.name)
    progress = Progress(run.run_id)
    bar = ProgressBar()
    progress.add_listener(bar)
    try:
        # owner.lock + heartbeat (nobody else takes it; the progress goes into status.json at every beat)
        with claim_run(run, on_lost=progress.request_cancel, progress=progress):
            summary = run_training(config, run, progress)
    except DatasetError as error:
        bar.close()
        print(f"error: {printable(error)}", file=sys.stderr)
        return 2
    except RunDeleted as error:  # nothing of the run is left to point at
        bar.close()
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (Cancelled, KeyboardInterrupt):
        bar.close()
        print(f"cancelled; saved so far: {run.path}", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - reported in one line; traceback is in the run directory
        bar.close()
        print(printable(f"error: run failed: {type(error).__name__}: {error} (traceback: {run.file('traceback.txt')})"),
              file=sys.stderr)
        return 1
    bar.close()
    print(f"test accuracy {summary['test_acc']:.4f}, {summary['macs_per_image'] / 1e6:.2f} M MACs per image, "
          f"{summary['params'] / 1e3:.1f} k params, {summary['wall_time_s']:.1f} s")
    print(run.path)
    return 0

"""Command line: `python -m prunelab run|list|resume|suite|jobs|export|models|report`.

Bad input exits with status 2 and one line naming the problem and the allowed values; a failed run
exits with status 1 and its error; a finished run prints its directory as the last line of stdout. In
viewer mode (`PRUNELAB_VIEWER=1`, `prunelab.runs.viewer`) `run`, `resume` and `suite` are refused the same way.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from prunelab.cli.args import OneLineParser, UsageError, add_run_arguments, add_runs_dir
from prunelab.cli.export import add_export_commands
from prunelab.cli.jobs import add_job_commands
from prunelab.cli.listing import cmd_list
from prunelab.cli.models import add_models_command
from prunelab.cli.report import add_report_command
from prunelab.cli.run import cmd_run
from prunelab.runs.safe_text import printable
from prunelab.runs.viewer import ViewerModeError
from prunelab.training.preflight import NotRunnable


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m prunelab", description="PruneLab: CNN channel pruning lab")
    parser.add_argument("--runs-dir", help="runs root (default ./runs or $PRUNELAB_RUNS_DIR)")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train one run: baseline, slimming or manidp")
    run.add_argument("method", help="baseline, slimming or manidp")
    add_runs_dir(run)
    add_run_arguments(run)
    run.set_defaults(func=cmd_run)
    lst = sub.add_parser("list", help="list runs as a table")
    add_runs_dir(lst)
    lst.set_defaults(func=cmd_list)
    add_job_commands(sub)
    add_export_commands(sub)
    add_models_command(sub)
    add_report_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return int(args.func(args))
    except (UsageError, NotRunnable, ViewerModeError) as error:  # bad input, a run that cannot start here
        print(f"error: {printable(error)}", file=sys.stderr)  # it may quote a run's name or files
        return 2
    except OSError as error:  # e.g. a read-only or full runs folder: one line, no traceback
        from prunelab.runs.store import describe_os_error

        print(f"error: {printable(describe_os_error(error))}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

"""`python -m prunelab report [RUNS_DIR...] --out lesson.html`: the guided tours as one HTML file that needs no
server and no network (`prunelab.export.handout`)."""

from __future__ import annotations

import argparse
from typing import Any

from prunelab.cli.args import UsageError
from prunelab.runs.safe_text import printable


def add_report_command(sub: Any) -> None:
    """Add `report` to the `python -m prunelab` subparsers."""
    report = sub.add_parser("report", help="the guided tours of both papers as one self-contained HTML file (a "
                                           "handout that opens offline)")
    report.add_argument("runs_dirs", nargs="*", metavar="RUNS_DIR",
                        help="folders of runs (default: the runs folder and the bundled demos)")
    report.add_argument("--out", required=True, help="the .html file to write")
    report.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from prunelab.export import ExportError
    from prunelab.export.handout import default_roots, write_handout

    try:
        made = write_handout(args.runs_dirs or default_roots(), args.out)
    except ExportError as error:
        raise UsageError(str(error)) from None
    print(printable(f"wrote {made.path}: {made.steps} steps, {made.charts} charts, {made.size / 1e6:.1f} MB; "
                    "open it in any browser, no server or network needed"))
    return 0

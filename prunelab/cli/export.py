"""`python -m prunelab export tensorboard RUN [RUN...] --out DIR` and `export onnx RUN --out FILE.onnx`.

An unknown run, a run without the files an export needs, or an output that cannot be written is bad
input: one line, exit status 2, and nothing already saved changes (prunelab.export writes atomically).
"""

from __future__ import annotations

import argparse
from typing import Any

from prunelab.cli.args import UsageError, add_runs_dir, runs_root
from prunelab.runs.safe_text import printable

RUNS_DIR_HELP = "runs root (default ./runs or $PRUNELAB_RUNS_DIR)"


def add_export_commands(sub: Any) -> None:
    """Add `export tensorboard` and `export onnx` to the `python -m prunelab` subparsers."""
    export = sub.add_parser("export", help="export runs to TensorBoard event files or a model to ONNX")
    kinds = export.add_subparsers(dest="export_kind", required=True, parser_class=type(export))
    board = kinds.add_parser("tensorboard", help="scalars, |gamma| histograms, hparams and gate embeddings "
                                                 "as TensorBoard event files: tensorboard --logdir DIR")
    board.add_argument("runs", nargs="+", metavar="RUN", help="run ids (under the runs dir) or run directories")
    board.add_argument("--out", required=True, help="folder for the event files, one subfolder per run")
    add_runs_dir(board, RUNS_DIR_HELP)
    board.set_defaults(func=cmd_export_tensorboard)
    onnx = kinds.add_parser("onnx", help="a finished run's model as an ONNX file, checked with onnxruntime")
    onnx.add_argument("run", metavar="RUN", help="run id (under the runs dir) or run directory")
    onnx.add_argument("--out", required=True, help="the .onnx file to write")
    onnx.add_argument("--latency", action="store_true",
                      help="also time onnxruntime and PyTorch on this CPU (batch 1 and 64)")
    add_runs_dir(onnx, RUNS_DIR_HELP)
    onnx.set_defaults(func=cmd_export_onnx)


def cmd_export_tensorboard(args: argparse.Namespace) -> int:
    from prunelab.export import ExportError, resolve_run
    from prunelab.export.tensorboard import export_tensorboard

    try:
        runs = [resolve_run(run, runs_root(args)) for run in args.runs]
        records = export_tensorboard(runs, args.out)
    except ExportError as error:
        raise UsageError(str(error)) from None
    for record in records:
        extras = [f"{len(record.scalar_tags)} scalar tags", f"{len(record.histogram_tags)} histogram tags",
                  f"{len(record.hparams)} hparams, {len(record.final)} final figures"]
        if record.embedding_points:
            extras.append(f"gate embedding of {record.embedding_points} test images"
                          + (" with sprites" if record.sprite else " (no sprites: the dataset is not here)"))
        print(printable(f"{record.run_id}: {', '.join(extras)} -> {record.log_dir}"))
    print(f"open with: tensorboard --logdir {args.out}")
    return 0


def cmd_export_onnx(args: argparse.Namespace) -> int:
    from prunelab.export import ExportError, resolve_run
    from prunelab.export.onnx import export_onnx, latency_comparison

    try:
        run = resolve_run(args.run, runs_root(args))
        record = export_onnx(run, args.out)
    except ExportError as error:
        raise UsageError(str(error)) from None
    macs = f", {record.macs_per_image / 1e6:.2f} M MACs per image" if record.macs_per_image is not None else ""
    print(printable(f"{record.run_id}: {record.kind}, {record.params / 1e3:.1f} k params{macs}, "
                    f"opset {record.opset}, {record.bytes / 1e3:.0f} kB"))
    print(f"onnxruntime vs PyTorch: max |diff| {record.max_abs_diff:.2e} on {record.checked_on} "
          f"(tolerance {record.tolerance:g})")
    if record.note:
        print(f"note: {printable(record.note)}")
    if args.latency:
        figures = latency_comparison(run, record.path)
        print("CPU latency, ms per batch ({:.0f} threads): ".format(figures["threads"]) + "; ".join(
            f"batch {b}: PyTorch {figures[f'pytorch_ms_b{b}']:.2f}, onnxruntime {figures[f'onnxruntime_ms_b{b}']:.2f}"
            for b in (1, 64)))
    print(printable(record.path))
    return 0

"""Command line: `python -m prunelab run|list|resume|suite|jobs`.

Bad input exits with status 2 and one line naming the problem and the allowed values; a failed run
exits with status 1 and its error; a finished run prints its directory as the last line of stdout.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from prunelab.config import METHOD_NAMES, RunConfig, describe_validation_error
from prunelab.progress import accuracy_text


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports bad input as a UsageError (one line) instead of usage text + exit."""

    def error(self, message: str) -> Any:
        raise UsageError(message)


# flag -> (section, field) of RunConfig; method flags apply only to the method that has the field
COMMON_FLAGS: dict[str, tuple[str, str]] = {
    "dataset": ("data", "dataset"), "train_size": ("data", "train_size"), "test_size": ("data", "test_size"),
    "data_dir": ("data", "data_dir"), "model": ("model", "name"), "width": ("model", "width"),
    "epochs": ("train", "epochs"), "lr": ("train", "lr"), "batch_size": ("train", "batch_size"),
    "seed": ("train", "seed"), "device": ("train", "device"), "weight_decay": ("train", "weight_decay"),
    "schedule": ("train", "schedule"), "threads": ("train", "threads"),
}
METHOD_FLAGS = {
    "sparsity_lambda": "sparsity_lambda", "prune_ratio": "prune_ratio", "finetune_epochs": "finetune_epochs",
    "finetune_lr": "finetune_lr", "min_channels": "min_channels", "lambda_prime": "lambda_prime",
    "gamma_sim": "gamma_sim", "gamma_c": "gamma_c", "target_density": "target_density",
    "init_from": "init_from",
}


def add_data_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Dataset and model flags, shared by `run` and `suite`."""
    data = parser.add_argument_group("data and model")
    data.add_argument("--dataset", help="shapes (default), cifar10, cifar100, svhn, mnist, fashion-mnist, folder:PATH")
    data.add_argument("--train-size", type=int, help="number of training images")
    data.add_argument("--test-size", type=int, help="number of test images")
    data.add_argument("--data-dir", help="where torchvision datasets are stored (default ./data)")
    data.add_argument("--model", help="vgg11 (default), vgg16, vgg19, resnet20, resnet32, resnet56, resnet110")
    data.add_argument("--width", type=float, help="width multiplier (default 0.25)")


def add_training_arguments(parser: argparse.ArgumentParser, epochs_help: str) -> None:
    """Optimisation flags, shared by `run` and `suite`."""
    train = parser.add_argument_group("training")
    train.add_argument("--epochs", type=int, help=epochs_help)
    train.add_argument("--lr", type=float, help="learning rate")
    train.add_argument("--batch-size", type=int)
    train.add_argument("--weight-decay", type=float)
    train.add_argument("--schedule", help="cosine (default), step or constant")
    train.add_argument("--seed", type=int)
    train.add_argument("--device", help="auto (default), cpu or cuda")
    train.add_argument("--threads", type=int, help="CPU threads for torch while training (default: torch's)")


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_model_arguments(parser)
    add_training_arguments(parser, "training epochs, default 20 (slimming: sparsity-training epochs)")
    slim = parser.add_argument_group("slimming")
    slim.add_argument("--lambda", dest="sparsity_lambda", type=float, help="L1 strength on BN gammas (1e-4)")
    slim.add_argument("--prune-ratio", type=float, help="global fraction of channels removed (0.5)")
    slim.add_argument("--finetune-epochs", type=int, help="fine-tuning epochs after pruning (10)")
    slim.add_argument("--finetune-lr", type=float, help="fine-tuning learning rate (default: --lr)")
    slim.add_argument("--min-channels", type=int, help="channels every layer keeps at least (1)")
    mani = parser.add_argument_group("manidp")
    mani.add_argument("--lambda-prime", type=float, help="maximum per-image sparsity weight lambda' (0.05)")
    mani.add_argument("--gamma-sim", type=float, help="similarity-alignment weight gamma (1.0)")
    mani.add_argument("--gamma-c", type=float, help="complexity exponent (1.0)")
    mani.add_argument("--target-density", type=float, help="fraction of channels kept per layer at the end (0.7)")
    mani.add_argument("--no-complexity", action="store_true", help="one sparsity weight for every image")
    mani.add_argument("--no-similarity", action="store_true", help="drop the similarity-alignment term")
    mani.add_argument("--init-from", help="run directory (or run id) whose model.pt initialises the backbone")
    parser.add_argument("--name", help="a name for the run directory")


def config_from_args(method: str, args: argparse.Namespace) -> RunConfig:
    """Build and validate a RunConfig from parsed flags; raises UsageError with one clear line."""
    if method not in METHOD_NAMES:
        raise UsageError(f"unknown method {method!r}; allowed: {', '.join(METHOD_NAMES)}")
    raw: dict[str, Any] = {"data": {}, "model": {}, "train": {}, "method": {"name": method}}
    for flag, (section, key) in COMMON_FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            raw[section][key] = value
    method_fields = _method_fields(method)
    for flag, key in METHOD_FLAGS.items():
        value = getattr(args, flag, None)
        if value is None:
            continue
        if key not in method_fields:
            raise UsageError(f"--{flag.replace('_', '-')} does not apply to method {method!r}")
        raw["method"][key] = value
    for flag, key in (("no_complexity", "complexity"), ("no_similarity", "similarity")):
        if getattr(args, flag, False):
            if key not in method_fields:
                raise UsageError(f"--{flag.replace('_', '-')} does not apply to method {method!r}")
            raw["method"][key] = False
    if getattr(args, "name", None):
        raw["name"] = args.name
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as error:
        raise UsageError(describe_validation_error(error)) from None


def _method_fields(method: str) -> set[str]:
    from prunelab.config import BaselineConfig, ManiDPConfig, SlimmingConfig

    cls = {"baseline": BaselineConfig, "slimming": SlimmingConfig, "manidp": ManiDPConfig}[method]
    return set(cls.model_fields)


def check_runnable(config: RunConfig) -> None:
    """Checks before a run directory is created: the dataset folder exists and the run fits in memory
    (prunelab.resources); raises UsageError with one line."""
    from prunelab.data import DatasetError
    from prunelab.resources import check_run_fits

    _check_dataset_available(config)
    try:
        check_run_fits(config)
    except (ValueError, DatasetError) as error:  # ResourceError, or a folder that cannot be listed
        raise UsageError(str(error)) from None


def check_suite_runnable(configs: Sequence[RunConfig]) -> None:
    """`check_runnable` for each distinct data/model/training setting of a suite's runs."""
    seen = set()
    for config in configs:
        key = config.model_dump_json(include={"data", "model", "train"})
        if key not in seen:
            seen.add(key)
            check_runnable(config)


def _check_dataset_available(config: RunConfig) -> None:
    from prunelab.data.folder import folder_problem

    dataset = config.data.dataset
    problem = folder_problem(dataset[len("folder:"):]) if dataset.startswith("folder:") else None
    if problem is not None:
        raise UsageError(problem)


class TerminalProgress:
    """A one-line progress bar on stderr, fed by Progress listeners."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self._last = ""

    def __call__(self, snap: dict[str, Any]) -> None:
        fraction = float(snap.get("fraction") or 0.0)
        filled = int(30 * fraction)
        eta = snap.get("eta_s")
        eta_text = f" ETA {eta:4.0f}s" if eta else ""
        metrics = snap.get("metrics") or {}
        acc = f" {accuracy_text(metrics)}" if "test_acc" in metrics else ""
        line = (f"\r[{'#' * filled}{'.' * (30 - filled)}] {100 * fraction:5.1f}% {snap.get('phase') or ''} "
                f"epoch {snap.get('epoch', 0)}/{snap.get('epochs_total', 0)} "
                f"batch {snap.get('batch', 0)}/{snap.get('batches', 0)}{acc}{eta_text}")
        if line != self._last:
            self.stream.write(line.ljust(100))
            self.stream.flush()
            self._last = line

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def _runs_root(args: argparse.Namespace) -> Path:
    from prunelab.store import default_runs_dir

    return Path(args.runs_dir) if getattr(args, "runs_dir", None) else default_runs_dir()


def cmd_run(args: argparse.Namespace) -> int:
    from prunelab.data import DatasetError
    from prunelab.engine import run_training
    from prunelab.jobs import claim_run
    from prunelab.progress import Cancelled, Progress
    from prunelab.store import RunStore

    config = config_from_args(args.method, args)
    check_runnable(config)  # before the run directory exists and before any image is loaded
    store = RunStore(_runs_root(args))
    run = store.create(config, config.name)
    progress = Progress(run.run_id)
    bar = TerminalProgress()
    progress.add_listener(bar)
    try:
        with claim_run(run, on_lost=progress.request_cancel):  # owner.lock + heartbeat: nobody else takes it
            summary = run_training(config, run, progress)
    except DatasetError as error:
        bar.close()
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (Cancelled, KeyboardInterrupt):
        bar.close()
        print(f"cancelled; saved so far: {run.path}", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - reported in one line; traceback is in the run directory
        bar.close()
        print(f"error: run failed: {type(error).__name__}: {error} (traceback: {run.file('traceback.txt')})",
              file=sys.stderr)
        return 1
    bar.close()
    print(f"test accuracy {summary['test_acc']:.4f}, {summary['macs_per_image'] / 1e6:.2f} M MACs per image, "
          f"{summary['params'] / 1e3:.1f} k params, {summary['wall_time_s']:.1f} s")
    print(run.path)
    return 0


def format_table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    """Plain fixed-width table for the terminal."""
    cells = [[str(row.get(col, "")) for col in columns] for row in rows]
    widths = [max([len(col)] + [len(r[i]) for r in cells]) for i, col in enumerate(columns)]
    lines = ["  ".join(col.ljust(w) for col, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


LIST_COLUMNS = ("run", "method", "dataset", "model", "state", "progress", "test_acc", "MMACs/img", "problem")


def cmd_list(args: argparse.Namespace) -> int:
    """Every run as a table row; a run with a missing or corrupt file is listed `broken` with the reason."""
    from prunelab.store import RunStore

    rows = [list_row(entry) for entry in RunStore(_runs_root(args)).scan(check_artefacts=True)]
    if not rows:
        print(f"no runs in {_runs_root(args)}")
        return 0
    print(format_table(rows, LIST_COLUMNS))
    return 0


def list_row(entry: Any) -> dict[str, str]:
    """One `list` row from a RunInfo or a BrokenRun (prunelab.store.RunStore.scan); a run whose owner is
    gone shows as `interrupted` (prunelab.ownership.effective_state)."""
    from prunelab.ownership import effective_state

    config = entry.config
    row = {"run": entry.run_id, "method": config.method.name if config else "",
           "dataset": config.data.dataset if config else "", "model": config.model.name if config else "",
           "state": "broken" if entry.broken else effective_state(entry.path, entry.status), "progress": "",
           "test_acc": "", "MMACs/img": "",
           "problem": "; ".join(entry.problems)}
    status, summary = getattr(entry, "status", None) or {}, getattr(entry, "summary", None) or {}
    if status:
        row["progress"] = f"{100 * float(status.get('fraction') or 0):.0f}%"
    acc, macs = summary.get("test_acc"), summary.get("macs_per_image")
    row["test_acc"] = f"{acc:.4f}" if acc is not None else ""
    row["MMACs/img"] = f"{macs / 1e6:.2f}" if macs is not None else ""
    return row


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m prunelab", description="PruneLab: CNN channel pruning lab")
    parser.add_argument("--runs-dir", help="runs root (default ./runs or $PRUNELAB_RUNS_DIR)")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train one run: baseline, slimming or manidp")
    run.add_argument("method", help="baseline, slimming or manidp")
    run.add_argument("--runs-dir", dest="runs_dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    add_run_arguments(run)
    run.set_defaults(func=cmd_run)
    lst = sub.add_parser("list", help="list runs as a table")
    lst.add_argument("--runs-dir", dest="runs_dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    lst.set_defaults(func=cmd_list)
    _add_job_commands(sub)
    return parser


def _add_job_commands(sub: Any) -> None:
    """resume / suite / jobs live with the job manager (prunelab.jobs_cli)."""
    try:
        from prunelab.jobs_cli import add_job_commands
    except ImportError:
        return
    add_job_commands(sub)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return int(args.func(args))
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # e.g. a read-only or full runs folder: one line, no traceback
        from prunelab.store import describe_os_error

        print(f"error: {describe_os_error(error)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

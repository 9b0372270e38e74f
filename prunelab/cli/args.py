"""Arguments of `python -m prunelab`: parsers, flags -> RunConfig, the checks before a run, UsageError.

Every command module builds on this one; nothing here imports a command.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from prunelab.config import METHOD_NAMES, RunConfig, describe_validation_error


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


def runs_root(args: argparse.Namespace) -> Path:
    from prunelab.store import default_runs_dir

    return Path(args.runs_dir) if getattr(args, "runs_dir", None) else default_runs_dir()


def add_runs_dir(parser: argparse.ArgumentParser, help_text: str = argparse.SUPPRESS) -> None:
    """`--runs-dir` after the command name too (the top-level flag is the documented one)."""
    parser.add_argument("--runs-dir", dest="runs_dir", default=argparse.SUPPRESS, help=help_text)

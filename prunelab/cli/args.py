"""Arguments of `python -m prunelab`: parsers, flags -> RunConfig, the checks before a run, UsageError.

Every command module builds on this one; nothing here imports a command.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, get_args

from pydantic import ValidationError
from pydantic.fields import FieldInfo

from prunelab.config import METHOD_CONFIGS, METHOD_NAMES, METHOD_PARAMS, RunConfig, describe_validation_error
from prunelab.scheduling.limits import Limit, format_number


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


def within(limit: Limit, value: Any) -> Any:
    """`value` when it lies within `limit` (prunelab.scheduling.limits); else UsageError: one line naming the
    flag, the allowed range and the reason, before anything is made."""
    if not limit.contains(value):
        raise UsageError(limit.refusal(value))
    return value


def at_most(limit: Limit) -> str:
    """'at most 64': a flag's help names its limit."""
    return f"at most {format_number(limit.high)}"


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports bad input as a UsageError (one line) instead of usage text + exit."""

    def error(self, message: str) -> Any:
        raise UsageError(message)


# flag -> (section, field) of RunConfig; method flags apply only to the method that has the field
COMMON_FLAGS: dict[str, tuple[str, str]] = {
    "dataset": ("data", "dataset"), "train_size": ("data", "train_size"), "test_size": ("data", "test_size"),
    "data_dir": ("data", "data_dir"), "model": ("model", "name"), "width": ("model", "width"),
    "cifar_stem": ("model", "cifar_stem"), "weights": ("model", "weights"),
    "epochs": ("train", "epochs"), "lr": ("train", "lr"), "batch_size": ("train", "batch_size"),
    "seed": ("train", "seed"), "device": ("train", "device"), "weight_decay": ("train", "weight_decay"),
    "schedule": ("train", "schedule"), "threads": ("train", "threads"), "channels_last": ("train", "channels_last"),
}


def method_flags(method: str) -> dict[str, tuple[str, FieldInfo]]:
    """{argparse dest: (flag, pydantic field)} of every field of the method's config class (its `name`
    aside), the flag from the field's facts (`prunelab.config.ParamFacts.cli_flag`: --<field-name> unless the
    field names another, as `--lambda`): a bool that defaults to true is switched off by `--no-<field>`,
    one that defaults to false is switched on by its flag."""
    fields = METHOD_CONFIGS[method].model_fields
    return {facts.cli_dest: (facts.cli_flag, fields[field]) for field, facts in METHOD_PARAMS[method].items()}


def _flag_type(info: FieldInfo) -> type:
    """int, float or str: the field's type without `| None`."""
    types = [t for t in (get_args(info.annotation) or (info.annotation,)) if t is not type(None)]
    return types[0] if types and types[0] in (int, float) else str


def add_data_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Dataset and model flags, shared by `run` and `suite`."""
    data = parser.add_argument_group("data and model")
    data.add_argument("--dataset", help="shapes (default), cifar10, cifar100, svhn, mnist, fashion-mnist, folder:PATH")
    data.add_argument("--train-size", type=int, help="number of training images")
    data.add_argument("--test-size", type=int, help="number of test images")
    data.add_argument("--data-dir", help="where torchvision datasets are stored (default ./data)")
    data.add_argument("--model", help="vgg11 (default), vgg16, vgg19, resnet20, resnet32, resnet56, resnet110, or "
                                      "torchvision:NAME (`python -m prunelab models` lists them)")
    data.add_argument("--width", type=float, help="width multiplier (default 0.25; torchvision models: 1.0 only)")
    data.add_argument("--imagenet-stem", dest="cifar_stem", action="store_const", const=False, default=None,
                      help="torchvision models: keep the ImageNet stem (default: a 3x3 stride-1 first convolution "
                           "and no max-pool, for 32x32 images)")
    data.add_argument("--weights", help="torchvision models: start from this state dict or checkpoint file "
                                        "(a run's model.pt, or your own); nothing is downloaded")


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
    train.add_argument("--channels-last", choices=["auto", "true", "false"],
                       help="channels_last memory format: auto (default: on CUDA only), true (also on CPU: faster "
                            "for wide models such as resnet20 at width 1.0, slower for narrow ones), false")


# fields a suite sets for its runs itself (its own --finetune-epochs is F; ManiDP runs start from its pretrain)
SUITE_SET_FIELDS = ("finetune_epochs", "init_from")


def shared_fields() -> dict[str, tuple[str, ...]]:
    """Fields several methods have (`form`: manidp and slimming) -> those methods: one flag sets them all."""
    owners: dict[str, list[str]] = {}
    for method in METHOD_NAMES:
        for field in METHOD_PARAMS[method]:
            owners.setdefault(field, []).append(method)
    return {field: tuple(methods) for field, methods in owners.items() if len(methods) > 1}


def add_method_arguments(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """One group per method, a flag per field of its config class but `skip` (`run`; `suite`, for its runs);
    a field several methods share gets one flag, in the group of the first."""
    added: set[str] = set()
    for method in METHOD_NAMES:
        flags = {dest: entry for dest, entry in method_flags(method).items() if dest not in skip and dest not in added}
        added.update(flags)
        if not flags:
            continue
        group = parser.add_argument_group(method)
        for dest, (flag, info) in flags.items():
            help_text = (info.description or "").replace("%", "%%")
            if info.annotation is bool:
                help_text = f"turn off: {help_text}" if info.default is True else help_text
                group.add_argument(flag, dest=dest, action="store_true", help=help_text)
            else:
                default = "" if info.default is None else f" (default {info.default})"
                group.add_argument(flag, dest=dest, type=_flag_type(info), help=help_text + default)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_model_arguments(parser)
    add_training_arguments(parser, "training epochs, default 20 (slimming: sparsity-training epochs)")
    add_method_arguments(parser)
    parser.add_argument("--name", help="a name for the run directory")


def method_settings_from_args(args: argparse.Namespace,
                              skip: tuple[str, ...] = ()) -> dict[str, dict[str, tuple[str, Any]]]:
    """{method: {config field: (flag as typed, value)}} of the method flags given on the command line."""
    settings: dict[str, dict[str, tuple[str, Any]]] = {}
    for method in METHOD_NAMES:
        for field, facts in METHOD_PARAMS[method].items():
            value = None if facts.cli_dest in skip else getattr(args, facts.cli_dest, None)
            if value is None or value is False:  # not given (store_true flags default to False)
                continue
            settings.setdefault(method, {})[field] = (facts.cli_flag, not value if facts.switch else value)
    return settings


def config_from_args(method: str, args: argparse.Namespace) -> RunConfig:
    """Build and validate a RunConfig from parsed flags; raises UsageError with one clear line."""
    if method not in METHOD_NAMES:
        raise UsageError(f"unknown method {method!r}; allowed: {', '.join(METHOD_NAMES)}")
    raw: dict[str, Any] = {"data": {}, "model": {}, "train": {}, "method": {"name": method}}
    for flag, (section, key) in COMMON_FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            raw[section][key] = value
    for other, fields in method_settings_from_args(args).items():
        foreign = [flag for field, (flag, _) in fields.items() if field not in METHOD_PARAMS[method]]
        if other != method and foreign:
            raise UsageError(f"{foreign[0]} does not apply to method {method!r} (it is {other}'s)")
        if other != method:  # a flag the method shares with others (--form): read from its own entry
            continue
        raw["method"].update({field: value for field, (_, value) in fields.items()})
    if getattr(args, "name", None):
        raw["name"] = args.name
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as error:
        raise UsageError(describe_validation_error(error)) from None


def runs_root(args: argparse.Namespace) -> Path:
    from prunelab.runs.store import default_runs_dir

    return Path(args.runs_dir) if getattr(args, "runs_dir", None) else default_runs_dir()


def add_runs_dir(parser: argparse.ArgumentParser, help_text: str = argparse.SUPPRESS) -> None:
    """`--runs-dir` after the command name too (the top-level flag is the documented one)."""
    parser.add_argument("--runs-dir", dest="runs_dir", default=argparse.SUPPRESS, help=help_text)

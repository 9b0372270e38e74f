"""`python -m prunelab models`: the model names `--model` accepts, and what runs on the torchvision ones."""

from __future__ import annotations

import argparse

from prunelab.analysis.model_support import GATED_METHOD, STATIC_METHOD, support_rows
from prunelab.models.catalog import MODEL_NAMES, TORCHVISION_NAMES, TORCHVISION_PREFIX


def cmd_models(args: argparse.Namespace) -> int:
    print("PruneLab's own (CIFAR-style, any --width; every page and the sparse executor):")
    print("  " + ", ".join(MODEL_NAMES))
    rows = {row["model"]: row for row in support_rows()}
    print(f"\ntorchvision's classification models, as {TORCHVISION_PREFIX}NAME (fresh weights or --weights FILE; "
          "the CIFAR stem unless --imagenet-stem).")
    print("Measured on 32x32 inputs by scripts/model_support.py; gated: the share of MACs ManiDP's gates govern.\n")
    print(f"  {'name':28s} {STATIC_METHOD:9s} {GATED_METHOD:9s} {'gated':6s} why not")
    for arch in TORCHVISION_NAMES:
        row = rows.get(arch, {})
        print(f"  {TORCHVISION_PREFIX + arch:28s} {row.get(STATIC_METHOD) or '?':9s} {row.get(GATED_METHOD) or '?':9s} "
              f"{row.get('gated_macs_share') or '-':6s} {row.get('reason', '')}")
    return 0


def add_models_command(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser("models", help="list the models --model accepts and what runs on each")
    models.set_defaults(func=cmd_models)

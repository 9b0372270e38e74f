"""Tiny run configurations shared by tests (seconds each on 2 CPU cores)."""

from __future__ import annotations

import contextlib
import io
from typing import Any

from prunelab.cli import main
from prunelab.config import RunConfig


def tiny_config(method: str = "baseline", *, epochs: int = 1, train_size: int = 300, test_size: int = 200,
                model: str = "vgg11", width: float = 0.25, batch_size: int = 50, lr: float = 0.05,
                **method_fields: Any) -> RunConfig:
    return RunConfig.model_validate({
        "data": {"dataset": "shapes", "train_size": train_size, "test_size": test_size},
        "model": {"name": model, "width": width},
        "train": {"epochs": epochs, "batch_size": batch_size, "lr": lr, "device": "cpu"},
        "method": {"name": method, **method_fields},
    })


def run_cli(*argv: str) -> tuple[int, str, str]:
    """`python -m prunelab ARGV` in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


# `python -c HOLD_SCRIPT SIGNAL_FILE ARGS...`: a CLI run that signals after epoch 1 is checkpointed, then hangs
HOLD_SCRIPT = """
import pathlib, sys, time
from prunelab.methods.baseline import Baseline

def hold(self, phase, epoch, model):
    if epoch == 1:  # epoch 1 is finished and checkpointed: signal, then hang until killed
        pathlib.Path(sys.argv[1]).write_text("holding")
        time.sleep(600)

Baseline.on_epoch_start = hold
from prunelab.cli import main
sys.exit(main(sys.argv[2:]))
"""

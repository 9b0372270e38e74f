"""Tiny run configurations shared by tests (seconds each on 2 CPU cores)."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

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


REPO = Path(__file__).resolve().parents[1]


def child_env() -> dict[str, str]:
    """This environment with the repository on PYTHONPATH, for a child `python -c` that imports prunelab."""
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


@contextlib.contextmanager
def held_cli(script: str, marker: Path, argv: list[str], timeout_s: float = 180.0) -> Iterator[subprocess.Popen]:
    """`python -c SCRIPT MARKER ARGV...` (e.g. HOLD_SCRIPT) in a child process, yielded once it has written
    MARKER (it then hangs, holding its run and beating its heartbeat); killed with SIGKILL when the block ends."""
    child = subprocess.Popen([sys.executable, "-c", script, str(marker), *argv], env=child_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + timeout_s
        while not marker.exists():
            assert child.poll() is None and time.time() < deadline, f"the child never signalled: {argv}"
            time.sleep(0.1)
        yield child
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()


def write_folder_dataset(root: Path, classes=("cat", "dog"), per_class=3, size=(40, 30)) -> None:
    """A tiny ImageFolder tree (train/ and test/, PNG and JPEG, the red channel encodes the class)."""
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
                pixels[..., 0] = 40 + 150 * c // max(1, len(classes) - 1)
                ext = "png" if i % 2 == 0 else "jpg"
                Image.fromarray(pixels).save(folder / f"img{i}.{ext}")
    (root / "train" / classes[0] / "notes.txt").write_text("not an image")


def probe_arrays(run_dir: Path) -> dict[str, Any]:
    """A run's probe.npz arrays with T_<i> and R_<i> as its reader derives them from the gates and features (the
    file stores them no longer)."""
    import numpy as np

    from prunelab.methods.manidp.artefacts import PROBE
    from prunelab.runs.run import Run

    with np.load(Path(run_dir) / "probe.npz") as stored:
        arrays = {key: stored[key] for key in stored.files}
    probe = Run(run_dir).require(PROBE)
    return {**arrays, **{f"T_{i}": t for i, t in enumerate(probe.T)}, **{f"R_{i}": r for i, r in enumerate(probe.R)}}


def folder_snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under `root` with its size and mtime: what a refused request must leave as it was."""
    return {str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime_ns)
            for path in sorted(root.rglob("*"))} if root.exists() else {}


def assert_viewer_refusal(error: Any, action: str) -> None:
    """`error` (a `pytest.ExceptionInfo` of a `ViewerModeError`) refuses `action` in one line that says the server is a
    read-only viewer, how it became one and how to leave viewer mode."""
    text = str(error.value)
    assert text.startswith(f"{action}: ") and "\n" not in text, text
    assert "read-only viewer" in text and "PRUNELAB_VIEWER=1" in text and "--viewer" in text, text
    assert "start it without PRUNELAB_VIEWER and --viewer" in text, text


CONTROL_PAIRS = frozenset({("slimming", "random"), ("slimming", "scratch"), ("manidp", "scratch")})


def check_shipped_controls(table: pd.DataFrame, seeds: int, epochs_total: int,
                           pairs: frozenset[tuple[str, str]] = CONTROL_PAIRS) -> None:
    """A demo's controls (`table`: its ablation table): the (method, control method) `pairs` (default all three:
    random channels and from scratch of its slimming run, from scratch of its ManiDP run), `seeds` of each, each
    control in its parent's budget (`epochs_total`) and seed, at its MACs (the static network within 2%), paired
    with it on the Ablations page."""
    from prunelab.analysis import controls

    runs = table.set_index("run_id")
    found = controls.controls(table)
    assert {(c.reference_method, c.control_method) for c in found} == set(pairs)
    assert all(c.difference.n == seeds for c in found)
    for method in ("random", "scratch"):
        mine = table[table["method"] == method]
        assert len(mine) == seeds * sum(1 for _, control in pairs if control == method)
        for _, row in mine.iterrows():
            parent = runs.loc[row["parent_run"]]
            assert row["epochs_total"] == parent["epochs_total"] == epochs_total and row["seed"] == parent["seed"]
            if parent["method"] == "slimming":
                assert row["macs_per_image"] == parent["macs_per_image"]
            else:
                assert abs(row["macs_per_image"] / parent["macs_per_image"] - 1) < 0.02

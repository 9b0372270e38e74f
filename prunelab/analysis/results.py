"""Read run directories for the app's pages: tables, metrics and method artefacts.

Every loader is Streamlit-free and tells missing from corrupt: a missing file gives ``None`` (or an
empty frame), a file that breaks its schema (``prunelab.runs.artefacts``, ``prunelab.runs.artefact_checks``)
raises ``ArtefactError`` naming the file and the problem, so a page can say exactly that instead of
showing a traceback or a wrong "not written yet". The runs table lists broken runs as ``broken``
with the reason. The pages read a run's files through ``prunelab.runs.run.Run``.
File formats are described in docs/architecture.md.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from prunelab.config import METHOD_FACTS, METHOD_FIELDS, RunConfig, dataset_short_name
from prunelab.runs.ownership import effective_state, owner_alive
from prunelab.runs.reading import ArtefactError
from prunelab.runs.run import Run
from prunelab.runs.run_format import (
    CONFIG_FILE,
    STATUS_FILE,
    SUMMARY_FILE,
    RunStoreError,
)
from prunelab.runs.store import BrokenRun, RunStore, default_runs_dir

__all__ = ["ArtefactError", "dataset_short_name"]  # re-exported: a loader error; the label of a dataset

log = logging.getLogger("prunelab.analysis.results")

DEMO_RUNS_DIR = Path(__file__).resolve().parents[2] / "assets" / "demo_runs"  # <repo>/prunelab/analysis/results.py
CIFAR_DEMO_RUNS_DIR = DEMO_RUNS_DIR.parent / "cifar10_runs"  # made by scripts/make_cifar_demo.py
DEMO_FOLDER_GLOB = "*_runs"  # every assets/<name>_runs folder holding runs is a demo (demo_runs first)
NO_DEMO_ENV = "PRUNELAB_NO_DEMO"  # set to 1 to hide the bundled demo runs (tests)
DEMO_DIR_ENV = "PRUNELAB_DEMO_DIR"  # another folder of `<name>_runs` demo folders (e.g. a copy of assets/)
# How the bundled demo is made (scripts/make_demo.py) and what "Run the demo live" trains: the `demo`
# suite (its epochs from prunelab.scheduling.suites) on the default shapes set with resnet20 at half width (~10 M MACs
# per image, like vgg11 at quarter width, but 69 k instead of 579 k parameters), over DEMO_SEEDS seeds.
DEMO_MODEL = "resnet20"
DEMO_WIDTH = 0.5
DEMO_SEEDS = 3

BASE_COLUMNS = [
    "run_id", "path", "demo", "name", "suite", "method", "dataset", "model", "width", "state", "fraction",
    "error", "test_acc", "macs_per_image", "params", "wall_time_s", "epochs", "epochs_total", "parent_run",
    "seed", "problem",
]
# every field of every method config (prunelab.config.METHOD_FIELDS); NaN where a run's method lacks it
HYPER_COLUMNS = [*METHOD_FIELDS, "departures"]  # and, for a method with a form, its departures in effect
SUMMARY_EXTRAS = [
    "acc_before_prune", "acc_after_prune", "acc_after_finetune", "macs_before", "macs_after", "macs_dense",
    "macs_reduction", "spearman_macs_loss", "spearman_macs_difficulty", "similarity_gap_mean",
    "macs_per_image_with_gates", "macs_reduction_with_gates", "gate_macs_per_image", "density_mean",
    "gamma_frac_below_0.05", "macs_cv", "decision_disagreement", "complexity_quintile_gap",
    "similarity_rank_correlation",
]


# ----------------------------------------------------------------------------------------------
# where runs live


def _demo_folders() -> list[Path]:
    """Every bundled demo folder: DEMO_RUNS_DIR, then each sibling `<name>_runs` folder (e.g. a second
    dataset's demo) that holds at least one run directory; with ``PRUNELAB_DEMO_DIR`` set, the same
    folders of that directory instead of assets/."""
    root = Path(os.environ[DEMO_DIR_ENV]) if os.environ.get(DEMO_DIR_ENV) else DEMO_RUNS_DIR.parent
    first = root / DEMO_RUNS_DIR.name
    folders = [first] if first.is_dir() else []
    try:
        siblings = sorted(root.glob(DEMO_FOLDER_GLOB))
    except OSError:
        siblings = []
    for folder in siblings:
        if folder != first and folder.is_dir() and _holds_runs(folder):
            folders.append(folder)
    return folders


def _holds_runs(folder: Path) -> bool:
    try:
        return any((entry / CONFIG_FILE).is_file() for entry in folder.iterdir() if entry.is_dir())
    except OSError:
        return False


def demo_run_dirs() -> list[Path]:
    """The bundled read-only demo folders, unless hidden by ``PRUNELAB_NO_DEMO=1``."""
    if os.environ.get(NO_DEMO_ENV, "").strip() not in ("", "0"):
        return []
    return _demo_folders()


def demo_runs_dir() -> Path | None:
    """The first bundled demo folder (the `shapes` demo), or None when hidden or absent."""
    folders = demo_run_dirs()
    return folders[0] if folders else None


def run_roots(runs_dir: str | Path | None = None) -> list[Path]:
    """Existing run roots: the user's runs dir (``$PRUNELAB_RUNS_DIR`` or ./runs) then every demo folder."""
    roots = [Path(runs_dir) if runs_dir is not None else default_runs_dir(), *demo_run_dirs()]
    unique: list[Path] = []
    for root in roots:
        if root.is_dir() and all(root.resolve() != seen.resolve() for seen in unique):
            unique.append(root)
    return unique


def is_demo(path: str | Path) -> bool:
    """True for a run inside a bundled demo folder (read-only: never deleted)."""
    try:
        parent = Path(path).resolve().parent
        return any(parent == folder.resolve() for folder in _demo_folders())
    except OSError:
        return False


def delete_run(path: str | Path) -> str:
    """Delete one user run directory (a symlinked run: the link); returns what was done. Raises
    RunStoreError for a demo run or a queued/running one with a live owner."""
    path = Path(path)
    if is_demo(path):
        raise RunStoreError(f"{path.name} is a bundled demo run and is read-only")
    return RunStore(path.parent).delete(path.name)


def roots_signature(roots: list[Path]) -> tuple[tuple[str, float, bool | None], ...]:
    """(run dir, newest mtime of its config/status/summary, owner alive) for every run: the runs table's
    cache key (the last item flips when an owner dies, which changes no file)."""
    signature = []
    for root in roots:
        try:
            entries = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError:
            continue
        for path in entries:
            signature.append((str(path), Run(path).newest_version((CONFIG_FILE, STATUS_FILE, SUMMARY_FILE)),
                              owner_alive(path)))
    return tuple(signature)


# ----------------------------------------------------------------------------------------------
# the runs table


def runs_table(roots: list[Path]) -> pd.DataFrame:
    """One row per run directory in `roots`, broken ones included (``RunStore.scan``).

    Columns: BASE_COLUMNS, the method hyperparameters (NaN where a method lacks one) and the summary
    extras present in at least one run. ``problem`` names each missing or corrupt file (None when all
    is well); a run whose config.json or status.json is unusable has state ``broken``. Newest runs
    first within each root; user runs before demo runs.
    """
    rows = [_safe_row(entry) for root in roots for entry in RunStore(root).scan(check_artefacts=True)]
    extras = [c for c in SUMMARY_EXTRAS if any(c in row for row in rows)]
    return pd.DataFrame(rows, columns=BASE_COLUMNS + HYPER_COLUMNS + extras)


def _safe_row(info: Any) -> dict[str, Any]:
    """`_run_row`, or the run as broken with the reason when its files make the row fail: one run never fails
    the table of the others."""
    try:
        return _run_row(info)
    except Exception as error:  # noqa: BLE001 - a value no check foresaw: this run is broken, the table is not
        log.warning("run %s cannot be listed: %s", info.path, error)
        return _broken_row(BrokenRun(info.run_id, info.path, [f"cannot be listed ({type(error).__name__}: {error})"]))


def _run_row(info: Any) -> dict[str, Any]:
    if isinstance(info, BrokenRun):
        return _broken_row(info)
    config: RunConfig = info.config
    summary = info.summary or {}
    status = info.status
    method = config.method.model_dump()
    row: dict[str, Any] = {
        "run_id": info.run_id, "path": str(info.path), "demo": is_demo(info.path),
        "name": config.name or info.run_id, "suite": config.suite, "method": config.method.name,
        "dataset": config.data.dataset, "model": config.model.name, "width": config.model.width,
        "state": effective_state(info.path, status),  # interrupted when its owner is gone
        "fraction": float(status.get("fraction") or 0.0), "error": status.get("error"),
        "test_acc": summary.get("test_acc"), "macs_per_image": summary.get("macs_per_image"),
        "params": summary.get("params"), "wall_time_s": summary.get("wall_time_s"),
        "epochs": summary.get("epochs", config.train.epochs),
        "epochs_total": summary.get("epochs_total", summary.get("epochs", config.train.epochs)),
        "parent_run": summary.get("parent_run"), "seed": config.train.seed,
    }
    row.update({key: method.get(key) for key in HYPER_COLUMNS})
    row.update({key: summary[key] for key in SUMMARY_EXTRAS if key in summary})
    row["problem"] = "; ".join(info.problems) or None
    return row


def _broken_row(info: BrokenRun) -> dict[str, Any]:
    """A run whose config.json or status.json cannot be used: what is known, state `broken`, the reason."""
    config = info.config
    problem = "; ".join(info.problems)
    row: dict[str, Any] = {"run_id": info.run_id, "path": str(info.path), "demo": is_demo(info.path),
                           "name": (config.name if config else None) or info.run_id, "state": "broken",
                           "fraction": 0.0, "error": problem, "problem": problem}
    if config is not None:
        row.update({"suite": config.suite, "method": config.method.name, "dataset": config.data.dataset,
                    "model": config.model.name, "width": config.model.width, "epochs": config.train.epochs})
        method = config.method.model_dump()
        row.update({key: method.get(key) for key in HYPER_COLUMNS})
    return row


def method_settings(row: Any) -> str:
    """The hyperparameters that tell runs of one method apart, e.g. 'λ=0.0001, prune 50% of all channels'."""
    facts = METHOD_FACTS.get(str(row["method"]))
    return facts.settings(row) if facts is not None and facts.settings is not None else ""


def run_label(row: Any) -> str:
    """One line naming a runs-table row in pickers: '[demo] name · cifar10 · slimming (λ=..) · test acc 0.912'
    (the dataset tells apart runs of the same name in two demos)."""
    settings = method_settings(row)
    parts = [f"{'[demo] ' if row['demo'] else ''}{row['name']}", dataset_short_name(str(row["dataset"])),
             f"{row['method']} ({settings})" if settings else str(row["method"])]
    if row["state"] != "done":
        parts.append(str(row["state"]))
    elif pd.notna(row["test_acc"]):
        parts.append(f"test acc {row['test_acc']:.3f}")
    if isinstance(row.get("problem"), str) and row["problem"]:
        parts.append("broken files")
    return " · ".join(parts)


# ----------------------------------------------------------------------------------------------
# a run's dataset: the images and class names its pages show


def load_test_images(path: str | Path, indices: Any) -> np.ndarray | None:
    """uint8 [n, 32, 32, 3] test images at `indices` of the run's dataset (None if it cannot be loaded).

    From `run_dataset`: the test-image pack beside the run when it holds the run's test split, else the
    dataset rebuilt by ``prunelab.data.load_dataset``, which keeps recently used datasets in memory and on
    disk, so only the first call pays for loading.
    """
    dataset = run_dataset(path)
    if dataset is None:
        return None
    index = np.asarray(list(indices), dtype=np.int64)
    if index.size and (index.min() < 0 or index.max() >= dataset.test_size):
        log.warning("image indices of %s fall outside its %d test images", path, dataset.test_size)
        return None
    images = dataset.test_images[index] if index.size else dataset.test_images[:0]
    return images.permute(0, 2, 3, 1).contiguous().numpy()


def class_names(path: str | Path) -> list[str]:
    """Class names of the run's dataset; falls back to '0', '1', ... from the labels it saved."""
    config = _config(path)
    if config is not None and config.data.dataset == "shapes":
        from prunelab.data.shapes_names import CLASS_NAMES

        return list(CLASS_NAMES)
    dataset = run_dataset(path) if config is not None else None
    if dataset is not None:
        return list(dataset.class_names)
    from prunelab.methods.manidp.artefacts import PER_IMAGE

    try:
        per_image = Run(path).read(PER_IMAGE)
    except ArtefactError as error:
        log.warning("%s", error)
        per_image = None
    count = int(per_image["label"].max()) + 1 if per_image is not None and len(per_image) else 0
    return [str(i) for i in range(count)]


def run_dataset(path: str | Path) -> Any:
    """The run's test images as an ``ImageDataset``, or None when they cannot be loaded (the log says why).

    A test-image pack beside the run that holds its test split comes first (`prunelab.data.test_pack`: a
    shipped demo, whose training data, such as CIFAR-10's PNG release, is not on this machine, and which
    then needs no decoding or generating); otherwise the dataset is rebuilt from the run's DataConfig."""
    config = _config(path)
    if config is None:
        return None
    from prunelab.data import DatasetError, load_dataset
    from prunelab.data.test_pack import load_test_pack

    pack_problem = ""
    try:
        pack = load_test_pack(Path(path).parent, config.data)
    except DatasetError as error:  # another split or corrupt: the run's own dataset decides
        pack, pack_problem = None, f"; {error}"
    if pack is not None:
        return pack
    try:
        return load_dataset(config.data)
    except Exception as error:  # noqa: BLE001 - DatasetError or a broken cache: tell the page, don't crash
        log.warning("cannot load the dataset of %s: %s%s", path, error, pack_problem)
        return None


def _config(path: str | Path) -> RunConfig | None:
    """The run's config, or None (with a warning) when it is missing or invalid."""
    try:
        return Run(path).config
    except RunStoreError as error:
        log.warning("cannot read the config of %s: %s", path, error)
        return None

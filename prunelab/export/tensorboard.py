"""Runs as TensorBoard event files (`torch.utils.tensorboard.SummaryWriter`): `tensorboard --logdir DIR`.

`export_tensorboard(runs, out)` writes one folder per run, `out/<run_id>/`:
- scalars from metrics.jsonl, one point per epoch: `accuracy/train`, `accuracy/test`, `loss/train`,
  `loss/test` over the run's epochs in all (phases one after the other), and `<phase>/<figure>` for every
  figure of a row (accuracy, loss, lr, method terms, ManiDP's test density and MACs) over that phase's
  epochs; each point carries the time its epoch ended;
- Network Slimming: |gamma| of every prunable BatchNorm per epoch (gamma_history.npz) as histograms,
  `gamma/all` and `gamma/<layer>`, step 0 = at initialisation, with the global threshold of each epoch as
  the scalar `gamma/threshold`;
- ManiDP: the per-image MACs of the test set (per_image.parquet) as the histogram `manidp/macs_per_image`,
  and the gate vectors of the probe images (probe.npz: every gated layer's pi, concatenated) as the
  projector embedding `gates`, with each image in the sprite and label, class, MACs, correctness, loss
  and difficulty as metadata;
- hyperparameters: the run's config (flattened, `method.sparsity_lambda` ...) with its final figures
  (`final/test_acc`, `final/macs_per_image` ... from summary.json) for the HParams view; one experiment
  description over every exported run sits in `out/` itself, so runs of different methods compare in one
  table.

A run needs its config.json and at least one metrics.jsonl row (a running run exports what it has; final
figures come with summary.json). Everything is written into a staging folder first and moved into place
once complete: an earlier export of the same run in `out` is replaced whole, never mixed with a new one.
`bundle_zip(run)` gives one run's export as zip bytes (the app's download).
"""

from __future__ import annotations

import contextlib
import io
import math
import shutil
import tempfile
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prunelab.analysis import results
from prunelab.config import RunConfig
from prunelab.export.common import ExportError, check_writable_folder, failed, run_artefact
from prunelab.methods.manidp.artefacts import PER_IMAGE, PROBE
from prunelab.methods.manidp.config import NAME as MANIDP
from prunelab.methods.slimming.artefacts import GAMMA_HISTORY
from prunelab.methods.slimming.config import NAME as SLIMMING
from prunelab.runs.artefacts import CONFIG, METRICS, SUMMARY
from prunelab.runs.run_format import METRICS_FILE
from prunelab.runs.store import RunDir

# metrics.jsonl key -> (figure, split) of the run-wide tags
HEADLINE = {"train_acc": ("accuracy", "train"), "test_acc": ("accuracy", "test"),
            "train_loss": ("loss", "train"), "test_loss": ("loss", "test")}
ROW_KEYS = ("phase", "epoch", "phase_index", "time")  # what a row says about itself, not a figure
HPARAMS_SUFFIX = ".prunelab-hparams"  # event file of the experiment description in `out`
EMBEDDING_TAG = "gates"
METADATA_HEADER = ["index", "class", "label", "macs", "correct", "loss", "difficulty"]
METHOD_FILES = {SLIMMING: (GAMMA_HISTORY,), MANIDP: (PER_IMAGE, PROBE)}  # what each method's extras read


@dataclass
class TensorBoardRun:
    """What one run's folder holds."""

    run_id: str
    log_dir: Path
    scalar_tags: list[str] = field(default_factory=list)
    histogram_tags: list[str] = field(default_factory=list)
    hparams: dict[str, Any] = field(default_factory=dict)
    final: dict[str, float] = field(default_factory=dict)
    embedding_points: int = 0
    sprite: bool = False


# ---------------------------------------------------------------------------------------------
# reading the run


def _metrics(run: RunDir) -> list[dict[str, Any]]:
    rows = run_artefact(run, METRICS).to_dict("records")
    rows = [{key: value for key, value in row.items() if not (isinstance(value, float) and math.isnan(value))}
            for row in rows]  # a column another row has: NaN in this one
    if not rows:
        raise ExportError(f"run {run.run_id} has no {METRICS_FILE} rows yet (state {run.state}): "
                          "nothing to export before its first epoch ends")
    return sorted(rows, key=lambda row: (int(row.get("phase_index") or 0), int(row.get("epoch") or 0)))


def check_exportable(run: RunDir) -> RunConfig:
    """The run's config once every file the export reads is known to be usable (config.json, metrics.jsonl
    with a row, summary.json and the method's files, each read and checked); ExportError naming the first
    problem. Called for every run before anything is written."""
    config = run_artefact(run, CONFIG)
    if config is None:
        raise ExportError(f"run {run.run_id}: {CONFIG.file} is missing")
    _metrics(run)
    run_artefact(run, SUMMARY)
    for artefact in METHOD_FILES.get(config.method.name, ()):
        run_artefact(run, artefact)
    return config


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def flat_hparams(config: RunConfig) -> dict[str, Any]:
    """The config as TensorBoard hparams: `section.field` -> number or string (None left out; a bool is
    'true' / 'false', a discrete choice in the HParams view, e.g. ManiDP's complexity and similarity terms)."""
    flat: dict[str, Any] = {}
    raw = config.model_dump(mode="json")
    for key in ("name", "suite"):
        if raw.get(key) is not None:
            flat[key] = str(raw[key])
    for section in ("data", "model", "train", "method"):
        for name, value in (raw.get(section) or {}).items():
            if value is None:
                continue
            if isinstance(value, bool):
                value = "true" if value else "false"
            flat[f"{section}.{name}"] = value if isinstance(value, int | float | str) else str(value)
    return flat


def final_figures(run: RunDir) -> dict[str, float]:
    """summary.json's numeric figures as `final/<name>` (empty before the run has finished)."""
    summary = run_artefact(run, SUMMARY) or {}
    return {f"final/{key}": number for key, value in summary.items() if (number := _number(value)) is not None}


# ---------------------------------------------------------------------------------------------
# writing one run


def write_run(run: RunDir, log_dir: Path) -> TensorBoardRun:
    """Every event file, histogram and embedding of `run` into `log_dir` (see the module docstring)."""
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import hparams

    config = check_exportable(run)
    rows = _metrics(run)
    record = TensorBoardRun(run.run_id, log_dir)
    with SummaryWriter(log_dir=str(log_dir)) as writer:
        _scalars(writer, rows, record)
        if config.method.name == SLIMMING:
            _gamma_histograms(writer, run, record)
        if config.method.name == MANIDP:
            _manidp(writer, run, record, step=_total_epochs(rows))
        record.hparams = flat_hparams(config)
        record.final = final_figures(run)
        _, session_start, session_end = hparams(record.hparams, record.final)
        step = _total_epochs(rows)
        writer.file_writer.add_summary(session_start, step)
        writer.file_writer.add_summary(session_end, step)
        for tag, value in record.final.items():
            writer.add_scalar(tag, value, step)
            record.scalar_tags.append(tag)
    record.scalar_tags = sorted(set(record.scalar_tags))
    return record


def _total_epochs(rows: list[dict[str, Any]]) -> int:
    return sum(_phase_lengths(rows).values())


def _phase_lengths(rows: list[dict[str, Any]]) -> dict[int, int]:
    lengths: dict[int, int] = {}
    for row in rows:
        index = int(row.get("phase_index") or 0)
        lengths[index] = max(lengths.get(index, 0), int(row.get("epoch") or 0))
    return lengths


def _scalars(writer: Any, rows: list[dict[str, Any]], record: TensorBoardRun) -> None:
    lengths = _phase_lengths(rows)
    offsets = {index: sum(n for i, n in lengths.items() if i < index) for index in lengths}
    tags: set[str] = set()
    for row in rows:
        phase, epoch = str(row.get("phase") or "train"), int(row.get("epoch") or 0)
        overall = offsets[int(row.get("phase_index") or 0)] + epoch
        walltime = _number(row.get("time"))
        for key, value in row.items():
            number = _number(value)
            if key in ROW_KEYS or number is None:
                continue
            if key in HEADLINE:
                figure, split = HEADLINE[key]
                writer.add_scalar(f"{figure}/{split}", number, overall, walltime=walltime)
                writer.add_scalar(f"{phase}/{figure}/{split}", number, epoch, walltime=walltime)
                tags.update({f"{figure}/{split}", f"{phase}/{figure}/{split}"})
            else:
                writer.add_scalar(f"{phase}/{key}", number, epoch, walltime=walltime)
                tags.add(f"{phase}/{key}")
    record.scalar_tags.extend(tags)


def _gamma_histograms(writer: Any, run: RunDir, record: TensorBoardRun) -> None:
    history = run_artefact(run, GAMMA_HISTORY)
    if history is None:
        return
    for row, epoch in enumerate(history.epochs.tolist()):
        layers = [np.asarray(gammas[row], dtype=np.float64) for gammas in history.gammas]
        writer.add_histogram("gamma/all", np.concatenate(layers), int(epoch))
        for name, values in zip(history.layer_names, layers, strict=True):
            writer.add_histogram(f"gamma/{name}", values, int(epoch))
        if history.thresholds is not None and row < len(history.thresholds):
            writer.add_scalar("gamma/threshold", float(history.thresholds[row]), int(epoch))
            record.scalar_tags.append("gamma/threshold")
    record.histogram_tags.extend(["gamma/all", *(f"gamma/{name}" for name in history.layer_names)])


def _manidp(writer: Any, run: RunDir, record: TensorBoardRun, step: int) -> None:
    per_image = run_artefact(run, PER_IMAGE)
    if per_image is not None and len(per_image):
        writer.add_histogram("manidp/macs_per_image", per_image["macs"].to_numpy(dtype=np.float64), step)
        record.histogram_tags.append("manidp/macs_per_image")
    probe = run_artefact(run, PROBE)
    if probe is None or not len(probe.indices):
        return
    gates = np.concatenate([np.asarray(g, dtype=np.float32) for g in probe.gates], axis=1)
    names = results.class_names(run.path)
    rows_by_index = per_image.set_index("index") if per_image is not None else None
    metadata = []
    for index, label in zip(probe.indices.tolist(), probe.labels.tolist(), strict=True):
        row = rows_by_index.loc[index] if rows_by_index is not None and index in rows_by_index.index else None
        difficulty = None if row is None else row.get("difficulty")
        metadata.append([
            str(index), names[label] if label < len(names) else str(label), str(label),
            "" if row is None else str(int(row["macs"])),
            "" if row is None else str(bool(row["correct"])),
            "" if row is None else f"{float(row['loss']):.4f}",
            "" if difficulty is None or _is_missing(difficulty) else f"{float(difficulty):.3f}",
        ])
    images = results.load_test_images(run.path, probe.indices)
    label_img = None
    if images is not None and len(images) == len(probe.indices):
        label_img = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    writer.add_embedding(gates, metadata=metadata, label_img=label_img, global_step=step, tag=EMBEDDING_TAG,
                         metadata_header=METADATA_HEADER)
    record.embedding_points = int(gates.shape[0])
    record.sprite = label_img is not None


def _is_missing(value: Any) -> bool:
    try:
        return bool(np.isnan(float(value)))
    except (TypeError, ValueError):
        return True


# ---------------------------------------------------------------------------------------------
# exporting runs into a folder


def write_experiment(folder: Path, records: list[TensorBoardRun]) -> None:
    """The HParams experiment over `records` (every hparam and final figure any of them has) in `folder`."""
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import hparams

    union: dict[str, Any] = {}
    finals: dict[str, float] = {}
    for record in records:
        for key, value in record.hparams.items():
            union.setdefault(key, value)
        finals.update(record.final)
    discrete: dict[str, list[Any]] = {}
    for key, value in union.items():
        if isinstance(value, str):
            discrete[key] = sorted({str(r.hparams[key]) for r in records if key in r.hparams})
    experiment, _, _ = hparams(union, finals, hparam_domain_discrete=discrete or None)
    with SummaryWriter(log_dir=str(folder), filename_suffix=HPARAMS_SUFFIX) as writer:
        writer.file_writer.add_summary(experiment)


def export_tensorboard(runs: list[RunDir], out: str | Path) -> list[TensorBoardRun]:
    """Write every run into `out/<run_id>/` and the HParams experiment into `out/`; returns the records.

    Each run is checked before anything is written (ExportError names the first problem); the export is
    built in a staging folder inside `out` and moved into place only when complete, each run's folder by a
    rename; a failure on the way puts back what was there (a failed export leaves `out` as it was)."""
    out = Path(out)
    if not runs:
        raise ExportError("no run given")
    seen: set[str] = set()
    for run in runs:
        if run.run_id in seen:
            raise ExportError(f"run {run.run_id} is given twice")
        seen.add(run.run_id)
        check_exportable(run)
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} is a file; give a folder for the event files")
    created = not out.exists()
    check_writable_folder(out, "the TensorBoard folder")
    staging = out / f".prunelab-export-{uuid.uuid4().hex[:8]}"
    try:
        records = [write_run(run, staging / run.run_id) for run in runs]
        write_experiment(staging, records)
        _move_into_place(staging, out, records)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        if created:  # made for this export: gone again (only if nothing else was put there meanwhile)
            with contextlib.suppress(OSError):
                out.rmdir()
        if isinstance(error, ExportError) or not isinstance(error, Exception):
            raise
        raise failed("the TensorBoard export", error) from None
    shutil.rmtree(staging, ignore_errors=True)
    for record in records:
        record.log_dir = out / record.run_id
    return records


def _move_into_place(staging: Path, out: Path, records: list[TensorBoardRun]) -> None:
    """Swap each finished run folder and the experiment file into `out` (an earlier export is replaced);
    when a rename fails, every one done so far is undone and the error raised."""
    retired = staging / ".replaced"
    retired.mkdir()
    done: list[tuple[Path, Path]] = []

    def move(source: Path, target: Path) -> None:
        source.rename(target)
        done.append((source, target))

    try:
        for record in records:
            target = out / record.run_id
            if target.exists():
                move(target, retired / record.run_id)
            move(staging / record.run_id, target)
        for old in out.glob(f"*{HPARAMS_SUFFIX}"):
            move(old, retired / old.name)
        for new in staging.glob(f"*{HPARAMS_SUFFIX}"):
            move(new, out / new.name)
    except BaseException:
        for source, target in reversed(done):
            with contextlib.suppress(OSError):
                target.rename(source)
        raise


def bundle_zip(run: RunDir) -> bytes:
    """One run's TensorBoard export as zip bytes: unzip and `tensorboard --logdir` the folder."""
    with tempfile.TemporaryDirectory(prefix="prunelab-tb-") as folder:
        root = Path(folder) / f"tensorboard-{run.run_id}"
        export_tensorboard([run], root)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(root.parent))
        return buffer.getvalue()

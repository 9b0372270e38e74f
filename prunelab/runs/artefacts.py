"""The core's run files: schemas of status.json, summary.json, each metrics.jsonl row and config.json, and
their `Artefact`s (`STATUS`, `SUMMARY`, `METRICS`, `CONFIG`), checked on every read.

One place for what the engine writes (docs/architecture.md); each method's own files (slimming's
`pruning.json`, ManiDP's `probe.npz`, ...) are declared in its package (`prunelab.methods.<name>.artefacts`)
and listed in its facts. The models allow extra fields (newer writers add some), but a known field of the
wrong type or range, or a missing required one, is an error: `ArtefactError` (a `RunStoreError`), which
names the file and says whether it is *missing* or *corrupt* (and what is wrong with it).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator

from prunelab.config import METHOD_CONFIGS, RunConfig
from prunelab.runs.reading import (
    Artefact,
    ArtefactError,
    Fraction,
    Schema,
    describe_errors,
    json_artefact,
    parse_json,
    read_json_file,
    read_run_bytes,
    shown,
)
from prunelab.runs.run_format import CONFIG_FILE, METRICS_FILE, RUN_STATES, STATUS_FILE, SUMMARY_FILE

__all__ = ["Artefact", "ArtefactError"]

log = logging.getLogger("prunelab.runs.artefacts")


# ------------------------------------------------------------------------------------------------
# status.json and metrics.jsonl


class StatusFile(Schema):
    """status.json: the run's state and live progress (merged by `RunDir.write_status`)."""

    # live figures may be NaN (an epoch of a diverging run, a group with no image): shown as they are
    model_config = ConfigDict(strict=True, extra="allow", allow_inf_nan=True)

    state: str
    phase: str | None = None
    epoch: int | None = Field(None, ge=0)
    epochs_total: int | None = Field(None, ge=0)
    fraction: float | None = Field(None, ge=0.0, le=1.0)
    message: str | None = None
    error: str | None = None
    metrics: dict[str, float | None] | None = None
    depends_on: list[str] | None = None
    owner: str | None = None
    owner_pid: int | None = None
    owner_host: str | None = None
    created_at: float | None = None
    started_at: float | None = None
    updated_at: float | None = None
    finished_at: float | None = None
    heartbeat_at: float | None = None
    backend: Literal["local", "ray"] | None = None  # where the run trains: this process's threads, or a Ray task
    node: str | None = None  # the host (Ray: the node) that trains it

    @field_validator("state")
    @classmethod
    def _known_state(cls, value: str) -> str:
        if value not in RUN_STATES:
            raise ValueError(f"unknown state {value!r}; allowed: {', '.join(RUN_STATES)}")
        return value


class MetricsRow(Schema):
    """One metrics.jsonl line: a phase's epoch and its figures (the engine always writes phase and epoch)."""

    phase: str | None = None
    epoch: int | None = Field(None, ge=0)
    phase_index: int | None = Field(None, ge=0)
    time: float | None = None


# ------------------------------------------------------------------------------------------------
# summary.json


class WhatIfPoint(Schema):
    """One point of a ManiDP run's what-if curve: at a target density, test accuracy and MACs reduction."""

    density: float = Field(gt=0.0, le=1.0)
    test_acc: float = Fraction
    macs_reduction: float = Field(ge=-1.0, le=1.0)


class SummaryFile(Schema):
    """summary.json: final figures; the first seven are always written (engine), the rest by the method."""

    method: str
    dataset: str
    model: str
    test_acc: float = Fraction
    params: int = Field(ge=0)
    macs_per_image: float = Field(ge=0.0)
    wall_time_s: float = Field(ge=0.0)
    width: float | None = None
    test_loss: float | None = Field(None, allow_inf_nan=True)  # a diverged run's loss is NaN: a finding
    epochs: int | None = Field(None, ge=0)
    # slimming
    acc_before_prune: float | None = Field(None, ge=0.0, le=1.0)
    acc_after_prune: float | None = Field(None, ge=0.0, le=1.0)
    acc_after_finetune: float | None = Field(None, ge=0.0, le=1.0)
    params_before: int | None = Field(None, ge=0)
    params_after: int | None = Field(None, ge=0)
    macs_before: float | None = Field(None, ge=0.0)
    macs_after: float | None = Field(None, ge=0.0)
    latency_ms_b1_before: float | None = None
    latency_ms_b1_after: float | None = None
    latency_ms_b64_before: float | None = None
    latency_ms_b64_after: float | None = None
    guard_fired_layers: list[str] | None = None
    gamma_frac_below_0_05: float | None = Field(None, alias="gamma_frac_below_0.05", ge=0.0, le=1.0)
    # manidp
    macs_dense: float | None = Field(None, ge=0.0)
    macs_reduction: float | None = None
    gate_macs_per_image: float | None = Field(None, ge=0.0)
    spearman_macs_loss: float | None = None
    spearman_macs_difficulty: float | None = None
    macs_per_image_with_gates: float | None = Field(None, ge=0.0)
    macs_reduction_with_gates: float | None = None
    density_mean: float | None = Field(None, ge=0.0, le=1.0)
    similarity_gap_mean: float | None = Field(None, ge=0.0)
    # a cosine: R is signed on conv_b in the reference form, >= 0 with post_relu_similarity_features
    probe_r_min: float | None = Field(None, ge=-1.0001, le=1.0001)
    macs_cv: float | None = Field(None, ge=0.0)
    decision_disagreement: float | None = Field(None, ge=0.0, le=0.5)  # a minority share: at most a half
    similarity_rank_correlation: float | None = Field(None, ge=-1.0001, le=1.0001)
    # the what-if curve's accuracy, kept where the model (and so the full curve) is not shipped
    whatif_accuracy: list[WhatIfPoint] | None = None
    # budgets: every epoch behind the final weights, a parent run's included
    epochs_total: int | None = Field(None, ge=0)
    parent_run: str | None = None


# ------------------------------------------------------------------------------------------------
# reading


def _method_fields(name: Any) -> dict[str, Any]:
    """The fields of method `name`'s config class (none for an unknown method: validation names it)."""
    cls = METHOD_CONFIGS.get(name) if isinstance(name, str) else None
    return cls.model_fields if cls is not None else {}


def read_config_file(path: Path) -> RunConfig:
    """config.json as a validated RunConfig (its extra "run_id" dropped)."""
    raw = read_json_file(path)
    if not isinstance(raw, dict):
        raise ArtefactError(path, f"expected a JSON object, got {type(raw).__name__} {shown(raw)}")
    raw = {key: value for key, value in raw.items() if key != "run_id"}
    method = raw.get("method")
    if isinstance(method, dict) and "form" not in method and "form" in _method_fields(method.get("name")):
        raw["method"] = {**method, "form": "prunelab"}  # written before forms existed: PruneLab's own form
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as error:
        raise ArtefactError(path, describe_errors(error)) from None


def metrics_row_problem(row: Any) -> str | None:
    """Why a parsed metrics.jsonl line is not a metrics row (None when it is one)."""
    if not isinstance(row, dict):
        return f"expected a JSON object, got {type(row).__name__}"
    try:
        MetricsRow.model_validate(row)
    except ValidationError as error:
        return describe_errors(error)
    return None


def read_metrics_file(path: Path) -> list[dict[str, Any]]:
    """metrics.jsonl's rows (a bounded read, decoded leniently); a torn line (a crash mid-write), a line that is
    not JSON, nests too deep or is not a metrics row is skipped with a warning. ArtefactError when the file is
    missing or cannot be read at all."""
    text = read_run_bytes(path).decode("utf-8", errors="replace")
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            row = parse_json(path, line)
        except ArtefactError as error:
            torn = "not valid JSON" in error.problem  # a crash mid-write leaves a torn last line
            log.warning("skipping %s line %d in %s%s", "a torn" if torn else "a broken", number, path,
                        "" if torn else f": {error.problem}")
            continue
        problem = metrics_row_problem(row)
        if problem is not None:
            log.warning("skipping line %d of %s: %s", number, path, problem)
            continue
        rows.append(row)
    return rows


def _metrics_frame(rows: list[dict[str, Any]], run: Any = None) -> Any:
    import pandas as pd

    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------
# the core's artefacts: every run has them (a method's own are in its package)

CONFIG: Artefact[RunConfig] = Artefact(CONFIG_FILE, read_config_file)
STATUS: Artefact[dict[str, Any]] = json_artefact(STATUS_FILE, StatusFile)
SUMMARY: Artefact[dict[str, Any]] = json_artefact(SUMMARY_FILE, SummaryFile)
# one row per phase and epoch as a DataFrame (empty before the first epoch)
METRICS: Artefact[Any] = Artefact(METRICS_FILE, read_metrics_file, _metrics_frame, absent=lambda: _metrics_frame([]))
CORE_ARTEFACTS: tuple[Artefact[Any], ...] = (CONFIG, STATUS, SUMMARY, METRICS)

"""Schemas of the JSON files of a run directory, checked on every read.

One place for what the writers write (docs/architecture.md): `config.json` is `RunConfig`;
`status.json`, `summary.json`, `pruning.json`, `manidp.json` and each `metrics.jsonl` row have a
pydantic model here. The models allow extra fields (newer writers add some), but a known field of
the wrong type or range, or a missing required one, is an error. Array artefacts (npz, parquet) are
checked in `prunelab.runs.artefact_checks`.

A file that cannot be used raises `ArtefactError` (a `RunStoreError`), which names the file and
says whether it is *missing* or *corrupt* (and what is wrong with it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from prunelab.config import METHOD_CONFIGS, RunConfig
from prunelab.runs.run_format import MANIDP_FILE, PRUNING_FILE, RUN_STATES, STATUS_FILE, SUMMARY_FILE, RunStoreError

MAX_SHOWN = 40  # characters of a bad value quoted in an error message


class ArtefactError(RunStoreError):
    """A run file is missing or corrupt; `short` is '<file>: <problem>' for tables."""

    def __init__(self, path: Path, problem: str | None = None) -> None:
        self.path = Path(path)
        self.missing = problem is None
        self.problem = "is missing" if problem is None else f"is corrupt: {problem}"
        super().__init__(f"{self.path} {self.problem}")

    @property
    def short(self) -> str:
        return f"{self.path.name} {self.problem}"


def describe_errors(error: ValidationError) -> str:
    """'field.path: message (got value)' for each problem, joined by '; '."""
    parts = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"])
        got = "" if item["type"] == "missing" else f" (got {_shown(item.get('input'))})"
        parts.append(f"{where}: {item['msg']}{got}" if where else f"{item['msg']}{got}")
    return "; ".join(parts)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


class _Schema(BaseModel):
    """Strict types (no '0.5' for a float), extra fields kept: forward-compatible, never silently wrong."""

    model_config = ConfigDict(strict=True, extra="allow")


Fraction = Field(ge=0.0, le=1.0)


# ------------------------------------------------------------------------------------------------
# status.json and metrics.jsonl


class StatusFile(_Schema):
    """status.json: the run's state and live progress (merged by `RunDir.write_status`)."""

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


class MetricsRow(_Schema):
    """One metrics.jsonl line: a phase's epoch and its figures (the engine always writes phase and epoch)."""

    phase: str | None = None
    epoch: int | None = Field(None, ge=0)
    phase_index: int | None = Field(None, ge=0)
    time: float | None = None


# ------------------------------------------------------------------------------------------------
# summary.json


class WhatIfPoint(_Schema):
    """One point of a ManiDP run's what-if curve: at a target density, test accuracy and MACs reduction."""

    density: float = Field(gt=0.0, le=1.0)
    test_acc: float = Fraction
    macs_reduction: float = Field(ge=-1.0, le=1.0)


class SummaryFile(_Schema):
    """summary.json: final figures; the first seven are always written (engine), the rest by the method."""

    method: str
    dataset: str
    model: str
    test_acc: float = Fraction
    params: int = Field(ge=0)
    macs_per_image: float = Field(ge=0.0)
    wall_time_s: float = Field(ge=0.0)
    width: float | None = None
    test_loss: float | None = None
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
# pruning.json (slimming)


class PruningLayer(_Schema):
    name: str
    channels_before: int = Field(ge=1)
    channels_after: int = Field(ge=0)
    kept_mask: list[Literal[0, 1]]
    guard_fired: bool = False

    @model_validator(mode="after")
    def _mask_matches_counts(self) -> PruningLayer:
        if len(self.kept_mask) != self.channels_before:
            raise ValueError(f"layer {self.name!r}: kept_mask has {len(self.kept_mask)} entries for "
                             f"{self.channels_before} channels")
        if sum(self.kept_mask) != self.channels_after:
            raise ValueError(f"layer {self.name!r}: kept_mask keeps {sum(self.kept_mask)} channels, "
                             f"channels_after says {self.channels_after}")
        return self


class Verification(_Schema):
    max_abs_diff: float
    passed: bool


class PruningFile(_Schema):
    """pruning.json: the global threshold, per-layer kept masks and the compact-model verification."""

    threshold: float
    prune_ratio: float = Field(ge=0.0, lt=1.0)
    min_channels: int = Field(ge=1)
    guard_fired_layers: list[str]
    layers: list[PruningLayer] = Field(min_length=1)
    verification: Verification


# ------------------------------------------------------------------------------------------------
# manidp.json


class ManiDPFile(_Schema):
    """manidp.json: gated layers with their channels and thresholds, MACs and their verification."""

    layers: list[str] = Field(min_length=1)
    channels: list[int]
    thresholds: list[float]
    macs_dense: float = Field(ge=0.0)
    gate_macs: float = Field(ge=0.0)
    macs_verification: Verification

    @model_validator(mode="after")
    def _one_entry_per_layer(self) -> ManiDPFile:
        for name in ("channels", "thresholds"):
            if len(getattr(self, name)) != len(self.layers):
                raise ValueError(f"{name} has {len(getattr(self, name))} entries for {len(self.layers)} layers")
        return self


JSON_SCHEMAS: dict[str, type[BaseModel]] = {
    STATUS_FILE: StatusFile, SUMMARY_FILE: SummaryFile, PRUNING_FILE: PruningFile,
    MANIDP_FILE: ManiDPFile,
}


# ------------------------------------------------------------------------------------------------
# reading


def read_json_file(path: Path) -> Any:
    """Parsed JSON of `path`; ArtefactError when it is missing, unreadable or not JSON."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ArtefactError(path) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ArtefactError(path, f"cannot be read ({error})") from None
    try:
        return json.loads(text)
    except ValueError as error:
        raise ArtefactError(path, f"not valid JSON ({error})") from None


def validate_json(path: Path, raw: Any) -> dict[str, Any]:
    """`raw` checked against the schema of `path`'s file name; returns it unchanged (a dict)."""
    path = Path(path)
    schema = JSON_SCHEMAS.get(path.name)
    if not isinstance(raw, dict):
        raise ArtefactError(path, f"expected a JSON object, got {type(raw).__name__} {_shown(raw)}")
    if schema is not None:
        try:
            schema.model_validate(raw)
        except ValidationError as error:
            raise ArtefactError(path, describe_errors(error)) from None
    return raw


def read_artefact_json(path: Path) -> dict[str, Any]:
    """Read and validate one JSON artefact (status, summary, pruning, manidp)."""
    return validate_json(path, read_json_file(path))


def _method_fields(name: Any) -> dict[str, Any]:
    """The fields of method `name`'s config class (none for an unknown method: validation names it)."""
    cls = METHOD_CONFIGS.get(name) if isinstance(name, str) else None
    return cls.model_fields if cls is not None else {}


def read_config_file(path: Path) -> RunConfig:
    """config.json as a validated RunConfig (its extra "run_id" dropped)."""
    raw = read_json_file(path)
    if not isinstance(raw, dict):
        raise ArtefactError(path, f"expected a JSON object, got {type(raw).__name__} {_shown(raw)}")
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

"""Model files that know their run: `model.pt` and slimming's `dense_model.pt` name the run they belong to.

A model file is a torch checkpoint dict (`model_spec`, `model_state`, ...). When the engine or a method
saves one (`with_record`), it also holds `RECORD_KEY`: the run's id (config.json's `run_id`, else the
folder's name) and the architecture its config asks for (method, model, width). `load_model_file(run, name)`
loads the file (weights only) and checks that record against the run's config.json: a record that names
another run or another architecture is refused (`ModelFileMismatch`, naming both), so a model file copied
from another run is never taken for this run's network. A file without a record (written before records
existed: the shipped demos' model files) is accepted as unknown.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from prunelab.config import RunConfig
from prunelab.runs.reading import read_json_file
from prunelab.runs.run_format import CONFIG_FILE, MODEL_FILE, RunStoreError
from prunelab.runs.store import RunDir

if TYPE_CHECKING:
    import torch

RECORD_KEY = "written_for"  # the record's key in a model file's dict


class ModelFileMismatch(RunStoreError):
    """A model file whose record names another run or another architecture than the run it is loaded for."""

    @property
    def short(self) -> str:
        return str(self)


def run_identity(run_path: str | Path) -> str:
    """A run's id: the `run_id` its config.json records (kept when the folder is renamed), else the folder's
    name (also when config.json cannot be read: a trainer built on a bare folder, in tests)."""
    path = Path(run_path)
    try:
        raw = read_json_file(path / CONFIG_FILE)
    except RunStoreError:
        raw = None
    run_id = raw.get("run_id") if isinstance(raw, dict) else None
    return run_id if isinstance(run_id, str) and run_id else path.name


def architecture(config: RunConfig) -> dict[str, Any]:
    """What shapes a run's network, from its config: the method, the model and its width."""
    return {"method": config.method.name, "model": config.model.name, "width": float(config.model.width)}


def model_record(run_path: str | Path, config: RunConfig) -> dict[str, Any]:
    """The record a model file of the run at `run_path` (whose config is `config`) carries."""
    return {"run_id": run_identity(run_path), **architecture(config)}


def with_record(payload: dict[str, Any], run_path: str | Path, config: RunConfig) -> dict[str, Any]:
    """`payload` (a model file's dict) with the record of the run it is written for."""
    return {**payload, RECORD_KEY: model_record(run_path, config)}


def _described(record: dict[str, Any]) -> str:
    return f"{record.get('method')} {record.get('model')} at width {record.get('width')}"


def check_record(state: dict[str, Any], run: RunDir, name: str) -> None:
    """ModelFileMismatch when the record in `state` (the loaded `name` of `run`) names another run or another
    architecture than `run`'s config.json; nothing when it matches or there is no record."""
    record = state.get(RECORD_KEY)
    if record is None:
        return  # written before model files knew their run: unknown, accepted
    if not isinstance(record, dict):
        raise ModelFileMismatch(f"{run.file(name)} has an unreadable {RECORD_KEY!r} record ({record!r})")
    own_id = run_identity(run.path)
    own = architecture(run.read_config())
    theirs = {key: record.get(key) for key in own}
    if record.get("run_id") != own_id:
        raise ModelFileMismatch(
            f"{run.file(name)} belongs to run {record.get('run_id')} ({_described(theirs)}), not to run {own_id} "
            f"({_described(own)}): it was copied from another run; refusing to load it")
    if theirs != own:
        raise ModelFileMismatch(
            f"{run.file(name)} holds a {_described(theirs)} network, but run {own_id}'s config.json asks for a "
            f"{_described(own)} one; refusing to load it")


def load_model_file(run: RunDir | str | Path, name: str = MODEL_FILE,
                    map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The model file `name` of `run`, loaded with weights only and checked against the run (`check_record`):
    RunStoreError when it is missing or corrupt, ModelFileMismatch when it belongs to another run."""
    run = run if isinstance(run, RunDir) else RunDir(Path(run))
    state = run.load_torch(name, map_location=map_location)
    if not isinstance(state, dict):
        raise RunStoreError(f"{run.file(name)} is not a PruneLab model file (a {type(state).__name__})")
    check_record(state, run, name)
    return state

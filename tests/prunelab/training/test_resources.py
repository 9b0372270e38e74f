"""Bounded inputs: upper limits with reasons, no inf/nan anywhere in the config, and the memory estimate
that refuses a run the machine cannot hold before any image is generated or decoded."""

from __future__ import annotations

import contextlib
import io
import math
import subprocess
import sys
import time
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

import prunelab.data.shapes
from prunelab.cli import main
from prunelab.config import (
    MAX_TRAIN_IMAGES,
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    describe_validation_error,
    field_bounds,
)
from prunelab.data import DatasetError, clear_memory_cache, load_dataset
from prunelab.methods.baseline.config import BaselineConfig
from prunelab.methods.manidp.config import ManiDPConfig
from prunelab.methods.slimming.config import SlimmingConfig
from prunelab.scheduling import suites
from prunelab.training import resources

REPO = Path(__file__).resolve().parents[3]
SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
METHODS = {"baseline": BaselineConfig, "slimming": SlimmingConfig, "manidp": ManiDPConfig}
GiB = 2**30


def numeric_fields() -> list[tuple[type[BaseModel], str, type]]:
    """(config class, field, int or float) for every number a user can set."""
    found = []
    for cls in (*SECTIONS.values(), *METHODS.values()):
        for name, info in cls.model_fields.items():
            kinds = set(typing.get_args(info.annotation)) or {info.annotation}
            for kind in (int, float):
                if kind in kinds:
                    found.append((cls, name, kind))
    return found


def raw_with(cls: type[BaseModel], name: str, value: object) -> dict:
    if cls in METHODS.values():
        return {"method": {"name": cls.model_fields["name"].default, name: value}}
    section = next(key for key, section_cls in SECTIONS.items() if section_cls is cls)
    return {section: {name: value}}


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def small_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """1 GiB available, and any attempt to generate shapes images fails the test."""
    monkeypatch.setattr(resources, "available_memory", lambda: GiB)

    def no_generation(*args: object, **kwargs: object) -> None:
        raise AssertionError("images were generated although the run cannot fit")

    monkeypatch.setattr(prunelab.data.shapes, "generate_shapes", no_generation)
    clear_memory_cache()


# ------------------------------------------------------------------------------------------------
# limits in the config


def test_every_number_has_an_upper_limit() -> None:
    for cls, name, _ in numeric_fields():
        rules = cls.model_fields[name].metadata
        assert field_bounds(cls, name)[1] is not None or any(hasattr(r, "lt") for r in rules), (cls, name)


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_non_finite_numbers_are_refused_everywhere(value: float) -> None:
    floats = [(cls, name) for cls, name, kind in numeric_fields() if kind is float]
    assert len(floats) >= 10
    for cls, name in floats:
        with pytest.raises(ValidationError) as caught:
            RunConfig.model_validate(raw_with(cls, name, value))
        assert "finite number" in describe_validation_error(caught.value), (cls, name)


def test_an_out_of_range_value_says_why_the_limit_is_there() -> None:
    with pytest.raises(ValidationError) as caught:
        RunConfig.model_validate({"data": {"train_size": 10**12}})
    message = describe_validation_error(caught.value)
    assert "data.train_size: Input should be less than or equal to 2000000" in message
    assert "held in memory" in message


def test_a_trillion_images_exit_2_in_seconds_without_allocating(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "prunelab", "run", "baseline", "--train-size", "1000000000000",
                           "--runs-dir", str(runs)], capture_output=True, text=True, cwd=REPO, timeout=20)
    assert done.returncode == 2 and time.perf_counter() - started < 20
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "train_size" in lines[0] and "2000000" in lines[0] and "Traceback" not in lines[0]
    assert not runs.exists()  # refused before a run directory was made


def test_ten_million_shapes_images_are_refused_before_generation(tmp_path: Path, small_machine: None) -> None:
    code, _, err = run_cli("run", "baseline", "--train-size", "10000000", "--runs-dir", str(tmp_path))
    assert code == 2 and "train_size" in err and not any(tmp_path.iterdir())


# ------------------------------------------------------------------------------------------------
# the memory estimate


def test_estimate_counts_images_model_and_activations() -> None:
    small = RunConfig.model_validate({"data": {"train_size": 1000, "test_size": 100}})
    images = resources.dataset_bytes(small.data)
    assert images == int(max(2 * 1100, 1100 + resources.LOADER_COPY * 1000) * 3 * 32 * 32)
    assert resources.dataset_images(DataConfig(dataset="cifar10", train_size=100)) == (50_000, 10_000)
    base = resources.estimate_memory(small)
    wide = resources.estimate_memory(small.model_copy(update={"model": ModelConfig(width=1.0)}))
    big_batch = resources.estimate_memory(small.model_copy(update={"train": TrainConfig(batch_size=4096)}))
    assert wide.model > 10 * base.model and wide.activations > 3 * base.activations
    assert big_batch.activations > 20 * base.activations and big_batch.model == base.model
    assert base.total == base.dataset + base.model + base.activations < GiB


def test_memory_refusal_names_the_estimate_and_what_is_available(tmp_path: Path, small_machine: None) -> None:
    code, _, err = run_cli("run", "baseline", "--train-size", str(MAX_TRAIN_IMAGES), "--runs-dir", str(tmp_path))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "needs about 13.2 GiB" in err and "dataset 13.0 GiB for 2,000,000 train" in err
    assert "only 1.0 GiB is available" in err
    assert "--train-size" in err and not any(tmp_path.iterdir())
    code, _, err = run_cli("run", "baseline", "--batch-size", "4096", "--model", "resnet110", "--width", "4",
                           "--runs-dir", str(tmp_path))
    assert code == 2 and "activations" in err and "only 1.0 GiB" in err


def test_load_dataset_refuses_before_generating(small_machine: None) -> None:
    with pytest.raises(DatasetError, match=r"needs about .* GiB .*2,000,000 train"):
        load_dataset(DataConfig(train_size=MAX_TRAIN_IMAGES))


def test_suites_check_memory_before_any_run(tmp_path: Path, small_machine: None) -> None:
    code, _, err = run_cli("suite", "demo", "--train-size", str(MAX_TRAIN_IMAGES), "--runs-dir", str(tmp_path))
    assert code == 2 and "only 1.0 GiB is available" in err and not tmp_path.joinpath("runs").exists()


def test_available_memory_is_a_positive_number_of_bytes() -> None:
    available = resources.available_memory()
    assert available is not None and 0 < available < 2**50


# ------------------------------------------------------------------------------------------------
# sweep values


@pytest.mark.parametrize("text", ["inf", "0,nan", "-inf,1e-4", "1e400"])
def test_non_finite_sweep_values_give_one_line(text: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a finite number"):
        suites.parse_values(text)
    code, _, err = run_cli("suite", "sweep", "--param", "lambda", f"--values={text}", "--runs-dir", str(tmp_path))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "finite" in err


def test_sweep_refuses_non_finite_values_given_directly() -> None:
    for value in (math.inf, math.nan):
        with pytest.raises(ValueError, match="finite numbers"):
            suites.sweep(None, "prune_ratio", [0.5, value])

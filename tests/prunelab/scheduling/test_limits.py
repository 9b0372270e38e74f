"""prunelab.scheduling.limits: every limit's range and reason, the run settings' bounds read from the config
classes (every numeric field has an upper limit), and the core refusing a count beyond its limit."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from prunelab.config import MAX_EPOCHS, METHOD_CONFIGS, TrainConfig, field_bounds
from prunelab.scheduling.jobs import JobManager, list_jobs
from prunelab.scheduling.limits import (
    JOBS_RECENT,
    MAX_CONCURRENT,
    RAY_NUM_CPUS,
    SCHEDULING_LIMITS,
    SEEDS,
    SUITE_EPOCHS,
    SUITE_RUNS,
    SWEEP_VALUES,
    Limit,
    config_limits,
    every_limit,
    field_limit,
    format_number,
)


def test_a_limit_says_its_range_and_reason_and_refuses_what_lies_beyond() -> None:
    assert MAX_CONCURRENT.allowed() == "between 1 and 64"
    assert RAY_NUM_CPUS.allowed() == "above 0 and at most 1,024"
    momentum = field_limit(TrainConfig, "momentum", "train.momentum")
    assert momentum.allowed() == "at least 0 and below 1" and momentum.reason.startswith("SGD momentum")
    assert Limit("x", "a share", None, 4.0, "why").allowed() == "at most 4"
    assert MAX_CONCURRENT.check(64) == 64 and MAX_CONCURRENT.check(1) == 1
    for value in (0, 65, 100_000):
        assert not MAX_CONCURRENT.contains(value)
    assert not RAY_NUM_CPUS.contains(0.0) and not RAY_NUM_CPUS.contains(math.nan) and RAY_NUM_CPUS.contains(0.25)
    assert not momentum.contains(1.0) and momentum.contains(0.99)
    with pytest.raises(ValueError, match=r"^--max-concurrent must be between 1 and 64 \(each is a worker thread .*"
                                         r"\), got 100,000$"):
        MAX_CONCURRENT.check(100_000)
    with pytest.raises(ValueError, match=r"^max_concurrent must be between 1 and 64"):
        MAX_CONCURRENT.check(0, "max_concurrent")
    assert [format_number(v) for v in (4096, 0.5, 4.0, 2**32 - 1)] == ["4,096", "0.5", "4", "4,294,967,295"]


def test_every_numeric_config_field_has_an_upper_limit_and_a_reason() -> None:
    limits = {limit.name: limit for limit in config_limits()}
    assert {"data.train_size", "model.width", "train.batch_size", "train.threads"} <= set(limits)
    sections = {name.split(".")[0] for name in limits}  # a method without numeric settings has none
    assert {"data", "model", "train"} < sections <= {"data", "model", "train", *METHOD_CONFIGS}
    for limit in limits.values():
        assert limit.high is not None and limit.reason, limit.name
    assert (limits["train.epochs"].low, limits["train.epochs"].high) == field_bounds(TrainConfig, "epochs")
    assert SUITE_EPOCHS.high == MAX_EPOCHS  # a suite's budget reuses the config's number
    assert every_limit() == [*config_limits(), *SCHEDULING_LIMITS]
    for limit in SCHEDULING_LIMITS:
        assert limit.reason and limit.what and limit.high > (limit.low or 0), limit.name


def test_a_numeric_field_without_an_upper_bound_is_refused() -> None:
    class Open(BaseModel):
        count: int = Field(1, ge=1)

    with pytest.raises(ValueError, match=r"section\.count has no upper limit"):
        field_limit(Open, "count", "section.count")


def test_the_counts_of_scheduling_are_what_a_serious_user_never_reaches() -> None:
    assert (MAX_CONCURRENT.high, SEEDS.high, SWEEP_VALUES.high, SUITE_RUNS.high) == (64, 10, 100, 500)
    assert JOBS_RECENT.low == 0 and JOBS_RECENT.contains(10)  # the default of `jobs --recent`


def test_the_job_manager_refuses_more_threads_than_its_limit_before_making_anything(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    with pytest.raises(ValueError, match=r"max_concurrent must be between 1 and 64 .*got 100,000"):
        JobManager(runs, max_concurrent=100_000)
    with pytest.raises(ValueError, match="max_concurrent must be between 1 and 64"):
        JobManager(runs, max_concurrent=0)
    assert not runs.exists()
    with pytest.raises(ValueError, match="recent must be between 0 and 10,000"):
        list_jobs(runs, recent=JOBS_RECENT.high + 1)

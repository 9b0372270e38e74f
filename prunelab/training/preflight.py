"""Checks before a run directory is created, shared by the CLI and the app's forms: the dataset folder
exists and the run fits in the memory this machine has (prunelab.training.resources)."""

from __future__ import annotations

from collections.abc import Sequence

from prunelab.config import RunConfig


class NotRunnable(ValueError):
    """A run that must not start; the message is one line naming the problem."""


def check_runnable(config: RunConfig) -> None:
    """Checks before a run directory is created: the dataset folder exists and the run fits in memory
    (prunelab.training.resources); raises NotRunnable with one line."""
    from prunelab.data import DatasetError
    from prunelab.training.resources import check_run_fits

    check_dataset_available(config)
    try:
        check_run_fits(config)
    except (ValueError, DatasetError) as error:  # ResourceError, or a folder that cannot be listed
        raise NotRunnable(str(error)) from None


def check_suite_runnable(configs: Sequence[RunConfig]) -> None:
    """`check_runnable` for each distinct data/model/training setting of a suite's runs."""
    seen = set()
    for config in configs:
        key = config.model_dump_json(include={"data", "model", "train"})
        if key not in seen:
            seen.add(key)
            check_runnable(config)


def check_dataset_available(config: RunConfig) -> None:
    from prunelab.data.folder import folder_problem

    dataset = config.data.dataset
    problem = folder_problem(dataset[len("folder:"):]) if dataset.startswith("folder:") else None
    if problem is not None:
        raise NotRunnable(problem)

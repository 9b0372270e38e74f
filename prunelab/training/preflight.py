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
    check_model_supported(config)
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


def check_model_supported(config: RunConfig) -> str:
    """A torchvision model is built (fresh, on the CPU), its weights file read into it, and the method's own check
    run on it (`PruningMethod.check_model`: slimming needs a removable BN group, ManiDP a group it can gate);
    NotRunnable with one line naming the model, the layer and the reason. Returns what the method will act on."""
    if not config.model.torchvision:
        return ""
    import torch

    from prunelab.methods import get_method
    from prunelab.models import build_model, model_spec
    from prunelab.models.channel_graph import probe_shape
    from prunelab.models.weights import load_weights
    from prunelab.training.resources import NUM_CLASSES

    name = config.model.name
    try:
        model = build_model(model_spec(name, NUM_CLASSES.get(config.data.dataset, 10), 1.0, config.model.cifar_stem))
    except Exception as error:  # noqa: BLE001 - torchvision's own errors, in one line
        raise NotRunnable(f"{name}: torchvision cannot build it: {type(error).__name__}: {error}") from None
    shape = probe_shape(model)
    try:
        with torch.no_grad():
            model.eval()(torch.zeros((1, *shape)))
    except Exception as error:  # noqa: BLE001 - the model's own refusal (an input size it cannot take), one line
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise NotRunnable(f"{name} does not run on {shape[1]}x{shape[2]} images (PruneLab's datasets are 32x32): "
                          f"{type(error).__name__}: {first}") from None
    try:
        if config.model.weights:
            load_weights(model, config.model.weights)
        return get_method(config.method.name).check_model(model, shape)
    except (ValueError, NotImplementedError) as error:  # WeightsError, GraphError, a method's refusal
        raise NotRunnable(f"{name} cannot run {config.method.name}: {error}") from None
    except Exception as error:  # noqa: BLE001 - a layer that fails in the trace, in one line
        raise NotRunnable(f"{name} cannot run {config.method.name}: {type(error).__name__}: {error}") from None

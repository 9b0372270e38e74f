"""The pruning-method plug-in interface.

The engine builds a `RunContext` (what a method may use of its run) and calls these hooks with fixed
signatures; it never names a method, and a method never sees the engine:

    method = Method(config.method, context)
    model = method.prepare_model(model, fresh)              # once (e.g. insert gates, init BN)
    for phase in method.phases():                           # e.g. "sparsity" then "finetune"
        model = method.between_phases(prev, phase, model)   # e.g. prune into a smaller network
        for epoch: method.on_epoch_start(...)
            loss = CE + sum(method.extra_loss(...).values()); loss.backward()
            method.after_backward(model)                    # e.g. L1 subgradient on BN gammas
            optimizer.step()
          metrics |= method.on_epoch_end(...)               # e.g. save gamma history, recalibrate
          test = context.evaluate(model)                    # + method.eval_extras(model) per batch
    summary |= method.finalize(model, test)                 # artefacts; returns its summary figures
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from pydantic import BaseModel
from torch import nn

from prunelab.config import METHOD_CONFIGS, METHOD_FACTS, MethodFacts, RunConfig
from prunelab.methods.catalog import load_plugins
from prunelab.runs.run_format import (
    atomic_write_json,
    atomic_write_npz,
    atomic_write_parquet,
    atomic_write_torch,
)
from prunelab.runs.store import RunDir

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from prunelab.data import BatchLoader, ImageDataset


@dataclass
class EvalResult:
    """Per-image evaluation of one split, in dataset order: what the context's `evaluate` returns (the
    engine fills it, a method's `eval_extras` adds to `extras`)."""

    loss: torch.Tensor  # float32 [N], cross-entropy of each image
    pred: torch.Tensor  # int64 [N]
    labels: torch.Tensor  # int64 [N]
    extras: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def acc(self) -> float:
        return float((self.pred == self.labels).float().mean())

    @property
    def mean_loss(self) -> float:
        return float(self.loss.mean())

    def extra_means(self, prefix: str) -> dict[str, float]:
        """Mean of every per-image extra [N] (e.g. ManiDP's density), keyed `prefix + name`."""
        return {prefix + name: float(value.float().mean()) for name, value in self.extras.items() if value.dim() == 1}


@dataclass(frozen=True)
class Phase:
    """One stretch of training with its own optimizer and schedule."""

    name: str
    epochs: int
    lr: float


@dataclass(frozen=True)
class ArtefactWriter:
    """The method artefacts of one run directory, each file written atomically (prunelab.runs.run_format)."""

    run_dir: Path

    def file(self, name: str) -> Path:
        return self.run_dir / name

    def write_json(self, name: str, obj: Any) -> None:
        atomic_write_json(self.file(name), obj)

    def write_npz(self, name: str, arrays: dict[str, np.ndarray], compressed: bool = False) -> None:
        atomic_write_npz(self.file(name), arrays, compressed)

    def write_parquet(self, name: str, frame: pd.DataFrame) -> None:
        atomic_write_parquet(self.file(name), frame)

    def save_torch(self, name: str, obj: Any) -> None:
        atomic_write_torch(self.file(name), obj)


@dataclass(frozen=True)
class RunContext:
    """What a method may use of the run it trains in; the engine builds it (tests build a real one with
    `prunelab.training.engine.Trainer(config, run).context`)."""

    config: RunConfig  # the whole run (a method's own settings are also its `config`)
    data: ImageDataset
    loader: Callable[..., BatchLoader]  # loader(split, *, shuffle=, augment=, batch_size=, epoch=): the engine's
    evaluate: Callable[..., EvalResult]  # evaluate(model, split="test"): per image, with the method's eval_extras
    autocast: Callable[[], contextlib.AbstractContextManager[Any]]  # mixed precision as the run trains
    device: torch.device
    channels_last: bool
    artefacts: ArtefactWriter
    log: Callable[[str], None]  # a line in log.txt and the live progress


class PruningMethod:
    """Base class: every hook is a no-op, so plain training is the base itself."""

    name = "base"
    config_class: type[BaseModel] = BaseModel  # set by register_method
    facts = MethodFacts(label="base", short="base")  # set by register_method: the config class's facts

    def __init__(self, config: Any, context: RunContext) -> None:
        self.config = config
        self.context = context

    def phases(self) -> list[Phase]:
        train = self.context.config.train
        return [Phase("train", train.epochs, train.lr)]

    def prepare_model(self, model: nn.Module, fresh: bool) -> nn.Module:
        """Called once on the freshly built (or checkpoint-rebuilt, `fresh=False`) model."""
        return model

    def param_groups(self, model: nn.Module, phase: Phase) -> list[dict[str, Any]]:
        """Optimizer parameter groups; a group may override `weight_decay` or scale `lr`."""
        return [{"params": [p for p in model.parameters() if p.requires_grad]}]

    def between_phases(self, finished: Phase, upcoming: Phase, model: nn.Module) -> nn.Module:
        return model

    def on_epoch_start(self, phase: Phase, epoch: int, model: nn.Module) -> None:
        """Before epoch `epoch` (0-based) of `phase`."""

    def extra_loss(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                   logits: torch.Tensor, per_image_ce: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named loss terms added to the mean CE (each is logged per epoch)."""
        return {}

    def after_backward(self, model: nn.Module) -> None:
        """Between `loss.backward()` and `optimizer.step()`."""

    def on_epoch_end(self, phase: Phase, epoch: int, model: nn.Module, stats: dict[str, float]) -> dict[str, float]:
        """After the epoch's training, before its test evaluation (`stats`: the training figures);
        returns extra metrics to log. Whatever it changes in the model is what the test figures measure."""
        return {}

    def eval_extras(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """Per-image figures [B] (or [B, K]) of the batch the model just evaluated, e.g. ManiDP's density.

        The engine concatenates them over a split (`EvalResult.extras`) and logs the mean of each
        one-dimensional figure next to the test accuracy (`test_<name>`).
        """
        return {}

    def lineage(self) -> dict[str, Any]:
        """The run this one starts from: {"parent_run": run id, "parent_epochs_total": the parent's epochs behind
        this run's final weights (0 when it takes only the parent's architecture, as a from-scratch control)}, or
        {}."""
        return {}

    def parent_dir(self, source: str) -> RunDir:
        """The run an `init_from` names: a run id in the same runs folder, or a run directory."""
        sibling = self.context.artefacts.run_dir.parent / source
        return RunDir(sibling if sibling.is_dir() else Path(source))

    def finalize(self, model: nn.Module, test: EvalResult) -> dict[str, Any]:
        """After the last epoch: write the method's artefacts; returns its figures for summary.json.

        `test` is the final model's per-image evaluation of the test set (with `eval_extras`)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Method state for checkpoints (tensors and plain containers only)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned (resume)."""

    @classmethod
    def restore_model(cls, model: nn.Module, method_state: dict[str, Any]) -> nn.Module:
        """Turn a plain model rebuilt from its spec into the method's model before loading weights."""
        return model

    @classmethod
    def check_model(cls, model: nn.Module, input_shape: tuple[int, ...]) -> str:
        """Before a run exists: ValueError (one line naming the layer and the reason) when the method cannot
        run on `model`; else a one-line description of what it will act on."""
        return "plain training"


METHODS: dict[str, type[PruningMethod]] = {}


def register_method(config_class: type[BaseModel]) -> Callable[[type[PruningMethod]], type[PruningMethod]]:
    """Register a plug-in for its package's config class (`METHOD_CONFIG` of `<package>/config.py`, collected
    by prunelab.methods.catalog): the class becomes `cls.config_class`, its `name` `cls.name` and its `facts`
    (prunelab.methods.spec.MethodFacts) `cls.facts`. A config class outside the catalog is an error."""
    name = config_class.model_fields["name"].default
    if METHOD_CONFIGS.get(name) is not config_class:
        raise ValueError(f"{config_class.__name__} is not the config class of a method package (prunelab.methods)")

    def decorate(cls: type[PruningMethod]) -> type[PruningMethod]:
        cls.name = name
        cls.config_class = config_class
        cls.facts = METHOD_FACTS[name]
        METHODS[name] = cls
        return cls

    return decorate


def get_method(name: str) -> type[PruningMethod]:
    load_plugins()
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; allowed: {', '.join(sorted(METHODS))}")
    return METHODS[name]

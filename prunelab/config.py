"""One validated run configuration shared by the CLI, the job manager and the app.

`RunConfig` composes `DataConfig`, `ModelConfig`, `TrainConfig` and a method config chosen by its
`name` (a pydantic discriminated union), so a bad value is reported with the field and the range.
Every number is bounded (the description says why) and must be finite (no inf or nan); the CLI,
the app's forms (`field_bounds`) and the suites all take their limits from here, and the limits of the
counts that are no run setting (runs at once, seeds, sweep values, runs per suite) are
`prunelab.scheduling.limits`'s, which lists both for README.md.

Each method's config class lives in its package (`prunelab/methods/<name>/config.py`, torch-free) with
its facts: labels, CLI flags, form fields, sweep parameters, artefacts and what the app shows of it;
`prunelab.methods.catalog` collects them, and every table of method facts is derived below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import reduce
from operator import or_
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from prunelab.methods.catalog import CONFIGS
from prunelab.methods.spec import MAX_EPOCHS as MAX_EPOCHS
from prunelab.methods.spec import MAX_SEED as MAX_SEED
from prunelab.methods.spec import Departure as Departure
from prunelab.methods.spec import MethodFacts, Strict
from prunelab.models.catalog import check_model_name, is_torchvision

DATASET_NAMES = ("shapes", "cifar10", "cifar100", "svhn", "mnist", "fashion-mnist")
DEFAULT_MODEL = "vgg11"
DEFAULT_WIDTH = 0.25  # CPU demo: vgg11 at quarter width (~10 M MACs) trains a 10k-image epoch in seconds
# Upper limits. Images are held in memory as uint8 3x32x32 (3 KiB each): 2 M training images (more
# than ImageNet-1k's 1.28 M) are 6 GiB before any copy; prunelab.training.resources checks the rest against
# the machine's free memory before anything is loaded.
MAX_TRAIN_IMAGES = 2_000_000
MAX_TEST_IMAGES = 1_000_000
_Strict = Strict


class DataConfig(_Strict):
    dataset: str = Field("shapes", description="shapes, cifar10, cifar100, svhn, mnist, fashion-mnist or folder:PATH")
    train_size: int | None = Field(None, ge=10, le=MAX_TRAIN_IMAGES, description=(
        "train images (None = dataset default); at most 2,000,000: images are held in memory, 3 KiB each"))
    test_size: int | None = Field(None, ge=10, le=MAX_TEST_IMAGES, description=(
        "test images (None = dataset default); at most 1,000,000: every epoch evaluates all of them"))
    data_seed: int = Field(0, ge=0, le=MAX_SEED, description="seed of the procedural shapes dataset (32-bit)")
    augment: bool = True
    data_dir: str | None = Field(None, description="where torchvision datasets live (default ./data)")

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, value: str) -> str:
        if value in DATASET_NAMES:
            return value
        if value.startswith("folder:") and len(value) > len("folder:"):
            return value
        allowed = ", ".join(DATASET_NAMES)
        raise ValueError(f"unknown dataset {value!r}; allowed: {allowed} or folder:PATH")


class ModelConfig(_Strict):
    name: str = Field(DEFAULT_MODEL, description=(
        "model architecture: a PruneLab model or torchvision:NAME (any torchvision classification model)"))
    width: float = Field(DEFAULT_WIDTH, gt=0.0, le=4.0, title="Width multiplier", description=(
        "width multiplier on every layer; at most 4 (parameters grow with its square: vgg19 at 4 has 320 M); "
        "torchvision models are built at their own widths (1.0)"))
    cifar_stem: bool | None = Field(None, description=(
        "torchvision models only: true (default) replaces the first convolution by a 3x3 stride-1 one and drops "
        "the max-pool right after it, as CIFAR practice does for 32x32 images; false keeps the ImageNet stem"))
    weights: str | None = Field(None, description=(
        "torchvision models only: a state dict or checkpoint file to start from (loaded weights-only; a "
        "classifier with another class count is re-initialised); nothing is ever downloaded"))

    @field_validator("name")
    @classmethod
    def _known_model(cls, value: str) -> str:
        return check_model_name(value)

    @model_validator(mode="after")
    def _torchvision_options(self) -> ModelConfig:
        if is_torchvision(self.name):
            if "width" not in self.model_fields_set:
                self.width = 1.0
            if self.width != 1.0:
                raise ValueError(f"{self.name} is built at its own widths: width must be 1.0, got {self.width}")
            if self.cifar_stem is None:
                self.cifar_stem = True
        elif self.cifar_stem is not None or self.weights is not None:
            raise ValueError("cifar_stem and weights apply to torchvision:NAME models only; "
                             f"{self.name} is one of PruneLab's own")
        return self

    @property
    def torchvision(self) -> bool:
        return is_torchvision(self.name)


class TrainConfig(_Strict):
    epochs: int = Field(20, ge=1, le=MAX_EPOCHS, title="Epochs", description=(
        "training epochs (for slimming: sparsity-training epochs); at most 1000, far past convergence"))
    lr: float = Field(0.1, gt=0.0, le=10.0, title="Learning rate", description="learning rate; above 10 SGD diverges")
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description=(
        "SGD momentum; below 1 (at 1 past gradients never fade and SGD does not settle)"))
    nesterov: bool = False
    weight_decay: float = Field(5e-4, ge=0.0, le=0.1, description=(
        "L2 weight decay; at most 0.1 (above it the decay outweighs the loss and drives the weights to 0)"))
    batch_size: int = Field(128, ge=1, le=4096, title="Batch size", description=(
        "training batch size; at most 4096 (activations grow with it; larger batches need lr retuning)"))
    schedule: Literal["cosine", "step", "constant"] = "cosine"
    seed: int = Field(0, ge=0, le=MAX_SEED, description="training seed (32-bit)")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = Field(None, ge=1, le=256, description=(
        "CPU threads torch may use while this run trains (default: torch's own choice). On a busy "
        "machine 1 thread avoids oversubscription; the setting is process-wide during the run"))
    amp: bool = Field(True, description="mixed precision (bf16/fp16 autocast) on CUDA; ignored on CPU")
    channels_last: bool | Literal["auto"] = Field("auto", description=(
        "channels_last memory format: 'auto' (default) on CUDA only; true also on CPU, where it trains resnet20 "
        "at width 1.0 about 1.4x faster but slows narrow models (width 0.25: 1.6x slower); false never"))
    eval_batch_size: int = Field(500, ge=1, le=8192, description="evaluation batch size; at most 8192 (memory)")


# the union of every method package's config class (prunelab.methods.catalog), told apart by `name`
MethodConfig = Annotated[reduce(or_, CONFIGS.values()), Field(discriminator="name")]  # type: ignore[valid-type]
# method name -> its config class, in the methods' order (facts.order); the registry of plug-ins
# (prunelab.methods.METHODS) registers one class per config class
METHOD_CONFIGS: dict[str, type[Any]] = dict(CONFIGS)
METHOD_NAMES = tuple(METHOD_CONFIGS)
METHOD_FACTS: dict[str, MethodFacts] = {name: cls.facts for name, cls in METHOD_CONFIGS.items()}
DEFAULT_METHOD = METHOD_NAMES[0]  # the first method (plain training): a run config's default


@dataclass(frozen=True)
class ParamFacts:
    """One field of a method config as the CLI, the app's form, suites and listings see it."""

    method: str
    name: str
    label: str  # the field's title: the form's label
    description: str | None
    flag: str  # the CLI flag: `flag` of its facts, else --<name with dashes>
    form: bool  # shown in the app's run form
    sweep_label: str | None  # short label in sweep run names ("l": slim-l1e-4); None: not a sweep parameter
    aliases: tuple[str, ...]  # other names a sweep accepts ("lambda" for sparsity_lambda)
    switch: bool = False  # a bool that defaults to true: the CLI switches it off with --no-<name>

    @property
    def sweepable(self) -> bool:
        return self.sweep_label is not None

    @property
    def cli_dest(self) -> str:
        """The argparse destination of its flag: the field's name, or no_<name> for a switch."""
        return f"no_{self.name}" if self.switch else self.name

    @property
    def cli_flag(self) -> str:
        """The flag a user types: `flag`, or --no-<name> for a switch."""
        return f"--no-{self.name.replace('_', '-')}" if self.switch else self.flag


def _param_facts(method: str, cls: type[BaseModel]) -> dict[str, ParamFacts]:
    params = {}
    for name, info in cls.model_fields.items():
        if name == "name":
            continue
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        params[name] = ParamFacts(
            method=method, name=name, label=info.title or name, description=info.description,
            flag=str(extra.get("flag") or f"--{name.replace('_', '-')}"), form=bool(extra.get("form")),
            sweep_label=str(extra["sweep_label"]) if extra.get("sweep_label") else None,
            aliases=tuple(str(alias) for alias in extra.get("aliases") or ()),
            switch=info.annotation is bool and info.default is True)
    return params


# method -> {field: its facts}, in the order of the union and of each class's fields ("name" aside)
METHOD_PARAMS: dict[str, dict[str, ParamFacts]] = {name: _param_facts(name, cls)
                                                   for name, cls in METHOD_CONFIGS.items()}
# every method-config field once (a name two methods share counts once), in that order
METHOD_FIELDS: tuple[str, ...] = tuple(dict.fromkeys(name for params in METHOD_PARAMS.values() for name in params))
# sweep parameter -> its facts (its method, its run-name label); alias -> sweep parameter
SWEEP_PARAMS: dict[str, ParamFacts] = {p.name: p for params in METHOD_PARAMS.values()
                                       for p in params.values() if p.sweepable}
PARAM_ALIASES: dict[str, str] = {alias: p.name for p in SWEEP_PARAMS.values() for alias in p.aliases}


def _check_sweep_names() -> None:
    """A sweep parameter names one method's field and every alias one parameter (`sweep` infers the
    method from the parameter); run-name labels differ within a method."""
    owners: dict[str, list[str]] = {}
    for params in METHOD_PARAMS.values():
        for p in params.values():
            owners.setdefault(p.name, []).append(p.method)
    shared = [name for name in SWEEP_PARAMS if len(owners[name]) > 1]
    aliases = [alias for p in SWEEP_PARAMS.values() for alias in p.aliases]
    clashes = [alias for alias in aliases if aliases.count(alias) > 1 or alias in owners]
    labels = [(p.method, p.sweep_label) for p in SWEEP_PARAMS.values()]
    if shared or clashes or len(set(labels)) != len(labels):
        raise ValueError(f"ambiguous sweep parameters: shared {shared}, aliases {clashes}, labels {labels}")


_check_sweep_names()

_NAME_RE = re.compile(r"[^A-Za-z0-9_.-]+")


def dataset_short_name(dataset: str) -> str:
    """'shapes' -> 'shapes', 'folder:data/cifar10-demo' -> 'cifar10-demo': a dataset as a label shows it."""
    if dataset.startswith("folder:"):
        return Path(dataset.removeprefix("folder:").rstrip("/\\")).name or dataset
    return dataset


def sanitize_name(name: str) -> str:
    """Turn a user-given run name into a safe directory name (no separators, no '..')."""
    cleaned = _NAME_RE.sub("-", name.strip()).strip(".-")
    cleaned = cleaned.replace("..", ".")
    return cleaned[:80]


class RunConfig(_Strict):
    name: str | None = Field(None, max_length=80, description="optional human name of the run")
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    method: MethodConfig = Field(default_factory=METHOD_CONFIGS[DEFAULT_METHOD])
    suite: str | None = Field(None, description="suite this run belongs to")

    @field_validator("name")
    @classmethod
    def _clean_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        cleaned = sanitize_name(value)
        if not cleaned:
            raise ValueError("run name must contain letters or digits")
        return cleaned


def field_constraints(model: type[BaseModel], name: str) -> dict[str, Any]:
    """The numeric constraints of the field `name` of `model`: {'ge' | 'gt' | 'le' | 'lt': value}
    (`prunelab.scheduling.limits` turns them into the limits README.md lists)."""
    rules: dict[str, Any] = {}
    for rule in model.model_fields[name].metadata:
        rules.update({key: getattr(rule, key) for key in ("ge", "gt", "le", "lt")
                      if getattr(rule, key, None) is not None})
    return rules


def field_bounds(model: type[BaseModel], name: str) -> tuple[Any, Any]:
    """(lowest, highest) value the field `name` of `model` accepts, from its ge/le constraints (None if
    open or exclusive): the app's number inputs take their limits from here."""
    rules = field_constraints(model, name)
    return rules.get("ge"), rules.get("le")


BOUND_ERRORS = ("less_than", "less_than_equal", "greater_than", "greater_than_equal")


def _field_description(title: str, loc: tuple[Any, ...]) -> str | None:
    """The description of the config field at `loc` (a validation error's location) in model `title`."""
    configs = {cls.__name__: cls for cls in (RunConfig, DataConfig, ModelConfig, TrainConfig,
                                             *METHOD_CONFIGS.values())}
    methods = METHOD_CONFIGS
    model: Any = configs.get(title)
    description = None
    for part in loc:
        if model is not None and part in model.model_fields:
            info = model.model_fields[part]
            description = info.description
            annotation = info.annotation
            model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
        elif part in methods:
            model = methods[part]
        else:
            return None
    return description


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem: 'field.path: message' - for CLI and UI error messages. A value out of
    range also gets the field's description, which says why the limit is there."""
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"] if not str(part).endswith("Config"))
        text = f"{where}: {item['msg']}" if where else item["msg"]
        description = _field_description(error.title, item["loc"]) if item["type"] in BOUND_ERRORS else None
        lines.append(f"{text} ({description})" if description else text)
    return "; ".join(lines)

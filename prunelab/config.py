"""One validated run configuration shared by the CLI, the job manager and the app.

`RunConfig` composes `DataConfig`, `ModelConfig`, `TrainConfig` and a method config chosen by its
`name` (a pydantic discriminated union), so a bad value is reported with the field and the range.
Every number is bounded (the description says why) and must be finite (no inf or nan); the CLI,
the app's forms (`field_bounds`) and the suites all take their limits from here.

Each method config class is also where its method's facts live (the "methods" section below): labels,
CLI flags, form fields, sweep parameters and artefacts, from which every such table is derived.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, computed_field, field_validator, model_validator

from prunelab.models.catalog import MODEL_NAMES
from prunelab.run_format import (
    GAMMA_HISTORY_FILE,
    MANIDP_FILE,
    PER_IMAGE_FILE,
    PROBE_FILE,
    PRUNING_FILE,
)

DATASET_NAMES = ("shapes", "cifar10", "cifar100", "svhn", "mnist", "fashion-mnist")
DEFAULT_MODEL = "vgg11"
DEFAULT_WIDTH = 0.25  # CPU demo: vgg11 at quarter width (~10 M MACs) trains a 10k-image epoch in seconds
# Upper limits. Images are held in memory as uint8 3x32x32 (3 KiB each): 2 M training images (more
# than ImageNet-1k's 1.28 M) are 6 GiB before any copy; prunelab.resources checks the rest against
# the machine's free memory before anything is loaded.
MAX_TRAIN_IMAGES = 2_000_000
MAX_TEST_IMAGES = 1_000_000
MAX_EPOCHS = 1000
MAX_SEED = 2**32 - 1  # numpy's seeds are 32-bit


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


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
    name: str = Field(DEFAULT_MODEL, description="model architecture")
    width: float = Field(DEFAULT_WIDTH, gt=0.0, le=4.0, title="Width multiplier", description=(
        "width multiplier on every layer; at most 4 (parameters grow with its square: vgg19 at 4 has 320 M)"))

    @field_validator("name")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if value not in MODEL_NAMES:
            raise ValueError(f"unknown model {value!r}; allowed: {', '.join(MODEL_NAMES)}")
        return value


class TrainConfig(_Strict):
    epochs: int = Field(20, ge=1, le=MAX_EPOCHS, title="Epochs", description=(
        "training epochs (for slimming: sparsity-training epochs); at most 1000, far past convergence"))
    lr: float = Field(0.1, gt=0.0, le=10.0, title="Learning rate", description="learning rate; above 10 SGD diverges")
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    nesterov: bool = False
    weight_decay: float = Field(5e-4, ge=0.0, le=0.1)
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


# ------------------------------------------------------------------------------------------------
# methods: each method-config class holds the method's facts (its registry entry, prunelab.methods,
# points at it as `config_class`): per field, `title` (the form's label), `description` and
# `json_schema_extra=_facts(...)`; per method, `facts: ClassVar[MethodFacts]`. Every table of method
# facts (CLI flags, the app's form, sweep parameters, run-name labels, runs-table columns, required
# artefacts) is derived from them below.


@dataclass(frozen=True)
class MethodFacts:
    """What the CLI, suites, listings and the app know of a method besides its settings."""

    label: str  # display name, e.g. "Network Slimming"
    short: str  # in suite and run names, e.g. "slim": sweep-slim-prune_ratio, slim-r0.5
    # files a finished run writes besides summary.json (prunelab.run_format names), each read and checked
    # by its reader in prunelab.artefact_checks.ARTEFACT_READERS; a `done` run without one is broken
    artefacts: tuple[str, ...] = ()
    # the authors' code this method's reference form follows (cited on the method card)
    reference_code: tuple[str, ...] = ()
    # every way the PruneLab form differs from that code: a named, optional config field each
    departures: tuple[Departure, ...] = ()
    # changes from that code in every form, because without them a run cannot execute (shown on the card)
    safeguards: tuple[str, ...] = ()


@dataclass(frozen=True)
class Departure:
    """One named change from the authors' code: the config field `field` at a value other than `reference`.

    The `prunelab` form sets the field to `prunelab`, the `reference` form to `reference`; a run records the
    names of the departures in effect (`departures` in config.json and summary.json) and the method card
    shows each with its reason and where its effect is measured.
    """

    name: str  # e.g. "detached_complexity_weight"
    field: str  # the method-config field that switches it
    reference: Any  # the field's value in the authors' code
    prunelab: Any  # the field's value in the PruneLab form
    summary: str  # what changes, one line
    reason: str  # why PruneLab made the change, one line
    effect: str  # where its effect is measured (a comparison of runs, a test), one line


FORMS = ("reference", "prunelab")
Form = Literal["reference", "prunelab"]
FORM_DESCRIPTION = ("reference: every choice as the authors' code makes it; prunelab: PruneLab's changes "
                    "(each a named departure, listed in the run). A departure's own field overrides the form")


class _MethodWithForm(_Strict):
    """A method config with a `form`: its departure fields left unset take the form's value."""

    facts: ClassVar[MethodFacts]

    @model_validator(mode="before")
    @classmethod
    def _apply_form(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = {key: value for key, value in data.items() if key != "departures"}  # derived, recorded only
        form = data.get("form", "reference")
        for departure in cls.facts.departures:
            if data.get(departure.field) is None and form in FORMS:
                data[departure.field] = departure.prunelab if form == "prunelab" else departure.reference
        for name, (reference, prunelab) in cls.form_defaults().items():
            if data.get(name) is None and form in FORMS:
                data[name] = prunelab if form == "prunelab" else reference
        return data

    @classmethod
    def form_defaults(cls) -> dict[str, tuple[Any, Any]]:
        """Settings (not departures) whose default differs by form: field -> (reference, prunelab)."""
        return {}

    @computed_field  # type: ignore[prop-decorator]
    @property
    def departures(self) -> list[str]:
        """Names of the departures from the authors' code in effect (empty: the reference form)."""
        return [d.name for d in self.facts.departures if getattr(self, d.field) != d.reference]


def _facts(*, form: bool = False, flag: str | None = None, sweep: str | None = None,
           aliases: tuple[str, ...] = ()) -> dict[str, Any]:
    """`json_schema_extra` of a method-config field: shown in the app's run form (`form`), its CLI flag
    when not --<field-name> (`flag`), its short label in sweep run names, which makes it a sweep parameter
    (`sweep`), and other names a sweep accepts for it (`aliases`)."""
    extra: dict[str, Any] = {"form": True} if form else {}
    if flag is not None:
        extra["flag"] = flag
    if sweep is not None:
        extra["sweep_label"] = sweep
    if aliases:
        extra["aliases"] = list(aliases)
    return extra


class BaselineConfig(_Strict):
    facts: ClassVar[MethodFacts] = MethodFacts(label="Baseline", short="baseline")

    name: Literal["baseline"] = "baseline"


SLIMMING_REFERENCE_CODE = (
    "Eric-mingjie/network-slimming main.py (updateBN: lambda * sign(gamma) added to the gradient of every "
    "BatchNorm2d; SGD with the run's weight decay, 1e-4, on every parameter, gamma included)",
    "Eric-mingjie/network-slimming resprune.py (one global threshold over the |gamma| of every BatchNorm2d)",
    "Eric-mingjie/network-slimming models/preresnet.py (every BN gamma initialised to 0.5; a channel_selection "
    "layer after each block's input BN keeps the residual stream at full width while its channels are selected)",
    "liuzhuang13/slimming train.lua (updateBN on every SpatialBatchNormalization; optim.sgd weightDecay on all "
    "parameters)",
)
SLIMMING_DEPARTURES = (
    Departure(
        "interior_only_scope", "prune_residual", True, False,
        summary=("L1 and the global threshold cover only each ResNet block's interior BN (bn_a), so the residual "
                 "stream keeps its full width; reference: every BN, its channels thresholded with all the others "
                 "(VGG: no residual stream, the same either way)"),
        reason=("a threshold on the interior BNs alone never has to cut a coupled residual group, and the prune "
                "ratio is then a fraction of the block-interior channels only"),
        effect="slimming in the reference scope against interior-only at the same λ and ratio (Slimming page)"),
    Departure(
        "no_gamma_weight_decay", "bn_weight_decay", None, 0.0,
        summary=("no weight decay on the prunable BN scales γ during sparsity training; reference: the run's "
                 "weight decay on every parameter, γ included (1e-4 in the reference code)"),
        reason=("weight decay pulls γ toward zero too (5e-4 on |γ| ~ 0.45 outweighs λ = 1e-4), so a λ comparison "
                "would partly show weight decay; Torch-Pruning's reproduction also zeroes it"),
        effect="the |γ| histograms and near-zero share at equal λ, prunelab against reference form (Slimming page)"),
)


class SlimmingConfig(_MethodWithForm):
    """Network Slimming (Liu et al., 2017): L1 on BN gammas, global threshold, fine-tune."""

    facts: ClassVar[MethodFacts] = MethodFacts(label="Network Slimming", short="slim",
                                               artefacts=(GAMMA_HISTORY_FILE, PRUNING_FILE),
                                               reference_code=SLIMMING_REFERENCE_CODE,
                                               departures=SLIMMING_DEPARTURES, safeguards=(
        "every layer keeps at least `min_channels` channels (default 1): the reference's global threshold can "
        "remove every channel of a layer, and its pruned model then fails to run",))

    name: Literal["slimming"] = "slimming"
    form: Form = Field("reference", title="Form", description=FORM_DESCRIPTION,
                       json_schema_extra=_facts(form=True))
    sparsity_lambda: float = Field(1e-4, ge=0.0, le=1.0, title="λ: L1 strength on BN γ",
                                   description="L1 strength on BN gammas",
                                   json_schema_extra=_facts(form=True, flag="--lambda", sweep="l",
                                                            aliases=("lambda",)))
    prune_ratio: float = Field(0.5, ge=0.0, lt=1.0, title="Prune ratio (of the prunable channels)",
                               description=("global fraction of the prunable channels removed (every BN's channels "
                                            "in the reference scope, a residual group counted once; only the "
                                            "blocks' interior channels with --prune-residual false)"),
                               json_schema_extra=_facts(form=True, sweep="r", aliases=("ratio",)))
    # not a sweep parameter: a suite's F (every compared run is shaped by E + F epochs) sets it
    finetune_epochs: int = Field(10, ge=0, le=MAX_EPOCHS, title="Fine-tune epochs",
                                 description="fine-tuning epochs after pruning; at most 1000",
                                 json_schema_extra=_facts(form=True))
    finetune_lr: float | None = Field(None, gt=0.0, le=10.0, title="Fine-tune learning rate",
                                       description="default: the training lr (the reference code re-runs the schedule)")
    min_channels: int = Field(1, ge=1, le=4096, title="Minimum channels per layer", description=(
        "per-layer guard: a layer (or a group of channels coupled by residual adds) keeps at least this many "
        "channels (at most 4096, the widest layer at width 4)"))
    bn_init: float | None = Field(0.5, gt=0.0, le=10.0, title="Initial BN γ",
                                  description="initial gamma (reference code: 0.5)")
    # departures from the authors' code (SLIMMING_DEPARTURES): unset, each takes its form's value
    prune_residual: bool | None = Field(None, title="L1 and threshold on every BN (residual stream too)", description=(
        "true (reference): L1 and the global threshold cover every BN, and channels coupled by residual adds are "
        "one group, scored by its mean |gamma| and kept or removed together; false (departure "
        "interior_only_scope): only each ResNet block's interior BN. Unset: the form's value"))
    bn_weight_decay: float | None = Field(None, ge=0.0, le=0.1, title="Weight decay on BN γ", description=(
        "weight decay on the prunable BN scales during sparsity training. Unset: the form's value (reference: "
        "the run's weight decay, as the authors' code; prunelab: 0, departure no_gamma_weight_decay)"))


MANIDP_REFERENCE_CODE = (
    "huawei-noah/Efficient-Computing Pruning/ManiDP/models/resnet_cifar.py (MaskBlock, MaskedBasicblock)",
    "huawei-noah/Efficient-Computing Pruning/ManiDP/main.py (train, cal_similarity_loss, adjust_remain_rate, "
    "the threshold update after each epoch)",
)
MANIDP_DEPARTURES = (
    Departure(
        "small_gate_init", "small_gate_init", False, True,
        summary=("gates: second Linear's weight ~ N(0, 0.1²), first Linear with a bias, hidden width C_in "
                 "(C_in < 32) or C_in/2, no clamp; reference: both Linears Kaiming-normal, the first without "
                 "bias, hidden width C_out (C_out < 80) or C_out/2, saliency clamped at 1000"),
        reason=("π starts within a few tenths of 1 for every image, so training starts from the parent; the "
                "reference's init on a parent trained without gates lets π grow with its input through the "
                "residual stream (shapes: stage-3 π ≈ 79, logits ≈ 3e9 at the start; the reference form ended "
                "at chance or in NaN)"),
        effect="the shapes demo: reference against reference + small_gate_init, both terms (10.0% vs 40.2%)"),
    Departure(
        "post_relu_similarity_features", "post_relu_similarity_features", False, True,
        summary=("R from ReLU(conv_b's output): the non-negative part the block passes on; reference: conv_b's "
                 "signed BN output before the residual add"),
        reason="T = cos(π_i, π_j) ≥ 0 can never reach a negative R",
        effect="prunelab form against reference form (Similarity page: R heatmaps of both forms)"),
    Departure(
        "gates_only_similarity", "gates_only_similarity", False, True,
        summary=("the similarity term trains the gates' own parameters toward a detached R; reference: T and R "
                 "both attached, so the term trains the backbone as well as the gates"),
        reason=("measured on shapes: with the backbone in the term, ||T − R|| rose (the backbone moved R while "
                "chasing it)"),
        effect="||T − R|| and the feature/gate rank correlation, prunelab against reference form"),
    Departure(
        "smoothed_gate_cosine", "smoothed_gate_cosine", False, True,
        summary="T's cosine divides by sqrt(|π|² + 0.01²); reference: F.normalize (max(|π|, 1e-12))",
        reason="bounds the gradient of a near-zero gate vector (a hard floor sent γ = 10 runs to NaN)",
        effect="tests/prunelab/methods/manidp/test_gates.py (the cosine's gradient bound)"),
    Departure(
        "detached_complexity_weight", "detached_complexity_weight", False, True,
        summary="λ(x_i) is computed from a detached CE_i; reference: CE_i stays attached inside λ(x_i)",
        reason=("attached, dλ/dCE_i = −λ'/C < 0 rewards a higher loss on easy images in exchange for "
                "sparsity; detached, λ(x_i) is only a per-image weight"),
        effect="training loss and accuracy, prunelab against reference form"),
    Departure(
        "pair_quantile_thresholds", "pair_quantile_thresholds", False, True,
        summary=("ξ^l keeps a fraction η of the (image, channel) pairs of a 2,000-image calibration sample, "
                 "followed by a moving average within the epoch, η on a cosine over the first half of the steps; "
                 "reference: ξ^l = the mean saliency (over the epoch's training images) of the channel at rank "
                 "ceil(η c_l), set after every epoch from the second on, η(e) on a cosine over all epochs"),
        reason=("once gates differ between images, channel-mean thresholds keep far fewer pairs than η (22% of "
                "channels at η = 0.7 on shapes), so runs at the same target differed in compute"),
        effect="density reached against the target (test_density, macs_reduction), prunelab against reference"),
    Departure(
        "sampled_initial_c", "sampled_initial_c", False, True,
        summary=("C for the first epoch from the mean CE of 2,000 training images in training mode; reference: "
                 "of the whole training set in evaluation mode"),
        reason="one pass over 2,000 images instead of the whole training set before training starts",
        effect="complexity_c of the first epoch (metrics.jsonl)"),
)


class ManiDPConfig(_MethodWithForm):
    """ManiDP (Tang et al., 2021): per-image gates with complexity and similarity alignment."""

    facts: ClassVar[MethodFacts] = MethodFacts(label="ManiDP", short="manidp",
                                               artefacts=(PER_IMAGE_FILE, PROBE_FILE, MANIDP_FILE),
                                               reference_code=MANIDP_REFERENCE_CODE,
                                               departures=MANIDP_DEPARTURES, safeguards=(
        "every image keeps its most salient channel in every gated layer: the reference zeroes a layer whose "
        "channels all fall below the threshold, which no sliced sub-network or sparse executor can run",))

    name: Literal["manidp"] = "manidp"
    form: Form = Field("reference", title="Form", description=FORM_DESCRIPTION,
                       json_schema_extra=_facts(form=True))
    lambda_prime: float = Field(0.1, ge=0.0, le=100.0, title="λ': max sparsity weight", description=(
        "maximum sparsity weight lambda' (default by form: reference 0.1, the authors' lambda_lasso; prunelab 0.05)"),
        json_schema_extra=_facts(form=True, sweep="lp", aliases=("lambda'",)))
    gamma_sim: float = Field(0.1, ge=0.0, le=100.0, title="γ: similarity weight", description=(
        "similarity-alignment weight gamma (default by form: reference 0.1, the authors' lambda_graph; prunelab 3: "
        "on shapes, resnet20, 3 epochs, gamma = 1 lowered ||T - R|| by 9%, gamma = 3 by 36%)"),
        json_schema_extra=_facts(form=True, sweep="g", aliases=("gamma",)))
    gamma_c: float = Field(1.0, ge=0.0, le=10.0, title="Complexity exponent", description="complexity exponent",
                           json_schema_extra=_facts(form=True, sweep="gc"))
    complexity_scale: float = Field(0.5, gt=0.0, le=10.0, title="Complexity scale",
                                    description="C = scale * previous epoch mean CE")
    target_density: float = Field(0.7, gt=0.0, le=1.0, title="Target density",
                                  description="fraction of channels kept per layer at the end",
                                  json_schema_extra=_facts(form=True, sweep="d", aliases=("density",)))
    complexity: bool = Field(True, title="Complexity-adaptive sparsity",
                             description="complexity-adaptive sparsity (off: one weight for every image)",
                             json_schema_extra=_facts(form=True))
    similarity: bool = Field(True, title="Similarity alignment", description="similarity alignment term",
                             json_schema_extra=_facts(form=True))
    gate_lr_scale: float = Field(1.0, gt=0.0, le=100.0, title="Gate learning-rate scale")
    probe_size: int = Field(64, ge=4, le=1024, title="Probe images",
                            description="test images saved for the similarity pages")
    init_from: str | None = Field(None, title="Parent run", description=(
        "parent run whose model.pt initialises the backbone: its run id in the same runs folder (suites "
        "record ids, never a machine's absolute path), or a run directory"))
    # departures from the authors' code (MANIDP_DEPARTURES): unset, each takes its form's value
    small_gate_init: bool = Field(False, title="Departure: small gate init",
                                  description=MANIDP_DEPARTURES[0].summary)
    post_relu_similarity_features: bool = Field(False, title="Departure: post-ReLU R",
                                                description=MANIDP_DEPARTURES[1].summary)
    gates_only_similarity: bool = Field(False, title="Departure: similarity trains gates only",
                                        description=MANIDP_DEPARTURES[2].summary)
    smoothed_gate_cosine: bool = Field(False, title="Departure: smoothed gate cosine",
                                       description=MANIDP_DEPARTURES[3].summary)
    detached_complexity_weight: bool = Field(False, title="Departure: detached complexity weight",
                                             description=MANIDP_DEPARTURES[4].summary)
    pair_quantile_thresholds: bool = Field(False, title="Departure: pair-quantile thresholds",
                                           description=MANIDP_DEPARTURES[5].summary)
    sampled_initial_c: bool = Field(False, title="Departure: sampled initial C",
                                    description=MANIDP_DEPARTURES[6].summary)

    @classmethod
    def form_defaults(cls) -> dict[str, tuple[Any, Any]]:
        return {"lambda_prime": (0.1, 0.05), "gamma_sim": (0.1, 3.0)}


MethodConfig = Annotated[BaselineConfig | SlimmingConfig | ManiDPConfig, Field(discriminator="name")]
# method name -> its config class, read from the union above (each class's `name` Literal); the
# registry of methods (prunelab.methods.METHODS) registers one class per name
METHOD_CONFIGS: dict[str, type[BaselineConfig | SlimmingConfig | ManiDPConfig]] = {
    cls.model_fields["name"].default: cls for cls in get_args(get_args(MethodConfig)[0])}
METHOD_NAMES = tuple(METHOD_CONFIGS)
METHOD_FACTS: dict[str, MethodFacts] = {name: cls.facts for name, cls in METHOD_CONFIGS.items()}


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
    method: MethodConfig = Field(default_factory=BaselineConfig)
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


def field_bounds(model: type[BaseModel], name: str) -> tuple[Any, Any]:
    """(lowest, highest) value the field `name` of `model` accepts, from its ge/le constraints (None if
    open or exclusive): the app's number inputs take their limits from here."""
    low = high = None
    for rule in model.model_fields[name].metadata:
        low = getattr(rule, "ge", low)
        high = getattr(rule, "le", high)
    return low, high


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

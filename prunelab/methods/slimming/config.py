"""Network Slimming's config and facts (no torch: read by the listings and the CLI)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from prunelab.methods.slimming.artefacts import GAMMA_HISTORY, PRUNING
from prunelab.methods.spec import (
    FORM_DESCRIPTION,
    MAX_EPOCHS,
    Departure,
    Form,
    MethodFacts,
    MethodWithForm,
    deferred,
    field_facts,
)


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def prune_ratio_phrase(ratio: Any, prune_residual: Any, model: Any = None) -> str:
    """A prune ratio with what it is a fraction of, from the run's settings alone (the runs table, the
    variant names): 'prune 50% of all channels' (every BN: the reference scope, or a VGG) or 'prune 50%
    of interior channels' (only each ResNet block's interior BN)."""
    text = f"prune {_num(ratio):.0%}"
    if isinstance(prune_residual, bool) or type(prune_residual).__name__ == "bool_":
        every = bool(prune_residual) or str(model or "").startswith("vgg")
        return f"{text} of {'all' if every else 'interior'} channels"
    return f"{text} of prunable channels"


def settings(row: Mapping[str, Any]) -> str:
    return (f"λ={_num(row['sparsity_lambda']):g}, "
            f"{prune_ratio_phrase(row['prune_ratio'], row.get('prune_residual'), row.get('model'))}")


def variant(row: Mapping[str, Any], suffix: str) -> str:
    return (f"slimming{suffix} λ={_num(row.get('sparsity_lambda')):g}, "
            f"{prune_ratio_phrase(row.get('prune_ratio'), row.get('prune_residual'), row.get('model'))}")


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


class SlimmingConfig(MethodWithForm):
    """Network Slimming (Liu et al., 2017): L1 on BN gammas, global threshold, fine-tune."""

    facts: ClassVar[MethodFacts] = MethodFacts(label="Network Slimming", short="slim",
                                               artefacts=(GAMMA_HISTORY, PRUNING),
                                               reference_code=SLIMMING_REFERENCE_CODE,
                                               departures=SLIMMING_DEPARTURES, order=1,
                                               colour="#2e86ab", symbols=("circle", "triangle-up", "triangle-down",
                                                                          "pentagon", "hexagon", "circle-x"),
                                               marker_size=14, help=("a Network Slimming run (`python -m prunelab "
                                                                     "run slimming --lambda 1e-4`)"),
                                               overview=(
        "**Network Slimming** pulls the BatchNorm scales γ toward zero with an L1 penalty, cuts every "
        "channel under one global |γ| threshold and fine-tunes the smaller, static network."),
                                               model_kind="compact slimming network (pruned, fine-tuned)",
                                               live_panel="gamma",
                                               phase_labels=(("sparsity", "sparsity training"),
                                                             ("finetune", "fine-tune")),
                                               boundary_labels=((("sparsity", "finetune"), "prune"),),
                                               settings=settings, variant=variant,
                                               claims=deferred("prunelab.methods.slimming.claims", "setting_claims"),
                                               budget_reference="VGG-19",
                                               formulas=deferred("prunelab.methods.slimming.formulas", "formulas"),
                                               safeguards=(
        "every layer keeps at least `min_channels` channels (default 1): the reference's global threshold can "
        "remove every channel of a layer, and its pruned model then fails to run",))

    name: Literal["slimming"] = "slimming"
    form: Form = Field("reference", title="Form", description=FORM_DESCRIPTION,
                       json_schema_extra=field_facts(form=True))
    sparsity_lambda: float = Field(1e-4, ge=0.0, le=1.0, title="λ: L1 strength on BN γ",
                                   description="L1 strength on BN gammas",
                                   json_schema_extra=field_facts(form=True, flag="--lambda", sweep="l",
                                                            aliases=("lambda",)))
    prune_ratio: float = Field(0.5, ge=0.0, lt=1.0, title="Prune ratio (of the prunable channels)",
                               description=("global fraction of the prunable channels removed (every BN's channels "
                                            "in the reference scope, a residual group counted once; only the "
                                            "blocks' interior channels with --prune-residual false)"),
                               json_schema_extra=field_facts(form=True, sweep="r", aliases=("ratio",)))
    # not a sweep parameter: a suite's F (every compared run is shaped by E + F epochs) sets it
    finetune_epochs: int = Field(10, ge=0, le=MAX_EPOCHS, title="Fine-tune epochs",
                                 description="fine-tuning epochs after pruning; at most 1000",
                                 json_schema_extra=field_facts(form=True))
    finetune_lr: float | None = Field(None, gt=0.0, le=10.0, title="Fine-tune learning rate",
                                       description="default: the training lr (the reference code re-runs the schedule)")
    min_channels: int = Field(1, ge=1, le=4096, title="Minimum channels per layer", description=(
        "per-layer guard: a layer (or a group of channels coupled by residual adds) keeps at least this many "
        "channels (at most 4096, the widest layer at width 4)"))
    round_to: int = Field(1, ge=1, le=256, title="Round kept channels to a multiple of", description=(
        "each group keeps a multiple of this many channels (its highest-|γ| removed channels come back; at most "
        "256), so the compact widths run fast on SIMD units and tensor cores, as Torch-Pruning's round_to; "
        "1 (default): the reference's counts"))
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



METHOD_CONFIG = SlimmingConfig

NAME: str = METHOD_CONFIG.model_fields["name"].default  # the method's name, for code that names it

"""Random channels' config and facts (no torch: read by the listings and the CLI)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from prunelab.methods.slimming.artefacts import PRUNING
from prunelab.methods.spec import MAX_EPOCHS, MethodFacts, Strict, deferred, field_facts, parent_phrase

CLAIMS_MODULE = "prunelab.methods.random.claims"  # the control's claim (pandas: imported on first use)


def _ratio(row: Mapping[str, Any]) -> str:
    return parent_phrase(row, "counts of", "{:.0%} of each layer", "random")


def settings(row: Mapping[str, Any]) -> str:
    return f"random channels, {_ratio(row)}"


def variant(row: Mapping[str, Any], suffix: str) -> str:
    return f"random channels{suffix}: {_ratio(row)}"


class RandomConfig(Strict):
    """Random channels at a slimming run's per-layer counts (or a uniform ratio), then fine-tuning."""

    facts: ClassVar[MethodFacts] = MethodFacts(
        label="Random channels", short="rand", artefacts=(PRUNING,), order=3, colour="#7b2d8b",
        symbols=("star", "star-open", "star-square", "star-triangle-up"), marker_size=9,
        help=("a random-channels run (`python -m prunelab run random --init-from SLIMMING_RUN`: that run's "
              "per-layer counts, channels drawn at random)"),
        overview=("**Random channels** keeps as many channels per layer as a slimming run's pruned network, "
                  "drawn at random, and fine-tunes the same way: the control that shows whether the |γ| "
                  "criterion matters."),
        model_kind="compact random-channels network (pruned, fine-tuned)",
        phase_labels=(("finetune", "fine-tune"),), boundary_labels=((("train", "finetune"), "prune at random"),),
        settings=settings, variant=variant, parent_field="init_from",
        claims=deferred(CLAIMS_MODULE, "setting_claims"), controls=deferred(CLAIMS_MODULE, "controls"))

    name: Literal["random"] = "random"
    init_from: str | None = Field(None, title="Slimming run", description=(
        "finished slimming run whose pruned network's per-layer channel counts are kept and whose dense model "
        "(after sparsity training) is pruned: its run id in the same runs folder, or a run directory. Unset: "
        "this run trains the network itself and removes uniform_ratio of every layer's channels"))
    uniform_ratio: float = Field(0.5, ge=0.0, lt=1.0, title="Fraction removed per layer (no slimming run)",
                                 description="fraction of every layer's channels removed when no slimming run is named",
                                 json_schema_extra=field_facts(form=True))
    finetune_epochs: int = Field(10, ge=0, le=MAX_EPOCHS, title="Fine-tune epochs",
                                 description="fine-tuning epochs after pruning; at most 1000",
                                 json_schema_extra=field_facts(form=True))
    finetune_lr: float | None = Field(None, gt=0.0, le=10.0, title="Fine-tune learning rate",
                                      description="default: the training lr, as slimming fine-tunes")
    min_channels: int = Field(1, ge=1, le=4096, title="Minimum channels per layer", description=(
        "with a uniform ratio, every layer keeps at least this many channels (at most 4096)"))


METHOD_CONFIG = RandomConfig

NAME: str = METHOD_CONFIG.model_fields["name"].default  # the method's name, for code that names it

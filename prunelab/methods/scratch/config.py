"""From scratch's config and facts (no torch: read by the listings and the CLI)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from prunelab.methods.scratch.artefacts import ARCHITECTURE
from prunelab.methods.spec import MethodFacts, Strict, deferred, field_facts, parent_phrase

CLAIMS_MODULE = "prunelab.methods.scratch.claims"  # the controls' claims (pandas: imported on first use)


def _sized(row: Mapping[str, Any]) -> str:
    return parent_phrase(row, "sized as", "{:.0%} of each layer removed", "uniform width")


def settings(row: Mapping[str, Any]) -> str:
    return f"from scratch, {_sized(row)}"


def variant(row: Mapping[str, Any], suffix: str) -> str:
    return f"from scratch{suffix}: {_sized(row)}"


class ScratchConfig(Strict):
    """A pruned run's architecture (or a static network at a dynamic run's mean MACs) trained from fresh weights."""

    facts: ClassVar[MethodFacts] = MethodFacts(
        label="From scratch", short="scratch", artefacts=(ARCHITECTURE,), order=4, colour="#2a9d8f",
        symbols=("hexagon", "hexagon-open", "hexagram", "hourglass"), marker_size=9,
        help=("a from-scratch run (`python -m prunelab run scratch --init-from SLIMMING_RUN --epochs E+F`: that "
              "run's pruned widths, fresh weights, as many epochs as the whole slimming run)"),
        overview=("**From scratch** trains a pruned run's architecture (its per-layer channel counts) from fresh "
                  "weights for as many epochs as the whole pruning run; named against a ManiDP run, a uniformly "
                  "thinner network of the same mean MACs per image: the controls that show whether the inherited "
                  "weights, and per-image routing, pay."),
        model_kind="network trained from scratch (a pruned run's widths, fresh weights)",
        settings=settings, variant=variant, parent_field="init_from",
        claims=deferred(CLAIMS_MODULE, "setting_claims"), controls=deferred(CLAIMS_MODULE, "controls"))

    name: Literal["scratch"] = "scratch"
    init_from: str | None = Field(None, title="Architecture of run", description=(
        "finished run whose network this run trains from scratch for train.epochs (give the run's epochs in all, "
        "E + F for slimming, for an equal budget): a static pruned run (slimming or random channels) gives its "
        "pruning.json's per-layer kept counts; a run without one (ManiDP: a sub-network per image) gives its mean "
        "MACs per image, which a uniformly thinner network matches. Its run id in the same runs folder, or a run "
        "directory. Unset: uniform_ratio of every layer's channels removed"))
    uniform_ratio: float = Field(0.5, ge=0.0, lt=1.0, title="Fraction removed per layer (no run named)",
                                 description="fraction of every layer's channels removed when no run is named",
                                 json_schema_extra=field_facts(form=True))
    min_channels: int = Field(1, ge=1, le=4096, title="Minimum channels per layer", description=(
        "with a uniform width, every layer keeps at least this many channels (at most 4096)"))


METHOD_CONFIG = ScratchConfig

NAME: str = METHOD_CONFIG.model_fields["name"].default  # the method's name, for code that names it

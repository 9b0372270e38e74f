"""Plain training's config and facts (no torch: read by the listings and the CLI)."""

from __future__ import annotations

from typing import ClassVar, Literal

from prunelab.methods.spec import MethodFacts, Strict


class BaselineConfig(Strict):
    facts: ClassVar[MethodFacts] = MethodFacts(
        label="Baseline", short="baseline", order=0, colour="#6c757d",
        symbols=("square", "square-open", "square-x-open"), marker_size=16,
        help="a baseline run (`python -m prunelab run baseline`)",
        overview=("**Baseline** trains the whole network: the reference every pruned run is compared with at the "
                  "same number of epochs."),
        model_kind="baseline network")

    name: Literal["baseline"] = "baseline"


METHOD_CONFIG = BaselineConfig

NAME: str = METHOD_CONFIG.model_fields["name"].default  # the method's name, for code that names it

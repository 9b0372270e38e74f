"""A from-scratch run's file and its reader (no torch): `ARCHITECTURE`.

- `architecture.json`: where the trained network's widths came from (`source`: a static pruned run's per-layer
  kept counts, a uniformly thinner network at another run's mean MACs per image, or a uniform ratio), the run
  named (`parent_run`), every channel group before and after, and the MACs and params it was built to.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from prunelab.runs.reading import Artefact, Schema, json_artefact
from prunelab.runs.run_format import ARCHITECTURE_FILE


class ArchitectureLayer(Schema):
    name: str  # the channel group (slimming's group names)
    channels_before: int = Field(ge=1)
    channels_after: int = Field(ge=1)

    @model_validator(mode="after")
    def _kept_within(self) -> ArchitectureLayer:
        if self.channels_after > self.channels_before:
            raise ValueError(f"layer {self.name!r} keeps {self.channels_after} of {self.channels_before} channels")
        return self


class ArchitectureFile(Schema):
    """architecture.json: the widths a from-scratch run trains and where they came from."""

    # how the widths were chosen: a pruned run's kept counts, equal mean MACs to a run, or a uniform ratio
    source: Literal["counts", "macs", "uniform"]
    parent_run: str | None
    keep_fraction: float | None = Field(None, gt=0.0, le=1.0)  # the uniform fraction kept (macs, uniform)
    macs_target: float | None = Field(None, ge=0.0)  # the parent's MACs per image the widths were built to
    macs: int = Field(ge=0)  # the built network's
    macs_dense: int = Field(ge=0)  # the full network's
    params: int = Field(ge=0)
    layers: list[ArchitectureLayer] = Field(min_length=1)


ARCHITECTURE: Artefact[dict[str, Any]] = json_artefact(ARCHITECTURE_FILE, ArchitectureFile)

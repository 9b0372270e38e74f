"""What a slimming run's prune ratio is a fraction of: the channel counts the pages name.

A run written since the counts were recorded has them in `pruning.json` and `summary.json`
(`channels_prunable`, `channels_all`, `channels_removed`); for an older run the missing ones are
computed here from its model spec (name and width in config.json) and its pruning scope, so a page
never recomputes them itself. A channel coupled by residual adds counts once (`pruning.channel_counts`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prunelab.methods.slimming.artefacts import PRUNING
from prunelab.methods.slimming.pruning import channel_counts, find_channel_groups, select_units
from prunelab.models import build_model, model_spec
from prunelab.runs.artefacts import CONFIG, SUMMARY
from prunelab.runs.reading import Artefact, ArtefactError
from prunelab.runs.run import Run

KEYS = ("channels_prunable", "channels_all", "channels_removed")


@functools.lru_cache(maxsize=64)
def network_channel_counts(name: str, width: float, prune_residual: bool) -> dict[str, int]:
    """`channels_prunable`, `channels_all` and `bn_channels_all` of a model at a width, for a scope.
    BN widths depend on neither the classes nor the input channels, so 10 classes and RGB input serve."""
    groups = find_channel_groups(build_model(model_spec(name, 10, width)))
    return channel_counts(groups, select_units(groups, prune_residual))


def _checked(run: Run, artefact: Artefact[dict[str, Any]]) -> dict[str, Any] | None:
    """A JSON artefact, or None when it is missing or corrupt (the pages name such a file themselves)."""
    try:
        return run.read(artefact)
    except ArtefactError:
        return None


def run_channel_counts(run_dir: str | Path, summary: Mapping[str, Any] | None = None,
                       pruning: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """{channels_prunable, channels_all, channels_removed, prune_ratio} of a pruned slimming run, or None
    before it is pruned. `summary` / `pruning` are the run's files when the caller has read them already; a
    corrupt file counts as missing."""
    run = Run(run_dir)
    pruning = pruning if pruning is not None else _checked(run, PRUNING)
    summary = summary if summary is not None else _checked(run, SUMMARY)
    sources = [source for source in (pruning, summary) if source]
    if not sources:
        return None
    counts: dict[str, Any] = {key: next((s[key] for s in sources if s.get(key) is not None), None) for key in KEYS}
    counts["prune_ratio"] = next((s["prune_ratio"] for s in sources if s.get("prune_ratio") is not None), None)
    layers = (pruning or {}).get("layers") or []
    if counts["channels_prunable"] is None:  # before the denominators were named: channels_total, or the layers
        total = next((s["channels_total"] for s in sources if s.get("channels_total") is not None), None)
        counts["channels_prunable"] = total if total is not None else (
            sum(int(row["channels_before"]) for row in layers) or None)
    if counts["channels_removed"] is None and layers:
        counts["channels_removed"] = sum(int(row["channels_before"]) - int(row["channels_after"]) for row in layers)
    if counts["channels_all"] is None:
        config = run.require(CONFIG)
        scope = bool(getattr(config.method, "prune_residual", False))
        counts["channels_all"] = network_channel_counts(config.model.name, config.model.width, scope)["channels_all"]
    return counts

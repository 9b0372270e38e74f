"""A user's own weights for a torchvision model: a state dict or checkpoint file, loaded weights-only.

`load_weights(model, path)` copies every tensor whose name and shape match; the classifier (the model's last
Linear) and the stem that `cifar_stem` replaced may differ in shape and are then re-initialised; tensors the model
does not have (a ManiDP run's gates, an optimizer's state) are ignored. Any other shape difference means the file
was saved for another architecture or a pruned network: `WeightsError`, one line naming the first tensor.
Accepted layouts: a bare state dict, a PruneLab model file or checkpoint (`model_state`), or a dict with
`state_dict` / `model` (a DataParallel `module.` prefix is dropped). Nothing is ever downloaded.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from prunelab.models.torchvision_models import GATE_CONTAINER, PRUNELAB_BASE

STATE_KEYS = ("model_state", "state_dict", "model")  # where a checkpoint keeps its state dict


def state_subset(state: dict[str, Any], keep: Callable[[str], bool],
                 metadata_from: dict[str, Any] | None = None) -> dict[str, Any]:
    """The entries of a state dict whose key `keep` accepts, with the source's `_metadata` (the module versions
    `load_state_dict` passes to `_load_from_state_dict`: torchvision's MNASNet refuses a state without them),
    or `metadata_from`'s when the source has none."""
    subset: OrderedDict[str, Any] = OrderedDict((k, v) for k, v in state.items() if keep(k))
    metadata = getattr(state, "_metadata", None) or getattr(metadata_from, "_metadata", None)
    if metadata is not None:
        subset._metadata = metadata  # type: ignore[attr-defined]
    return subset


class WeightsError(ValueError):
    """A weights file that cannot be used for this model; the message is one line."""


@dataclass
class WeightsReport:
    path: str
    loaded: int
    reinitialised: list[str] = field(default_factory=list)  # the model's own fresh values kept
    ignored: list[str] = field(default_factory=list)  # in the file, not in the model

    def line(self) -> str:
        def listed(names: list[str]) -> str:
            return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "") if names else "none"

        return (f"weights from {self.path}: {self.loaded} tensors loaded; re-initialised: "
                f"{listed(self.reinitialised)}; ignored: {listed(self.ignored)}")

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "loaded": self.loaded, "reinitialised": self.reinitialised,
                "ignored": self.ignored}


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file (weights-only loading); WeightsError naming what is wrong."""
    file = Path(path)
    if not file.is_file():
        raise WeightsError(f"weights file {file} does not exist")
    try:
        raw = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - unpickling errors of every kind, reported in one line
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise WeightsError(f"cannot read weights file {file} (weights-only loading): "
                           f"{type(error).__name__}: {first[:200]}") from None
    state = raw
    if isinstance(raw, dict) and not _all_tensors(raw):
        state = next((raw[key] for key in STATE_KEYS if isinstance(raw.get(key), dict)), None)
    if not isinstance(state, dict) or not state or not _all_tensors(state):
        keys = ", ".join(list(raw)[:5]) if isinstance(raw, dict) else type(raw).__name__
        raise WeightsError(f"weights file {file} holds no state dict of tensors (found: {keys}); expected a "
                           f"state dict or a checkpoint with one of {', '.join(STATE_KEYS)}")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def _all_tensors(mapping: dict[Any, Any]) -> bool:
    return all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in mapping.items())


def replaceable(model: nn.Module) -> set[str]:
    """Module names whose tensors may differ in shape: the classifier (last Linear) and a replaced stem."""
    linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)
               and not name.startswith(f"{GATE_CONTAINER}.")]
    return set(linears[-1:]) | set((getattr(model, PRUNELAB_BASE, None) or {}).get("replaced", []))


@torch.no_grad()
def load_weights(model: nn.Module, path: str | Path) -> WeightsReport:
    """Copy the file's matching tensors into `model` (in place) and say what was loaded, kept or ignored."""
    theirs = read_state_dict(path)
    own = model.state_dict()
    free = replaceable(model)
    reshaped = [k for k in own if k in theirs and tuple(own[k].shape) != tuple(theirs[k].shape)]
    blocked = [k for k in reshaped if k.rpartition(".")[0] not in free]
    if blocked:
        key = blocked[0]
        name = (getattr(model, PRUNELAB_BASE, None) or {}).get("name", type(model).__name__)
        raise WeightsError(f"weights file {path}: {len(blocked)} tensors have other shapes than {name} expects "
                           f"(first: {key} is {list(theirs[key].shape)} in the file, {list(own[key].shape)} in the "
                           "model); it was saved for another architecture, stem or a pruned network")
    matching = state_subset(theirs, lambda k: k in own and k not in reshaped, metadata_from=own)
    if not any(own[k].is_floating_point() for k in matching):
        raise WeightsError(f"weights file {path}: none of its {len(theirs)} tensors matches a layer of the model "
                           f"(its first keys: {', '.join(list(theirs)[:3])})")
    model.load_state_dict(matching, strict=False)
    reinitialised = sorted(k for k in own if k not in matching and not k.endswith("num_batches_tracked"))
    ignored = sorted(k for k in theirs if k not in own)
    return WeightsReport(str(path), len(matching), reinitialised, ignored)

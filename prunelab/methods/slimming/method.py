"""Network Slimming (Liu et al., "Learning Efficient Convolutional Networks through Network Slimming",
ICCV 2017): sparsity training, one global threshold on BN scales, a physically smaller network, fine-tuning.

Objective of the "sparsity" phase: `L = sum_i CE(f(x_i), y_i) + lambda * sum_{prunable BN gammas} |gamma|`,
applied as the subgradient `lambda * sign(gamma)` after `backward()`. Between the phases the network is
pruned at the `prune_ratio` percentile of all prunable |gamma| (`pruning.py`), verified against the
masked network, and fine-tuned in the "finetune" phase.

Scope (`prune_residual`): the reference form applies L1 and the threshold to every BN, as the authors'
code does; channels a residual add couples are one group, scored by its mean |gamma| and removed
together. The prunelab form keeps to each ResNet block's interior BN and gives gamma no weight decay
(the departures `interior_only_scope` and `no_gamma_weight_decay`, config.SLIMMING_DEPARTURES).

Artefacts (docs/architecture.md): `gamma_history.npz`, `pruning.json`, `dense_model.pt`, `compact_model.pt2`.
`reprune.what_if(run_dir, prune_ratio)` re-prunes the saved dense model at another ratio without fine-tuning.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from prunelab.analysis.tables import prune_denominator_text
from prunelab.config import RunConfig
from prunelab.methods.base import EvalResult, Phase, PruningMethod, RunContext, register_method
from prunelab.methods.slimming.config import SlimmingConfig
from prunelab.methods.slimming.pruning import (
    PrunableUnit,
    add_l1_subgradient_,
    channel_counts,
    channel_scores,
    compact_model,
    find_channel_groups,
    l1_penalty,
    layer_records,
    masked_model,
    prunable_bn_names,
    prunable_summary,
    select_channels,
    select_units,
    verify_compact,
)
from prunelab.models import build_model, spec_of
from prunelab.runs.model_file import load_model_file, with_record
from prunelab.runs.run_format import (
    DENSE_MODEL_FILE,
    EXPORT_FILE,
    GAMMA_HISTORY_FILE,
    NEAR_ZERO_GAMMA,
    NEAR_ZERO_GAMMA_KEY,
    PRUNING_FILE,
    atomic_write,
    atomic_write_npz,
)
from prunelab.runs.store import RunDir
from prunelab.training.flops import count_macs, count_params
from prunelab.training.latency import measure_latency_ms

SMALL_GAMMA = 1e-2  # |gamma| below this counts as "near zero" in the logged fraction
VERIFY_IMAGES = 256
LATENCY_REPEATS = {1: 30, 64: 8}  # batch size -> timed repeats (median reported)


# --- gamma history file ------------------------------------------------------------------------
def write_gamma_history(path: Path, layer_names: list[str], history: list[torch.Tensor],
                        thresholds: list[float] | None = None) -> None:
    """Atomically write gamma_history.npz (read as `artefacts.GAMMA_HISTORY`; its lambda is the config's).

    Keys: epochs [E+1], layer_names [L], layer_<i> float32 [E+1, C_i] (|gamma|) and
    thresholds float64 [E+1]: the global threshold the run's rule (prune ratio, per-layer guard) would
    have applied to the gammas of that epoch.
    """
    epochs = history[0].shape[0] if history else 0
    arrays: dict[str, np.ndarray] = {
        "epochs": np.arange(epochs, dtype=np.int64), "layer_names": np.array(layer_names, dtype=np.str_),
    }
    if thresholds is not None:
        arrays["thresholds"] = np.asarray(thresholds, dtype=np.float64)
    for i, values in enumerate(history):
        arrays[f"layer_{i}"] = values.numpy().astype(np.float32)
    atomic_write_npz(path, arrays)


def finetune_lr(config: RunConfig) -> float:
    """The fine-tune phase's lr: `method.finetune_lr`, else the training lr (the reference code
    fine-tunes with the training schedule)."""
    if not isinstance(config.method, SlimmingConfig):
        raise TypeError(f"finetune_lr needs a slimming run config, got method {config.method.name!r}")
    return config.method.finetune_lr or config.train.lr


# --- the plug-in -----------------------------------------------------------------------------
@register_method(SlimmingConfig)
class Slimming(PruningMethod):
    """Sparsity training with L1 on BN gammas, global-threshold pruning, fine-tuning."""

    config: SlimmingConfig

    def __init__(self, config: SlimmingConfig, context: RunContext) -> None:
        super().__init__(config, context)
        self._groups: list[PrunableUnit] = []  # every channel group of the dense network
        self._units: list[PrunableUnit] = []  # the groups in the pruning scope
        self._bn_names: list[str] = []
        self._bns: list[nn.BatchNorm2d] = []
        self._phase: str | None = None
        self.history: list[torch.Tensor] = []  # per prunable BN: |gamma| [epochs recorded, C]
        self.thresholds: list[float] = []  # per recorded epoch: the global threshold of the run's rule
        self.record: dict[str, Any] | None = None  # pruning.json content once pruned

    @classmethod
    def check_model(cls, model: nn.Module, input_shape: tuple[int, ...]) -> str:
        return prunable_summary(model, input_shape)

    # phases and model ------------------------------------------------------------------------
    def phases(self) -> list[Phase]:
        """Sparsity training, then fine-tuning; a 0-epoch finetune phase still triggers the pruning."""
        config = self.context.config
        return [Phase("sparsity", config.train.epochs, config.train.lr),
                Phase("finetune", self.config.finetune_epochs, finetune_lr(config))]

    @property
    def _input_shape(self) -> tuple[int, ...]:
        return tuple(self.context.data.image_shape)

    def prepare_model(self, model: nn.Module, fresh: bool) -> nn.Module:
        """Fresh model: every BN gamma := bn_init (reference code: 0.5) unless it starts from a weights file;
        find the prunable BNs."""
        if fresh and self.config.bn_init is not None and not self.context.config.model.weights:
            with torch.no_grad():
                for module in model.modules():
                    if isinstance(module, nn.BatchNorm2d):
                        module.weight.fill_(self.config.bn_init)
        if self.record is not None:  # resumed after pruning: the model is already compact
            return model
        self._groups = find_channel_groups(model, self._input_shape)
        self._units = select_units(self._groups, bool(self.config.prune_residual))
        self._bn_names = prunable_bn_names(self._units)
        self._bind(model)
        if fresh:
            self.history = [self._abs_gammas()[i].unsqueeze(0) for i in range(len(self._bns))]
            self.thresholds = [self._threshold_now(model)]
            self._write_history()
        return model

    def param_groups(self, model: nn.Module, phase: Phase) -> list[dict[str, Any]]:
        """During sparsity training the prunable BN scales form their own group with `bn_weight_decay`:
        the run's weight decay in the reference form (the authors' SGD decays every parameter), 0 in the
        prunelab form, so the L1 term alone decides which gammas fall. Every other parameter, and every
        parameter while fine-tuning, keeps the run's weight decay."""
        params = [p for p in model.parameters() if p.requires_grad]
        if phase.name != "sparsity":
            return [{"params": params}]
        decay = self.config.bn_weight_decay
        scales = {id(bn.weight) for bn in self._bns}
        return [{"params": [p for p in params if id(p) not in scales]},
                {"params": [bn.weight for bn in self._bns],
                 "weight_decay": self.context.config.train.weight_decay if decay is None else decay}]

    def _threshold_now(self, model: nn.Module) -> float:
        """The global threshold the run's pruning rule would apply to the current gammas."""
        selection = select_channels(channel_scores(model, self._units), self.config.prune_ratio,
                                    self.config.min_channels, self.config.round_to)
        return float(selection.threshold)

    def _bind(self, model: nn.Module) -> None:
        self._bns = [model.get_submodule(name) for name in self._bn_names]

    def _abs_gammas(self) -> list[torch.Tensor]:
        return [bn.weight.detach().abs().float().cpu() for bn in self._bns]

    def _write_history(self) -> None:
        if self.history:
            write_gamma_history(self.context.artefacts.file(GAMMA_HISTORY_FILE), self._bn_names, self.history,
                                self.thresholds or None)

    # training hooks -------------------------------------------------------------------------
    def on_epoch_start(self, phase: Phase, epoch: int, model: nn.Module) -> None:
        self._phase = phase.name
        if phase.name == "sparsity":
            self._bind(model)

    def after_backward(self, model: nn.Module) -> None:
        """grad(gamma) += lambda * sign(gamma) for every prunable BN, during sparsity training only."""
        if self._phase == "sparsity":
            add_l1_subgradient_(self._bns, self.config.sparsity_lambda)

    def on_epoch_end(self, phase: Phase, epoch: int, model: nn.Module,
                     stats: dict[str, float]) -> dict[str, float]:
        """Log lambda * sum|gamma| and |gamma| statistics; append |gamma| to gamma_history.npz."""
        if phase.name != "sparsity":
            return {}
        gammas = self._abs_gammas()
        self.history = [torch.cat([past, now.unsqueeze(0)])
                        for past, now in zip(self.history, gammas, strict=True)]
        self.thresholds.append(self._threshold_now(model))
        self._write_history()
        flat = torch.cat(gammas)
        return {"l1_penalty": l1_penalty(self._bns, self.config.sparsity_lambda),
                "gamma_mean_abs": float(flat.mean()),
                "gamma_frac_below_1e-2": float((flat < SMALL_GAMMA).float().mean()),
                NEAR_ZERO_GAMMA_KEY: float((flat < NEAR_ZERO_GAMMA).float().mean()),
                "global_threshold": self.thresholds[-1]}

    # pruning ------------------------------------------------------------------------------------
    def between_phases(self, finished: Phase, upcoming: Phase, model: nn.Module) -> nn.Module:
        """Prune the sparsity-trained network into a verified compact one (see module docstring)."""
        if finished.name != "sparsity":
            return model
        context = self.context
        name = context.config.model.name
        dense = copy.deepcopy(model).cpu().float().eval()
        context.artefacts.save_torch(DENSE_MODEL_FILE, with_record({"model_spec": spec_of(dense, name),
                                                                    "model_state": dense.state_dict(),
                                                                    "input_shape": list(self._input_shape)},
                                                                   context.artefacts.run_dir, context.config))
        acc_before = context.evaluate(model).acc
        macs_before, params_before = count_macs(dense, self._input_shape), count_params(dense)

        selection = select_channels(channel_scores(dense, self._units), self.config.prune_ratio,
                                    self.config.min_channels, self.config.round_to)
        masked = masked_model(dense, self._units, selection.keep)
        compact = compact_model(dense, self._units, selection.keep, name)
        verification = verify_compact(compact, masked, self._verification_images())
        acc_after = context.evaluate(compact.to(context.device)).acc
        layers = layer_records(self._units, selection)
        counts = channel_counts(self._groups, self._units, selection)
        self.record = {
            "threshold": selection.threshold, "prune_ratio": self.config.prune_ratio,
            "min_channels": self.config.min_channels, "round_to": self.config.round_to,
            "prune_residual": self.config.prune_residual,
            # a VGG has no residual groups: every BN is in the scope either way
            "prune_scope": "every BN" if len(self._units) == len(self._groups) else "block interiors (bn_a)",
            "group_score": "mean |gamma| over the group's BNs",
            "tie_rule": "exactly round(prune_ratio * N) lowest scores removed; ties broken by layer order "
                        "then channel index; the per-layer guard then restores channels",
            "channels_total": counts["channels_prunable"],  # the ratio's denominator (older name)
            **counts,
            "channels_removed_target": selection.removed_target,
            "guard_fired_layers": [row["name"] for row in layers if row["guard_fired"]],
            "layers": layers, "verification": verification,
            "acc_before_prune": acc_before, "acc_after_prune": acc_after,
            "macs_before": macs_before, "params_before": params_before,
            "macs_after": count_macs(compact, self._input_shape), "params_after": count_params(compact),
        }
        context.artefacts.write_json(PRUNING_FILE, self.record)
        context.log(f"pruned {prune_denominator_text(counts)} at "
                     f"|gamma| <= {selection.threshold:.4g}: acc {acc_before:.4f} -> {acc_after:.4f}, "
                     f"MACs {macs_before} -> {self.record['macs_after']}, "
                     f"verified max |diff| {verification['max_abs_diff']:.2e}")
        return compact

    def _verification_images(self) -> torch.Tensor:
        loader = self.context.loader("test", shuffle=False, augment=False, batch_size=VERIFY_IMAGES)
        images, _, _ = next(iter(loader))
        return images.cpu().float().contiguous()

    # end of run -------------------------------------------------------------------------------
    def finalize(self, model: nn.Module, test: EvalResult) -> dict[str, Any]:
        """Figures before/after pruning, CPU latency at batch 1 and 64, and the torch.export archive."""
        if self.record is None:
            raise RuntimeError("slimming finished without pruning (between_phases never ran)")
        artefacts = self.context.artefacts
        compact = copy.deepcopy(model).cpu().float().eval().to(memory_format=torch.contiguous_format)
        dense = load_dense_model(artefacts.run_dir)
        record = self.record
        figures: dict[str, Any] = {
            "acc_before_prune": record["acc_before_prune"], "acc_after_prune": record["acc_after_prune"],
            "acc_after_finetune": test.acc, "params_before": record["params_before"],
            "params_after": count_params(compact), "macs_before": record["macs_before"],
            "macs_after": count_macs(compact, self._input_shape), "prune_ratio": self.config.prune_ratio,
            "prune_threshold": record["threshold"], "channels_removed": record["channels_removed"],
            "channels_total": record["channels_total"], "channels_prunable": record.get("channels_prunable"),
            "channels_all": record.get("channels_all"), "prune_scope": record.get("prune_scope"),
            "guard_fired_layers": record["guard_fired_layers"],
            # the lesson of the paper's Figure 4, after sparsity training: how many |gamma| sit near zero
            NEAR_ZERO_GAMMA_KEY: float((torch.cat([h[-1] for h in self.history]) < NEAR_ZERO_GAMMA)
                                           .float().mean()) if self.history else None,
        }
        for batch in (1, 64):
            for label, net in (("before", dense), ("after", compact)):
                figures[f"latency_ms_b{batch}_{label}"] = measure_latency_ms(
                    net, batch, self._input_shape, repeats=LATENCY_REPEATS[batch], warmup=2, device="cpu")
        figures.update(export_compact(compact, artefacts.file(EXPORT_FILE), self._input_shape))
        return figures

    # checkpoint state ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"bn_names": list(self._bn_names), "history": [h.clone() for h in self.history],
                "thresholds": list(self.thresholds), "record": self.record}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the gamma history (rewrite the npz without epochs after the checkpoint) and the record."""
        self.record = state.get("record")
        self._bn_names = list(state.get("bn_names", []))
        self.history = [h.cpu() for h in state.get("history", [])]
        self.thresholds = [float(t) for t in state.get("thresholds", [])]
        self._write_history()


def export_compact(model: nn.Module, path: Path, input_shape: tuple[int, ...]) -> dict[str, Any]:
    """torch.export the model with a dynamic batch dimension into `path` (atomic); errors are reported."""
    started = time.time()
    try:
        batch = torch.export.Dim("batch", min=1, max=4096)
        program = torch.export.export(model, (torch.zeros((2, *input_shape)),), dynamic_shapes=({0: batch},))
        atomic_write(path, lambda handle: torch.export.save(program, handle))
    except Exception as error:  # noqa: BLE001 - the run succeeded; the export problem is recorded
        return {"export_error": f"{type(error).__name__}: {error}"}
    return {"export_file": path.name, "export_time_s": time.time() - started}


def load_dense_model(run_dir: str | Path) -> nn.Module:
    """The network right after sparsity training (before pruning), from dense_model.pt, in eval mode."""
    state = load_model_file(RunDir(Path(run_dir)), DENSE_MODEL_FILE)
    model = build_model(state["model_spec"])
    model.load_state_dict(state["model_state"])
    return model.eval()

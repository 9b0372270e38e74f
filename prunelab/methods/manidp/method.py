"""ManiDP: Manifold Regularized Dynamic Network Pruning (Tang et al., CVPR 2021).

Every prunable convolution gets a gate (`prunelab.methods.manidp.gates`); image x_i runs the sub-network of the
channels whose saliency pi^l(x_i) reaches the layer threshold xi^l. Training minimises

    L = mean_i CE_i + sum_l mean_i lambda(x_i) * mean_c pi^l_c(x_i)          ("sparsity")
                    + gamma * sum_l ||T^l - R^l||_F^2 / N^2                    ("similarity")

    lambda(x_i) = lambda' * 1[CE_i < C] * ((C - CE_i) / C) ** gamma_c         (complexity alignment)

with C = complexity_scale * (mean training CE of the previous epoch); for the first epoch C comes from the
initial model's mean CE over the training set in evaluation mode (the reference's validate_ontrain).
T^l[i, j] = cos(pi^l(x_i), pi^l(x_j)) and R^l[i, j] = cos(p(F^l(x_i)), p(F^l(x_j))) with p = global
average pooling of the unit's output before masking (`gates.pooled_features`).
`complexity=False` sets lambda(x_i) = lambda' for every image; `similarity=False` drops the term;
both off is plain dynamic pruning.

The reference form follows the authors' code (huawei-noah/Efficient-Computing, Pruning/ManiDP/main.py and
models/resnet_cifar.py): CE_i stays attached inside lambda(x_i); T and R both attached (the term trains the
backbone and the gates), R from conv_a after BN+ReLU and conv_b after BN (signed), cosines by F.normalize;
thresholds per epoch e of E from the channel means of the saliencies the epoch's training images got:

    eta(e) = (1 + target) / 2 + (1 - target) / 2 * cos(pi * (e + 1) / E),
    xi^l = the mean saliency of the channel at rank ceil(eta(e) c_l) from the top,

set after every epoch from the second on (the first epoch runs every channel), fixed within an epoch.
PruneLab's form (`form="prunelab"`) makes seven named departures (config.MANIDP_DEPARTURES), each
also a field of its own; `pair_quantile_thresholds` replaces the rule above with the one that follows.
With `sampled_initial_c`, C for the first epoch is the mean CE of the calibration sample in training mode
(batch statistics; running statistics restored); with `detached_complexity_weight`, CE_i is detached in lambda.

pair_quantile_thresholds: remain rate, per training step t of the T steps of the run,

    eta(t) = target + (1 - target) * (1 + cos(pi * min(1, t / (RAMP_FRACTION * T)))) / 2,

so eta falls from 1.0 (every channel open) to the target over the first RAMP_FRACTION of the steps,
whatever the number of epochs (one epoch included), and the rest of training adapts the network to
its target density. xi^l is the saliency at 0-based rank k = ceil((1 - eta) M) of the M = n c_l
saliencies pi^l_c(x_i) of n images, ascending, so a fraction eta of the (image, channel) pairs is kept:
the mean density is eta. (The reference code ranks the c_l channel *means* instead; once the gates
differ between images that keeps far fewer: measured on `shapes`, 22% of the channels at eta = 0.7,
so runs compared "at the same target" differed in compute, and the page would compare unlike runs.)
The saliencies come from a fixed sample of CALIBRATION_IMAGES training images (eval mode) at the start
of training and at the end of every epoch; in between xi^l follows an exponential moving average
(THRESHOLD_MOMENTUM) of the training batches' thresholds at each step's eta (a threshold fixed for a
whole epoch pruned far more than eta: on `shapes` plain dynamic pruning fell to 8% density in its first
epoch and never learned). The end-of-epoch calibration happens before
the test evaluation, so every logged test accuracy is that of the model that is saved (each gate's
`threshold` buffer, hence in model.pt), and is logged with the density it was measured at
(`test_density`, `test_macs`).

Checks that fail the run: per-image MACs from the masks must equal FlopCounterMode's count on the
sliced sub-network, and the sliced sub-network's and the sparse executor's logits must equal the masked
model's within tolerance; otherwise the run fails naming the first unit whose output differs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from prunelab.data import BatchLoader
from prunelab.methods.base import EvalResult, Phase, PruningMethod, RunContext, register_method
from prunelab.methods.manidp.config import ManiDPConfig
from prunelab.methods.manidp.executor import EXECUTOR_SCOPE, SparseExecutor, executor_applies
from prunelab.methods.manidp.gates import (
    GateStyle,
    cosine_matrix,
    gate_parameters,
    gates_of,
    get_thresholds,
    install_gates,
    named_gates,
    normalized_cosine_matrix,
    records,
    set_recording,
    set_thresholds,
)
from prunelab.methods.manidp.macs import MacsPlan, active_counts, build_plan, verify_macs
from prunelab.methods.manidp.report import (
    balanced_probe,
    gate_dynamism,
    per_image_arrays,
    per_image_table,
    probe_arrays,
    quintile_gap,
    spread,
    summary_figures,
    time_per_image,
)
from prunelab.methods.manidp.unit_trace import VerificationError, describe_divergence
from prunelab.models import build_model, channel_units, spec_of
from prunelab.models.channel_graph import channel_groups, free_units
from prunelab.models.torchvision_models import GATE_CONTAINER
from prunelab.models.weights import state_subset
from prunelab.runs.model_file import load_model_file
from prunelab.runs.run_format import (
    MANIDP_FILE,
    MODEL_FILE,
    PER_IMAGE_FILE,
    PROBE_FILE,
    RunStoreError,
)

CALIBRATION_IMAGES = 2000  # training images whose mean saliencies set the thresholds
RAMP_FRACTION = 0.5  # eta reaches the target after this fraction of the training steps
THRESHOLD_MOMENTUM = 0.9  # EMA of the batches' channel mean saliencies that xi follows during an epoch
VERIFY_IMAGES = 16  # test images whose sub-networks are sliced and counted with FlopCounterMode
LATENCY_IMAGES = 32  # test images timed one by one for the batch-1 latencies
# max |executor - masked dense| and |sliced sub-network - masked dense| on logits, times max(1, max |logits|)
# of the checked images (float32 rounding grows with the logits: a diverged run's reach 1e9 and more)
EXECUTOR_TOLERANCE = 1e-3
SLICED_TOLERANCE = 1e-3


# ------------------------------------------------------------------------------------------------
# formulas


def complexity_weights(ce: torch.Tensor, threshold_c: float, lambda_prime: float,
                       gamma_c: float) -> torch.Tensor:
    """lambda(x_i) = lambda' * 1[CE_i < C] * ((C - CE_i) / C) ** gamma_c, per image [N]."""
    if threshold_c <= 0.0:
        return torch.zeros_like(ce)
    easy = (ce < threshold_c).to(ce.dtype)
    ratio = ((threshold_c - ce) / threshold_c).clamp(min=0.0)
    return lambda_prime * easy * ratio.pow(gamma_c)


def sparsity_loss(saliencies: list[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
    """sum_l mean_i weights_i * mean_c pi^l_c(x_i), with pi^l [N, C_l] and weights [N]."""
    total = weights.new_zeros(())
    for pi in saliencies:
        total = total + (weights * pi.float().mean(dim=1)).mean()
    return total


def similarity_loss(saliencies: list[torch.Tensor], features: list[torch.Tensor],
                    smoothed: bool = False) -> torch.Tensor:
    """sum_l ||T^l - R^l||_F^2 / N^2, T = cosine matrix of the gates, R = of the pooled features (reference:
    cal_similarity_loss, both by F.normalize; gradients flow wherever the inputs are attached). `smoothed`:
    T by the smoothed cosine (departure smoothed_gate_cosine)."""
    total = saliencies[0].new_zeros((), dtype=torch.float32)
    for pi, feat in zip(saliencies, features, strict=True):
        n = pi.shape[0]
        t = cosine_matrix(pi) if smoothed else normalized_cosine_matrix(pi)
        diff = t - normalized_cosine_matrix(feat)
        total = total + diff.pow(2).sum() / (n * n)
    return total


def reference_remain_rate(epoch: int, epochs: int, target: float) -> float:
    """eta(e) = (1 + target) / 2 + (1 - target) / 2 * cos(pi * (e + 1) / E) (the reference's adjust_remain_rate)."""
    return (1.0 + target) / 2.0 + (1.0 - target) / 2.0 * math.cos(math.pi * (epoch + 1) / max(1, epochs))


def channel_mean_threshold(channel_means: torch.Tensor, eta: float) -> torch.Tensor:
    """0-d xi^l: the value at rank ceil(eta * c_l) from the top of the channels' mean saliencies [c_l]."""
    k = min(channel_means.numel(), max(1, math.ceil(eta * channel_means.numel() - 1e-9)))
    return torch.topk(channel_means.float(), k).values[-1]


def remain_rate(step: int, steps: int, target: float, ramp_fraction: float = RAMP_FRACTION) -> float:
    """eta(t) = target + (1 - target) * (1 + cos(pi * min(1, t / R))) / 2, R = max(1, ramp * T), T = steps."""
    ramp = max(1.0, ramp_fraction * steps)
    progress = min(1.0, step / ramp)
    return target + (1.0 - target) * 0.5 * (1.0 + math.cos(math.pi * progress))


def threshold_tensor(saliencies: torch.Tensor, eta: float) -> torch.Tensor:
    """0-d xi^l: the M saliencies pi_c(x_i) ([N, C] or [M]) ascending, the value at 0-based rank
    k = ceil((1 - eta) * M); 0 if k = 0. The k smallest fall below xi, so a fraction eta of the
    (image, channel) pairs keeps pi >= xi (ties aside): the mean density is eta."""
    values = saliencies.detach().float().flatten()
    count = values.numel()
    k = math.ceil((1.0 - eta) * count - 1e-9)
    if k <= 0:
        return values.new_zeros(())
    return torch.kthvalue(values, min(k, count - 1) + 1).values


def threshold_at_rank(saliencies: torch.Tensor, eta: float) -> float:
    """`threshold_tensor` as a float."""
    return float(threshold_tensor(saliencies, eta))


def backbone_state(state: dict[str, Any]) -> dict[str, Any]:
    """A (gated) model's state_dict without its gates' entries: the plain backbone's weights."""
    return state_subset(state, lambda k: ".gate" not in k and not k.startswith(f"{GATE_CONTAINER}."))


def parent_epochs_total(parent: Any) -> int:
    """All epochs behind a finished run's final weights (its own and its parents'), from summary.json."""
    try:
        summary = parent.read_summary()
    except RunStoreError as error:
        raise ValueError(f"init_from {parent.run_id}: the parent run has not finished ({error}); "
                         "a ManiDP run starts from a finished run's model.pt") from None
    return int(summary.get("epochs_total", summary.get("epochs", 0)))


# ------------------------------------------------------------------------------------------------
# the plug-in


@register_method(ManiDPConfig)
class ManiDP(PruningMethod):
    """Gates, complexity- and similarity-aligned sparsity, per-epoch thresholds, per-image artefacts."""

    def __init__(self, config: ManiDPConfig, context: RunContext) -> None:
        super().__init__(config, context)
        self.config: ManiDPConfig = config
        self.complexity_c: float | None = None  # C for the coming epoch
        self.eta = 1.0
        self.thresholds: list[float] = []
        self.layer_names: list[str] = []
        self.plan: MacsPlan | None = None
        self._sums: dict[str, float] = {}
        self._running: list[torch.Tensor] | None = None  # per gate: the running threshold xi^l (0-d)
        self._calibrated_for = -1  # epoch whose start the current thresholds were calibrated for
        self.step = 0  # training steps done
        self.steps_total = 1  # training steps of the whole run (set at each epoch start)
        self.parent: dict[str, Any] = {}  # {"parent_run", "parent_epochs_total"} when init_from is set
        self.style = GateStyle.of(config)
        # reference thresholds: per gate, the sum over this epoch's training images of pi^l [c_l] (mask_sum)
        self._channel_sums: list[torch.Tensor] | None = None
        self._channel_seen = 0

    # model ------------------------------------------------------------------------------------
    def prepare_model(self, model: nn.Module, fresh: bool) -> nn.Module:
        if fresh and self.config.init_from:
            self._load_backbone(model, self.config.init_from)
        install_gates(model, self.style)
        if self.thresholds:
            set_thresholds(model, self.thresholds)
        self.layer_names = [name for name, _ in named_gates(model)]
        self.plan = build_plan(model, self.context.data.image_shape)
        return model

    def _load_backbone(self, model: nn.Module, source: str) -> None:
        """Copy a finished run's model.pt weights into the (ungated) backbone; every key must match."""
        parent = self.parent_dir(source)
        state = load_model_file(parent, MODEL_FILE)["model_state"]
        self.parent = {"parent_run": parent.run_id, "parent_epochs_total": parent_epochs_total(parent)}
        backbone = backbone_state(state)
        own = model.state_dict()
        missing = sorted(set(own) - set(backbone))
        unexpected = sorted(set(backbone) - set(own))
        reshaped = sorted(k for k in set(own) & set(backbone) if own[k].shape != backbone[k].shape)
        if missing or unexpected or reshaped:
            raise ValueError(f"init_from {source}: backbone keys differ (missing {missing[:3]}, unexpected "
                             f"{unexpected[:3]}, other shapes {reshaped[:3]}); "
                             "the same model, width and number of classes are needed")
        model.load_state_dict(backbone, strict=True)
        self.context.log(f"manidp: backbone initialised from run {parent.run_id}")

    def param_groups(self, model: nn.Module, phase: Phase) -> list[dict[str, Any]]:
        """Backbone with the run's weight decay; gates without weight decay, lr scaled by gate_lr_scale."""
        gate_ids = {id(p) for p in gate_parameters(model)}
        backbone = [p for p in model.parameters() if p.requires_grad and id(p) not in gate_ids]
        gates = [p for p in gate_parameters(model) if p.requires_grad]
        return [{"params": backbone},
                {"params": gates, "weight_decay": 0.0, "lr_scale": self.config.gate_lr_scale}]

    @classmethod
    def check_model(cls, model: nn.Module, input_shape: tuple[int, ...]) -> str:
        """ValueError when no unit of `model` can carry a gate (every channel group coupled); else how many can."""
        if getattr(model, "steps", None) is None:  # one DependencyGraph walk gives the units and the rest
            units, skipped = free_units(model, input_shape)
            if not units:
                name, reason = next(iter(skipped.items()), ("", "it has no channel group"))
                raise ValueError(f"no channel group can carry a gate: the first, {name}, because {reason}")
            return f"{len(units)} channel groups gated, {len(skipped)} coupled groups left ungated"
        return f"{len(channel_units(model))} units gated"

    @classmethod
    def restore_model(cls, model: nn.Module, method_state: dict[str, Any]) -> nn.Module:
        install_gates(model, GateStyle.from_state(method_state))
        if method_state.get("thresholds"):
            set_thresholds(model, list(method_state["thresholds"]))
        return model

    # thresholds ---------------------------------------------------------------------------------
    def _calibration_loader(self) -> BatchLoader:
        data, context = self.context.data, self.context
        generator = torch.Generator().manual_seed(context.config.train.seed)
        count = min(CALIBRATION_IMAGES, data.train_size)
        chosen = torch.sort(torch.randperm(data.train_size, generator=generator)[:count]).values
        return BatchLoader(data.train_images[chosen], data.train_labels[chosen],
                           context.config.train.eval_batch_size, mean=data.mean, std=data.std, shuffle=False,
                           augment=False, device=context.device, channels_last=context.channels_last)

    @torch.no_grad()
    def calibration_saliencies(self, model: nn.Module) -> list[torch.Tensor]:
        """Per gate, the saliencies [n, C_l] of the calibration sample (eval mode)."""
        was_training = model.training
        model.eval()
        batches: list[list[torch.Tensor]] = []
        for images, _, _ in self._calibration_loader():
            with self.context.autocast():
                model(images)
            batches.append([r.saliency.float() for r in records(model)])
        model.train(was_training)
        return [torch.cat(per_gate) for per_gate in zip(*batches, strict=True)]

    @property
    def reference_thresholds(self) -> bool:
        """The reference's threshold rule (channel means over the epoch), not pair_quantile_thresholds."""
        return not self.config.pair_quantile_thresholds

    def threshold_at(self, saliencies: torch.Tensor, eta: float) -> torch.Tensor:
        """xi^l at remain rate eta from saliencies [n, c_l] by this run's rule: the reference's channel-mean rank
        (`channel_mean_threshold`), or with pair_quantile_thresholds the pair quantile (`threshold_tensor`)."""
        if self.reference_thresholds:
            return channel_mean_threshold(saliencies.float().mean(dim=0), eta)
        return threshold_tensor(saliencies, eta)

    def calibrate(self, model: nn.Module, eta: float) -> list[float]:
        """Set xi^l at remain rate eta from the calibration sample; restart the running thresholds from it."""
        thresholds = [threshold_tensor(pi, eta) for pi in self.calibration_saliencies(model)]
        self._running = [xi.clone() for xi in thresholds]
        self.thresholds = [float(xi) for xi in thresholds]
        set_thresholds(model, self.thresholds)
        return self.thresholds

    @torch.no_grad()
    def initial_mean_ce(self, model: nn.Module) -> float:
        """C's mean CE before the first epoch. Reference: over the training set in evaluation mode, with the
        training augmentation (validate_ontrain over train_loader). sampled_initial_c: over the calibration
        sample in training mode (BN running statistics are left untouched)."""
        if not self.config.sampled_initial_c:
            was_training = model.training
            model.eval()
            ce_sum, seen = 0.0, 0
            for images, labels, _ in self.context.loader("train", shuffle=False):
                with self.context.autocast():
                    logits = model(images)
                ce_sum += float(F.cross_entropy(logits.float(), labels, reduction="sum"))
                seen += labels.shape[0]
            model.train(was_training)
            return ce_sum / max(1, seen)
        saved = {name: buffer.clone() for name, buffer in model.named_buffers()}
        was_training = model.training
        model.train()
        ce_sum, seen = 0.0, 0
        try:
            for images, labels, _ in self._calibration_loader():
                with self.context.autocast():
                    logits = model(images)
                ce_sum += float(F.cross_entropy(logits.float(), labels, reduction="sum"))
                seen += labels.shape[0]
        finally:
            for name, buffer in model.named_buffers():
                buffer.copy_(saved[name])
            model.train(was_training)
        return ce_sum / max(1, seen)

    def lineage(self) -> dict[str, Any]:
        return dict(self.parent)

    def on_epoch_start(self, phase: Phase, epoch: int, model: nn.Module) -> None:
        """Remain rate; thresholds (pair quantiles: unless calibrated at the last epoch end); C at the start."""
        self.steps_total = max(1, phase.epochs * len(self.context.loader("train")))
        if self.reference_thresholds:
            # the thresholds in effect were set at the last epoch's end (none before the second epoch)
            self.eta = reference_remain_rate(epoch, phase.epochs, self.config.target_density)
            self._channel_sums, self._channel_seen = None, 0
        else:
            self.eta = remain_rate(self.step, self.steps_total, self.config.target_density)
            if self._running is None or self._calibrated_for != epoch:
                self.calibrate(model, self.eta)
                self._calibrated_for = epoch
        if self.complexity_c is None:
            self.complexity_c = self.config.complexity_scale * self.initial_mean_ce(model)
        self._sums = {}

    # losses -----------------------------------------------------------------------------------
    def extra_loss(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                   logits: torch.Tensor, per_image_ce: torch.Tensor) -> dict[str, torch.Tensor]:
        recs = records(model)
        saliencies = [r.saliency for r in recs]
        ce = per_image_ce.detach() if self.config.detached_complexity_weight else per_image_ce
        weights = self.image_weights(ce)
        terms = {"sparsity": sparsity_loss(saliencies, weights)}
        smoothed = self.config.smoothed_gate_cosine
        if self.config.similarity:
            objective = similarity_loss([r.own_saliency for r in recs], [r.features for r in recs], smoothed)
            terms["similarity"] = self.config.gamma_sim * objective
        else:  # measured all the same, so the ablation compares the objective itself like with like
            with torch.no_grad():
                objective = similarity_loss([pi.detach() for pi in saliencies],
                                            [r.features.detach() for r in recs], smoothed)
        self._accumulate(recs, weights.detach(), per_image_ce.detach(), objective, per_image_ce.shape[0])
        self.step += 1  # the next batch runs at the next step's remain rate
        if self.reference_thresholds:
            self._sum_channels(recs, per_image_ce.shape[0])
        else:
            self.eta = remain_rate(self.step, self.steps_total, self.config.target_density)
            self._track_thresholds(model, recs)
        return terms

    @torch.no_grad()
    def _sum_channels(self, recs: list[Any], n: int) -> None:
        """mask_sum^l += sum over the batch of pi^l (the reference's MaskBlock buffer, training forwards)."""
        batch = [r.saliency.detach().float().sum(dim=0) for r in recs]
        if self._channel_sums is None:
            self._channel_sums = batch
        else:
            for total, part in zip(self._channel_sums, batch, strict=True):
                total.add_(part)
        self._channel_seen += n

    @torch.no_grad()
    def _track_thresholds(self, model: nn.Module, recs: list[Any]) -> None:
        """xi^l <- m xi^l + (1 - m) xi^l(batch at this step's eta), m = THRESHOLD_MOMENTUM (no host sync)."""
        if self._running is None:
            return
        for gate, running, record in zip(gates_of(model), self._running, recs, strict=True):
            running.mul_(THRESHOLD_MOMENTUM).add_(threshold_tensor(record.saliency, self.eta),
                                                  alpha=1.0 - THRESHOLD_MOMENTUM)
            gate.threshold.copy_(running)

    def image_weights(self, ce: torch.Tensor) -> torch.Tensor:
        """lambda(x_i) per image: complexity-aligned, or lambda' for every image with complexity off."""
        if not self.config.complexity:
            return torch.full_like(ce, self.config.lambda_prime)
        c = self.complexity_c if self.complexity_c is not None else float("inf")
        return complexity_weights(ce, c, self.config.lambda_prime, self.config.gamma_c)

    def _accumulate(self, recs: list[Any], weights: torch.Tensor, ce: torch.Tensor, objective: torch.Tensor,
                    n: int) -> None:
        """Cheap running sums for the epoch metrics (density, MACs from the masks, lambda, similarity objective,
        and the MACs of the images easier than C, which the complexity term pushes when it is on, against the
        rest, in runs with and without the term)."""
        with torch.no_grad():
            counts = active_counts([r.mask for r in recs])
            assert self.plan is not None
            per_image = self.plan.macs(counts).double()
            macs = float(per_image.sum())
            density = float(sum(float(r.mask.float().mean()) for r in recs) / len(recs)) * n
            c = self.complexity_c if self.complexity_c is not None else float("inf")
            easy = ce < c
            easy_macs, easy_n = float(per_image[easy].sum()), float(easy.sum())
        sums = self._sums
        sums["n"] = sums.get("n", 0.0) + n
        sums["macs"] = sums.get("macs", 0.0) + macs
        sums["easy_macs"] = sums.get("easy_macs", 0.0) + easy_macs
        sums["easy_n"] = sums.get("easy_n", 0.0) + easy_n
        sums["density"] = sums.get("density", 0.0) + density
        sums["lambda"] = sums.get("lambda", 0.0) + float(weights.sum())
        sums["pushed"] = sums.get("pushed", 0.0) + float((weights > 0).sum())
        sums["similarity_objective"] = sums.get("similarity_objective", 0.0) + float(objective.detach()) * n

    def on_epoch_end(self, phase: Phase, epoch: int, model: nn.Module,
                     stats: dict[str, float]) -> dict[str, float]:
        sums = self._sums
        n = max(1.0, sums.get("n", 0.0))
        out = {"eta": self.eta, "complexity_c": float(self.complexity_c or 0.0),
               "train_density": sums.get("density", 0.0) / n,
               "train_macs_per_image": sums.get("macs", 0.0) / n,
               "lambda_mean": sums.get("lambda", 0.0) / n, "pushed_fraction": sums.get("pushed", 0.0) / n,
               "similarity_objective": sums.get("similarity_objective", 0.0) / n}
        easy_n, hard_n = sums.get("easy_n", 0.0), n - sums.get("easy_n", 0.0)
        # mean MACs of the images easier than C (pushed by the complexity term when it is on) and the rest
        out["train_macs_easy"] = sums.get("easy_macs", 0.0) / easy_n if easy_n else float("nan")
        out["train_macs_hard"] = ((sums.get("macs", 0.0) - sums.get("easy_macs", 0.0)) / hard_n
                                  if hard_n > 0 else float("nan"))
        self.complexity_c = self.config.complexity_scale * stats["train_ce"]  # C for the next epoch
        if self.reference_thresholds:
            if epoch >= 1 and self._channel_sums is not None:  # main.py: `epoch % thre_freq == 0 and epoch >= 1`
                means = [total / max(1, self._channel_seen) for total in self._channel_sums]
                self.thresholds = [float(channel_mean_threshold(m, self.eta)) for m in means]
                set_thresholds(model, self.thresholds)
            else:
                self.thresholds = get_thresholds(model)
        else:
            # at the remain rate reached now: the model tested, checkpointed and (last epoch) saved
            self.calibrate(model, self.eta)
            self._calibrated_for = epoch + 1
        out["threshold_mean"] = float(np.mean(self.thresholds)) if self.thresholds else 0.0
        return out

    def eval_extras(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """Per evaluated image: mean density over the gated layers, MACs from the masks, active counts, and
        each gated layer's density (`density_<layer>`: logged per epoch as `test_density_<layer>`)."""
        assert self.plan is not None
        recs = records(model)
        counts = active_counts([r.mask for r in recs])
        channels = torch.tensor(self.plan.gate_channels, dtype=torch.float32, device=counts.device)
        densities = counts.float() / channels
        per_layer = {f"density_{name}": densities[:, i] for i, name in enumerate(self.plan.gate_names)}
        masks = torch.cat([r.mask for r in recs], dim=1)  # [B, sum_l c_l]: every (image, channel) decision
        return {"density": densities.mean(dim=1), "macs": self.plan.macs(counts).float(), "counts": counts,
                "masks": masks, **per_layer}

    # state ------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything the method carries between steps, so a resumed run ends identical."""
        return {"thresholds": list(self.thresholds), "layer_names": list(self.layer_names),
                "complexity_c": self.complexity_c, "eta": self.eta, "step": self.step,
                "running": None if self._running is None else [r.detach().cpu().clone() for r in self._running],
                "calibrated_for": self._calibrated_for, "parent": dict(self.parent),
                "gate_style": self.style.as_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.thresholds = list(state.get("thresholds", []))
        self.layer_names = list(state.get("layer_names", []))
        self.complexity_c = state.get("complexity_c")
        self.eta = float(state.get("eta", 1.0))
        self.step = int(state.get("step", 0))
        running = state.get("running")
        self._running = None if running is None else [r.to(self.context.device).float() for r in running]
        self._calibrated_for = int(state.get("calibrated_for", -1))
        self.parent = dict(state.get("parent", {}))

    # artefacts --------------------------------------------------------------------------------
    def finalize(self, model: nn.Module, test: EvalResult) -> dict[str, Any]:
        """per_image.parquet (from the final test evaluation and its eval_extras), probe.npz, the MACs and
        executor checks (a failed check fails the run), batch-1 latencies, manidp.json; returns the figures."""
        self.thresholds = get_thresholds(model)
        assert self.plan is not None
        context = self.context
        per_image = per_image_arrays(test)
        table = per_image_table(per_image, self.plan, context.data.test_difficulty)
        if self.config.init_from:
            # the parent model's own loss on each test image: a difficulty measured outside this run
            table["parent_loss"] = self._parent_test_loss().astype(np.float32)
        context.artefacts.write_parquet(PER_IMAGE_FILE, table)
        probe_gap = self._write_probe(model)
        cpu_model = model.to("cpu").eval()
        try:
            sample = self._test_images(spread(VERIFY_IMAGES, per_image["macs"]), "cpu")
            with torch.no_grad():  # tolerances are on logits of order 1; a run whose logits grew scales them
                scale = max(1.0, float(cpu_model(sample).abs().max()))
            sliced_tolerance = SLICED_TOLERANCE * scale
            macs_check = verify_macs(cpu_model, sample, build_plan(cpu_model, sample.shape[1:]),
                                     atol=sliced_tolerance)
            if not macs_check["passed"]:
                raise VerificationError(f"per-image MACs from the masks disagree with FlopCounterMode on the "
                                        f"sliced sub-networks by up to {macs_check['max_abs_diff']} MACs")
            if not macs_check["output_passed"]:
                raise VerificationError(describe_divergence(
                    "the sliced sub-network", cpu_model, sample, "sliced", sliced_tolerance))
            if executor_applies(cpu_model):
                executor = SparseExecutor(cpu_model)
                executor_check = self._check_executor(cpu_model, executor, sample, EXECUTOR_TOLERANCE * scale)
            else:
                executor, executor_check = None, {"skipped": EXECUTOR_SCOPE}
                context.log(f"manidp: {EXECUTOR_SCOPE}")
            latency = self._latencies(cpu_model, executor)
        finally:
            model.to(context.device)
        figures = summary_figures(per_image, self.plan, latency, context.data.test_difficulty)
        figures.update(gate_dynamism(test.extras["masks"].numpy(), per_image["macs"]))
        if "parent_loss" in table:  # the paper's test of the complexity term (prunelab.methods.manidp.evidence)
            figures["complexity_quintile_gap"] = quintile_gap(table["macs"].to_numpy(), table["parent_loss"].to_numpy())
        figures.update(probe_gap)
        # what the gates reach: gated channels of every BN channel group (one DependencyGraph walk), governed MACs
        groups = channel_groups(model, tuple(context.data.image_shape))
        reach = {**self.plan.reach(), "channels_all": sum(group.channels for group in groups)}
        context.artefacts.write_json(MANIDP_FILE, {
            "layers": self.layer_names, "channels": list(self.plan.gate_channels),
            "thresholds": self.thresholds,
            "eta": self.eta, "complexity_c": self.complexity_c, "macs_dense": self.plan.dense_macs(),
            "gate_macs": self.plan.gate_macs, "reach": reach, "macs_verification": macs_check,
            "executor_verification": executor_check, "latency_ms_b1": latency,
            "config": self.config.model_dump(mode="json"),
        })
        figures["macs_verification_passed"] = bool(macs_check["passed"])
        figures["executor_max_abs_diff"] = executor_check.get("max_abs_diff")
        figures.update({f"gates_{key}": value for key, value in reach.items()})
        return figures

    @torch.no_grad()
    def _parent_test_loss(self) -> np.ndarray:
        """Per test image (dataset order), the cross-entropy of the parent run's model (init_from), ungated."""
        assert self.config.init_from is not None
        state = load_model_file(self.parent_dir(self.config.init_from), MODEL_FILE)
        dense = build_model(state["model_spec"]).to(self.context.device).eval()
        dense.load_state_dict(backbone_state(state["model_state"]))
        losses = []
        for images, labels, _ in self.context.loader("test", shuffle=False, augment=False):
            with self.context.autocast():
                logits = dense(images)
            losses.append(F.cross_entropy(logits.float(), labels, reduction="none").cpu())
        return torch.cat(losses).numpy()

    def _test_images(self, positions: torch.Tensor, device: str | torch.device) -> torch.Tensor:
        """Normalised test images at `positions` [P] -> [P, C, H, W] float32 on `device`."""
        data = self.context.data
        loader = BatchLoader(data.test_images[positions], data.test_labels[positions], max(1, len(positions)),
                             mean=data.mean, std=data.std, shuffle=False, augment=False, device=device)
        return torch.cat([images for images, _, _ in loader])

    @torch.no_grad()
    def _write_probe(self, model: nn.Module) -> dict[str, float]:
        """probe.npz: gates, pooled features, T and R of a balanced test sample; returns the gap figures."""
        data = self.context.data
        positions = balanced_probe(data.test_labels, self.config.probe_size, data.num_classes)
        model.eval()
        set_recording(model, True)
        with self.context.autocast():
            model(self._test_images(positions, self.context.device))
        arrays, figures = probe_arrays(positions, data.test_labels[positions], self.layer_names, records(model),
                                       smoothed=self.config.smoothed_gate_cosine)
        self.context.artefacts.write_npz(PROBE_FILE, arrays, compressed=True)
        return figures

    def _check_executor(self, model: nn.Module, executor: SparseExecutor, images: torch.Tensor,
                        tolerance: float = EXECUTOR_TOLERANCE) -> dict[str, Any]:
        from prunelab.methods.manidp.executor import max_abs_diff

        diff = max_abs_diff(model, executor, images)
        passed = diff <= tolerance
        if not passed:
            raise VerificationError(describe_divergence(
                "the sparse executor", model, images, executor, tolerance))
        return {"images_checked": int(images.shape[0]), "max_abs_diff": diff, "tolerance": tolerance,
                "passed": passed}

    def _latencies(self, model: nn.Module, executor: SparseExecutor | None) -> dict[str, float]:
        """Median batch-1 CPU milliseconds over real test images: dense backbone, masked model, executor."""
        dense = build_model(spec_of(model)).eval()
        dense.load_state_dict(backbone_state(model.state_dict()))
        positions = torch.arange(min(LATENCY_IMAGES, self.context.data.test_size))
        images = self._test_images(positions, "cpu")
        set_recording(model, False)
        try:
            forms = {"dense": dense, "masked": model, **({"sparse": executor} if executor is not None else {})}
            timings = time_per_image(forms, images)
        finally:
            set_recording(model, True)
        return {**timings, "threads": torch.get_num_threads(), "images": int(images.shape[0])}

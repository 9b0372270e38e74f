"""The training engine: one loop for every method, driven by the method's hooks.

`Trainer(config, run).run()` trains through the method's phases with SGD (momentum, weight decay,
cosine or step schedule), evaluates per image after every epoch, checkpoints after every epoch so a
run can be resumed, and leaves `summary.json`, `model.pt` and the method's artefacts in the run
directory. It never draws and never imports streamlit.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import threading
import time
import traceback
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from prunelab.config import RunConfig
from prunelab.data import BatchLoader, ImageDataset, load_dataset
from prunelab.methods import ArtefactWriter, EvalResult, Phase, PruningMethod, RunContext, get_method
from prunelab.models import build_model, model_spec, spec_of
from prunelab.models.weights import load_weights
from prunelab.runs import run_life, viewer
from prunelab.runs.model_file import load_model_file, with_record
from prunelab.runs.progress import Cancelled, Progress
from prunelab.runs.run_format import CHECKPOINT_FILE, MODEL_FILE, RunStoreError
from prunelab.runs.store import RunDir
from prunelab.training.flops import count_macs, count_params

log = logging.getLogger("prunelab.training.engine")



def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; asking for cuda without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but no CUDA GPU is available; use --device cpu or auto")
    return torch.device(name)


@contextlib.contextmanager
def cpu_threads(threads: int | None) -> Iterator[None]:
    """Let torch use `threads` intra-op CPU threads inside the block (None: leave torch's setting)."""
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# Weights are initialised from torch's process-wide RNG (the data pipeline has its own generators).
# Runs trained in threads of one process (a suite with --max-concurrent 2) would interleave their
# seeding and initial draws, and the same config would give different weights: measured, a demo
# baseline ended at 0.777 in one suite and 0.766 in another. Seeding and building the model hold this lock.
MODEL_INIT_LOCK = threading.Lock()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_states() -> dict[str, Any]:
    """torch, numpy and python RNG states as tensors and plain values (weights_only loadable)."""
    version, keys, gauss = random.getstate()
    _, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "python": {"version": version, "keys": torch.tensor(keys, dtype=torch.int64), "gauss": gauss},
            "numpy": {"keys": torch.from_numpy(np_keys.astype(np.int64)), "pos": int(np_pos),
                      "has_gauss": int(np_has_gauss), "gauss": float(np_gauss)}}


def set_rng_states(state: dict[str, Any]) -> None:
    """Restore what `rng_states` returned (a missing part keeps the seeded state)."""
    torch.set_rng_state(state["torch"].cpu())
    if "python" in state:
        py = state["python"]
        random.setstate((py["version"], tuple(int(k) for k in py["keys"].tolist()), py["gauss"]))
    if "numpy" in state:
        npy = state["numpy"]
        np.random.set_state(("MT19937", npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
                             npy["gauss"]))


class Trainer:
    """Trains one run: `Trainer(config, run, progress).run(resume=False) -> summary`."""

    def __init__(self, config: RunConfig, run: RunDir, progress: Progress | None = None,
                 dataset: ImageDataset | None = None) -> None:
        self.config = config
        self.run_dir = run
        self.progress = progress or Progress(run.run_id)
        self.device = resolve_device(config.train.device)
        self.dataset = dataset if dataset is not None else load_dataset(config.data)
        self.amp_dtype = torch.bfloat16 if (self.device.type == "cuda" and config.train.amp) else None
        wanted = config.train.channels_last
        self.channels_last = self.device.type == "cuda" if wanted == "auto" else wanted
        # all a method sees of this run (its evaluate adds the method's eval_extras)
        self.context = RunContext(
            config=config, data=self.dataset, loader=self.loader, evaluate=self.evaluate, autocast=self.autocast,
            device=self.device, channels_last=self.channels_last, artefacts=ArtefactWriter(run.path), log=self.log)
        self.method: PruningMethod = get_method(config.method.name)(config.method, self.context)
        self._phases = self.method.phases()
        self._epochs_total = sum(p.epochs for p in self._phases)
        self._epochs_before: list[int] = [sum(p.epochs for p in self._phases[:i]) for i in range(len(self._phases))]
        self._started = time.time()
        self._elapsed_before = 0.0  # training seconds of earlier legs (up to the checkpoint resumed from)

    # data -------------------------------------------------------------------------------------
    def loader(self, split: str, *, shuffle: bool | None = None, augment: bool | None = None,
               batch_size: int | None = None, epoch: int = 0) -> BatchLoader:
        """A batch loader over 'train' or 'test' images (test: no shuffle, no augmentation)."""
        data, train = self.dataset, split == "train"
        images = data.train_images if train else data.test_images
        labels = data.train_labels if train else data.test_labels
        default_batch = self.config.train.batch_size if train else self.config.train.eval_batch_size
        loader = BatchLoader(
            images, labels, batch_size or default_batch,
            mean=data.mean, std=data.std, shuffle=train if shuffle is None else shuffle,
            augment=(train and self.config.data.augment) if augment is None else augment, hflip=data.hflip,
            device=self.device, seed=self.config.train.seed, channels_last=self.channels_last,
        )
        loader.set_epoch(epoch)
        return loader

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    # model ------------------------------------------------------------------------------------
    def build_fresh_model(self) -> nn.Module:
        model_config = self.config.model
        spec = model_spec(model_config.name, self.dataset.num_classes, model_config.width, model_config.cifar_stem)
        model = build_model(spec)
        if model_config.weights:
            self.log(load_weights(model, model_config.weights).line())
        return self._to_device(model)

    def _to_device(self, model: nn.Module) -> nn.Module:
        model = model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def model_cost(self, model: nn.Module) -> tuple[int, int]:
        """(MACs per image, params) of a static model."""
        return count_macs(model, self.dataset.image_shape), count_params(model)

    # evaluation ---------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, model: nn.Module, split: str = "test") -> EvalResult:
        """Per-image CE loss and prediction over a whole split, in dataset order."""
        model.eval()
        losses, preds, labels = [], [], []
        extras: dict[str, list[torch.Tensor]] = {}
        for images, targets, _ in self.loader(split, shuffle=False, augment=False):
            with self.autocast():
                logits = model(images)
            losses.append(F.cross_entropy(logits.float(), targets, reduction="none").cpu())
            preds.append(logits.argmax(1).cpu())
            labels.append(targets.cpu())
            for name, value in self.method.eval_extras(model).items():
                extras.setdefault(name, []).append(value.detach().cpu())
        return EvalResult(torch.cat(losses), torch.cat(preds), torch.cat(labels),
                          {name: torch.cat(values) for name, values in extras.items()})

    # training -----------------------------------------------------------------------------------
    def _optimizer(self, model: nn.Module, phase: Phase) -> tuple[torch.optim.Optimizer, Any]:
        train = self.config.train
        groups = self.method.param_groups(model, phase)
        for group in groups:
            group["lr"] = phase.lr * group.pop("lr_scale", 1.0)
            group.setdefault("weight_decay", train.weight_decay)
        optimizer = torch.optim.SGD(groups, lr=phase.lr, momentum=train.momentum, nesterov=train.nesterov,
                                    weight_decay=train.weight_decay)
        # the schedule advances every batch, so even a short phase decays smoothly
        steps = max(1, phase.epochs * len(self.loader("train")))
        if train.schedule == "cosine":
            schedule = lambda t: 0.5 * (1.0 + math.cos(math.pi * t / steps))  # noqa: E731
        elif train.schedule == "step":  # /10 at 50% and 75% of the phase (Network Slimming's schedule)
            schedule = lambda t: 0.1 ** ((t >= 0.5 * steps) + (t >= 0.75 * steps))  # noqa: E731
        else:
            schedule = lambda t: 1.0  # noqa: E731
        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)

    def train_one_epoch(self, model: nn.Module, optimizer: torch.optim.Optimizer, phase: Phase,
                        phase_index: int, epoch: int, scheduler: Any = None) -> dict[str, float]:
        """One pass over the training set; returns mean loss, accuracy and every extra term."""
        model.train()
        loader = self.loader("train", epoch=epoch + 1000 * phase_index)
        # running sums stay on the device: no host sync per batch (that would stall a GPU)
        zero = torch.zeros((), device=self.device)
        sums: dict[str, torch.Tensor] = {"loss": zero.clone(), "ce": zero.clone(), "correct": zero.clone()}
        seen = 0
        done_before = self._epochs_before[phase_index] + epoch
        for batch_index, (images, labels, _) in enumerate(loader):
            self.progress.check_cancel()
            with self.autocast():
                logits = model(images)
            per_image_ce = F.cross_entropy(logits.float(), labels, reduction="none")
            terms = self.method.extra_loss(model, images, labels, logits, per_image_ce)
            loss = per_image_ce.mean() + sum(terms.values(), zero)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.method.after_backward(model)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()

            n = labels.shape[0]
            seen += n
            sums["loss"] += loss.detach() * n
            sums["ce"] += per_image_ce.detach().sum()
            sums["correct"] += (logits.argmax(1) == labels).sum()
            for name, value in terms.items():
                sums[name] = sums.get(name, zero) + value.detach() * n
            if batch_index % 20 == 0 or batch_index == len(loader) - 1:
                self._check_finite(loss, phase, epoch)
            fraction = (done_before + (batch_index + 1) / len(loader)) / max(1, self._epochs_total)
            self.progress.update(batch=batch_index + 1, batches=len(loader), fraction=fraction)
        stats = {name: float(value) / max(1, seen) for name, value in sums.items() if name != "correct"}
        stats["acc"] = float(sums["correct"]) / max(1, seen)
        return stats

    @staticmethod
    def _check_finite(loss: torch.Tensor, phase: Phase, epoch: int) -> None:
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss became {float(loss)} in {phase.name} epoch {epoch + 1}; "
                                     "lower the learning rate or the regularisation strength")

    def _fit_phase(self, model: nn.Module, phase: Phase, phase_index: int, start_epoch: int,
                   optimizer_state: dict[str, Any] | None, scheduler_state: dict[str, Any] | None) -> nn.Module:
        optimizer, scheduler = self._optimizer(model, phase)
        if optimizer_state is not None:
            optimizer.load_state_dict(optimizer_state)
            scheduler.load_state_dict(scheduler_state)
        for epoch in range(start_epoch, phase.epochs):
            self.progress.update(phase=phase.name, epoch=epoch + 1, epochs_total=phase.epochs)
            self.method.on_epoch_start(phase, epoch, model)
            lr = optimizer.param_groups[0]["lr"]
            started = time.time()
            train_stats = self.train_one_epoch(model, optimizer, phase, phase_index, epoch, scheduler)
            epoch_time = time.time() - started
            stats = {"train_loss": train_stats["loss"], "train_acc": train_stats["acc"], "train_ce": train_stats["ce"],
                     "lr": lr, "epoch_time_s": epoch_time}
            stats.update({k: v for k, v in train_stats.items() if k not in ("loss", "acc", "ce")})
            # the method settles the model first (e.g. ManiDP calibrates its thresholds), so the test
            # figures below are those of the model that is checkpointed and, after the last epoch, saved
            stats.update(self.method.on_epoch_end(phase, epoch, model, stats))
            test = self.evaluate(model, "test")
            stats.update({"test_loss": test.mean_loss, "test_acc": test.acc, **test.extra_means("test_")})
            self.run_dir.append_metrics({"phase": phase.name, "phase_index": phase_index, "epoch": epoch + 1, **stats})
            self.save_checkpoint(model, phase_index, epoch + 1, optimizer, scheduler)
            message = (f"{phase.name} epoch {epoch + 1}/{phase.epochs}: train loss {train_stats['loss']:.3f} "
                       f"acc {train_stats['acc']:.3f} | test acc {test.acc:.3f} | {epoch_time:.1f}s")
            self.log(message)
            fraction = (self._epochs_before[phase_index] + epoch + 1) / max(1, self._epochs_total)
            self.progress.update(metrics=stats, fraction=fraction)
            run_life.record_epoch(self.run_dir, phase=phase.name, epoch=epoch + 1, epochs_total=phase.epochs,
                                  fraction=fraction, metrics=stats, message=message)
        return model

    # checkpoints ------------------------------------------------------------------------------
    def save_checkpoint(self, model: nn.Module, phase_index: int, epochs_done: int,
                        optimizer: torch.optim.Optimizer, scheduler: Any) -> None:
        self.run_dir.save_torch(CHECKPOINT_FILE, {
            "model_spec": spec_of(model, self.config.model.name), "model_state": model.state_dict(),
            "optimizer_state": optimizer.state_dict(), "scheduler_state": scheduler.state_dict(),
            "phase_index": phase_index, "epochs_done": epochs_done, "method_state": self.method.state_dict(),
            "torch_rng": torch.get_rng_state(), "rng": rng_states(),
            "elapsed_s": self._elapsed_before + time.time() - self._started,
        })

    def log(self, message: str) -> None:
        self.run_dir.log(message)
        self.progress.log(message)

    # the whole run ----------------------------------------------------------------------------
    def run(self, resume: bool = False) -> dict[str, Any]:
        """Train through every phase, finalize, write summary.json and model.pt; returns the summary."""
        with cpu_threads(self.config.train.threads):
            return self._run(resume)

    def _run(self, resume: bool) -> dict[str, Any]:
        self._started = time.time()
        self.progress.update(state="running", started_at=self._started, epochs_total=self._epochs_total)
        run_life.record_started(self.run_dir, self._started)
        phase_index, start_epoch, opt_state, sched_state = 0, 0, None, None
        with MODEL_INIT_LOCK:  # seeding and initialisation draw from torch's process-wide RNG
            seed_everything(self.config.train.seed)
            if resume:
                model, phase_index, start_epoch, opt_state, sched_state = self._restore()
            else:
                model = self.method.prepare_model(self.build_fresh_model(), fresh=True)
        if not resume:
            self.log(f"start {self.config.method.name} on {self.config.data.dataset} with {self.config.model.name} "
                     f"(width {self.config.model.width}) on {self.device}")
        while phase_index < len(self._phases):
            phase = self._phases[phase_index]
            if start_epoch >= phase.epochs:  # phase complete: move on
                if phase_index + 1 < len(self._phases):
                    model = self.method.between_phases(phase, self._phases[phase_index + 1], model)
                    model = self._to_device(model)
                phase_index, start_epoch, opt_state, sched_state = phase_index + 1, 0, None, None
                continue
            model = self._fit_phase(model, phase, phase_index, start_epoch, opt_state, sched_state)
            start_epoch = phase.epochs
        return self._finish(model)

    def _restore(self) -> tuple[nn.Module, int, int, Any, Any]:
        try:
            state = self.run_dir.load_torch(CHECKPOINT_FILE, map_location=self.device)
        except RunStoreError as error:
            raise RunStoreError(f"cannot resume {self.run_dir.run_id}: {error}; restart it with `python -m "
                                f"prunelab resume {self.run_dir.run_id} --from-scratch`") from None
        self.method.load_state_dict(state["method_state"])
        model = self._to_device(build_model(state["model_spec"]))
        model = self._to_device(self.method.prepare_model(model, fresh=False))
        model.load_state_dict(state["model_state"])
        set_rng_states(state.get("rng") or {"torch": state["torch_rng"]})
        self._elapsed_before = float(state.get("elapsed_s", 0.0))
        phase_index, epochs_done = int(state["phase_index"]), int(state["epochs_done"])
        self.run_dir.truncate_metrics(lambda row: (row.get("phase_index", 0), row.get("epoch", 0))
                                      <= (phase_index, epochs_done))
        self.log(f"resumed from {self._phases[phase_index].name} epoch {epochs_done}")
        return model, phase_index, epochs_done, state["optimizer_state"], state["scheduler_state"]

    def _finish(self, model: nn.Module) -> dict[str, Any]:
        self.progress.update(phase="finalize")
        test = self.evaluate(model, "test")
        macs, params = self.model_cost(model)
        summary: dict[str, Any] = {
            "method": self.config.method.name, "dataset": self.config.data.dataset, "model": self.config.model.name,
            "width": self.config.model.width, "test_acc": test.acc, "test_loss": test.mean_loss,
            "params": params, "macs_per_image": macs, "mac_unit": "MACs", "device": str(self.device),
            "epochs": self._epochs_total,
        }
        lineage = self.method.lineage()
        # every epoch that shaped the final weights, a parent run's included (equal-budget comparisons)
        summary["epochs_total"] = self._epochs_total + int(lineage.get("parent_epochs_total", 0))
        summary["parent_run"] = lineage.get("parent_run")
        # a method with a form: which one, and the departures from the authors' code in effect
        method_config = self.config.method
        if hasattr(method_config, "form"):
            summary["form"] = method_config.form
            summary["departures"] = list(method_config.departures)
        summary.update(self.method.finalize(model, test))
        summary["wall_time_s"] = self._elapsed_before + time.time() - self._started  # every leg
        self.run_dir.save_torch(MODEL_FILE, with_record({  # the file names this run (prunelab.runs.model_file)
            "model_spec": spec_of(model, self.config.model.name), "model_state": model.state_dict(),
            "method": self.config.method.name, "method_state": self.method.state_dict(),
        }, self.run_dir.path, self.config))
        self.run_dir.write_summary(summary)
        self.log(f"done: test acc {summary['test_acc']:.4f}, {summary['macs_per_image'] / 1e6:.2f} M MACs/image, "
                 f"{summary['wall_time_s']:.1f}s")
        return summary


def run_training(config: RunConfig, run: RunDir, progress: Progress | None = None, resume: bool = False,
                 dataset: ImageDataset | None = None) -> dict[str, Any]:
    """Run one training job and keep status.json truthful whatever happens.

    Ends `done`, `cancelled` (at a batch boundary; checkpoints kept) or `failed` (message in status,
    traceback in traceback.txt). Exceptions other than cancellation are re-raised after recording. A run
    whose directory was deleted while it trained (its owner's heartbeat cancels it, or a write finds the
    folder gone) raises `RunDeleted` with one line, and nothing is written: the directory is not made again.
    Refused in viewer mode (`prunelab.runs.viewer.ViewerModeError`, one line) before anything is written.
    """
    viewer.refuse(f"cannot train run {run.run_id}")
    progress = progress or Progress(run.run_id)
    try:
        summary = Trainer(config, run, progress, dataset).run(resume=resume)
        run_life.record_done(run)
    except BaseException as error:
        deleted = run_life.stopped_by_deletion(run)
        if deleted is not None:  # nothing can be recorded, and nothing may bring the directory back
            progress.update(state="failed", error=str(deleted))
            raise deleted from None
        if isinstance(error, Cancelled):
            run_life.record_end(run, "cancelled", "cancelled by request")
            progress.update(state="cancelled")
            raise
        text = f"{type(error).__name__}: {error}"  # an OSError names errno, reason and file
        run_life.record_end(run, "failed", text, error=text, trace=traceback.format_exc(), line=f"failed: {text}")
        progress.update(state="failed", error=text)
        raise
    progress.update(state="done", fraction=1.0)
    return summary


def load_model(run_dir: str | RunDir, map_location: str = "cpu") -> nn.Module:
    """Rebuild a run's final model (pruned or gated) from `model.pt` alone, in eval mode; a model.pt that
    names another run or architecture is refused (`prunelab.runs.model_file.ModelFileMismatch`)."""
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    state = load_model_file(run, MODEL_FILE, map_location=map_location)
    model = build_model(state["model_spec"])
    model = get_method(state["method"]).restore_model(model, state["method_state"])
    model.load_state_dict(state["model_state"])
    return model.eval()

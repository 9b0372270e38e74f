"""Training overhead of the pruning methods, training throughput and shapes generation time.

Epoch-time ratio of a method = (its `Trainer.train_one_epoch` seconds) / (plain training's), same
model, same data, same batch size, measured interleaved in one process: every round trains one
epoch of each contender (plain, slimming's sparsity phase, ManiDP), in rotated order, and the ratio
is the median of the per-round ratios. The methods' per-epoch hooks outside `train_one_epoch`
(`on_epoch_start` / `on_epoch_end`: ManiDP recalibrates its thresholds on a 2,000-image sample every
epoch) are timed separately and reported as `*_epoch_time_ratio_with_hooks`.

    python benchmarks/bench_training.py --quick --out /tmp/training.json
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import common
import torch
from torch import nn

from prunelab.data import ImageDataset, generate_shapes
from prunelab.data.dataset import SHAPES_DEFAULT_TEST, SHAPES_DEFAULT_TRAIN
from prunelab.methods import Phase
from prunelab.training.engine import Trainer, seed_everything

METHODS: dict[str, dict[str, Any]] = {
    "plain": {"name": "baseline"},
    "slimming": {"name": "slimming", "sparsity_lambda": 1e-4},
    "manidp": {"name": "manidp"},
}
SIZES = {  # quick / full: training images, rounds, model, width
    False: {"train_size": 1024, "rounds": 6, "model": "vgg11", "width": 0.25, "batch_size": 128},
    True: {"train_size": 5000, "rounds": 8, "model": "vgg11", "width": 0.25, "batch_size": 128},
}


@dataclass
class Contender:
    """One method's trainer, model and optimizer, ready to train epoch after epoch."""

    trainer: Trainer
    model: nn.Module
    optimizer: torch.optim.Optimizer
    phase: Phase
    epoch: int = 0

    def hooks_start(self) -> None:
        self.trainer.method.on_epoch_start(self.phase, self.epoch % self.phase.epochs, self.model)

    def train(self) -> dict[str, float]:
        epoch = self.epoch % self.phase.epochs
        return self.trainer.train_one_epoch(self.model, self.optimizer, self.phase, 0, epoch)

    def hooks_end(self, stats: dict[str, float]) -> None:
        engine_stats = {"train_loss": stats["loss"], "train_acc": stats["acc"], "train_ce": stats["ce"]}
        self.trainer.method.on_epoch_end(self.phase, self.epoch % self.phase.epochs, self.model, engine_stats)
        self.epoch += 1


def make_contender(name: str, method: dict[str, Any], dataset: ImageDataset, sizes: dict[str, Any],
                   work: common.WorkDir, dataset_name: str, seed: int) -> Contender:
    """A trainer with `method`, the model built from the same seed as every other contender."""
    config = common.run_config(method, dataset_name, dataset.train_size, dataset.test_size, sizes["model"],
                               sizes["width"], epochs=10, batch_size=sizes["batch_size"],
                               name=f"epoch-{name}", seed=seed)
    trainer = Trainer(config, work.scratch(f"epoch-{name}"), dataset=dataset)
    seed_everything(seed)
    model = trainer.method.prepare_model(trainer.build_fresh_model(), fresh=True)
    phase = trainer.method.phases()[0]  # baseline "train", slimming "sparsity", ManiDP "train"
    optimizer, _ = trainer._optimizer(model, phase)  # the engine's own optimizer and parameter groups
    return Contender(trainer, model, optimizer, phase)


def epoch_times(dataset: ImageDataset, sizes: dict[str, Any], work: common.WorkDir, dataset_name: str,
                seed: int) -> dict[str, dict[str, list[float]]]:
    """Per contender: seconds of train_one_epoch ("train") and of its hooks ("hooks"), per round."""
    contenders = {name: make_contender(name, method, dataset, sizes, work, dataset_name, seed)
                  for name, method in METHODS.items()}
    times: dict[str, dict[str, list[float]]] = {name: {"train": [], "hooks": [], "wall": []}
                                                for name in contenders}
    names = list(contenders)
    rounds = sizes["rounds"]
    for r in range(rounds + 1):  # round 0 is the warm-up (ManiDP's first C, allocator, caches)
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            contender = contenders[name]
            start = common.now()
            contender.hooks_start()
            hooks = common.now() - start
            start, wall_start = common.now(), time.perf_counter()
            stats = contender.train()
            train, wall = common.now() - start, time.perf_counter() - wall_start
            start = common.now()
            contender.hooks_end(stats)
            hooks += common.now() - start
            if r > 0:
                times[name]["train"].append(train)
                times[name]["hooks"].append(hooks)
                times[name]["wall"].append(wall)
        common.log(f"epoch round {r}/{rounds}: " + ", ".join(
            f"{n} {times[n]['train'][-1]:.2f}s" for n in names if times[n]["train"]))
    return times


def training_overhead(dataset_name: str, full: bool, work: common.WorkDir, seed: int = 0) -> dict[str, Any]:
    """slimming/manidp epoch-time ratios (method / plain) and plain training images per second."""
    sizes = SIZES[full]
    dataset = common.get_dataset(dataset_name, sizes["train_size"], 200, seed)
    load_before = common.load_average()
    times = epoch_times(dataset, sizes, work, dataset_name, seed)
    plain = times["plain"]["train"]
    out: dict[str, Any] = {
        "config": {**sizes, "dataset": dataset_name, "train_images": dataset.train_size,
                   "methods": METHODS, "device": "cpu", "threads": torch.get_num_threads()},
        "load_average_before": load_before, "load_average_after": common.load_average(),
        "epoch_s": {name: common.summarize(t["train"]) for name, t in times.items()},
        "hooks_s": {name: common.summarize(t["hooks"]) for name, t in times.items()},
        "epoch_wall_s": {name: common.summarize(t["wall"]) for name, t in times.items()},
        "clock": common.clock_name(),
    }
    for name in ("slimming", "manidp"):
        ratio = common.pairwise_ratio(times[name]["train"], plain)
        method_total = [t + h for t, h in zip(times[name]["train"], times[name]["hooks"], strict=True)]
        plain_total = [t + h for t, h in zip(plain, times["plain"]["hooks"], strict=True)]
        with_hooks = common.pairwise_ratio(method_total, plain_total)
        out[f"{name}_epoch_time_ratio"] = ratio["median"]
        out[f"{name}_epoch_time_ratio_stats"] = ratio
        out[f"{name}_epoch_time_ratio_of_min"] = min(times[name]["train"]) / min(plain)
        out[f"{name}_epoch_time_ratio_with_hooks"] = with_hooks["median"]
        out[f"{name}_epoch_time_ratio_with_hooks_stats"] = with_hooks
    images_per_s = [dataset.train_size / t for t in plain]
    out["train_images_per_s"] = common.summarize(images_per_s)["median"]
    out["train_images_per_s_stats"] = common.summarize(images_per_s)
    wall_rate = [dataset.train_size / t for t in times["plain"]["wall"]]
    out["train_images_per_s_wall"] = common.summarize(wall_rate)
    return out


def shapes_generation(full: bool, seed: int = 0) -> dict[str, Any]:
    """Seconds to generate the default shapes set (10,000 train + 2,000 test images), no cache."""
    repeats = 3 if full else 1
    load_before = common.load_average()
    seconds, wall = [], []
    for _ in range(repeats):
        start, wall_start = common.now(), time.perf_counter()
        generate_shapes(SHAPES_DEFAULT_TRAIN, seed, "train")
        generate_shapes(SHAPES_DEFAULT_TEST, seed, "test")
        seconds.append(common.now() - start)
        wall.append(time.perf_counter() - wall_start)
    stats = common.summarize(seconds)
    return {"shapes_generation_s": stats["median"], "shapes_generation_s_stats": stats,
            "shapes_generation_wall_s": common.summarize(wall)["median"], "clock": common.clock_name(),
            "shapes_generation_images": SHAPES_DEFAULT_TRAIN + SHAPES_DEFAULT_TEST,
            "shapes_generation_load_average": [load_before, common.load_average()]}


def overhead_and_generation(dataset: str, full: bool, work: common.WorkDir, seed: int) -> dict:
    """Epoch-time ratios plus the shapes generation time, as one section."""
    return {**training_overhead(dataset, full, work, seed), **shapes_generation(full)}


def main() -> None:
    common.run_section(__doc__.split("\n")[0], overhead_and_generation)


if __name__ == "__main__":
    main()

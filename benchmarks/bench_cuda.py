"""CUDA training throughput: PruneLab's Trainer against a plain PyTorch loop, same model, same run.

Contenders, each training the same architecture from the same seed on the same images, one epoch
per round, interleaved (rotated order) after a warm-up round:

- `prunelab_amp_cl`: `prunelab.training.engine.Trainer.train_one_epoch` of a plain (baseline) run with
  bf16 autocast and channels_last; uint8 images on the GPU, crops and flips as batch tensor ops;
- `prunelab_fp32`: the same Trainer with `amp=False, channels_last=False` (separates the loader's
  gain from the mixed-precision gain);
- `plain_pytorch`: the textbook loop: float32, `DataLoader` over a `Dataset` that normalises, pads,
  crops and flips each sample in worker processes (torchvision-free, the same augmentation),
  pinned memory, `.cuda(non_blocking=True)`, CE loss, SGD with the same hyper-parameters.

Images/s = training images / epoch seconds (CUDA synchronised). Without a CUDA device the script
prints a skip message (and writes {"skipped": ...} with --out); `--allow-cpu` runs the same code
on the CPU at a tiny size only to check it works.

    python benchmarks/bench_cuda.py --out /tmp/cuda.json            # about 2-4 minutes on an H100
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import common
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from prunelab.data import ImageDataset
from prunelab.models import build_model, model_spec
from prunelab.training.engine import Trainer, seed_everything

PAD = 4  # reflect padding of the random crop, as prunelab.data.BatchLoader


class AugmentedImages(Dataset):
    """Per-sample transforms on uint8 [N, 3, H, W] images: normalise, reflect-pad, random crop, flip."""

    def __init__(self, data: ImageDataset) -> None:
        self.images, self.labels = data.train_images, data.train_labels
        self.mean = torch.tensor(data.mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(data.std, dtype=torch.float32).view(3, 1, 1)
        self.hflip = data.hflip

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = (self.images[index].float() / 255.0 - self.mean) / self.std  # (3, H, W)
        _, h, w = x.shape
        x = F.pad(x.unsqueeze(0), (PAD, PAD, PAD, PAD), mode="reflect").squeeze(0)  # (3, H+8, W+8)
        top, left = (int(v) for v in torch.randint(0, 2 * PAD + 1, (2,)))
        x = x[:, top:top + h, left:left + w]
        if self.hflip and bool(torch.rand(()) < 0.5):
            x = x.flip(-1)
        return x.contiguous(), self.labels[index]


class PlainLoop:
    """The standard float32 PyTorch training loop (DataLoader workers, pinned memory)."""

    def __init__(self, data: ImageDataset, model_name: str, width: float, batch_size: int, lr: float,
                 workers: int, device: torch.device, seed: int) -> None:
        seed_everything(seed)
        self.device = device
        self.model = build_model(model_spec(model_name, data.num_classes, width)).to(device)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
        self.loader = DataLoader(AugmentedImages(data), batch_size=batch_size, shuffle=True,
                                 num_workers=workers, pin_memory=device.type == "cuda",
                                 persistent_workers=workers > 0)

    def epoch(self) -> None:
        self.model.train()
        for x, y in self.loader:
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            loss = F.cross_entropy(self.model(x), y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()


def prunelab_epoch(data: ImageDataset, dataset: str, model_name: str, width: float, batch_size: int,
                   lr: float, amp: bool, work: common.WorkDir, seed: int, device: str) -> Callable[[], Any]:
    """One epoch of the Trainer of a plain run (no method hooks) as a callable."""
    config = common.run_config({"name": "baseline"}, dataset, data.train_size, data.test_size, model_name,
                               width, epochs=100, batch_size=batch_size, name="cuda", device=device,
                               seed=seed, lr=lr, amp=amp, channels_last=amp)
    trainer = Trainer(config, work.scratch(f"cuda-{model_name}-{amp}"), dataset=data)
    seed_everything(seed)
    model: nn.Module = trainer.build_fresh_model()
    phase = trainer.method.phases()[0]
    optimizer, _ = trainer._optimizer(model, phase)  # the engine's own optimizer
    state = {"epoch": 0}

    def epoch() -> None:
        trainer.train_one_epoch(model, optimizer, phase, 0, state["epoch"] % phase.epochs)
        state["epoch"] += 1

    return epoch


def compare(data: ImageDataset, args: argparse.Namespace, model_name: str, work: common.WorkDir,
            device: torch.device) -> dict[str, Any]:
    kind = device.type
    common_args = (data, args.dataset, model_name, args.width, args.batch_size, args.lr)
    contenders = {
        "prunelab_amp_cl": prunelab_epoch(*common_args, True, work, args.seed, kind),
        "prunelab_fp32": prunelab_epoch(*common_args, False, work, args.seed, kind),
        "plain_pytorch": PlainLoop(data, model_name, args.width, args.batch_size, args.lr, args.workers,
                                   device, args.seed).epoch,
    }
    times = common.interleaved(contenders, rounds=args.rounds, warmup=1, device=device)
    rate = {name: [data.train_size / t for t in values] for name, values in times.items()}
    out: dict[str, Any] = {"images_per_s": {name: common.summarize(v) for name, v in rate.items()},
                           "epoch_s": {name: common.summarize(v) for name, v in times.items()}}
    for name in ("prunelab_amp_cl", "prunelab_fp32"):
        out[f"speedup_{name}_vs_plain"] = common.pairwise_ratio(times["plain_pytorch"], times[name])
    common.log(f"{model_name}: " + ", ".join(f"{name} {common.fmt(stats, 0)} img/s"
                                             for name, stats in out["images_per_s"].items()))
    return out


def main() -> None:
    parser = common.add_common_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--models", default="resnet20,vgg11", help="comma-separated model names")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--train-size", type=int, default=None, help="default: the dataset's training set")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--rounds", type=int, default=3, help="timed epochs per contender (after 1 warm-up)")
    parser.add_argument("--workers", type=int, default=8, help="DataLoader workers of the plain loop")
    parser.add_argument("--allow-cpu", action="store_true",
                        help="run on the CPU at a tiny size (a code check only)")
    args = parser.parse_args()
    if not torch.cuda.is_available() and not args.allow_cpu:
        message = "bench_cuda: SKIPPED - no CUDA device on this machine (run it on a GPU machine)"
        print(message)
        if args.out:
            common.write_json(args.out, {"skipped": message, "provenance": common.provenance()})
        sys.exit(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu":
        common.apply_threads(args.threads)
        args.train_size, args.width = args.train_size or 256, min(args.width, 0.25)
        args.workers = min(args.workers, 2)
        print("bench_cuda: --allow-cpu: CPU code check at a tiny size; the figures mean nothing")
    data = common.get_dataset(args.dataset, args.train_size, None, args.seed)
    started = time.perf_counter()
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    config.update({"device": str(device), "train_images": data.train_size,
                   "cudnn_benchmark": torch.backends.cudnn.benchmark})
    result: dict[str, Any] = {"config": config}
    with common.WorkDir(args.work) as work:
        for model_name in args.models.split(","):
            result[model_name] = compare(data, args, model_name.strip(), work, device)
    result["seconds"] = time.perf_counter() - started
    result["provenance"] = common.provenance()
    if device.type == "cuda":
        machine = result["provenance"]["machine"]
        machine["cuda_memory_gib"] = torch.cuda.get_device_properties(0).total_memory / 2**30
        machine["max_memory_allocated_gib"] = torch.cuda.max_memory_allocated() / 2**30
    if args.out:
        common.write_json(args.out, result)


if __name__ == "__main__":
    main()

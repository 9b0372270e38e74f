"""Will a run fit in memory? A rough estimate, checked before any image is loaded.

The estimate counts what dominates a CPU run: the uint8 images (3x32x32 = 3 KiB each) held while
a dataset is generated or decoded (twice: the chunks or the decode buffer, then the tensors) plus
the padded copy the batch loader crops from; the model's float32 weights, gradients and optimizer
state; and the activations autograd keeps for one training batch, measured by one forward pass of
the model on the `meta` device (no memory used). It is compared with the memory the machine has
available (`MemAvailable` in /proc/meminfo, capped by a cgroup limit). `load_dataset` checks the
dataset part for every caller; the CLI, the app and the suites check the whole run before they
create a run directory.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from prunelab.config import DataConfig, RunConfig

IMAGE_BYTES = 3 * 32 * 32  # one uint8 image
LOAD_COPIES = 2.0  # generated chunks / decode buffer plus the dataset tensors, alive together while loading
LOADER_COPY = (36 / 32) ** 2  # the reflect-padded training images the random crop reads from
TRAIN_STATE_COPIES = 4  # weights, gradients, momentum and one more copy (checkpoint / dense model)
ACTIVATION_COPIES = 3  # saved activations of a training batch, their gradients, and headroom
USABLE_FRACTION = 0.9  # never plan on the last 10% of what is available
GiB = 2**30
# (train, test) images a loader holds in full before subsetting
FULL_SIZES = {"cifar10": (50_000, 10_000), "cifar100": (50_000, 10_000), "svhn": (73_257, 26_032),
              "mnist": (60_000, 10_000), "fashion-mnist": (60_000, 10_000)}
NUM_CLASSES = {"cifar100": 100}
SHAPES_SIZES = (10_000, 2_000)


class ResourceError(ValueError):
    """The run needs more memory than the machine has available; the message says how much of each."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a run needs at its peak, by part."""

    dataset: int
    model: int
    activations: int
    images: tuple[int, int]  # (train, test) images loaded

    @property
    def total(self) -> int:
        return self.dataset + self.model + self.activations


def dataset_images(cfg: DataConfig) -> tuple[int, int]:
    """(train, test) images held while loading `cfg`'s dataset (torchvision and folder sets load in full)."""
    if cfg.dataset == "shapes":
        return cfg.train_size or SHAPES_SIZES[0], cfg.test_size or SHAPES_SIZES[1]
    if cfg.dataset.startswith("folder:"):
        from prunelab.data.folder import scan_folder

        scan = scan_folder(cfg.dataset[len("folder:"):])
        return len(scan["train"]), len(scan["test"])
    return FULL_SIZES.get(cfg.dataset, (cfg.train_size or 0, cfg.test_size or 0))


def dataset_bytes(cfg: DataConfig, images: tuple[int, int] | None = None) -> int:
    """Peak bytes of `cfg`'s images: while loading, or while training (the images used plus the
    loader's padded copy of the training images), whichever is more."""
    loaded_train, loaded_test = images or dataset_images(cfg)
    used_train = min(loaded_train, cfg.train_size or loaded_train)
    used_test = min(loaded_test, cfg.test_size or loaded_test)
    loading = LOAD_COPIES * (loaded_train + loaded_test)
    training = used_train + used_test + LOADER_COPY * used_train
    return int(max(loading, training) * IMAGE_BYTES)


def model_bytes(config: RunConfig) -> tuple[int, int]:
    """(training state, activations of one training batch) in bytes, from a `meta`-device model."""
    import torch

    from prunelab.models import build_model, model_spec

    classes = NUM_CLASSES.get(config.data.dataset, 10)
    spec = model_spec(config.model.name, classes, config.model.width, config.model.cifar_stem)
    outputs: list[int] = []

    def measure(device: str) -> torch.nn.Module:
        outputs.clear()
        with torch.device(device):
            model = build_model(spec)
            hooks = [m.register_forward_hook(lambda _m, _i, out: outputs.append(out.numel()))
                     for m in model.modules() if not list(m.children())]
            with torch.no_grad():
                model.eval()(torch.empty(1, 3, 32, 32))
            for hook in hooks:
                hook.remove()
        return model

    try:
        model = measure("meta")  # no memory for the weights
    except (NotImplementedError, RuntimeError):  # an initialiser that reads values (some torchvision models)
        model = measure("cpu")
    params = sum(p.numel() for p in model.parameters())
    per_image = sum(outputs) * 4  # float32 activations of one image
    batch = max(config.train.batch_size, config.train.eval_batch_size // ACTIVATION_COPIES)
    return TRAIN_STATE_COPIES * params * 4, ACTIVATION_COPIES * batch * per_image


def estimate_memory(config: RunConfig) -> MemoryEstimate:
    """What `config` needs at its peak (dataset, model state and activations), before loading anything."""
    images = dataset_images(config.data)
    state, activations = model_bytes(config)
    return MemoryEstimate(dataset_bytes(config.data, images), state, activations, images)


def available_memory() -> int | None:
    """Bytes this process may still use: MemAvailable, capped by a cgroup memory limit (None if unknown)."""
    found = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    if not found:  # no /proc/meminfo: free pages (less than available, so on the safe side)
        with contextlib.suppress(OSError, ValueError, AttributeError):
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    for limit, usage in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                         ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                          "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            cap, used = int(Path(limit).read_text().split()[0]), int(Path(usage).read_text().split()[0])
        except (OSError, ValueError, IndexError):  # "max" (no limit), or no such cgroup
            continue
        if cap < 2**60:
            found.append(max(0, cap - used))
    return min(found) if found else None


def _gib(value: float) -> str:
    return f"{value / GiB:.1f} GiB"


def _refuse(needed: int, what: str, advice: str) -> None:
    available = available_memory()
    if available is None or needed <= USABLE_FRACTION * available:
        return
    raise ResourceError(f"this run needs about {_gib(needed)} of memory ({what}) but only {_gib(available)} "
                        f"is available; {advice}")


def check_dataset_fits(cfg: DataConfig, images: tuple[int, int] | None = None) -> None:
    """Raise ResourceError when loading `cfg`'s dataset alone would not fit in the available memory."""
    images = images or dataset_images(cfg)
    _refuse(dataset_bytes(cfg, images), f"{images[0]:,} train + {images[1]:,} test images of 3x32x32 uint8, "
            f"held twice while loading", "use fewer images (train_size / --train-size)")


def check_run_fits(config: RunConfig) -> MemoryEstimate:
    """Raise ResourceError when `config` would not fit in the available memory; returns the estimate."""
    estimate = estimate_memory(config)
    train, test = estimate.images
    _refuse(estimate.total,
            f"dataset {_gib(estimate.dataset)} for {train:,} train + {test:,} test images; model state "
            f"{_gib(estimate.model)} and activations {_gib(estimate.activations)} for {config.model.name} at "
            f"width {config.model.width:g}, batch {config.train.batch_size}",
            "use fewer images (--train-size), a smaller --batch-size or --width")
    return estimate

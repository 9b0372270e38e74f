"""ManiDP's real gain: per-image MACs ratio and the sparse executor's batch-1 CPU speedup.

One real ManiDP run is trained (backbone initialised from a baseline run of the same model, as the
paper starts from a pretrained network); its per-image table holds every test image (10,000 in the
default configuration, which the app benchmark reuses). Then, on real test images one at a time,
the dense backbone (gates removed), the masked gated model and `SparseExecutor` are timed side by
side, interleaved round by round. Ratios are dense / pruned, so bigger is better:

    manidp_flops_ratio          = MACs(dense backbone) / mean_i MACs(sub-network of image i)
    manidp_executor_speedup_b1  = latency(dense backbone, batch 1) / latency(executor, batch 1)

    python benchmarks/bench_manidp.py --quick --out /tmp/manidp.json
"""

from __future__ import annotations

import copy
from typing import Any

import bench_slimming
import common
import numpy as np
import pandas as pd
import torch
from torch import nn

from prunelab.data import BatchLoader
from prunelab.methods.manidp.executor import SparseExecutor, max_abs_diff
from prunelab.methods.manidp.gates import (
    get_thresholds,
    install_gates,
    named_gates,
    records,
    set_recording,
    set_thresholds,
)
from prunelab.methods.manidp.macs import active_counts, build_plan, slice_for_image
from prunelab.methods.manidp.method import threshold_at_rank
from prunelab.models import build_model, model_spec, spec_of
from prunelab.runs.store import RunDir
from prunelab.training.engine import load_model

RUN_ID = "bench-manidp"
TEST_SIZE = 10_000  # per-image records of the run (the app benchmark renders a run of this size)
SIZES = {  # quick / full
    False: {"epochs": 3, "rounds": 8, "images": 32, "sweep_widths": (0.25, 0.5, 1.0)},
    True: {"epochs": 15, "rounds": 15, "images": 64, "sweep_widths": (0.25, 0.5, 1.0, 2.0)},
}
MANIDP = {"name": "manidp", "target_density": 0.5}


def ensure_manidp_run(work: common.WorkDir, dataset: str, full: bool, seed: int = 0) -> RunDir:
    """A ManiDP run whose backbone starts from the baseline run (same model, data and schedule)."""
    base_sizes = bench_slimming.SIZES[full]
    test_size = TEST_SIZE if dataset == "shapes" else None  # folder/torchvision: the whole test split
    baseline = bench_slimming.ensure_baseline_run(work, dataset, full, seed, test_size=test_size)
    config = common.run_config({**MANIDP, "init_from": str(baseline.path)}, dataset, base_sizes["train_size"],
                               test_size, base_sizes["model"], base_sizes["width"], SIZES[full]["epochs"],
                               bench_slimming.BATCH_SIZE, RUN_ID, seed=seed, lr=0.02)
    return common.ensure_run(work, RUN_ID, config)


def dense_backbone(gated: nn.Module) -> nn.Module:
    """The same network without gates (every channel computed), in eval mode."""
    dense = build_model(spec_of(gated)).eval()
    dense.load_state_dict({k: v for k, v in gated.state_dict().items() if ".gate" not in k})
    return dense


def test_images(run: RunDir, count: int) -> torch.Tensor:
    """The first `count` test images of the run's dataset, normalised, [count, C, H, W] on the CPU."""
    config = run.read_config()
    data = common.get_dataset(config.data.dataset, config.data.train_size, config.data.test_size,
                              config.data.data_seed)
    loader = BatchLoader(data.test_images[:count], data.test_labels[:count], count, mean=data.mean,
                         std=data.std, shuffle=False, augment=False)
    return next(iter(loader))[0]


def executor_speedup(run: RunDir, images: torch.Tensor, rounds: int) -> dict[str, Any]:
    """ms per image (batch 1) of dense backbone, masked model and executor, interleaved per round."""
    gated = load_model(run.path)
    dense = dense_backbone(gated)
    executor = SparseExecutor(gated)
    contenders = {"dense": dense, "masked": gated, "executor": executor}
    singles = [images[i:i + 1] for i in range(images.shape[0])]

    def over_images(forward: Any) -> None:
        for image in singles:
            forward(image)

    with torch.inference_mode():
        over_images(executor)  # warm-up of every contender
        times = common.interleaved({name: (lambda f=f: over_images(f)) for name, f in contenders.items()},
                                   rounds=rounds, warmup=1)
    per_image_ms = {name: [1000.0 * t / len(singles) for t in values] for name, values in times.items()}
    return {"images": len(singles), "ms_per_image": {k: common.summarize(v) for k, v in per_image_ms.items()},
            "speedup_executor": common.pairwise_ratio(per_image_ms["dense"], per_image_ms["executor"]),
            "speedup_masked": common.pairwise_ratio(per_image_ms["dense"], per_image_ms["masked"]),
            "max_abs_diff_executor_vs_masked": max_abs_diff(gated, executor, images[:8])}


def per_image_ms(forward: Any, images: torch.Tensor) -> float:
    """Milliseconds per image of `forward` over `images`, one image at a time."""
    start = common.now()
    with torch.inference_mode():
        for i in range(images.shape[0]):
            forward(images[i:i + 1])
    return 1000.0 * (common.now() - start) / images.shape[0]


def interleaved_ms(contenders: dict[str, Any], images: torch.Tensor, rounds: int) -> dict[str, float]:
    """Median ms per image of each contender, interleaved round by round (after one warm-up round)."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for r in range(rounds + 1):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            ms = per_image_ms(contenders[name], images)
            if r > 0:
                times[name].append(ms)
    return {name: common.summarize(values)["median"] for name, values in times.items()}


def executor_overhead(run: RunDir, images: torch.Tensor, rounds: int) -> dict[str, Any]:
    """Why the executor's batch-1 speedup falls short of the MACs ratio.

    - `executor_min_ms`: the executor with every threshold at +inf (the keep-one guard leaves ONE
      channel per gated layer): its per-image cost that does not shrink with channels;
    - `dense_min_ms`: the same for the dense backbone (every prunable width 1);
    - `static_subnet_speedup`: dense / each image's own sub-network built as a static eager network
      (`dynamic_macs.slice_for_image`), interleaved on that image (median over 8 images): what a
      per-image static network would gain, next to the executor on the same images.
    """
    gated = load_model(run.path)
    dense = dense_backbone(gated)
    closed = copy.deepcopy(gated)
    set_thresholds(closed, [float("inf")] * len(get_thresholds(closed)))
    contenders = {"dense": dense, "executor": SparseExecutor(gated),
                  "executor_min": SparseExecutor(closed), "dense_min": bench_slimming.minimal_model(dense)}
    out = interleaved_ms(contenders, images, rounds)
    per_image: dict[str, list[float]] = {"dense": [], "executor": [], "static": []}
    executor = contenders["executor"]
    for i in range(min(8, images.shape[0])):
        image = images[i:i + 1]
        subnet, _ = slice_for_image(gated, image)
        subnet.eval()
        with torch.inference_mode():
            forwards = {"dense": dense, "executor": executor, "static": subnet}
            times = common.interleaved({name: (lambda f=f, x=image: f(x)) for name, f in forwards.items()},
                                       rounds=10 * rounds, warmup=3)
        for name, values in times.items():
            per_image[name].append(1000.0 * common.summarize(values)["median"])
    dense_ms = np.array(per_image["dense"])
    return {"dense_ms": out["dense"], "executor_ms": out["executor"], "executor_min_ms": out["executor_min"],
            "dense_min_ms": out["dense_min"],
            "same_images_ms": {name: float(np.median(v)) for name, v in per_image.items()},
            "static_subnet_speedup": float(np.median(dense_ms / np.array(per_image["static"]))),
            "executor_speedup_same_images": float(np.median(dense_ms / np.array(per_image["executor"]))),
            "images_for_static": len(per_image["static"])}


def executor_width_sweep(images: torch.Tensor, model: str, widths: tuple[float, ...], rounds: int,
                         num_classes: int, density: float = 0.5) -> list[dict[str, Any]]:
    """Executor speedup against its MACs ratio as the network widens (random weights, fresh gates).

    The gates' second Linear gets PyTorch's default random init (the trained gates' saliencies vary
    between channels; freshly installed ones may all start equal). Thresholds are set layer by layer
    at remain rate `density` from the mean saliencies over
    `images` (ManiDP's rule); the figures show how the fixed per-layer cost of the executor weighs
    less as each convolution gets more expensive. Not a trained model: a cost study only.
    """
    rows = []
    for width in widths:
        torch.manual_seed(0)
        gated = build_model(model_spec(model, num_classes, width)).eval()
        dense = dense_backbone(gated)
        install_gates(gated)
        for _, gate in named_gates(gated):  # random (not "all open") gates, so saliencies differ
            gate.fc2.reset_parameters()
        gated.eval()
        thresholds = [0.0] * len(get_thresholds(gated))
        with torch.no_grad():
            for layer in range(len(thresholds)):
                gated(images)
                saliency = records(gated)[layer].saliency.float().mean(dim=0)
                thresholds[layer] = threshold_at_rank(saliency, density)
                set_thresholds(gated, thresholds)
            gated(images)
            counts = active_counts([r.mask for r in records(gated)])
        plan = build_plan(gated, tuple(images.shape[1:]))
        flops_ratio = plan.dense_macs() / float(plan.macs(counts).double().mean())
        set_recording(gated, False)
        ms = interleaved_ms({"dense": dense, "executor": SparseExecutor(gated)}, images, rounds)
        rows.append({"width": width, "macs_dense": plan.dense_macs(), "flops_ratio": flops_ratio,
                     "dense_ms": ms["dense"], "executor_ms": ms["executor"],
                     "speedup": ms["dense"] / ms["executor"],
                     "speedup_over_flops_ratio": ms["dense"] / ms["executor"] / flops_ratio})
        common.log(f"executor sweep width {width}: MACs ratio {flops_ratio:.2f}, speedup "
                   f"{ms['dense'] / ms['executor']:.2f}")
    return rows


def manidp_speedups(dataset: str, full: bool, work: common.WorkDir, seed: int = 0) -> dict[str, Any]:
    sizes = SIZES[full]
    run = ensure_manidp_run(work, dataset, full, seed)
    summary = run.read_summary()
    per_image = pd.read_parquet(run.file("per_image.parquet"))
    macs_dense = float(summary["macs_dense"])
    mean_macs = float(per_image["macs"].mean())
    gate_macs = float(summary["gate_macs_per_image"])
    load_before = common.load_average()
    latency = executor_speedup(run, test_images(run, sizes["images"]), sizes["rounds"])
    common.log(f"manidp b1: dense {common.fmt(latency['ms_per_image']['dense'])} ms, executor "
               f"{common.fmt(latency['ms_per_image']['executor'])} ms, speedup "
               f"{common.fmt(latency['speedup_executor'])}")
    density = [c for c in per_image.columns if c.startswith("density_")]
    images = test_images(run, sizes["images"])
    diagnostics = {"overhead": executor_overhead(run, images, sizes["rounds"]),
                   "width_sweep": executor_width_sweep(images[:16], run.read_config().model.name,
                                                       sizes["sweep_widths"], max(2, sizes["rounds"] // 2),
                                                       int(per_image["label"].max()) + 1)}
    return {
        "config": {**sizes, **MANIDP, "dataset": dataset, "model": bench_slimming.SIZES[full]["model"],
                   "width": bench_slimming.SIZES[full]["width"], "threads": torch.get_num_threads(),
                   "clock": common.clock_name()},
        "load_average_before": load_before, "load_average_after": common.load_average(),
        "manidp_flops_ratio": macs_dense / mean_macs,
        "manidp_flops_ratio_with_gates": macs_dense / (mean_macs + gate_macs),
        "manidp_macs_dense": macs_dense, "manidp_macs_mean": mean_macs, "manidp_gate_macs": gate_macs,
        "manidp_macs_per_image_range": [float(per_image["macs"].min()), float(per_image["macs"].max())],
        "manidp_per_image_records": len(per_image),
        "manidp_test_acc": summary["test_acc"],
        "manidp_mean_layer_density": {c[len("density_"):]: float(per_image[c].mean()) for c in density},
        "manidp_executor_speedup_b1": latency["speedup_executor"]["median"],
        "manidp_masked_speedup_b1": latency["speedup_masked"]["median"],
        "manidp_latency_b1": latency,
        "manidp_run_summary_latency_ms": {k: v for k, v in summary.items() if k.startswith("latency_ms_")},
        "manidp_spearman_macs_loss": summary.get("spearman_macs_loss"),
        "manidp_macs_quantiles": [float(q) for q in np.quantile(per_image["macs"], [0.1, 0.5, 0.9])],
        "manidp_executor_diagnostics": diagnostics,
    }


def main() -> None:
    common.run_section(__doc__.split("\n")[0], manidp_speedups)


if __name__ == "__main__":
    main()

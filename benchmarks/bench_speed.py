"""From MACs to milliseconds: measured speedups of pruned networks at realistic widths, next to their MACs ratios.

For ResNet-56 and VGG-16 at width 1.0 on 32x32 inputs (random weights: this times shapes, not accuracy):
- static: Network Slimming's own pruning code at prune ratio 0.5 (one global threshold over random |gamma|,
  `prunelab.speed.workloads.slimmed_pair`); the dense and the compact network in every execution form of
  `prunelab.speed.forms` (eager, BN-folded, channels-last, frozen TorchScript graph, onnxruntime);
- dynamic: ManiDP's gates on the same dense network, calibrated to target density 0.5 on real images
  (`calibrated_gated_network`); `SparseExecutor` at batch 1, `BatchedSparseExecutor` at batch > 1, against
  the dense network in each form.
At batch 1, 8 and 64 and 1 and 2 CPU threads, every contender of one (model, threads, batch) cell is timed
side by side in interleaved rounds (`common.interleaved`); a speedup is the median of the per-round ratios
dense / pruned. One thread reads thread CPU time, two threads wall time.

Headline figures (1 thread; the worse of the two models, per-model values in `headline_by_model`):
    static_speedup_over_macs_b1/b64  speedup / MACs ratio of the compact network in its fastest form, the
                                     dense network in the same form
    dynamic_speedup_over_macs_b1     SparseExecutor speedup over the BN-folded dense network / mean MACs ratio
    dynamic_speedup_b64              BN-folded dense network (channels-last, the executor's layout) /
                                     BatchedSparseExecutor at batch 64

The split (`split`) says where the gap comes from: each convolution timed alone (dense and compact, ms and
GMAC/s per layer) against the whole network, the fixed cost of the same architecture one channel wide, the
executors' time by kind of op (torch.profiler), and the width each gated layer ran at in a batch against
what each image needs.

    python benchmarks/bench_speed.py --quick --out /tmp/speed.json
    python benchmarks/run_all.py --quick --only speed --out F.json
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import bench_slimming
import common
import torch
import torch.nn.functional as F
from torch import nn

from prunelab.data import normalize
from prunelab.methods.manidp.executor import SparseExecutor
from prunelab.methods.manidp.gates import records, set_recording
from prunelab.methods.manidp.macs import active_counts, build_plan
from prunelab.methods.slimming.pruning import verify_compact
from prunelab.speed.batched_executor import BatchedSparseExecutor
from prunelab.speed.forms import FORMS, available_forms, build_form
from prunelab.speed.workloads import calibrated_gated_network, random_network, slimmed_pair
from prunelab.training.flops import count_macs

QUICK_FORMS = ("eager", "bn_folded", "bn_folded_cl", "frozen_cl", "onnxruntime", "onnxruntime_aligned")
TWO_THREAD_FORMS = ("bn_folded_cl", "onnxruntime_aligned")  # the batched executor's reference, the served form
SIZES: dict[Any, dict[str, Any]] = {  # quick / full
    False: {"models": ("resnet56", "vgg16"), "width": 1.0, "prune_ratio": 0.5, "density": 0.5,
            "batches": (1, 8, 64), "threads": (1, 2), "forms": {1: QUICK_FORMS, 2: TWO_THREAD_FORMS},
            "rounds": {1: {1: 5, 8: 5, 64: 5}, 2: {1: 2, 8: 2, 64: 2}},
            "calls": {1: {1: 2, 8: 1, 64: 1}, 2: {1: 1, 8: 1, 64: 1}},
            "calibration_images": 256, "split": True, "split_rounds": 3},
    True: {"models": ("resnet56", "vgg16"), "width": 1.0, "prune_ratio": 0.5, "density": 0.5,
           "batches": (1, 8, 64), "threads": (1, 2), "forms": {1: FORMS, 2: FORMS},
           "rounds": {1: {1: 11, 8: 9, 64: 7}, 2: {1: 7, 8: 5, 64: 5}},
           "calls": {1: {1: 8, 8: 2, 64: 1}, 2: {1: 4, 8: 1, 64: 1}},
           "calibration_images": 1000, "split": True, "split_rounds": 7},
}
HEADLINE_BATCHES = (1, 64)
SERVED_FORMS = tuple(f for f in FORMS if f != "eager")  # the compact network is served BN-folded
DYNAMIC_DENSE_FORM = {"sparse_executor": "bn_folded", "batched_executor": "bn_folded_cl"}  # same layout
ROW_FIELDS = ("kind", "model", "width", "batch", "threads", "form", "pruned_form", "macs_ratio", "speedup",
              "speedup_q25", "speedup_q75", "dense_ms", "pruned_ms", "speedup_over_macs", "clock")
OP_KINDS = {  # torch.profiler op (aten::) -> kind of work, for the split; anything else: copies, views, allocation
    "convolutions": ("_slow_conv2d_forward", "mkldnn_convolution", "thnn_conv2d", "_convolution", "convolution",
                     "conv2d", "_nnpack_available"),
    "gate MLPs and thresholds": ("addmm", "linear", "t", "mm", "matmul", "ge", "gt", "__and__", "bitwise_and",
                                 "argmax", "scatter"),
    "gathers (weights, channel sets)": ("index_select", "index_add_", "nonzero", "any", "index_put_",
                                        "_index_put_impl_", "bitwise_not", "item", "_local_scalar_dense"),
    "elementwise (ReLU, masks, residual adds)": ("relu", "relu_", "clamp_min", "clamp_min_", "mul", "mul_", "add",
                                                 "add_", "addcmul_", "fill_", "batch_norm", "native_batch_norm",
                                                 "_native_batch_norm_legit_no_training"),
    "pooling and means": ("mean", "sum", "div_", "adaptive_avg_pool2d", "max_pool2d", "max_pool2d_with_indices"),
}
OTHER_OPS = "copies, views, allocation"


# --- data ----------------------------------------------------------------------------------------
def real_images(dataset: str, calibration: int, test: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(calibration images from the training split, test images), normalised float [N, C, H, W]."""
    data = common.get_dataset(dataset, calibration, max(test, 64), seed)
    calib = normalize(data.train_images[:calibration], data.mean, data.std)
    return calib, normalize(data.test_images[:test], data.mean, data.std)


# --- timing ----------------------------------------------------------------------------------------
def _summary(values: list[float]) -> dict[str, Any]:
    return common.summarize(values)


def time_cell(contenders: dict[str, Callable[[], Any]], rounds: int) -> dict[str, list[float]]:
    """Milliseconds per call of each contender, interleaved round by round (after one warm-up round)."""
    with torch.inference_mode():
        seconds = common.interleaved(contenders, rounds=rounds, warmup=1)
    return {name: [1000.0 * s for s in values] for name, values in seconds.items()}


def _row(kind: str, model: str, width: float, batch: int, threads: int, form: str, pruned_form: str,
         macs_ratio: float, dense: list[float], pruned: list[float], **extra: Any) -> dict[str, Any]:
    ratio = common.pairwise_ratio(dense, pruned)
    return {"kind": kind, "model": model, "width": width, "batch": batch, "threads": threads, "form": form,
            "pruned_form": pruned_form, "macs_ratio": macs_ratio, "speedup": ratio["median"],
            "speedup_q25": ratio["q25"], "speedup_q75": ratio["q75"],
            "dense_ms": statistics.median(dense), "pruned_ms": statistics.median(pruned),
            "speedup_over_macs": ratio["median"] / macs_ratio, "clock": common.clock_name(), **extra}


# --- the networks of one model ----------------------------------------------------------------------
class Workload:
    """Dense, compact and gated networks of one model, verified, with their MACs."""

    def __init__(self, name: str, sizes: dict[str, Any], calib: torch.Tensor, test: torch.Tensor,
                 num_classes: int, seed: int) -> None:
        started = time.perf_counter()
        self.name, self.width = name, float(sizes["width"])
        shape = tuple(test.shape[1:])
        self.dense = random_network(name, self.width, num_classes, seed)
        self.compact, masked, self.pruning = slimmed_pair(self.dense, sizes["prune_ratio"], input_shape=shape)
        self.gated = calibrated_gated_network(self.dense, sizes["density"], calib)
        set_recording(self.gated, False)
        self.executor = SparseExecutor(self.gated)
        self.batched = BatchedSparseExecutor(self.gated)
        self.plan = build_plan(self.gated, shape)
        self.macs_dense = count_macs(self.dense, shape)
        self.macs_compact = count_macs(self.compact, shape)
        self.static_macs_ratio = self.macs_dense / self.macs_compact
        probe = test[:32]
        with torch.no_grad():
            gated_logits = self.gated(probe)
            scale = float(gated_logits.abs().max())
            self.verification = {
                "compact_vs_masked": verify_compact(self.compact, masked, probe),
                "sparse_executor_max_abs_diff": max(float((self.executor(probe[i:i + 1]) - gated_logits[i:i + 1])
                                                          .abs().max()) for i in range(min(8, probe.shape[0]))),
                "batched_executor_max_abs_diff": float((self.batched(probe) - gated_logits).abs().max()),
                "logit_scale": scale,
            }
        self.verification["executors_passed"] = max(self.verification["sparse_executor_max_abs_diff"],
                                                    self.verification["batched_executor_max_abs_diff"]) <= 1e-4 * scale
        self.setup_s = time.perf_counter() - started

    def per_image_macs(self, images: torch.Tensor) -> torch.Tensor:
        """MACs of each image's sub-network (gates excluded), from the masks."""
        set_recording(self.gated, True)
        with torch.no_grad():
            self.gated(images)
        counts = active_counts([r.mask for r in records(self.gated)])
        set_recording(self.gated, False)
        return self.plan.macs(counts).double()

    def batch_macs(self, images: torch.Tensor) -> float:
        """MACs per image that the batched executor really computes on `images` (the padded unions)."""
        self.batched(images)
        return float(self.plan.macs(torch.tensor([self.batched.last_widths]))[0])

    def facts(self) -> dict[str, Any]:
        return {"macs_dense": self.macs_dense, "macs_compact": self.macs_compact,
                "static_macs_ratio": self.static_macs_ratio, "pruning": self.pruning,
                "verification": self.verification, "setup_s": self.setup_s, "gate_macs": self.plan.gate_macs}


# --- one (model, threads) -----------------------------------------------------------------------------
def measure_model(work: Workload, sizes: dict[str, Any], test: torch.Tensor, threads: int,
                  forms: tuple[str, ...]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows for every batch size at `threads`, and what they were measured on."""
    built: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {}
    for form in forms:
        built[f"dense/{form}"] = build_form(work.dense, form, test[:1], threads)
        built[f"compact/{form}"] = build_form(work.compact, form, test[:1], threads)
    rows, cells = [], {}
    for batch in sizes["batches"]:
        calls, rounds = int(sizes["calls"][threads][batch]), int(sizes["rounds"][threads][batch])
        if batch == 1:
            inputs = [test[i:i + 1] for i in range(calls)]  # `calls` different images, one at a time
            executor, pruned_form = work.executor, "sparse_executor"
        else:
            inputs = [test[:batch]] * calls
            executor, pruned_form = work.batched, "batched_executor"
        contenders = {name: (lambda f=f, xs=inputs: [f(x) for x in xs]) for name, f in built.items()}
        contenders[pruned_form] = lambda f=executor, xs=inputs: [f(x) for x in xs]
        ms = time_cell(contenders, rounds)
        ms = {name: [v / calls for v in values] for name, values in ms.items()}
        for form in forms:
            rows.append(_row("static", work.name, work.width, batch, threads, form, form, work.static_macs_ratio,
                             ms[f"dense/{form}"], ms[f"compact/{form}"]))
        images = torch.cat(inputs[:calls] if batch == 1 else inputs[:1])
        per_image = work.per_image_macs(images)
        dynamic_ratio = work.macs_dense / float(per_image.mean())
        batch_ratio = work.macs_dense / (work.batch_macs(images) if batch > 1 else float(per_image.mean()))
        for form in forms:
            rows.append(_row("dynamic", work.name, work.width, batch, threads, form, pruned_form, dynamic_ratio,
                             ms[f"dense/{form}"], ms[pruned_form], computed_macs_ratio=batch_ratio))
        cells[str(batch)] = {"calls_per_sample": calls, "rounds": rounds,
                             "ms": {name: _summary(values) for name, values in ms.items()},
                             "dynamic_macs_ratio": dynamic_ratio, "computed_macs_ratio": batch_ratio}
        med = {name: statistics.median(values) for name, values in ms.items()}
        best, dense_form = min(forms, key=lambda f: med[f"compact/{f}"]), DYNAMIC_DENSE_FORM[pruned_form]
        reference = f"{med[f'dense/{dense_form}']:.2f}" if f"dense/{dense_form}" in med else "not measured"
        common.log(f"{work.name} t{threads} b{batch}: compact fastest as {best} {med[f'compact/{best}']:.2f} ms "
                   f"(dense {med[f'dense/{best}']:.2f}); {pruned_form} {med[pruned_form]:.2f} ms vs dense "
                   f"{dense_form} {reference}")
    return rows, cells


# --- the split: where the gap between MACs and milliseconds comes from ------------------------------
def _conv_inputs(model: nn.Module, images: torch.Tensor) -> list[tuple[str, nn.Conv2d, torch.Tensor]]:
    """(name, conv, its input) of every Conv2d in one forward pass of `model` on `images`."""
    seen: list[tuple[str, nn.Conv2d, torch.Tensor]] = []
    handles = [module.register_forward_pre_hook(
        lambda mod, args, name=name: seen.append((name, mod, args[0].detach().clone())))
        for name, module in model.named_modules() if isinstance(module, nn.Conv2d)]
    try:
        with torch.no_grad():
            model(images)
    finally:
        for handle in handles:
            handle.remove()
    return seen


def layer_profile(dense: nn.Module, compact: nn.Module, images: torch.Tensor, channels_last: bool,
                  rounds: int) -> dict[str, Any]:
    """Each convolution of the BN-folded dense and compact networks timed alone (interleaved), with its MACs,
    next to the whole networks: sum of the convolutions = what MACs predict; the rest is everything else."""
    from prunelab.speed.bn_folding import fold_bn

    layout = torch.channels_last if channels_last else torch.contiguous_format
    networks = {"dense": fold_bn(dense).to(memory_format=layout), "compact": fold_bn(compact).to(memory_format=layout)}
    x = images.contiguous(memory_format=layout)
    convs = {net: _conv_inputs(model, x) for net, model in networks.items()}
    contenders: dict[str, Callable[[], Any]] = {f"{net}/whole": (lambda m=model: m(x))
                                                for net, model in networks.items()}
    for net, entries in convs.items():
        for name, conv, inp in entries:
            contenders[f"{net}/{name}"] = (lambda c=conv, i=inp: F.conv2d(i, c.weight, c.bias, c.stride, c.padding))
    ms = {name: statistics.median(values) for name, values in time_cell(contenders, rounds).items()}
    layers = []
    for (name, conv_d, inp_d), (_, conv_c, inp_c) in zip(convs["dense"], convs["compact"], strict=True):
        row = {"layer": name, "kernel": int(conv_d.kernel_size[0]),
               "out_hw": (inp_d.shape[-1] + 2 * int(conv_d.padding[0]) - int(conv_d.kernel_size[0]))
               // int(conv_d.stride[0]) + 1}
        for net, conv, inp in (("dense", conv_d, inp_d), ("compact", conv_c, inp_c)):
            macs = (conv.in_channels * conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
                    * row["out_hw"] ** 2 * inp.shape[0])
            row[f"{net}_channels"] = [conv.in_channels, conv.out_channels]
            row[f"{net}_macs"] = macs
            row[f"{net}_ms"] = ms[f"{net}/{name}"]
            row[f"{net}_gmacs_per_s"] = macs / ms[f"{net}/{name}"] / 1e6
        layers.append(row)
    summary = {}
    for net in networks:
        conv_ms = sum(row[f"{net}_ms"] for row in layers)
        summary[net] = {"whole_ms": ms[f"{net}/whole"], "conv_ms": conv_ms,
                        "other_ms": max(0.0, ms[f"{net}/whole"] - conv_ms),
                        "macs": sum(row[f"{net}_macs"] for row in layers)}
    return {"batch": int(images.shape[0]), "channels_last": channels_last, "layers": layers, "networks": summary}


def fixed_cost(dense: nn.Module, images: torch.Tensor, rounds: int) -> dict[str, Any]:
    """Batch-1 ms of the BN-folded dense network and of the same architecture one channel wide (every
    prunable layer): the part of a forward pass that removing channels cannot remove (Amdahl)."""
    from prunelab.speed.bn_folding import fold_bn

    networks = {"dense": fold_bn(dense), "one_channel": fold_bn(bench_slimming.minimal_model(dense))}
    ms = time_cell({name: (lambda m=m: m(images)) for name, m in networks.items()}, rounds * 4)
    return {name: statistics.median(values) for name, values in ms.items()}


def op_split(forward: Callable[[torch.Tensor], Any], images: torch.Tensor, repeats: int) -> dict[str, Any]:
    """Share of the ops' self CPU time by kind of op (torch.profiler). The profiler's own cost per op is
    counted in the ops' time, which inflates the many small ops of the executors."""
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode():
        for _ in range(2):
            forward(images)
        started = common.now()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(repeats):
                forward(images)
        total_us = (common.now() - started) * 1e6 / repeats
    kinds = dict.fromkeys([*OP_KINDS, OTHER_OPS], 0.0)
    for event in prof.key_averages():
        name = event.key.removeprefix("aten::")
        kind = next((k for k, names in OP_KINDS.items() if name in names), OTHER_OPS)
        kinds[kind] += event.self_cpu_time_total / repeats
    ops_us = sum(kinds.values()) or 1.0  # under the profiler the ops' own time covers the whole call
    return {"profiled_ms": total_us / 1000.0, "share": {k: v / ops_us for k, v in kinds.items()}}


def union_widths(work: Workload, images: torch.Tensor) -> list[dict[str, Any]]:
    """Per gated layer: mean fraction of channels an image keeps, and the fraction the batch computed."""
    set_recording(work.gated, True)
    with torch.no_grad():
        work.gated(images)
    rows = [{"layer": name, "channels": int(r.mask.shape[1]), "per_image_density": float(r.mask.float().mean()),
             "union_density": float(r.mask.any(dim=0).float().mean())}
            for name, r in zip(work.plan.gate_names, records(work.gated), strict=True)]
    set_recording(work.gated, False)
    work.batched(images)
    for row, width in zip(rows, work.batched.last_widths, strict=True):
        row["computed_density"] = width / row["channels"]
    return rows


def split(work: Workload, test: torch.Tensor, rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {"fixed_cost_b1_ms": fixed_cost(work.dense, test[:1], rounds)}
    out["layers_b1"] = layer_profile(work.dense, work.compact, test[:1], False, rounds)
    out["layers_b64"] = layer_profile(work.dense, work.compact, test[:64], True, max(2, rounds - 1))
    dense_b1 = build_form(work.dense, "bn_folded", test[:1])
    dense_b64 = build_form(work.dense, "bn_folded_cl", test[:1])
    out["ops"] = {
        "b1": {"dense (BN folded)": op_split(dense_b1, test[:1], 10),
               "sparse executor": op_split(work.executor, test[:1], 10)},
        "b64": {"dense (BN folded, channels-last)": op_split(dense_b64, test[:64], 1),
                "batched executor": op_split(work.batched, test[:64], 1)},
    }
    out["union_b8"] = union_widths(work, test[:8])
    out["union_b64"] = union_widths(work, test[:64])
    return out


# --- headlines ------------------------------------------------------------------------------------------
def headlines(rows: list[dict[str, Any]], threads: int = 1) -> tuple[dict[str, float | None], dict[str, Any]]:
    """The four headline figures (worse model) and their per-model values, from the rows at `threads`."""
    by_model: dict[str, dict[str, Any]] = {}
    for model in sorted({r["model"] for r in rows}):
        mine = [r for r in rows if r["model"] == model and r["threads"] == threads]
        entry: dict[str, Any] = {}
        for batch in HEADLINE_BATCHES:
            static = [r for r in mine if r["kind"] == "static" and r["batch"] == batch and r["form"] in SERVED_FORMS]
            if static:
                served = min(static, key=lambda r: r["pruned_ms"])
                entry[f"static_b{batch}"] = {"form": served["form"], "speedup": served["speedup"],
                                             "macs_ratio": served["macs_ratio"],
                                             "speedup_over_macs": served["speedup_over_macs"],
                                             "compact_ms": served["pruned_ms"], "dense_ms": served["dense_ms"]}
            pruned_form = "sparse_executor" if batch == 1 else "batched_executor"
            dynamic = [r for r in mine if r["kind"] == "dynamic" and r["batch"] == batch
                       and r["form"] == DYNAMIC_DENSE_FORM[pruned_form]]
            if dynamic:
                r = dynamic[0]
                entry[f"dynamic_b{batch}"] = {
                    "dense_form": r["form"], "speedup": r["speedup"], "macs_ratio": r["macs_ratio"],
                    "speedup_over_macs": r["speedup_over_macs"], "computed_macs_ratio": r.get("computed_macs_ratio")}
        by_model[model] = entry

    def worst(key: str, field: str) -> float | None:
        values = [entry[key][field] for entry in by_model.values() if key in entry]
        return min(values) if values else None

    return ({"static_speedup_over_macs_b1": worst("static_b1", "speedup_over_macs"),
             "static_speedup_over_macs_b64": worst("static_b64", "speedup_over_macs"),
             "dynamic_speedup_over_macs_b1": worst("dynamic_b1", "speedup_over_macs"),
             "dynamic_speedup_b64": worst("dynamic_b64", "speedup")}, by_model)


# --- the section ---------------------------------------------------------------------------------------
def speed_benchmark(dataset: str, full: bool, work: common.WorkDir, seed: int = 0,
                    sizes: dict[str, Any] | None = None) -> dict[str, Any]:
    """The speed section: `speed_rows`, the four headline keys, the split and provenance."""
    sizes = {**SIZES[full], **(sizes or {})}
    initial_threads, initial_clock = torch.get_num_threads(), common.clock_name()
    forms = {t: tuple(f for f in sizes["forms"][t] if f in available_forms()) for t in sizes["threads"]}
    calib, test = real_images(dataset, int(sizes["calibration_images"]), max(sizes["batches"]), seed)
    num_classes = 10 if dataset == "shapes" else common.get_dataset(dataset, 64, 64, seed).num_classes
    load_before = common.load_average()
    rows: list[dict[str, Any]] = []
    details: dict[str, Any] = {}
    try:
        for model in sizes["models"]:
            torch.set_num_threads(1)
            work_model = Workload(model, sizes, calib, test, num_classes, seed)
            common.log(f"{model} w{sizes['width']}: MACs ratio static {work_model.static_macs_ratio:.2f}, "
                       f"setup {work_model.setup_s:.1f} s, verification {work_model.verification}")
            details[model] = {**work_model.facts(), "cells": {}}
            for threads in sizes["threads"]:
                common.apply_threads(threads, "cpu")
                model_rows, cells = measure_model(work_model, sizes, test, threads, forms[threads])
                rows.extend(model_rows)
                details[model]["cells"][f"threads_{threads}"] = cells
            if sizes.get("split"):
                common.apply_threads(1, "cpu")
                details[model]["split"] = split(work_model, test, int(sizes["split_rounds"]))
    finally:
        torch.set_num_threads(initial_threads)
        common.set_clock(initial_clock)
    headline, by_model = headlines(rows)
    return {**headline, "headline_by_model": by_model, "speed_rows": rows,
            "config": {**{k: v for k, v in sizes.items() if k not in ("rounds", "calls", "forms")},
                       **{key: {f"threads_{t}": {str(b): n for b, n in per.items()} for t, per in sizes[key].items()}
                          for key in ("rounds", "calls")},
                       "forms": {f"threads_{t}": list(f) for t, f in forms.items()},
                       "dataset": dataset, "dynamic_dense_form": DYNAMIC_DENSE_FORM},
            "load_average_before": load_before, "load_average_after": common.load_average(),
            "models": details}


def main() -> None:
    common.run_section(__doc__.split("\n")[0], speed_benchmark)


if __name__ == "__main__":
    main()

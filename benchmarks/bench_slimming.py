"""Network Slimming's real gain: MACs ratio and CPU latency speedup of the compact network.

One real slimming run (sparsity training, global-threshold pruning, fine-tuning) is trained; its
dense network (`dense_model.pt`, right after sparsity training) and its compact fine-tuned network
(`model.pt`) are then timed side by side on the CPU at batch 1 and batch 64, interleaved round by
round. Ratios are dense / compact, so bigger is better:

    slim_flops_ratio     = MACs(dense) / MACs(compact)         (per image)
    slim_cpu_speedup_bB  = latency(dense, batch B) / latency(compact, batch B)

    python benchmarks/bench_slimming.py --quick --out /tmp/slimming.json
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import common
import torch
from torch import nn

from prunelab.methods.slimming.method import load_dense_model
from prunelab.models import build_model, spec_of
from prunelab.runs.store import RunDir
from prunelab.speed.report import amdahl_bound
from prunelab.training.engine import load_model
from prunelab.training.flops import count_macs, count_params

RUN_ID = "bench-slimming"
BASELINE_ID = "bench-baseline"
SIZES = {  # quick / full
    False: {"train_size": 2000, "test_size": 1000, "model": "vgg11", "width": 0.25, "epochs": 4,
            "finetune_epochs": 2, "rounds": 8, "b1_calls": 32, "b64_calls": 2,
            "sweep_widths": (0.25, 0.5, 1.0)},
    True: {"train_size": 10000, "test_size": 2000, "model": "vgg11", "width": 0.5, "epochs": 15,
           "finetune_epochs": 8, "rounds": 15, "b1_calls": 64, "b64_calls": 4,
           "sweep_widths": (0.5, 1.0, 2.0)},
}
SLIMMING = {"name": "slimming", "sparsity_lambda": 1e-3, "prune_ratio": 0.5}
ACC_KEYS = ("acc_before_prune", "acc_after_prune", "acc_after_finetune")
BATCH_SIZE = 64  # the reference code's batch size for Network Slimming


def ensure_slimming_run(work: common.WorkDir, dataset: str, full: bool, seed: int = 0) -> RunDir:
    sizes = SIZES[full]
    config = common.run_config({**SLIMMING, "finetune_epochs": sizes["finetune_epochs"]}, dataset,
                               sizes["train_size"], sizes["test_size"], sizes["model"], sizes["width"],
                               sizes["epochs"], BATCH_SIZE, RUN_ID, seed=seed)
    return common.ensure_run(work, RUN_ID, config)


def ensure_baseline_run(work: common.WorkDir, dataset: str, full: bool, seed: int = 0,
                        test_size: int | None = None) -> RunDir:
    """Plain training of the same model (the baseline row, and ManiDP's pretrained backbone)."""
    sizes = SIZES[full]
    config = common.run_config({"name": "baseline"}, dataset, sizes["train_size"],
                               test_size or sizes["test_size"], sizes["model"], sizes["width"],
                               sizes["epochs"], BATCH_SIZE, BASELINE_ID, seed=seed)
    return common.ensure_run(work, BASELINE_ID, config)


def latency_speedup(dense: nn.Module, compact: nn.Module, batch: int, calls: int, rounds: int,
                    input_shape: tuple[int, ...], channels_last: bool = False) -> dict[str, Any]:
    """Per-round median ms per forward of each network at `batch`, interleaved; speedup = dense / compact."""
    x = torch.randn((batch, *input_shape))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    dense, compact = dense.eval(), compact.eval()
    times: dict[str, list[float]] = {"dense": [], "compact": []}
    with torch.inference_mode():
        for net in (dense, compact):  # warm-up
            for _ in range(3):
                net(x)
        for r in range(rounds):
            order = [("dense", dense), ("compact", compact)]
            for name, net in order if r % 2 == 0 else order[::-1]:
                times[name].append(common.per_call_ms(lambda net=net: net(x), calls))
    speedup = common.pairwise_ratio(times["dense"], times["compact"])
    return {"batch": batch, "dense_ms": common.summarize(times["dense"]),
            "compact_ms": common.summarize(times["compact"]), "speedup": speedup}


def minimal_model(model: nn.Module) -> nn.Module:
    """The same architecture with every prunable width set to 1 (ResNet: the block-inner width):
    its latency is the per-forward cost that removing channels cannot remove."""
    spec = spec_of(model)
    if spec["family"] == "vgg":
        spec["layers"] = [1 if layer != "M" else "M" for layer in spec["layers"]]
    else:
        spec["blocks"] = [[1, out, stride] for _, out, stride in spec["blocks"]]
    return build_model(spec).eval()


def overhead_diagnostics(dense: nn.Module, compact: nn.Module, flops_ratio: float, sizes: dict[str, Any],
                         shape: tuple[int, ...]) -> dict[str, Any]:
    """Why the batch-1 speedup falls short of the MACs ratio (Amdahl): fixed per-forward cost and
    the speedup once BatchNorm is folded into the convolutions (torch.fx `fuse`, eval mode)."""
    x = torch.randn((1, *shape))
    minimal = minimal_model(dense)
    with torch.inference_mode():
        contenders = {"dense": lambda: dense(x), "compact": lambda: compact(x), "minimal": lambda: minimal(x)}
        times = common.interleaved(contenders, rounds=sizes["rounds"] * sizes["b1_calls"], warmup=5)
    dense_ms, compact_ms, fixed_ms = (1000.0 * common.summarize(times[k])["median"]
                                      for k in ("dense", "compact", "minimal"))
    amdahl = amdahl_bound(dense_ms, fixed_ms, flops_ratio)
    folded = latency_speedup(_bn_folded(dense), _bn_folded(compact), 1,
                             sizes["b1_calls"], sizes["rounds"], shape)
    return {"fixed_overhead_ms_b1": fixed_ms, "dense_ms_b1": dense_ms, "compact_ms_b1": compact_ms,
            "amdahl_predicted_speedup_b1": amdahl, "bn_folded_speedup_b1": folded["speedup"]["median"],
            "bn_folded_latency_b1": folded,
            "execution_forms_b1": execution_forms(dense, compact, sizes, shape)}


def _bn_folded(model: nn.Module) -> nn.Module:
    """A copy of `model` in eval mode with each BatchNorm folded into its convolution (torch.fx `fuse`)."""
    from torch.fx.experimental.optimization import fuse

    return fuse(copy.deepcopy(model).eval())


def _deployed(model: nn.Module, shape: tuple[int, ...], channels_last: bool) -> nn.Module:
    """BN folded, traced and frozen by TorchScript: no Python between the ops."""
    model = _bn_folded(model)
    x = torch.randn((1, *shape))
    if channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation notice
        return torch.jit.freeze(torch.jit.trace(model, x))


def execution_forms(dense: nn.Module, compact: nn.Module, sizes: dict[str, Any],
                    shape: tuple[int, ...]) -> dict[str, dict[str, float]]:
    """Batch-1 ms of both networks and the speedup in each way of running them on a CPU: eager;
    BN folded, traced and frozen; the same in channels_last (oneDNN convolutions even at batch 1).
    Shows whether the missing speedup is Python overhead or kernel efficiency at small sizes."""
    forms = {"frozen": False, "frozen_channels_last": True}
    rows = {}
    for name, channels_last in forms.items():
        result = latency_speedup(_deployed(dense, shape, channels_last), _deployed(compact, shape, channels_last),
                                 1, sizes["b1_calls"], sizes["rounds"], shape, channels_last=channels_last)
        rows[name] = {"dense_ms": result["dense_ms"]["median"], "compact_ms": result["compact_ms"]["median"],
                      "speedup": result["speedup"]["median"]}
        common.log(f"slimming b1 {name}: dense {rows[name]['dense_ms']:.3f} ms, compact "
                   f"{rows[name]['compact_ms']:.3f} ms, speedup {rows[name]['speedup']:.2f}")
    return rows


def width_sweep(dense: nn.Module, compact: nn.Module, widths: tuple[float, ...], sizes: dict[str, Any],
                shape: tuple[int, ...]) -> list[dict[str, Any]]:
    """Batch-1 speedup against the MACs ratio as the network widens, at the run's kept fractions.

    Each prunable layer of a `width`-scaled network keeps round(fraction * channels) channels, the
    fraction being what this run's pruning kept in that layer; weights are random (a cost study).
    """
    spec_dense, spec_compact = spec_of(dense), spec_of(compact)
    if spec_dense["family"] != "vgg":
        return []  # the ResNet case keeps its residual stream; the VGG study is enough to show the trend
    fractions = [c / d if d != "M" else "M" for d, c in zip(spec_dense["layers"], spec_compact["layers"],
                                                           strict=True)]
    rows = []
    for width in widths:
        scale = width / float(sizes["width"])
        wide = {**spec_dense, "layers": [round(d * scale) if d != "M" else "M" for d in spec_dense["layers"]]}
        slim = {**wide, "layers": [max(1, round(d * f)) if d != "M" else "M"
                                   for d, f in zip(wide["layers"], fractions, strict=True)]}
        big, small = build_model(wide).eval(), build_model(slim).eval()
        result = latency_speedup(big, small, 1, sizes["b1_calls"], max(2, sizes["rounds"] // 2), shape)
        flops_ratio = count_macs(big, shape) / count_macs(small, shape)
        rows.append({"width": width, "macs_dense": count_macs(big, shape), "flops_ratio": flops_ratio,
                     "speedup_b1": result["speedup"]["median"],
                     "speedup_over_flops_ratio": result["speedup"]["median"] / flops_ratio})
        common.log(f"slimming sweep width {width}: MACs ratio {flops_ratio:.2f}, "
                   f"b1 speedup {result['speedup']['median']:.2f}")
    return rows


def profile_top_ops(model: nn.Module, batch: int, input_shape: tuple[int, ...], top: int = 6) -> list[dict]:
    """Where batch-`batch` inference time goes: the `top` ops by self CPU time (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    x = torch.randn((batch, *input_shape))
    model = model.eval()
    with torch.inference_mode():
        for _ in range(3):
            model(x)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(20):
                model(x)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    return [{"op": e.key, "calls_per_forward": e.count / 20,
             "self_us_per_forward": e.self_cpu_time_total / 20, "share": e.self_cpu_time_total / total}
            for e in events[:top]]


def slimming_speedups(dataset: str, full: bool, work: common.WorkDir, seed: int = 0) -> dict[str, Any]:
    sizes = SIZES[full]
    run = ensure_slimming_run(work, dataset, full, seed)
    summary = run.read_summary()
    pruning = run.read_json("pruning.json")
    dense, compact = load_dense_model(run.path), load_model(run.path)
    shape = tuple(int(v) for v in run.load_torch("dense_model.pt").get("input_shape", (3, 32, 32)))
    macs_dense, macs_compact = count_macs(dense, shape), count_macs(compact, shape)
    out: dict[str, Any] = {
        "config": {**sizes, **SLIMMING, "dataset": dataset, "batch_size": BATCH_SIZE,
                   "threads": torch.get_num_threads(), "clock": common.clock_name()},
        "load_average_before": common.load_average(),
        "slim_flops_ratio": macs_dense / macs_compact,
        "slim_macs_dense": macs_dense, "slim_macs_compact": macs_compact,
        "slim_params_ratio": count_params(dense) / count_params(compact),
        "slim_channels_removed": pruning["channels_removed"],
        "slim_channels_total": pruning["channels_total"],
        "slim_acc": {k: summary.get(k) for k in ACC_KEYS},
        "slim_run_summary_latency_ms": {k: v for k, v in summary.items() if k.startswith("latency_ms_")},
        "slim_layer_widths": {row["name"]: [row["channels_before"], row["channels_after"]]
                              for row in pruning["layers"]},
    }
    for batch, calls in ((1, sizes["b1_calls"]), (64, sizes["b64_calls"])):
        result = latency_speedup(dense, compact, batch, calls, sizes["rounds"], shape)
        out[f"slim_cpu_speedup_b{batch}"] = result["speedup"]["median"]
        out[f"slim_cpu_latency_b{batch}"] = result
        common.log(f"slimming b{batch}: dense {common.fmt(result['dense_ms'])} ms, compact "
                   f"{common.fmt(result['compact_ms'])} ms, speedup {common.fmt(result['speedup'])}")
    out["slim_overhead_b1"] = overhead_diagnostics(dense, compact, out["slim_flops_ratio"], sizes, shape)
    out["slim_width_sweep_b1"] = width_sweep(dense, compact, sizes["sweep_widths"], sizes, shape)
    out["slim_profile_b1"] = {"dense": profile_top_ops(dense, 1, shape),
                              "compact": profile_top_ops(compact, 1, shape)}
    out["load_average_after"] = common.load_average()
    return out


def main() -> None:
    common.run_section(__doc__.split("\n")[0], slimming_speedups)


if __name__ == "__main__":
    main()

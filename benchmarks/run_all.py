"""Run every CPU benchmark and write ONE JSON object with the headline figures, details and provenance.

    python benchmarks/run_all.py --quick --out bench.json       # a few minutes on 2 CPU cores
    python benchmarks/run_all.py --full --out bench.json        # bigger sizes, more repeats
    python benchmarks/run_all.py --quick --dataset folder:/work/data/cifar10 --out bench.json

Sections (each also a script of its own): training overhead and throughput, shapes generation
(bench_training), slimming MACs and CPU speedups (bench_slimming), ManiDP MACs and executor speedup
(bench_manidp), Torch-Pruning peer comparison (bench_peer), page render and app start-up times
(bench_app), real speedups against MACs ratios at width 1.0 (bench_speed: `speed_rows` at the top
level). The CUDA comparison (bench_cuda) and the real-data runs (bench_real_data) are separate scripts.
Epoch-time ratios are method / plain (target: at most 1.10 and 1.5); every other ratio is dense / pruned,
so bigger is better. `targets` says which target is met and by how much.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import bench_app
import bench_manidp
import bench_peer
import bench_slimming
import bench_speed
import bench_training
import common

SECTIONS: dict[str, Callable[[str, bool, common.WorkDir, int], dict[str, Any]]] = {
    "training": bench_training.training_overhead,
    "shapes": lambda dataset, full, work, seed: bench_training.shapes_generation(full, seed),
    "slimming": bench_slimming.slimming_speedups,
    "manidp": bench_manidp.manidp_speedups,
    "peer": bench_peer.peer_comparison,
    "app": bench_app.app_benchmark,
    "speed": bench_speed.speed_benchmark,
}
HEADLINE = ("slimming_epoch_time_ratio", "manidp_epoch_time_ratio", "slim_flops_ratio", "slim_cpu_speedup_b1",
            "slim_cpu_speedup_b64", "manidp_flops_ratio", "manidp_executor_speedup_b1", "shapes_generation_s",
            "train_images_per_s", "page_render_s", "app_start_s", "static_speedup_over_macs_b1",
            "static_speedup_over_macs_b64", "dynamic_speedup_over_macs_b1", "dynamic_speedup_b64")
SPEED_TARGETS = (("static_speedup_over_macs_b1", 0.8), ("static_speedup_over_macs_b64", 0.85),
                 ("dynamic_speedup_over_macs_b1", 0.6), ("dynamic_speedup_b64", 1.2))
PAGE_TARGET_S = 2.0


def _target(value: float | None, limit: float, kind: str) -> dict[str, Any]:
    """One target check: kind 'max' (value <= limit) or 'min' (value >= limit); margin = value / limit."""
    if value is None:
        return {"value": None, "target": limit, "kind": kind, "met": None, "value_over_target": None}
    met = value <= limit if kind == "max" else value >= limit
    return {"value": value, "target": limit, "kind": kind, "met": met, "value_over_target": value / limit}


def evaluate_targets(result: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets against the measured figures (reported, never asserted)."""
    targets: dict[str, Any] = {}
    if "slimming_epoch_time_ratio" in result:
        for name, limit in (("slimming", 1.10), ("manidp", 1.5)):
            key = f"{name}_epoch_time_ratio"
            targets[f"{key} <= {limit}"] = _target(result[key], limit, "max")
    if "slim_cpu_speedup_b1" in result:
        targets["slim_cpu_speedup_b1 >= 0.7 x slim_flops_ratio"] = _target(
            result["slim_cpu_speedup_b1"], 0.7 * result["slim_flops_ratio"], "min")
    if "manidp_executor_speedup_b1" in result:
        targets["manidp_executor_speedup_b1 >= 0.5 x manidp_flops_ratio"] = _target(
            result["manidp_executor_speedup_b1"], 0.5 * result["manidp_flops_ratio"], "min")
    for key, limit in SPEED_TARGETS:
        if key in result:
            targets[f"{key} >= {limit}"] = _target(result[key], limit, "min")
    for page, seconds in result.get("page_render_s", {}).items():
        targets[f"page_render_s[{page}] < 2"] = _target(seconds, PAGE_TARGET_S, "max")
    return targets


def main() -> None:
    parser = common.add_common_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated subset of {list(SECTIONS)}")
    args = parser.parse_args()
    common.apply_threads(args.threads, args.clock)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; allowed: {', '.join(SECTIONS)}")
    started = time.perf_counter()
    result: dict[str, Any] = {}
    details: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    with common.WorkDir(args.work) as work:
        for name in chosen:
            common.log(f"section {name}")
            section_start = time.perf_counter()
            section = SECTIONS[name](args.dataset, args.full, work, args.seed)
            section["section_seconds"] = time.perf_counter() - section_start
            rows.extend(section.pop("speed_rows", []))  # every measured speed row, at the top level
            details[name] = section
            result.update({k: v for k, v in section.items() if k in HEADLINE})
    config = {"mode": "full" if args.full else "quick", "dataset": args.dataset, "threads": args.threads,
              "seed": args.seed, "sections": {name: details[name].get("config") for name in details}}
    out = {**{k: result[k] for k in HEADLINE if k in result}, **({"speed_rows": rows} if rows else {}),
           "targets": evaluate_targets(result),
           "config": config, "seconds": time.perf_counter() - started, **common.provenance(),
           "details": details}
    for name, check in out["targets"].items():
        state = {True: "met", False: "MISSED", None: "n/a"}[check["met"]]
        print(f"{state:>6}  {name}: {check['value']}")
    print({k: out[k] for k in HEADLINE if k in out})
    if args.out:
        common.write_json(args.out, out)


if __name__ == "__main__":
    main()

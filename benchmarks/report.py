"""Markdown tables from benchmark JSON files, for docs/benchmarks.md.

    python benchmarks/report.py --all bench.json [--cuda cuda.json] [--real real.json] [--speed speed.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{value:.{digits}f}"


def _spread(stats: dict[str, Any] | None, digits: int = 3) -> str:
    if not stats or stats.get("median") is None:
        return "n/a"
    return f"{stats['median']:.{digits}f} [{stats['q25']:.{digits}f}, {stats['q75']:.{digits}f}]"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def headline(data: dict[str, Any]) -> str:
    details = data["details"]
    training, slim = details.get("training", {}), details.get("slimming", {})
    manidp = details.get("manidp", {})
    rows = [
        ["slimming_epoch_time_ratio (slimming / plain)",
         _spread(training.get("slimming_epoch_time_ratio_stats"))],
        ["manidp_epoch_time_ratio (ManiDP / plain)", _spread(training.get("manidp_epoch_time_ratio_stats"))],
        ["manidp_epoch_time_ratio_with_hooks",
         _spread(training.get("manidp_epoch_time_ratio_with_hooks_stats"))],
        ["slim_flops_ratio (dense / compact MACs)", _num(data.get("slim_flops_ratio"))],
        ["slim_cpu_speedup_b1", _spread(slim.get("slim_cpu_latency_b1", {}).get("speedup"))],
        ["slim_cpu_speedup_b64", _spread(slim.get("slim_cpu_latency_b64", {}).get("speedup"))],
        ["manidp_flops_ratio (dense / mean per-image MACs)", _num(data.get("manidp_flops_ratio"))],
        ["manidp_executor_speedup_b1", _spread(manidp.get("manidp_latency_b1", {}).get("speedup_executor"))],
        ["shapes_generation_s (12,000 images)", _num(data.get("shapes_generation_s"), 2)],
        ["train_images_per_s (plain, 1 thread)", _spread(training.get("train_images_per_s_stats"), 0)],
        ["app_start_s", _spread(details.get("app", {}).get("app_start_s_stats"), 2)],
    ]
    return table(["figure", "median [q25, q75]"], rows)


def targets(data: dict[str, Any]) -> str:
    rows = []
    for name, check in data["targets"].items():
        state = {True: "met", False: "**missed**", None: "n/a"}[check["met"]]
        rows.append([name, _num(check["value"]), _num(check["target"]), _num(check["value_over_target"], 2),
                     state])
    return table(["target", "measured", "limit", "measured / limit", "state"], rows)


def pages(data: dict[str, Any]) -> str:
    app = data["details"].get("app", {})
    rows = [[page, _spread(result["cold"], 2), _spread(result["warm"], 2),
             _num(result.get("first_visit_fresh_process"), 2), str(len(result["errors"]))]
            for page, result in app.get("page_render_detail", {}).items()]
    return table(["page", "cold s", "warm s", "first visit (fresh process) s", "errors"], rows)


def peer(data: dict[str, Any]) -> str:
    rows = []
    for name, row in data["details"].get("peer", {}).get("peer", {}).get("rows", {}).items():
        rows.append([name, _num(row["macs"]), _num(row["params"]), _num(row.get("macs_ratio"), 2),
                     _num(row.get("acc_after_prune", row.get("acc"))), _num(row.get("acc_after_finetune"))])
    return table(["network", "MACs", "params", "MACs ratio", "acc after prune", "acc after fine-tune"], rows)


def cuda(data: dict[str, Any]) -> str:
    if "skipped" in data:
        return data["skipped"]
    rows = []
    for model, result in data.items():
        if not isinstance(result, dict) or "images_per_s" not in result:
            continue
        rate = result["images_per_s"]
        rows.append([model, _spread(rate["prunelab_amp_cl"], 0), _spread(rate["prunelab_fp32"], 0),
                     _spread(rate["plain_pytorch"], 0),
                     _spread(result["speedup_prunelab_amp_cl_vs_plain"], 2)])
    return table(["model", "PruneLab AMP+CL img/s", "PruneLab fp32 img/s", "plain loop img/s",
                  "speedup AMP+CL / plain"], rows)


def _epochs(row: dict[str, Any]) -> str:
    """"10", or "10 + 4" for slimming (sparsity + fine-tune epochs)."""
    finetune = row.get("method_config", {}).get("finetune_epochs")
    return f"{row.get('epochs')} + {finetune}" if finetune is not None else str(row.get("epochs"))


def real(data: dict[str, Any]) -> str:
    rows = []
    for method, row in data["real_data"]["rows"].items():
        rows.append([method, _num(row.get("test_acc")), _num(round(row.get("macs_per_image", 0))),
                     _num(row.get("macs_ratio_vs_baseline"), 2), _num(row.get("params")),
                     _num(row.get("acc_after_prune")), _epochs(row),
                     _num(row.get("wall_time_s"), 0)])
    return table(["method", "test acc", "MACs / image", "MACs ratio", "params", "acc right after prune",
                  "epochs", "wall s"], rows)


def speed(data: dict[str, Any], threads: int = 1) -> str:
    """The speed section (run_all.py --only speed): per model and batch, the static network in each form and
    the executor against the dense network in each form, at `threads`."""
    rows = [r for r in data["speed_rows"] if r["threads"] == threads]
    out = []
    for kind in ("static", "dynamic"):
        lines = []
        for r in sorted((r for r in rows if r["kind"] == kind), key=lambda r: (r["model"], r["batch"], r["form"])):
            pruned = f"{r['pruned_ms']:.2f}" if kind == "static" else f"{r['pruned_ms']:.2f} ({r['pruned_form']})"
            extra = [_num(r.get("computed_macs_ratio"), 2)] if kind == "dynamic" else []
            lines.append([r["model"], str(r["batch"]), r["form"], _num(r["macs_ratio"], 2), *extra,
                          f"{r['dense_ms']:.2f}", pruned,
                          f"{r['speedup']:.2f} [{r['speedup_q25']:.2f}, {r['speedup_q75']:.2f}]",
                          _num(r["speedup_over_macs"], 2)])
        header = (["model", "batch", "form (both sides)", "MACs ratio", "dense ms", "compact ms", "speedup",
                   "speedup / MACs"] if kind == "static" else
                  ["model", "batch", "dense form", "MACs ratio (per image)", "MACs ratio (computed)", "dense ms",
                   "executor ms", "speedup", "speedup / MACs"])
        out.append(f"#### {kind}, {threads} thread{'s' if threads > 1 else ''}\n\n{table(header, lines)}")
    return "\n\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--all", type=Path, help="run_all.py JSON")
    parser.add_argument("--cuda", type=Path, help="bench_cuda.py JSON")
    parser.add_argument("--real", type=Path, help="bench_real_data.py JSON")
    parser.add_argument("--speed", type=Path, help="run_all.py --only speed JSON")
    args = parser.parse_args()
    if args.all:
        data = json.loads(args.all.read_text())
        for title, render in (("Headline", headline), ("Targets", targets), ("Pages", pages), ("Peer", peer)):
            print(f"### {title}\n\n{render(data)}\n")
    if args.cuda:
        print(f"### CUDA\n\n{cuda(json.loads(args.cuda.read_text()))}\n")
    if args.real:
        print(f"### Real data\n\n{real(json.loads(args.real.read_text()))}\n")
    if args.speed:
        data = json.loads(args.speed.read_text())
        print(f"### Speed targets\n\n{targets(data)}\n")
        for threads in sorted({r["threads"] for r in data["speed_rows"]}):
            print(f"{speed(data, threads)}\n")


if __name__ == "__main__":
    main()

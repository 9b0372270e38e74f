"""Real data: baseline, Network Slimming and ManiDP on one model, accuracy and MACs side by side.

Three real runs on `--dataset` (e.g. `folder:/work/data/cifar10`, ImageFolder layout train/<class>,
test/<class>): plain training; slimming (sparsity training with L1 on BN gammas, global-threshold
pruning, fine-tuning); ManiDP initialised from the baseline run (the paper starts from a pretrained
network). Reported per method: test accuracy, MACs per image (ManiDP: mean over the test set of
each image's sub-network), params, wall time; slimming adds accuracy before/after pruning.

Defaults depend on the device: on a CUDA GPU the whole dataset and enough epochs for meaningful
accuracy; on a CPU a deliberately SHORT run (subset, few epochs), labelled as such in the JSON.

    python benchmarks/bench_real_data.py --dataset folder:/work/data/cifar10 --model resnet20 \\
        --out /tmp/real.json
"""

from __future__ import annotations

import argparse
from typing import Any

import common
import torch

from prunelab.training.engine import resolve_device

PRESETS = {  # device type -> sizes and epochs
    "cuda": {"train_size": None, "test_size": None, "epochs": 20, "finetune_epochs": 10, "manidp_epochs": 10,
             "batch_size": 128},
    "cpu": {"train_size": 5000, "test_size": 2000, "epochs": 3, "finetune_epochs": 1, "manidp_epochs": 2,
            "batch_size": 128},
}
SHORT_NOTE = "CPU run: a SHORT run (subset, few epochs); accuracies are far from converged"
SUMMARY_KEYS = ("test_acc", "macs_per_image", "params", "wall_time_s", "acc_before_prune", "acc_after_prune",
                "acc_after_finetune", "macs_before", "macs_after", "macs_dense", "macs_reduction",
                "gate_macs_per_image", "density_mean", "spearman_macs_loss", "latency_ms_b1_before",
                "latency_ms_b1_after", "latency_ms_b1_dense", "latency_ms_b1_sparse")


def parse_args() -> argparse.Namespace:
    parser = common.add_common_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    for name in ("train-size", "test-size", "epochs", "finetune-epochs", "manidp-epochs", "batch-size"):
        parser.add_argument(f"--{name}", type=int, default=None, help="default: the device's preset")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--manidp-lr", type=float, default=0.02, help="ManiDP starts from the baseline")
    parser.add_argument("--sparsity-lambda", type=float, default=1e-5, help="paper: 1e-5 ResNet, 1e-4 VGG")
    parser.add_argument("--prune-ratio", type=float, default=0.4)
    parser.add_argument("--target-density", type=float, default=0.5)
    parser.add_argument("--methods", default="baseline,slimming,manidp",
                        help="subset to train now; with --work DIR finished runs are reused, so a long "
                             "benchmark can be split over several commands (manidp needs baseline)")
    args = parser.parse_args()
    preset = PRESETS[resolve_device(args.device).type]
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def method_configs(args: argparse.Namespace, baseline_path: str | None) -> dict[str, dict[str, Any]]:
    return {
        "baseline": {"name": "baseline"},
        "slimming": {"name": "slimming", "sparsity_lambda": args.sparsity_lambda,
                     "prune_ratio": args.prune_ratio, "finetune_epochs": args.finetune_epochs},
        "manidp": {"name": "manidp", "target_density": args.target_density, "init_from": baseline_path},
    }


def real_data(args: argparse.Namespace, work: common.WorkDir) -> dict[str, Any]:
    device = resolve_device(args.device).type
    rows: dict[str, dict[str, Any]] = {}
    baseline_path: str | None = None
    wanted = {name.strip() for name in args.methods.split(",")}
    if "manidp" in wanted:
        wanted.add("baseline")  # ManiDP starts from the baseline run's weights
    for method in [m for m in ("baseline", "slimming", "manidp") if m in wanted]:
        spec = method_configs(args, baseline_path)[method]
        epochs, lr = (args.manidp_epochs, args.manidp_lr) if method == "manidp" else (args.epochs, args.lr)
        config = common.run_config(spec, args.dataset, args.train_size, args.test_size, args.model,
                                   args.width, epochs, args.batch_size, f"real-{method}", device=device,
                                   seed=args.seed, lr=lr)
        load_before = common.load_average()
        run = common.ensure_run(work, f"real-{method}", config)
        summary = run.read_summary()
        rows[method] = {key: summary[key] for key in SUMMARY_KEYS if key in summary}
        rows[method].update({"epochs": epochs, "lr": lr, "load_average": [load_before, common.load_average()],
                             "method_config": spec})
        if method == "baseline":
            baseline_path = str(run.path)
        common.log(f"{method}: test acc {summary['test_acc']:.4f}, "
                   f"{summary['macs_per_image'] / 1e6:.2f} M MACs")
    if "baseline" in rows:
        dense_macs = rows["baseline"]["macs_per_image"]
        for row in rows.values():
            row["macs_ratio_vs_baseline"] = dense_macs / row["macs_per_image"]
    config = {k: (str(v) if k in ("out", "work") else v) for k, v in vars(args).items()}
    return {"real_data": {"rows": rows, "config": config, "device": device,
                          "short_run": device == "cpu",
                          "note": SHORT_NOTE if device == "cpu" else "GPU run"}}


def main() -> None:
    args = parse_args()
    common.apply_threads(args.threads, args.clock)
    with common.WorkDir(args.work) as work:
        result = real_data(args, work)
    result["provenance"] = common.provenance()
    result["provenance"]["threads"] = torch.get_num_threads()
    if args.out:
        common.write_json(args.out, result)


if __name__ == "__main__":
    main()

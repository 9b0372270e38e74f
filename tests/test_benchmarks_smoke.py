"""The benchmark scripts' pure helpers: statistics, target checks and argument parsing (no timing)."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import common  # noqa: E402
import run_all  # noqa: E402


def test_summarize_matches_statistics_module() -> None:
    values = [3.0, 1.0, 4.0, 1.5, 5.0]
    stats = common.summarize(values)
    q25, _, q75 = statistics.quantiles(sorted(values), n=4, method="inclusive")
    assert stats["median"] == statistics.median(values)
    assert (stats["q25"], stats["q75"], stats["min"], stats["max"], stats["n"]) == (q25, q75, 1.0, 5.0, 5)
    assert common.summarize([])["median"] is None


def test_pairwise_ratio_is_per_round() -> None:
    stats = common.pairwise_ratio([2.0, 3.0, 12.0], [1.0, 3.0, 4.0])
    assert stats["median"] == 2.0  # ratios 2, 1, 3
    with pytest.raises(ValueError):
        common.pairwise_ratio([1.0], [1.0, 2.0])


def test_targets_follow_the_issue() -> None:
    result = {"slimming_epoch_time_ratio": 1.05, "manidp_epoch_time_ratio": 1.6, "slim_flops_ratio": 4.0,
              "slim_cpu_speedup_b1": 2.0, "manidp_flops_ratio": 4.0, "manidp_executor_speedup_b1": 2.0,
              "page_render_s": {"pages/a.py": 0.5, "pages/b.py": 2.5}}
    targets = run_all.evaluate_targets(result)
    met = {name: check["met"] for name, check in targets.items()}
    assert met == {"slimming_epoch_time_ratio <= 1.1": True, "manidp_epoch_time_ratio <= 1.5": False,
                   "slim_cpu_speedup_b1 >= 0.7 x slim_flops_ratio": False,
                   "manidp_executor_speedup_b1 >= 0.5 x manidp_flops_ratio": True,
                   "page_render_s[pages/a.py] < 2": True, "page_render_s[pages/b.py] < 2": False}
    assert targets["slim_cpu_speedup_b1 >= 0.7 x slim_flops_ratio"]["target"] == pytest.approx(2.8)


def test_common_arguments() -> None:
    parser = common.add_common_args(__import__("argparse").ArgumentParser())
    args = parser.parse_args(["--dataset", "folder:/data/cifar10", "--full", "--out", "x.json"])
    assert (args.dataset, args.full, args.out, args.threads, args.clock) == (
        "folder:/data/cifar10", True, Path("x.json"), 1, "cpu")
    assert parser.parse_args([]).full is False
    with pytest.raises(SystemExit):
        parser.parse_args(["--quick", "--full"])

"""The benchmark scripts' pure helpers (statistics, target checks, argument parsing) and a smoke run of the speed
section with tiny settings: its JSON keys and row fields are checked, its timings never."""

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
              "page_render_s": {"app_pages/a.py": 0.5, "app_pages/b.py": 2.5}}
    targets = run_all.evaluate_targets(result)
    met = {name: check["met"] for name, check in targets.items()}
    assert met == {"slimming_epoch_time_ratio <= 1.1": True, "manidp_epoch_time_ratio <= 1.5": False,
                   "slim_cpu_speedup_b1 >= 0.7 x slim_flops_ratio": False,
                   "manidp_executor_speedup_b1 >= 0.5 x manidp_flops_ratio": True,
                   "page_render_s[app_pages/a.py] < 2": True, "page_render_s[app_pages/b.py] < 2": False}
    assert targets["slim_cpu_speedup_b1 >= 0.7 x slim_flops_ratio"]["target"] == pytest.approx(2.8)


def test_common_arguments() -> None:
    parser = common.add_common_args(__import__("argparse").ArgumentParser())
    args = parser.parse_args(["--dataset", "folder:/data/cifar10", "--full", "--out", "x.json"])
    assert (args.dataset, args.full, args.out, args.threads, args.clock) == (
        "folder:/data/cifar10", True, Path("x.json"), 1, "cpu")
    assert parser.parse_args([]).full is False
    with pytest.raises(SystemExit):
        parser.parse_args(["--quick", "--full"])


@pytest.mark.slow
def test_speed_section_writes_rows_and_headlines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`run_all.py --quick --only speed` end to end with tiny settings: the JSON's keys and row fields (the
    figures themselves are timings and are not checked)."""
    import json

    import bench_speed

    tiny = {"models": ("resnet20", "vgg11"), "width": 0.125, "batches": (1, 2), "threads": (1, 2),
            "forms": {1: ("eager", "bn_folded", "bn_folded_cl", "onnxruntime_aligned"),
                      2: ("bn_folded_cl", "onnxruntime_aligned")},  # as in --quick: no bn_folded
            "rounds": {1: {1: 1, 2: 1}, 2: {1: 1, 2: 1}}, "calls": {1: {1: 1, 2: 1}, 2: {1: 1, 2: 1}},
            "calibration_images": 16, "split": True, "split_rounds": 1}
    monkeypatch.setitem(bench_speed.SIZES, False, {**bench_speed.SIZES[False], **tiny})
    monkeypatch.setenv("PRUNELAB_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "speed.json"
    monkeypatch.setattr(sys, "argv", ["run_all.py", "--quick", "--only", "speed", "--out", str(out)])
    run_all.main()
    result = json.loads(out.read_text())
    headline = ("static_speedup_over_macs_b1", "static_speedup_over_macs_b64", "dynamic_speedup_over_macs_b1",
                "dynamic_speedup_b64")
    assert set(headline) <= set(result) and set(headline) <= set(run_all.HEADLINE)
    assert result["static_speedup_over_macs_b1"] is not None and result["dynamic_speedup_over_macs_b1"] is not None
    assert result["static_speedup_over_macs_b64"] is None  # no batch 64 in the tiny settings
    assert {f"{key} >= {limit}" for key, limit in run_all.SPEED_TARGETS} <= set(result["targets"])
    rows = result["speed_rows"]
    assert all(set(bench_speed.ROW_FIELDS) <= set(row) for row in rows)
    cells = {(r["kind"], r["model"], r["batch"], r["threads"], r["form"]) for r in rows}
    forms = result["details"]["speed"]["config"]["forms"]  # onnxruntime forms only where it is installed
    assert len(cells) == len(rows) == 2 * 2 * 2 * (len(forms["threads_1"]) + len(forms["threads_2"]))
    assert {r["pruned_form"] for r in rows if r["kind"] == "dynamic"} == {"sparse_executor", "batched_executor"}
    speed = result["details"]["speed"]
    assert "speed_rows" not in speed and set(speed["headline_by_model"]) == {"resnet20", "vgg11"}
    for model in ("resnet20", "vgg11"):
        facts = speed["models"][model]
        assert facts["verification"]["executors_passed"] and facts["verification"]["compact_vs_masked"]["passed"]
        assert {"fixed_cost_b1_ms", "layers_b1", "layers_b64", "ops", "union_b8", "union_b64"} <= set(facts["split"])


def test_the_app_benchmark_renders_the_pages_the_app_registers() -> None:
    import bench_app

    from app_components.shell import PAGES, ROOT

    pages = bench_app.app_pages()
    assert pages == [page.file for page in PAGES]
    assert all((ROOT / page).is_file() for page in pages)


def test_the_viewer_benchmark_reads_a_process_trees_memory_and_cpu() -> None:
    """bench_viewer measures the server by its process tree in /proc: a child counts, and its memory is in the sum."""
    import os
    import subprocess
    import time

    import bench_viewer

    child = subprocess.Popen([sys.executable, "-c", "import time; data = bytearray(64 << 20); time.sleep(60)"])
    try:
        deadline = time.monotonic() + 30
        while bench_viewer.tree_rss_mib(child.pid) < 64 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert child.pid in bench_viewer.process_tree(os.getpid())
        assert bench_viewer.tree_rss_mib(child.pid) >= 64  # the 64 MiB it holds are resident
        assert bench_viewer.tree_rss_mib(os.getpid()) >= bench_viewer.tree_rss_mib(child.pid) + 10
        assert bench_viewer.tree_cpu_s(os.getpid()) > 0
    finally:
        child.kill()
        child.wait()


@pytest.mark.slow
def test_a_protocol_session_gets_the_pages_charts_from_a_viewer_server(tmp_path: Path) -> None:
    """bench_viewer's WebSocket student (`--clients protocol`) speaks this Streamlit's protocol: on a viewer server of
    the demos, the Overview and the Per-image page each send a chart, and the Runs page none."""
    import asyncio

    import bench_viewer
    from app_browser import serve_app_process

    runs = tmp_path / "runs"
    runs.mkdir()
    env = {"PRUNELAB_VIEWER": "1", "PRUNELAB_RUNS_DIR": str(runs), "PRUNELAB_CACHE_DIR": str(tmp_path / "cache"),
           "PRUNELAB_NO_DEMO": "0"}

    async def student(url: str) -> tuple[dict, float | None]:
        import websockets

        closer, times = await bench_viewer.protocol_session(url, timeout_s=120)
        await closer.close()
        async with websockets.connect(url.replace("http", "ws", 1) + "/_stcore/stream",
                                      subprotocols=["streamlit"]) as socket:
            return times, await bench_viewer.run_page(socket, "runs", 120)

    with serve_app_process(tmp_path, env) as (url, _):
        times, runs_chart = asyncio.run(student(url))
    assert times["error"] is None, times
    assert times["overview_s"] is not None and times[f"{bench_viewer.PAGE}_s"] is not None
    assert runs_chart is None  # a viewer's Runs page is its table

"""What `prunelab.speed.report` computes from a speed benchmark result, checked against reference computations:
Amdahl's bound against a network timed layer by layer, the thread slowdown against a plain-Python median, the
headline states against the benchmark's own target verdicts (`targets` of the shipped result), the time budget
against figures worked out by hand."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from prunelab.speed import report

SHIPPED = Path(__file__).resolve().parents[3] / "assets" / "speed" / "cpu.json"


@pytest.fixture(scope="module")
def shipped() -> dict[str, Any]:
    return json.loads(SHIPPED.read_text(encoding="utf-8"))


# --- Amdahl's bound -------------------------------------------------------------------------------------
def pruned_time(layers: list[tuple[float, float]], macs_ratio: float) -> float:
    """A network timed layer by layer: each layer's fixed part stays, its MACs-bound part shrinks by the ratio."""
    return sum(fixed + work / macs_ratio for fixed, work in layers)


@pytest.mark.parametrize("macs_ratio", [1.0, 1.5, 2.0, 4.0, 17.0])
def test_amdahl_bound_is_the_speedup_of_a_network_with_fixed_costs(macs_ratio: float) -> None:
    layers = [(0.20, 1.30), (0.15, 2.10), (0.05, 0.40), (0.30, 0.90), (0.10, 0.00)]  # (fixed ms, MACs-bound ms)
    dense = sum(fixed + work for fixed, work in layers)
    fixed = sum(f for f, _ in layers)
    expected = dense / pruned_time(layers, macs_ratio)
    assert report.amdahl_bound(dense, fixed, macs_ratio) == pytest.approx(expected)


def test_amdahl_bound_by_hand_and_at_its_limits() -> None:
    assert report.amdahl_bound(10.0, 4.0, 2.0) == pytest.approx(10.0 / 7.0)  # 4 ms stay, 6 ms halve to 3
    assert report.amdahl_bound(10.0, 0.0, 3.0) == pytest.approx(3.0)  # nothing fixed: the whole MACs ratio
    assert report.amdahl_bound(10.0, 10.0, 3.0) == pytest.approx(1.0)  # everything fixed: no speedup
    bounds = [report.amdahl_bound(10.0, fixed, 3.0) for fixed in (0.0, 1.0, 2.5, 5.0, 9.0)]
    assert bounds == sorted(bounds, reverse=True) and all(b <= 3.0 for b in bounds)


def test_amdahl_of_the_shipped_split(shipped: dict[str, Any]) -> None:
    for model in shipped["details"]["speed"]["models"]:
        split = report.split_of(shipped, model)
        facts = report.model_facts(shipped, model)
        ratio = facts["static_macs_ratio"]
        bound = report.amdahl(split, ratio)
        dense, one_channel = split["fixed_cost_b1_ms"]["dense"], split["fixed_cost_b1_ms"]["one_channel"]
        assert bound == pytest.approx({"dense_ms": dense, "fixed_ms": one_channel, "fixed_share": one_channel / dense,
                                       "amdahl_speedup": pruned_ratio(dense, one_channel, ratio)})
        assert 1.0 <= bound["amdahl_speedup"] <= ratio
        assert "split" not in facts and "cells" not in facts
    assert report.amdahl({"layers_b1": {}}, 2.0) is None


def pruned_ratio(dense: float, fixed: float, macs_ratio: float) -> float:
    """The same bound from one layer: the fixed part, and the rest shrunk by the MACs ratio."""
    return dense / pruned_time([(fixed, dense - fixed)], macs_ratio)


# --- thread slowdown ------------------------------------------------------------------------------------
def test_oversubscribed_is_the_median_two_to_one_thread_ratio_of_the_shipped_rows(shipped: dict[str, Any]) -> None:
    first: dict[tuple[Any, ...], float] = {}
    for row in shipped["speed_rows"]:  # a dense cell is timed once per (model, batch, threads, form): the first row
        first.setdefault((row["model"], row["batch"], row["threads"], row["form"]), row["dense_ms"])
    ratios = [first[(m, b, 2, f)] / ms for (m, b, t, f), ms in first.items() if t == 1 and (m, b, 2, f) in first]
    assert ratios
    assert report.oversubscribed(report.speed_rows(shipped)) == pytest.approx(statistics.median(ratios))


def test_oversubscribed_by_hand() -> None:
    rows = [("eager", 1, 1, 10.0), ("eager", 1, 2, 20.0), ("eager", 8, 1, 10.0), ("eager", 8, 2, 15.0),
            ("eager", 64, 1, 10.0), ("eager", 64, 2, 30.0), ("frozen", 1, 1, 5.0),  # frozen: one thread only
            ("eager", 1, 2, 99.0)]  # the same cell again (another kind's row): the first timing counts
    frame = pd.DataFrame([{"model": "m", "form": f, "batch": b, "threads": t, "dense_ms": ms} for f, b, t, ms in rows])
    assert report.oversubscribed(frame) == pytest.approx(2.0)  # median of 2.0, 1.5 and 3.0
    assert report.oversubscribed(frame[frame["threads"] == 1]) is None


# --- headline figures -----------------------------------------------------------------------------------
def test_headline_states_agree_with_the_benchmarks_own_verdicts(shipped: dict[str, Any]) -> None:
    frame = report.headline_frame(shipped).set_index("figure")
    for key, (label, target, _) in report.HEADLINES.items():
        verdict = shipped["targets"][f"{key} >= {target:g}"]  # written by benchmarks/run_all.py
        row = frame.loc[label]
        assert row["measured (worse model)"] == pytest.approx(verdict["value"]) and row["target"] == verdict["target"]
        if verdict["met"]:
            assert row["state"] == "met"
        else:
            assert row["state"] == f"missed by {1 - verdict['value_over_target']:.0%}"
        per_model = [float(row[label].split()[0]) for label in report.MODEL_LABELS.values() if label in row]
        assert len(per_model) == 2 and min(per_model) == pytest.approx(verdict["value"], abs=0.005)  # the worse


def test_headline_state_by_hand() -> None:
    assert report.headline_state(0.6, 0.8) == "missed by 25%"
    assert report.headline_state(0.8, 0.8) == "met" and report.headline_state(1.3, 1.2) == "met"
    assert report.headline_state(None, 0.8) == "n/a"


def test_headline_frame_of_a_result_without_figures() -> None:
    frame = report.headline_frame({"speed_rows": [{}]})
    assert frame["state"].tolist() == ["n/a"] * 4 and list(frame["figure"]) == [v[0] for v in report.HEADLINES.values()]


# --- rows and time budget -------------------------------------------------------------------------------
def test_speed_rows_label_known_forms_only() -> None:
    frame = report.speed_rows({"speed_rows": [{"form": "bn_folded"}, {"form": "sparse_executor"}]})
    assert frame["form_label"].tolist() == ["BN folded", "sparse_executor"]


def _networks(dense: tuple[float, float, float, int], compact: tuple[float, float, float, int]) -> dict[str, Any]:
    keys = ("whole_ms", "conv_ms", "other_ms", "macs")
    return {"networks": {"dense": dict(zip(keys, dense, strict=True)),
                         "compact": dict(zip(keys, compact, strict=True))}}


def test_time_budget_by_hand() -> None:
    split = {"layers_b1": _networks((10.0, 6.0, 4.0, 100), (8.0, 3.0, 5.0, 40)),
             "layers_b64": _networks((320.0, 300.0, 20.0, 6400), (200.0, 180.0, 20.0, 3200))}
    frame = report.time_budget_frame(split).set_index(["batch", "network"])
    assert frame.loc[("batch 1", "compact"), ["MACs ratio", "conv speedup", "speedup"]].tolist() == \
        pytest.approx([2.5, 2.0, 1.25])  # 100/40 MACs, 6/3 ms of convolutions, 10/8 ms in all
    assert frame.loc[("batch 64", "compact"), ["MACs ratio", "conv speedup", "speedup"]].tolist() == \
        pytest.approx([2.0, 300 / 180, 1.6])
    assert frame.xs("dense", level="network")[["MACs ratio", "conv speedup", "speedup"]].to_numpy() == \
        pytest.approx(1.0)
    assert frame.loc[("batch 1", "compact"), "everything else ms"] == 5.0
    assert report.time_budget_frame({}).empty


def test_result_files_follow_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(report.SPEED_DIR_ENV, raising=False)
    assert SHIPPED in report.result_files()
    (tmp_path / "b.json").write_text("{}")
    (tmp_path / "a.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("")
    monkeypatch.setenv(report.SPEED_DIR_ENV, str(tmp_path))
    assert report.result_files() == [tmp_path / "a.json", tmp_path / "b.json"]
    monkeypatch.setenv(report.SPEED_DIR_ENV, str(tmp_path / "missing"))
    assert report.result_files() == []

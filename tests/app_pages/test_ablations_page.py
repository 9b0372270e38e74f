"""The Ablations page through AppTest, against the real fixture runs and an empty runs folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app_components.charts import METHOD_COLOURS
from prunelab.analysis import lessons, results, tables
from prunelab.runs.store import RunStore
from tests.app_pages.page_helpers import OTHER_DATASET, as_shown, frame_with, runs_on_two_datasets
from tests.app_pages.page_helpers import trace_values as values

SHOWN = ["name", "variant", "seed", "test_acc", "macs_per_image", "macs_reduction", "params",
         "epochs_total", "parent_run", "method", "suite", "dataset"]  # columns the page shows
PAGE = str(Path(__file__).resolve().parents[2] / "app_pages" / "ablations.py")
TIMEOUT = 60


def render() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def finished(root: Path) -> dict[str, dict]:
    """run id -> summary of every run in `root` that is done (read through the store, not the page)."""
    runs = RunStore(root).iter_runs()
    return {info.run_id: info.summary for info in runs if info.state == "done" and info.summary}


def slimming_lambdas(root: Path) -> set[float]:
    """The λ of every finished slimming run in `root` (its config: the one stored copy)."""
    return {info.config.method.sparsity_lambda for info in RunStore(root).iter_runs()
            if info.state == "done" and info.config.method.name == "slimming"}


def test_table_scatter_and_download(runs_env: Path) -> None:
    at = render()
    done = finished(runs_env)
    table = frame_with(at, "name", "variant")
    assert sorted(table["name"]) == sorted(done)  # failed, running and corrupt runs are left out
    for _, row in table.iterrows():
        summary = done[row["name"]]
        assert row["test_acc"] == pytest.approx(summary["test_acc"])
        assert row["macs_per_image"] == pytest.approx(summary["macs_per_image"])
        reference = summary.get("macs_dense") or summary.get("macs_before") or summary["macs_per_image"]
        assert row["macs_reduction"] == pytest.approx(1 - summary["macs_per_image"] / reference)
    charts = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    scatter = next(c for c in charts if c["layout"]["title"]["text"].startswith("Accuracy against MACs"))
    assert {trace["legendgroup"] for trace in scatter["data"]} == {s["method"] for s in done.values()}
    # one point per variant, each its own legend entry, in its method's one colour (the Overview's too)
    assert all(len(trace["x"]) == 1 for trace in scatter["data"])
    assert len({trace["name"] for trace in scatter["data"]}) == len(scatter["data"])
    assert all(trace["marker"]["color"] == METHOD_COLOURS[trace["legendgroup"]] for trace in scatter["data"])
    assert at.get("download_button")[0].label.startswith("Download")
    # runs that differ only in their seed form one variant, shown with mean ± std and error bars
    groups = frame_with(at, "variant", "seeds", "test_acc_mean")
    assert groups["seeds"].sum() == len(done)
    bars = next(c for c in charts if "mean ± std over seeds" in c["layout"]["title"]["text"]
                and c["data"][0]["type"] == "bar")
    assert len(bars["data"][0]["x"]) == len(groups) and "error_y" in bars["data"][0]


def test_claims_are_a_table_to_scan_with_the_details_on_demand(runs_env: Path) -> None:
    """Issue 31: a compact table (claim, paper, measured, verdict), the full text in an expander; the claims
    against the baseline set the measured MACs reduction beside the paper's FLOPs reduction."""
    at = render()
    table = tables.ablation_table(results.runs_table([runs_env]))
    found = lessons.claims(table)
    assert found  # the fixture runs speak to slimming's, ManiDP's and a budget claim
    shown = next(t.value for t in at.table if list(t.value.columns) == ["claim", "paper", "measured", "verdict"])
    assert shown["claim"].tolist() == [c.lesson for c in found]
    assert [v.split(" ", 1)[1] for v in shown["verdict"]] == [c.verdict for c in found]
    rows = zip(shown.iterrows(), found, strict=True)
    budget = [(row, c) for (_, row), c in rows if "against the baseline" in c.lesson]
    assert budget
    for row, claim in budget:
        variant = claim.lesson.split(" against the baseline")[0]
        reduction = table.loc[table["variant"] == variant, "macs_reduction"].mean()
        assert f"at −{reduction:.1%} MACs" in row["measured"] and f"{reduction:.1%}" in claim.measured
        assert "% FLOPs" in row["paper"]
    details = next(e for e in at.expander if e.label.startswith("Every claim in full"))
    in_full = [m.value for m in details.markdown if "Measured here:" in m.value]
    assert len(in_full) == len(found)
    assert len([m for m in at.markdown if "Measured here:" in m.value]) == len(found)  # nowhere else


def test_a_figure_a_variant_lacks_shows_a_dash_not_none(runs_env: Path) -> None:
    """Issue 31: table cells showed "None" (ρ(MACs, loss) of a slimming run, a baseline's |γ| share)."""
    at = render()
    groups = frame_with(at, "label", "seeds", "test_acc_mean", "spearman_macs_loss_mean")
    slimming = groups[groups["label"].str.startswith("slimming")]
    assert len(slimming) and (slimming["spearman_macs_loss_mean"] == "—").all()
    assert not groups.isna().any().any()
    runs = frame_with(at, "name", "variant")
    assert not runs.drop(columns=[c for c in runs.columns if c not in SHOWN]).isna().any().any()


def test_the_papers_claims_are_stated_next_to_the_runs_figures(runs_env: Path) -> None:
    at = render()
    text = " ".join(m.value for m in at.markdown)
    lambdas = slimming_lambdas(runs_env)
    if len(lambdas) >= 2:
        assert "γ piles up at zero as λ grows" in text and "Paper: Network Slimming" in text
    assert "Measured here:" in text


def test_sweep_curve_over_slimming_lambda(runs_env: Path) -> None:
    lambdas = slimming_lambdas(runs_env)
    if len(lambdas) < 2:
        pytest.skip("the fixture has fewer than two slimming runs")
    at = render()
    at.selectbox(key="abl_param").set_value("sparsity_lambda").run()
    assert not at.exception
    sweep = frame_with(at, "value", "test_acc")
    assert sweep["value"].tolist() == sorted(lambdas)
    curve = next(c for c in (json.loads(chart.proto.spec) for chart in at.get("plotly_chart"))
                 if c["data"][0].get("name") == "test accuracy")
    assert curve["data"][0]["x"] == [f"{v:g}" for v in sorted(lambdas)]


@pytest.mark.skipif(not results.DEMO_RUNS_DIR.is_dir(), reason="the bundled demo is not in this checkout")
def test_the_sweep_curve_is_the_mean_per_value_with_a_band(empty_runs_dir: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 31: the curve zig-zagged through the demo's single seeds; it is the mean per λ, ± std as a band."""
    monkeypatch.setenv("PRUNELAB_RUNS_DIR", str(empty_runs_dir))
    monkeypatch.delenv(results.NO_DEMO_ENV, raising=False)
    at = render()
    at.selectbox(key="abl_param").set_value("sparsity_lambda").run()
    assert not at.exception
    runs = frame_with(at, "value", "test_acc")
    stats = runs.groupby("value")["test_acc"].agg(["mean", "std", "size"])
    assert (stats["size"] > 1).all()  # the demo has several seeds per λ
    curve = next(c for c in (json.loads(chart.proto.spec) for chart in at.get("plotly_chart"))
                 if c["data"][0].get("name") == "test accuracy")
    traces = {t["name"]: t for t in curve["data"]}
    mean, upper = traces["test accuracy"], traces["test accuracy ± std"]
    assert mean["x"] == [f"{v:g}" for v in stats.index]
    assert values(mean["y"]) == pytest.approx(stats["mean"].to_numpy())
    assert values(upper["y"]) == pytest.approx((stats["mean"] + stats["std"]).to_numpy())
    assert upper["fill"] == "tonexty" and values(traces["test accuracy − std"]["y"]) == pytest.approx(
        (stats["mean"] - stats["std"]).to_numpy())
    assert len(values(traces["test accuracy: each run"]["y"])) == len(runs)


def test_suite_filter(runs_env: Path) -> None:
    at = render()
    options = at.selectbox(key="abl_suite").options
    assert any("fixture" in option for option in options)
    at.selectbox(key="abl_suite").set_value("fixture").run()
    assert not at.exception and len(frame_with(at, "name", "variant")) == len(finished(runs_env))


def test_empty_runs_dir(empty_runs_env: Path) -> None:
    at = render()
    assert at.info and "No finished runs" in at.info[0].value
    assert not at.get("plotly_chart") and not at.dataframe


def test_runs_on_two_datasets_are_shown_one_dataset_at_a_time(fixture_runs_dir: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Copies of the finished fixture runs that claim another dataset: the page offers the two datasets and
    its table, claims and charts hold one of them only."""
    done = finished(fixture_runs_dir)
    runs_on_two_datasets(fixture_runs_dir, done, tmp_path / "runs", monkeypatch)
    at = render()
    choice = at.get("button_group")[0]
    assert choice.label == "Dataset" and sorted(choice.options) == ["cifar10-demo", "shapes"]
    for dataset, names in (("shapes", sorted(done)), (OTHER_DATASET, sorted(f"{r}-other" for r in done))):
        at.get("button_group")[0].set_value(dataset).run()
        assert not at.exception
        assert sorted(frame_with(at, "name", "variant")["name"]) == names


def test_the_controls_are_shown_against_the_runs_they_control(control_runs_env: Path) -> None:
    """Slimming against random channels and its architecture from scratch, ManiDP against a static network of its
    mean MACs: a bar per variant, the table of method and control, and each verdict in plain words."""
    from prunelab.analysis import controls

    at = render()
    found = controls.controls(tables.ablation_table(results.runs_table([control_runs_env])))
    assert {(c.reference_method, c.control_method) for c in found} == {
        ("slimming", "random"), ("slimming", "scratch"), ("manidp", "scratch")}
    shown = frame_with(at, "question", "role", "difference")
    assert shown["role"].tolist() == ["method", "control"] * 3
    rows = controls.control_table(found)
    assert shown["variant"].tolist() == rows["variant"].tolist()
    charts = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    bars = next(c for c in charts if c["layout"]["title"]["text"].startswith("Controls at equal MACs"))
    assert list(bars["data"][0]["y"]) == list(dict.fromkeys(shown["variant"]))  # each variant once
    methods = rows.drop_duplicates("variant")["method"]
    assert list(bars["data"][0]["marker"]["color"]) == [METHOD_COLOURS[m] for m in methods]
    words = as_shown(" ".join(m.value for m in at.markdown))
    for control in found:  # one seed each here: the noise is unknown, and the page says the paper's words
        assert control.question in words and control.finding in words and "noise is unknown" in control.finding
    assert "Liu et al." in words and "Tang et al." in words and "Network Slimming (Liu et al., ICCV 2017)" in words
    claims = next(t.value for t in at.table if list(t.value.columns) == ["claim", "paper", "measured", "verdict"])
    assert {c.lesson for c in found} <= set(claims["claim"])  # and among the claims


def test_without_controls_the_page_says_how_to_make_them(runs_env: Path) -> None:
    at = render()
    assert any("python -m prunelab suite controls" in c.value for c in at.caption)

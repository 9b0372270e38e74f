"""The Slimming page through AppTest, against the real fixture runs and an empty runs folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from prunelab.analysis import results
from prunelab.analysis.tables import prune_denominator_text
from prunelab.methods.slimming.reprune import what_if
from tests.app_pages.page_helpers import fixture_run, metric, plotly_figures, url_param
from tests.app_pages.page_helpers import trace_values as values

PAGE = str(Path(__file__).resolve().parents[2] / "app_pages" / "slimming.py")
TIMEOUT = 60
RUN = "fx-slim-l1e-3"
DEMO_RUNS = Path(__file__).resolve().parents[2] / "assets" / "demo_runs"


def render(run_id: str | None = None, runs_dir: Path | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    if run_id is not None:
        at.selectbox(key="slim_run").set_value(str(runs_dir / run_id)).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def figure(at: AppTest, position: int) -> dict:
    """The plotly figure JSON of the page's `position`-th chart."""
    return plotly_figures(at)[position]


@pytest.fixture
def slim_run(runs_env: Path) -> Path:
    return fixture_run(runs_env, RUN, "pruning.json")


def test_renders_summary_figures_and_charts(slim_run: Path) -> None:
    at = render(RUN, slim_run.parent)
    summary = json.loads((slim_run / "summary.json").read_text())
    assert metric(at, "Before pruning") == f"{summary['acc_before_prune']:.1%}"
    assert metric(at, "Right after pruning") == f"{summary['acc_after_prune']:.1%}"
    assert metric(at, "After fine-tuning") == f"{summary['acc_after_finetune']:.1%}"
    assert metric(at, "Parameters") == f"{summary['params_after']:,}"
    assert len(at.get("plotly_chart")) == 3  # gamma histograms, channels per layer, what-if channels
    layers = json.loads((slim_run / "pruning.json").read_text())["layers"]
    before, after = figure(at, 1)["data"]
    assert values(before["y"]).tolist() == [layer["channels_before"] for layer in layers]
    assert values(after["y"]).tolist() == [layer["channels_after"] for layer in layers]
    assert any("MACs (multiply-accumulates)" in m.label for m in at.metric)
    assert not at.info


def test_histograms_follow_epoch_and_layer(slim_run: Path) -> None:
    at = render(RUN, slim_run.parent)
    at.multiselect(key="slim_compare_shapes").set_value([str(slim_run)]).run()
    history = np.load(slim_run / "gamma_history.npz")
    names = [str(n) for n in history["layer_names"]]
    at.slider(key="slim_epoch").set_value(0).run()
    at.selectbox(key="slim_layer").set_value(names[-1]).run()
    assert not at.exception
    histogram = figure(at, 0)
    counts = values(histogram["data"][0]["y"])
    assert len(histogram["data"]) == 1  # one run compared
    assert int(counts.sum()) == history[f"layer_{len(names) - 1}"].shape[1]  # one count per channel
    # at initialisation every |gamma| is the same, so one bin holds them all
    assert np.count_nonzero(counts) == 1
    # the global threshold that applied at the epoch shown is drawn as a vertical line: at epoch 0 ...
    assert any(shape.get("x0") == pytest.approx(history["thresholds"][0]) for shape in histogram["layout"]["shapes"])
    at.slider(key="slim_epoch").set_value(int(history["epochs"][-1])).run()
    threshold = json.loads((slim_run / "pruning.json").read_text())["threshold"]  # ... and at the last epoch
    shapes = figure(at, 0)["layout"]["shapes"]
    assert any(shape.get("x0") == pytest.approx(threshold) for shape in shapes)
    # the share of |gamma| below 0.05 at that epoch is stated per run
    gammas = np.concatenate([history[f"layer_{i}"][-1] for i in range(len(names))])
    assert any(m.value == f"{np.mean(gammas < 0.05):.1%}" for m in at.metric if "|γ| < 0.05" in m.label)


def test_what_if_slider_recomputes(slim_run: Path) -> None:
    at = render(RUN, slim_run.parent)
    at.slider(key="slim_ratio").set_value(0.3).run()
    assert not at.exception
    expected = what_if(slim_run, 0.3)
    assert metric(at, "Threshold |γ|") == f"{expected['threshold']:.4f}"
    assert metric(at, "Test accuracy, no fine-tuning") == f"{expected['acc']:.1%}"
    macs = [m.value for m in at.metric if m.label.startswith("MACs")]
    assert macs[-1] == f"{expected['macs'] / 1e6:.3f} M"


def test_running_run_gets_a_message(runs_env: Path) -> None:
    if not (runs_env / "fx-running").is_dir():
        pytest.skip("no running fixture run")
    at = render("fx-running", runs_env)
    assert any("not finished" in i.value for i in at.info)


def test_empty_runs_dir(empty_runs_env: Path) -> None:
    at = render()
    assert at.info and "slimming" in at.info[0].value.lower()
    assert not at.get("plotly_chart")


def test_a_run_without_fine_tuning_is_not_labelled_after_fine_tuning(slim_run: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 31: a run with 0 fine-tune epochs showed its final accuracy as 'After fine-tuning'."""
    import shutil

    runs = tmp_path / "runs"
    shutil.copytree(slim_run, runs / "no-finetune")
    config = json.loads((runs / "no-finetune" / "config.json").read_text())
    config["method"]["finetune_epochs"] = 0
    (runs / "no-finetune" / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("PRUNELAB_RUNS_DIR", str(runs))
    at = render()
    summary = json.loads((slim_run / "summary.json").read_text())
    assert metric(at, "Final (0 fine-tune epochs)") == f"{summary['acc_after_finetune']:.1%}"
    assert "After fine-tuning" not in {m.label for m in at.metric}


@pytest.mark.skipif(not results.DEMO_RUNS_DIR.is_dir(), reason="the bundled demo is not in this checkout")
def test_a_demo_run_says_truly_why_it_cannot_be_exported(empty_runs_dir: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 31: a shipped demo run (finished, but without model.pt) said 'needs a finished run'."""
    monkeypatch.setenv("PRUNELAB_RUNS_DIR", str(empty_runs_dir))
    monkeypatch.delenv(results.NO_DEMO_ENV, raising=False)
    at = render()
    assert results.is_demo(at.selectbox(key="slim_run").value)
    info = " ".join(i.value for i in at.info)
    assert "ship without their final model (model.pt)" in info and "needs a finished run" not in info


def test_histogram_titles_name_runs_briefly(slim_run: Path) -> None:
    """Issue 31: the subplot titles (time-stamped folder names) overlapped; each is now λ and the run's name
    on two lines."""
    at = render(RUN, slim_run.parent)
    titles = [a["text"] for a in figure(at, 0)["layout"]["annotations"] if a["text"].startswith("λ = ")]
    chosen = [p for p in at.multiselect(key="slim_compare_shapes").value if (Path(p) / "gamma_history.npz").is_file()]
    assert sorted(t.split("<br>")[1] for t in titles) == sorted(
        json.loads((Path(p) / "config.json").read_text())["name"] for p in chosen)


def _denominator_lines(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if "prunable channels" in m.value]


def test_the_prune_ratio_names_what_it_is_a_fraction_of(slim_run: Path) -> None:
    """A reference-form run (vgg11): every BN in the scope, so the prunable channels are all of the network's."""
    at = render(RUN, slim_run.parent)
    pruning = json.loads((slim_run / "pruning.json").read_text())
    prunable = sum(row["channels_before"] for row in pruning["layers"])
    removed = prunable - sum(row["channels_after"] for row in pruning["layers"])
    assert _denominator_lines(at) == [
        f"Prune ratio {pruning['prune_ratio']:.0%}: the global threshold removed {removed / prunable:.0%} of "
        f"{prunable} prunable channels (every channel of the network)."]
    assert at.slider(key="slim_ratio").label == f"Prune ratio (fraction of the {prunable} prunable channels removed)"
    at.slider(key="slim_ratio").set_value(0.3).run()
    expected = what_if(slim_run, 0.3)
    assert f"At 30% the threshold removes {prune_denominator_text(expected)}." in [c.value for c in at.caption]
    assert expected["channels_removed"] == round(0.3 * prunable)


def test_an_interior_only_run_from_before_the_counts_names_both_denominators(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A shipped interior-only demo run, its recorded counts stripped as runs before them wrote it: the page
    names the prunable (interior) channels and all of the network's, computed from the run's model spec."""
    source = next((p.parent for p in sorted(DEMO_RUNS.glob("*/pruning.json"))
                   if not json.loads(p.read_text()).get("prune_residual", False)
                   and json.loads((p.parent / "config.json").read_text())["model"]["name"] == "resnet20"
                   and json.loads((p.parent / "config.json").read_text())["method"]["name"] == "slimming"), None)
    if source is None:
        pytest.skip("no interior-only resnet20 slimming run among the shipped demos")
    runs = tmp_path / "runs"
    run = Path(shutil.copytree(source, runs / source.name))
    for name in ("pruning.json", "summary.json"):
        data = json.loads((run / name).read_text())
        for key in ("channels_prunable", "channels_all", "channels_removed"):
            data.pop(key, None)
        (run / name).write_text(json.dumps(data))
    monkeypatch.setenv("PRUNELAB_RUNS_DIR", str(runs))
    monkeypatch.setenv("PRUNELAB_NO_DEMO", "1")
    at = render(run.name, runs)
    pruning = json.loads((run / "pruning.json").read_text())
    prunable = sum(row["channels_before"] for row in pruning["layers"])  # the nine bn_a
    removed = prunable - sum(row["channels_after"] for row in pruning["layers"])
    every = prunable * 4 // 3  # resnet20: + one residual stream per stage, as wide as its three bn_a together / 3
    assert _denominator_lines(at) == [
        f"Prune ratio {pruning['prune_ratio']:.0%}: the global threshold removed {removed / prunable:.0%} of "
        f"{prunable} prunable channels; {removed / every:.0%} of all {every} channels."]


def test_compares_one_seed_of_each_lambda_and_shares_them_as_a_url(slim_run: Path) -> None:
    """Figure 4's comparison is the default (every λ of the inspected run's setting once); `?run=` and
    `?compare=` open the page on the runs they name."""
    at = render(slim_run.name, slim_run.parent)
    compare = at.multiselect(key="slim_compare_shapes")
    assert sorted(Path(str(p)).name for p in compare.value) == ["fx-slim-l0", "fx-slim-l1e-3"]
    assert url_param(at, "run") == slim_run.name
    shared = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    shared.query_params.update({"run": "fx-slim-l0", "compare": "fx-slim-l1e-3"})
    shared.run()
    assert not shared.exception
    assert shared.selectbox(key="slim_run").value == str(slim_run.parent / "fx-slim-l0")
    assert [Path(str(p)).name for p in shared.multiselect(key="slim_compare_shapes").value] == ["fx-slim-l1e-3"]

"""The Runs page through AppTest: rendering with real runs and with none, form validation, submission."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

import app_components.common
from prunelab.analysis import results
from prunelab.config import (
    MAX_TRAIN_IMAGES,
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    field_bounds,
)
from prunelab.methods.slimming.config import SlimmingConfig
from prunelab.runs.store import RunStore
from prunelab.scheduling.jobs import JobManager
from prunelab.scheduling.limits import RAY_NUM_CPUS, RAY_NUM_GPUS, SWEEP_VALUES
from prunelab.scheduling.protocol import JobInfo
from prunelab.training import resources
from tests.app_pages.page_helpers import as_shown

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "app_pages" / "runs.py")
TIMEOUT = 60


class RecordingManager:
    """Stands in for the JobManager: records what the page submits."""

    def __init__(self) -> None:
        self.configs: list[RunConfig] = []
        self.suites: list[Any] = []

    def submit(self, config: RunConfig) -> str:
        self.configs.append(config)
        return f"recorded-{len(self.configs)}"

    def submit_suite(self, suite: Any) -> list[str]:
        self.suites.append(suite)
        return [run.key for run in suite.runs]

    def jobs(self) -> list[Any]:
        return []

    def cancel(self, run_id: str) -> bool:
        return False


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> RecordingManager:
    manager = RecordingManager()
    monkeypatch.setattr(app_components.common, "get_job_manager", lambda: manager)
    return manager


def render() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def errors(at: AppTest) -> str:
    return " | ".join(str(e.value) for e in at.error)


def test_renders_fixture_runs(runs_env: Path) -> None:
    at = render()
    table = at.dataframe[0].value
    readable = {info.run_id for info in RunStore(runs_env).iter_runs()}
    assert "fx-corrupt" not in readable and {"fx-baseline", "fx-running", "fx-failed"} <= readable
    assert set(table["name"]) == readable | {"fx-corrupt"}  # every run, the corrupt one listed as broken
    states = dict(zip(table["name"], table["state"], strict=True))
    assert states["fx-corrupt"] == "broken"
    assert "config.json is corrupt" in table.loc[table["name"] == "fx-corrupt", "problem"].item()
    assert states["fx-running"] == "running" and states["fx-failed"] == "failed"
    failed_error = table.loc[table["name"] == "fx-failed", "error"].item()
    assert "does not exist" in failed_error  # the failure's message is shown
    assert not table["demo"].any()
    assert "Traceback" not in " ".join(str(m.value) for m in at.markdown)


def test_renders_empty_runs_dir(empty_runs_env: Path) -> None:
    at = render()
    assert any("No runs yet" in str(info.value) for info in at.info)
    assert len(at.dataframe) == 0


@pytest.mark.parametrize(("key", "value", "field"), [
    ("form_epochs", 0, "train.epochs"),
    ("form_width", 0.0, "model.width"),
    ("form_batch_size", -4, "train.batch_size"),
    ("form_train_size", 5, "data.train_size"),
    ("form_threads", -2, "train.threads"),
])
def test_form_rejects_bad_values(empty_runs_env: Path, recorder: RecordingManager, key: str, value: float,
                                 field: str) -> None:
    at = render()
    at.number_input(key=key).set_value(value)
    at.button(key="FormSubmitter:run_form-Start run").click().run()
    assert field in errors(at)
    assert recorder.configs == []


def test_form_rejects_bad_method_setting_and_missing_folder(empty_runs_env: Path,
                                                            recorder: RecordingManager) -> None:
    at = render()
    at.radio(key="form_method").set_value("slimming").run()
    at.number_input(key="form_slimming_prune_ratio").set_value(1.5)
    at.button(key="FormSubmitter:run_form-Start run").click().run()
    assert "prune_ratio" in errors(at) and "less than 1" in errors(at)
    at.number_input(key="form_slimming_prune_ratio").set_value(0.3)
    at.selectbox(key="form_dataset").set_value("folder:PATH")
    at.text_input(key="form_folder").set_value("/nonexistent/images")
    at.button(key="FormSubmitter:run_form-Start run").click().run()
    assert "does not exist" in errors(at)
    assert recorder.configs == []


def test_valid_form_submits_the_config(empty_runs_env: Path, recorder: RecordingManager) -> None:
    at = render()
    at.radio(key="form_method").set_value("manidp").run()
    at.text_input(key="form_name").set_value("my run")
    at.number_input(key="form_epochs").set_value(3)
    at.number_input(key="form_threads").set_value(1)
    at.number_input(key="form_manidp_lambda_prime").set_value(1.5)
    at.checkbox(key="form_manidp_similarity").uncheck()
    at.button(key="FormSubmitter:run_form-Start run").click().run()
    assert not at.exception and errors(at) == ""
    [config] = recorder.configs
    assert config.name == "my-run" and config.train.epochs == 3 and config.train.threads == 1
    assert config.method.name == "manidp" and config.method.lambda_prime == 1.5
    assert config.method.similarity is False and config.method.complexity is True
    assert any("recorded-1" in str(s.value) for s in at.success)


def test_the_form_submits_a_torchvision_model_with_its_stem_and_weights(empty_runs_env: Path,
                                                                       recorder: RecordingManager,
                                                                       tmp_path: Path) -> None:
    import torch

    from prunelab.models import build_model, model_spec

    weights = tmp_path / "mine.pt"
    torch.save(build_model(model_spec("torchvision:mobilenet_v2", 10)).state_dict(), weights)
    at = render()
    at.selectbox(key="form_model").set_value("torchvision:mobilenet_v2")
    at.checkbox(key="form_cifar_stem").uncheck()
    at.text_input(key="form_weights").set_value(str(weights))
    at.button(key="FormSubmitter:run_form-Start run").click().run()
    assert not at.exception and errors(at) == ""
    [config] = recorder.configs
    assert (config.model.name, config.model.width, config.model.cifar_stem) == ("torchvision:mobilenet_v2", 1.0, False)
    assert config.model.weights == str(weights)
    at.selectbox(key="form_model").set_value("torchvision:vit_b_16")  # 224x224 only: refused before it starts
    at.text_input(key="form_weights").set_value("")
    at.button(key="FormSubmitter:run_form-Start run").click().run()
    assert "does not run on 32x32 images" in errors(at) and len(recorder.configs) == 1


@pytest.mark.parametrize(("form", "picked", "expected"), [
    ("reference", ["detached_complexity_weight"], ["detached_complexity_weight"]),
    ("reference", [], []),
    ("prunelab", [], ["small_gate_init", "post_relu_similarity_features", "gates_only_similarity",
                      "smoothed_gate_cosine", "detached_complexity_weight", "pair_quantile_thresholds",
                      "sampled_initial_c"]),
])
def test_the_run_form_sets_the_form_and_single_departures(empty_runs_env: Path, recorder: RecordingManager,
                                                          form: str, picked: list[str], expected: list[str]) -> None:
    at = render()
    at.radio(key="form_method").set_value("manidp").run()
    at.selectbox(key="form_manidp_form").set_value(form)
    at.multiselect(key="form_manidp_departures").set_value(picked)
    at.button(key="FormSubmitter:run_form-Start run").click().run()
    assert not at.exception and errors(at) == ""
    [config] = recorder.configs
    assert config.method.form == form and config.method.departures == expected


def test_suite_form_sweep(empty_runs_env: Path, recorder: RecordingManager) -> None:
    at = render()
    at.selectbox(key="suite_name").set_value("sweep")
    at.selectbox(key="suite_param").set_value("prune_ratio")
    at.text_input(key="suite_values").set_value("0.3, oops")
    at.button(key="FormSubmitter:suite_form-Start suite").click().run()
    assert "oops" in errors(at) and recorder.suites == []
    at.text_input(key="suite_values").set_value("0.3, 0.6")
    at.number_input(key="suite_epochs").set_value(2)
    at.button(key="FormSubmitter:suite_form-Start suite").click().run()
    [suite] = recorder.suites
    ratios = [run.config.method.prune_ratio for run in suite.runs if run.config.method.name == "slimming"]
    assert ratios == [0.3, 0.6] and all(run.config.train.epochs == 2 for run in suite.runs)


def test_suite_form_offers_the_controls_suite(empty_runs_env: Path, recorder: RecordingManager) -> None:
    at = render()
    assert "controls" in at.selectbox(key="suite_name").options
    at.selectbox(key="suite_name").set_value("controls")
    at.button(key="FormSubmitter:suite_form-Start suite").click().run()
    [suite] = recorder.suites
    methods = [run.config.method.name for run in suite.runs]
    assert suite.name == "controls" and methods.count("random") == 1 and methods.count("scratch") == 2
    assert {run.init_from for run in suite.runs if run.config.method.name in ("random", "scratch")} == {
        "slim-l8e-3", "manidp-both"}


def test_demo_live_button_submits_the_demo_suite(empty_runs_env: Path, recorder: RecordingManager) -> None:
    at = render()
    at.button(key="demo_live").click().run()
    [suite] = recorder.suites
    methods = [run.config.method.name for run in suite.runs]
    assert suite.name == "demo" and methods.count("slimming") == 3 and methods.count("manidp") == 4


def test_form_run_trains_through_a_real_manager(empty_runs_env: Path, data_cache_dir: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    manager = JobManager(empty_runs_env, max_concurrent=1)
    monkeypatch.setattr(app_components.common, "get_job_manager", lambda: manager)
    try:
        at = render()
        for key, value in (("form_train_size", 100), ("form_test_size", 50), ("form_epochs", 1),
                           ("form_width", 0.25), ("form_batch_size", 50)):
            at.number_input(key=key).set_value(value)
        at.button(key="FormSubmitter:run_form-Start run").click().run()
        assert errors(at) == ""
        [job] = manager.jobs()
        assert manager.wait(job.run_id, timeout=120)
        at.run()
        table = at.dataframe[0].value
        assert table["state"].tolist() == ["done"] and table["test_acc"].notna().all()
        assert any("100%" in str(bar.proto.text) for bar in at.get("progress"))
    finally:
        manager.shutdown()


def test_render_time(runs_env: Path) -> None:
    """A warm rerun of the Runs page stays interactive (the runs table is cached by file mtimes)."""
    at = render()
    started = time.perf_counter()
    at.run()
    assert time.perf_counter() - started < 2.0


def test_delete_selected_runs_after_confirmation(fixture_runs_dir: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    runs = tmp_path / "runs"
    for run_id in ("fx-baseline", "fx-running"):
        shutil.copytree(fixture_runs_dir / run_id, runs / run_id)
    monkeypatch.setenv("PRUNELAB_RUNS_DIR", str(runs))
    monkeypatch.setenv("PRUNELAB_NO_DEMO", "1")
    at = render()
    names = at.dataframe[0].value["name"].tolist()
    at.session_state["runs_table"] = {"selection": {"rows": [0, 1], "columns": [], "cells": []}}
    at.run()
    at.button(key="delete_runs").click().run()
    at.button(key="delete_cancel").click().run()
    assert sorted(p.name for p in runs.iterdir()) == ["fx-baseline", "fx-running"]  # cancelled: nothing gone
    at.button(key="delete_runs").click().run()
    assert set(names) == {"fx-baseline", "fx-running"}
    assert any("removed from disk" in str(m.value) for m in at.markdown)
    at.button(key="delete_confirm").click().run()
    assert [p.name for p in runs.iterdir()] == ["fx-running"]  # a running run is refused, with its reason
    assert "cancel it before deleting" in errors(at)


def test_first_visit_lists_the_demo_and_points_to_the_pages(fixture_runs_dir: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    demo = tmp_path / "demo_runs"
    for run_id in ("fx-baseline", "fx-slim-l0"):
        shutil.copytree(fixture_runs_dir / run_id, demo / run_id)
    monkeypatch.setattr(results, "DEMO_RUNS_DIR", demo)
    monkeypatch.delenv(results.NO_DEMO_ENV, raising=False)
    monkeypatch.setenv("PRUNELAB_RUNS_DIR", str(tmp_path / "runs"))  # no user runs yet
    at = render()
    table = at.dataframe[0].value
    assert sorted(table["name"]) == ["fx-baseline", "fx-slim-l0"] and table["demo"].all()
    note = " ".join(str(s.value) for s in at.success)
    assert "demo" in note and ("Slimming" in note or not (ROOT / "app_pages" / "slimming.py").exists())
    at.session_state["runs_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    at.button(key="delete_runs").click().run()
    assert any("read-only" in str(w.value) for w in at.warning)
    assert "delete_confirm" not in [b.key for b in at.button]  # nothing to delete: demo runs stay
    assert sorted(p.name for p in demo.iterdir()) == ["fx-baseline", "fx-slim-l0"]


def test_form_limits_come_from_the_config(empty_runs_env: Path, recorder: RecordingManager) -> None:
    at = render()
    expected = {"form_train_size": (DataConfig, "train_size"), "form_test_size": (DataConfig, "test_size"),
                "form_width": (ModelConfig, "width"), "form_epochs": (TrainConfig, "epochs"),
                "form_batch_size": (TrainConfig, "batch_size"), "form_threads": (TrainConfig, "threads"),
                "suite_epochs": (TrainConfig, "epochs")}
    for key, (cls, name) in expected.items():
        assert at.number_input(key=key).max == field_bounds(cls, name)[1], key
    at.radio(key="form_method").set_value("slimming").run()
    assert at.number_input(key="form_slimming_finetune_epochs").max == field_bounds(SlimmingConfig,
                                                                                    "finetune_epochs")[1]


def test_suite_form_caps_its_counts_at_the_limits(empty_runs_env: Path, recorder: RecordingManager) -> None:
    at = render()
    for key, limit in (("suite_ray_cpus", RAY_NUM_CPUS), ("suite_ray_gpus", RAY_NUM_GPUS)):
        assert at.number_input(key=key).max == limit.high, key
    assert f"{SWEEP_VALUES.allowed()} values" in at.text_input(key="suite_values").help
    at.selectbox(key="suite_name").set_value("sweep")
    at.text_input(key="suite_values").set_value(", ".join(f"{i}e-6" for i in range(3000)))
    at.button(key="FormSubmitter:suite_form-Start suite").click().run()
    assert "the number of sweep values (--values) must be between 1 and 100" in errors(at)
    assert "got 3,000" in errors(at) and recorder.suites == []


def test_form_refuses_a_run_that_does_not_fit_in_memory(empty_runs_env: Path, recorder: RecordingManager,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resources, "available_memory", lambda: 2**30)
    at = render()
    at.number_input(key="form_train_size").set_value(MAX_TRAIN_IMAGES)
    at.button(key="FormSubmitter:run_form-Start run").click().run()
    assert "needs about" in errors(at) and "only 1.0 GiB is available" in errors(at)
    assert recorder.configs == []
    at.selectbox(key="suite_name").set_value("sweep")
    at.text_input(key="suite_values").set_value("0, inf")
    at.button(key="FormSubmitter:suite_form-Start suite").click().run()
    assert "not a finite number" in errors(at) and recorder.suites == []


def test_a_job_name_error_and_node_from_run_files_show_as_text(empty_runs_env: Path, recorder: RecordingManager,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A resumed run's name is its folder's (anything but a slash), its error and node its status.json's: the
    Jobs panel shows their characters, never bold, a link, an image, HTML, colour or LaTeX made of them."""
    name = "**bold** [link](x) ![i](y) <b>html</b> $x$ :red[z]"
    job = JobInfo(run_id="r1", state="failed", name=name, method="baseline", error="\x1b]0;pwned\x07 *it*",
                  progress={"fraction": 1.0, "phase": "_train_", "backend": "ray", "node": "n*1*"})
    monkeypatch.setattr(recorder, "jobs", lambda: [job])
    at = render()
    row = next(str(m.value) for m in at.markdown if "html" in str(m.value))
    assert row.startswith(r"**\*\*bold\*\* \[link\]\(x\) \!\[i\]\(y\) \<b\>html\<\/b\> \$x\$ \:red\[z\]**")
    assert as_shown(row).startswith(f"**{name}**") and row.endswith(r"baseline · failed · Ray on n\*1\*")
    failed = errors(at)
    assert failed.endswith(r"failed: \\x1b\]0\;pwned\\x07 \*it\*") and "\x1b" not in failed
    assert as_shown(failed).endswith(r"failed: \x1b]0;pwned\x07 *it*")  # the escape code shown, not acted on



def test_a_selected_run_folder_named_with_markup_shows_its_name_as_code(empty_runs_env: Path) -> None:
    """The detail view of one selected run names its folder in a code span no backtick of the name closes."""
    run = RunStore(empty_runs_env).create(RunConfig(), "plain")
    run.write_status(state="failed", backend="ray", node="node **1** <b>")
    run.path.rename(empty_runs_env / "a`b` **c** [d](e) <i>x")
    at = render()
    at.session_state["runs_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    detail = next(str(m.value) for m in at.markdown if str(m.value).startswith("**Run "))
    assert detail == ("**Run ``a`b` **c** [d](e) <i>x``** · baseline · failed · trained on Ray, node "
                      "`node **1** <b>`")

ALLOW = "PRUNELAB_ALLOW_RAY_ADDRESS"


def test_the_ray_address_field_is_off_unless_the_operator_allows_it(empty_runs_env: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOW, raising=False)
    at = render()
    assert "suite_ray_address" not in {field.key for field in at.text_input}
    assert any(f"`{ALLOW}=1`" in str(caption.value) for caption in at.caption)
    monkeypatch.setenv(ALLOW, "1")
    at = render()
    assert at.text_input(key="suite_ray_address").placeholder == "HOST:PORT"


@pytest.mark.parametrize("address", ["head node:6379", "10.0.0.5:6379\x1b[2J", "head-node", "ray://head:99999",
                                     "http://head:6379"])
def test_an_invalid_ray_address_is_refused_with_the_format(empty_runs_env: Path, recorder: RecordingManager,
                                                           monkeypatch: pytest.MonkeyPatch, address: str) -> None:
    monkeypatch.setenv(ALLOW, "1")
    at = render()
    at.radio(key="suite_backend").set_value("ray")
    at.text_input(key="suite_ray_address").set_value(address)
    at.selectbox(key="suite_name").set_value("sweep")
    at.text_input(key="suite_values").set_value("0")
    at.button(key="FormSubmitter:suite_form-Start suite").click().run()
    assert as_shown(errors(at)) == (f"Cannot start on Ray: Ray address {address!r} is not HOST:PORT (e.g. "
                                    "10.0.0.5:6379, the head node's address that `ray start --head` prints), "
                                    "ray://HOST:PORT or auto")
    assert recorder.suites == [] and not any(empty_runs_env.iterdir())

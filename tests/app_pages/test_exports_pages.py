"""Exports in the app (AppTest, real fixture runs): the Slimming page's ONNX panel with both runtimes'
latency, the run detail view's downloads, and the suite form's Ray backend refusing an unreachable cluster."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app_components import run_exports
from prunelab.export.onnx import MANIDP_NOTE
from tests.app_pages.page_helpers import as_shown, fixture_run

ROOT = Path(__file__).resolve().parents[2]
EXPORT_TIMEOUT = 300  # a torch.onnx export and two latency measurements on a busy 2-core machine


def downloads(at: AppTest) -> dict[str, str]:
    """label -> key of every download button on the page."""
    found = {}
    for element in at.get("download_button"):
        proto = element.proto
        found[proto.label] = proto.id
    return found


def test_slimming_page_exports_onnx_with_both_latencies(runs_env: Path) -> None:
    run = fixture_run(runs_env, "fx-slim-l1e-3", "model.pt")
    at = AppTest.from_file(str(ROOT / "app_pages" / "slimming.py"), default_timeout=EXPORT_TIMEOUT).run()
    at.selectbox(key="slim_run").set_value(str(run)).run()
    assert "Download the ONNX file" not in downloads(at)  # nothing exported until asked
    at.button(key="slim_onnx").click().run()
    assert not at.exception, [e.value for e in at.exception]
    shown = {m.label: m.value for m in at.metric}
    for batch in (1, 64):
        for runtime in ("PyTorch", "onnxruntime"):
            assert re.fullmatch(r"\d+\.\d\d ms", shown[f"{runtime}, batch {batch}"]), shown
    caption = " ".join(str(c.value) for c in at.caption)
    assert "onnxruntime's outputs match PyTorch's within" in caption and "test images of shapes" in caption
    assert "Download the ONNX file" in downloads(at)


def test_run_detail_offers_onnx_and_tensorboard_downloads(runs_env: Path) -> None:
    at = AppTest.from_file(str(ROOT / "app_pages" / "runs.py"), default_timeout=60).run()
    names = at.dataframe[0].value["name"].tolist()
    for name, onnx in (("fx-manidp-full", True), ("fx-running", False)):
        at.session_state["runs_table"] = {"selection": {"rows": [names.index(name)], "columns": [], "cells": []}}
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        buttons = downloads(at)
        assert "Download TensorBoard bundle (zip)" in buttons
        assert ("Download ONNX model" in buttons) == onnx
        captions = " ".join(str(c.value) for c in at.caption)
        assert (MANIDP_NOTE in captions) == onnx
        assert onnx or "needs a finished run" in captions
        assert any(f"Run `{name}`" in str(m.value) for m in at.markdown)
    at.session_state["runs_table"] = {"selection": {"rows": [names.index("fx-corrupt")], "columns": [],
                                                    "cells": []}}
    at.run()
    assert not at.exception and not downloads(at)
    assert any("config.json cannot be read" in str(c.value) for c in at.caption)
    at.session_state["runs_table"] = {"selection": {"rows": [0, 1], "columns": [], "cells": []}}
    at.run()
    assert not downloads(at)  # the detail view is for one selected run


def test_the_download_data_are_real_exports(runs_env: Path) -> None:
    import io
    import zipfile

    run = fixture_run(runs_env, "fx-slim-l0", "metrics.jsonl")
    bundle = run_exports.tensorboard_bundle(run)
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        names = archive.namelist()
    assert any(n.startswith(f"tensorboard-{run.name}/{run.name}/events.out.tfevents.") for n in names)
    assert any(n.endswith(".prunelab-hparams") for n in names)
    assert run_exports.tensorboard_bundle(run) is bundle  # cached per run and modification time


def test_suite_form_on_ray_refuses_an_unreachable_cluster(empty_runs_env: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRUNELAB_ALLOW_RAY_ADDRESS", "1")  # the operator lets the form join a cluster
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    at = AppTest.from_file(str(ROOT / "app_pages" / "runs.py"), default_timeout=60).run()
    assert at.radio(key="suite_backend").options == ["This app (one run at a time)", "Ray (each run a Ray task)"]
    at.radio(key="suite_backend").set_value("ray")
    at.text_input(key="suite_ray_address").set_value(f"127.0.0.1:{port}")
    at.selectbox(key="suite_name").set_value("sweep")
    at.text_input(key="suite_values").set_value("0")
    at.button(key="FormSubmitter:suite_form-Start suite").click().run()
    errors = as_shown(" | ".join(str(e.value) for e in at.error))
    assert f"Cannot start on Ray: cannot reach a Ray cluster at 127.0.0.1:{port}" in errors
    assert not any(empty_runs_env.iterdir())


@pytest.fixture(autouse=True)
def _forget_exports() -> None:
    run_exports._onnx.cache_clear()
    run_exports._tensorboard_zip.cache_clear()

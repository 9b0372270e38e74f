"""Helpers shared by the AppTest page tests: reading metrics and Plotly figures, picking fixture runs."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest


def as_shown(markdown: str) -> str:
    """What a markdown body shows of a run's strings, which pages escape (`app_components.common.md_text`): each
    backslash-escaped character as itself."""
    return re.sub(r"\\(.)", r"\1", markdown)


def metric(at: AppTest, label: str) -> str:
    """The displayed value of the page's `st.metric` called `label`."""
    return next(m.value for m in at.metric if m.label == label)


def plotly_figures(at: AppTest) -> list[dict]:
    """The figure JSON of every Plotly chart on the page, in page order."""
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def trace_values(array: object) -> np.ndarray:
    """A trace's data array: a plain list, or plotly's typed array {"dtype", "bdata" (base64), "shape"}."""
    if isinstance(array, dict):
        flat = np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"]))
        shape = array.get("shape")
        return flat.reshape([int(n) for n in str(shape).split(",")]) if shape else flat
    return np.asarray(array)


def fixture_run(runs_dir: Path, name: str, artefact: str) -> Path:
    """The fixture run `name`, or a skip when it lacks `artefact` (its fixture could not be built)."""
    path = runs_dir / name
    if not (path / artefact).is_file():
        pytest.skip(f"the fixture run {name} is not available")
    return path


def frame_with(at: Any, *columns: str) -> Any:
    """The first dataframe on the page that has all of `columns` (pages hold several tables)."""
    for element in at.dataframe:
        if set(columns) <= set(element.value.columns):
            return element.value
    raise AssertionError(f"no dataframe with columns {columns}")


OTHER_DATASET = "folder:/data/cifar10-demo"


def runs_on_two_datasets(source: Path, run_ids: Any, runs: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Copy the runs `run_ids` of `source` into `runs`, each twice: as it is, and as `<id>-other` whose
    config names OTHER_DATASET; point the app at `runs` (demo hidden). Returns `runs`."""
    import shutil

    runs.mkdir()
    for run_id in run_ids:
        shutil.copytree(source / run_id, runs / run_id)
        other = runs / f"{run_id}-other"
        shutil.copytree(source / run_id, other)
        config = json.loads((other / "config.json").read_text())
        config["run_id"] = config["name"] = other.name
        config["data"]["dataset"] = OTHER_DATASET
        (other / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("PRUNELAB_RUNS_DIR", str(runs))
    monkeypatch.setenv("PRUNELAB_NO_DEMO", "1")
    return runs


def url_param(at: AppTest, name: str) -> str | None:
    """The value of the query parameter `name` the page wrote into its URL (AppTest keeps one or a list)."""
    value = at.query_params.get(name)
    return value[-1] if isinstance(value, list) and value else value

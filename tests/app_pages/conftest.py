"""Fixtures for the page tests: real tiny runs (session scope) and an empty runs folder.

`fixture_runs_dir` is built once per session under pytest's base temp folder (the browser test
reuses the same folder). `runs_env` / `empty_runs_env` point the app at a runs folder through
`PRUNELAB_RUNS_DIR` and hide the bundled demo (`PRUNELAB_NO_DEMO=1`) so tests are deterministic.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # app.py imports `app_components` and `prunelab` from the repository root

from tests.app_pages.fixture_runs import (  # noqa: E402
    ensure_control_runs,
    ensure_fixture_runs,
    ensure_torchvision_runs,
)


@pytest.fixture(scope="session")
def data_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A session-wide PRUNELAB_CACHE_DIR, so generated datasets never land in the home folder."""
    path = tmp_path_factory.getbasetemp() / "data-cache"
    old = os.environ.get("PRUNELAB_CACHE_DIR")
    os.environ["PRUNELAB_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("PRUNELAB_CACHE_DIR", None)
    else:
        os.environ["PRUNELAB_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def fixture_runs_dir(tmp_path_factory: pytest.TempPathFactory, data_cache_dir: Path) -> Path:
    """Real short runs (baseline, slimming at λ 0 and 1e-3, ManiDP full and plain) + broken cases."""
    started = time.perf_counter()
    root = ensure_fixture_runs(tmp_path_factory.getbasetemp() / "fixture-runs")
    names = sorted(p.name for p in root.iterdir())
    print(f"fixture runs ready in {time.perf_counter() - started:.1f} s: {names}")
    return root


@pytest.fixture(scope="session")
def torchvision_runs_dir(tmp_path_factory: pytest.TempPathFactory, data_cache_dir: Path) -> Path:
    """Tiny runs on torchvision models: slimming on mobilenet_v2, ManiDP on resnet18."""
    return ensure_torchvision_runs(tmp_path_factory.getbasetemp() / "torchvision-runs")


@pytest.fixture
def torchvision_runs_env(torchvision_runs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The app reads the torchvision runs (demo hidden)."""
    return _point_app_at(monkeypatch, torchvision_runs_dir)


@pytest.fixture
def empty_runs_dir(tmp_path: Path) -> Path:
    path = tmp_path / "runs"
    path.mkdir()
    return path


def _point_app_at(monkeypatch: pytest.MonkeyPatch, runs_dir: Path) -> Path:
    monkeypatch.setenv("PRUNELAB_RUNS_DIR", str(runs_dir))
    monkeypatch.setenv("PRUNELAB_NO_DEMO", "1")
    monkeypatch.chdir(ROOT)
    return runs_dir


@pytest.fixture(scope="session")
def control_runs_dir(tmp_path_factory: pytest.TempPathFactory, fixture_runs_dir: Path) -> Path:
    """The finished fixture runs with the controls of a slimming and a ManiDP run (suite controls' kinds)."""
    return ensure_control_runs(tmp_path_factory.getbasetemp() / "control-runs", fixture_runs_dir)


@pytest.fixture
def control_runs_env(control_runs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The app reads the fixture runs with their controls (demo hidden)."""
    return _point_app_at(monkeypatch, control_runs_dir)


@pytest.fixture
def runs_env(fixture_runs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The app reads the fixture runs (demo hidden)."""
    return _point_app_at(monkeypatch, fixture_runs_dir)


@pytest.fixture
def empty_runs_env(empty_runs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The app reads an empty runs folder (demo hidden)."""
    return _point_app_at(monkeypatch, empty_runs_dir)

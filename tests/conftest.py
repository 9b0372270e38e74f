"""Test-wide settings: a private dataset cache, small thread count, no bundled demo in listings; tests that
use the trained fixture runs are marked slow."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test process generates datasets into its own cache folder (never the user's)."""
    cache = os.environ.get("PRUNELAB_TEST_CACHE_DIR") or str(tmp_path_factory.mktemp("prunelab-cache"))
    os.environ["PRUNELAB_CACHE_DIR"] = cache
    os.environ["PRUNELAB_NO_DEMO"] = "1"
    return Path(cache)


# Session fixtures that train real runs: a test that asks for one is in the slow tier (the fixture runs
# of tests/app_pages/ take half a minute to build on 2 cores; a quick-tier test must not pay for them).
TRAINED_FIXTURES = {"fixture_runs_dir"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if TRAINED_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def viewer_on() -> Iterator[None]:
    """Viewer mode on for one test (`prunelab.runs.viewer`, as `PRUNELAB_VIEWER=1` or the app's `--viewer`), and read
    from the environment again after it."""
    from prunelab.runs import viewer

    viewer.set_active(True)
    try:
        yield
    finally:
        viewer.set_active(None)

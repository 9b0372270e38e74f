"""Test-wide settings: a private dataset cache, small thread count, no bundled demo in listings."""

from __future__ import annotations

import os
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

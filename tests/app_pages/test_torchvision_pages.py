"""Every page with runs on torchvision models (issue 34): slimming on mobilenet_v2, ManiDP on resnet18."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app_pages.test_app import PAGES, assert_clean, open_page

ALL_PAGES = [*PAGES, "app_pages/speed.py"]
# what each page must show of the two runs (beyond rendering without an exception)
SHOWS = {
    "app_pages/slimming.py": ("tv-slim-mobilenet_v2", "Channels kept per layer"),
    "app_pages/per_image.py": ("tv-manidp-resnet18", "The gates reach"),
    "app_pages/similarity.py": ("tv-manidp-resnet18", ""),
    "app_pages/runs.py": ("tv-slim-mobilenet_v2", "tv-manidp-resnet18"),
}


@pytest.mark.slow
@pytest.mark.parametrize("page", ALL_PAGES)
def test_page_renders_torchvision_runs(torchvision_runs_env: Path, page: str) -> None:
    at, seconds = open_page(page)
    assert_clean(at)
    shown = " ".join(str(getattr(e, "value", "")) for kind in ("markdown", "caption", "info", "title", "subheader",
                                                                 "selectbox", "dataframe")
                     for e in at.get(kind))
    for text in SHOWS.get(page, ()):
        assert text in shown, (page, text)
    if page in ("app_pages/slimming.py", "app_pages/per_image.py", "app_pages/similarity.py"):
        assert at.get("plotly_chart"), page
    print(f"{page}: {seconds:.2f} s")

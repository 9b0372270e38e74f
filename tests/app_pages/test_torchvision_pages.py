"""Every page with runs on torchvision models (issue 34): slimming on mobilenet_v2, ManiDP on resnet18."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app_pages.test_app import PAGES, assert_clean, open_page

ALL_PAGES = [*PAGES, "app_pages/speed.py"]


@pytest.mark.slow
@pytest.mark.parametrize("page", ALL_PAGES)
def test_page_renders_torchvision_runs(torchvision_runs_env: Path, page: str) -> None:
    at, seconds = open_page(page)
    assert_clean(at)
    shown = " ".join(str(e.value) for e in (*at.markdown, *at.caption, *at.info, *at.title, *at.subheader))
    print(f"{page}: {seconds:.2f} s; {shown[:300]}")

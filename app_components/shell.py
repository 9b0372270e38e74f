"""The app shell: the pages `app.py` registers with `st.navigation`, and links between them.

The page files live in `app_pages/`, a folder Streamlit does not discover by itself (only a `pages/`
folder next to the main script is run as a page of its own), so every page request, a deep link as a
fresh server's first request included, runs `app.py` and its navigation. Each page's URL path is given
here, not inferred from its file name, so bookmarks keep working whatever the files are called.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import streamlit as st

ROOT = Path(__file__).resolve().parent.parent


class AppPage(NamedTuple):
    """One page of the app: its file (relative to the repository root), title, icon and URL path."""

    file: str
    title: str
    icon: str
    url_path: str


# the first is the home page (served at "/"; its url_path names it in links)
PAGES = [
    AppPage("app_pages/home.py", "Overview", ":material/home:", "home"),
    AppPage("app_pages/lessons.py", "Lessons", ":material/school:", "lessons"),
    AppPage("app_pages/runs.py", "Runs", ":material/play_circle:", "runs"),
    AppPage("app_pages/live.py", "Live training", ":material/monitoring:", "live"),
    AppPage("app_pages/slimming.py", "Slimming", ":material/content_cut:", "slimming"),
    AppPage("app_pages/per_image.py", "Per-image MACs", ":material/image:", "per_image"),
    AppPage("app_pages/similarity.py", "Similarity", ":material/grid_on:", "similarity"),
    AppPage("app_pages/ablations.py", "Ablations", ":material/table_chart:", "ablations"),
    AppPage("app_pages/speed.py", "Speed", ":material/speed:", "speed"),
]
_run = threading.local()  # set while app.py runs a page (a script run is one thread)


def navigation() -> st.Page:
    """`st.navigation` over the pages whose file exists (a missing analysis page is left out)."""
    pages = [st.Page(ROOT / page.file, title=page.title, icon=page.icon, url_path=page.url_path,
                     default=page == PAGES[0])
             for page in PAGES if (ROOT / page.file).is_file()]
    return st.navigation(pages)


def page_link(path: str, label: str, icon: str | None = None, query_params: dict[str, str] | None = None) -> None:
    """`st.page_link` to the app page `path` (e.g. "app_pages/live.py"); a page run on its own (AppTest of
    one file, no navigation) names the page in the sidebar instead."""
    if getattr(_run, "active", False) and (ROOT / path).is_file():
        st.page_link(str(ROOT / path), label=label, icon=icon, query_params=query_params)
        return
    title = next((page.title for page in PAGES if page.file == path), path)
    st.markdown(f"{label}: open **{title}** in the sidebar.")


@contextlib.contextmanager
def app_run() -> Iterator[None]:
    """Wrap `app.py`'s `navigation.run()`: pages run inside it are under the app's navigation."""
    _run.active = True
    try:
        yield
    finally:
        _run.active = False

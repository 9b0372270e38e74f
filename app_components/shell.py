"""The app shell: the pages `app.py` registers with `st.navigation`, and the hand-over of a page that
Streamlit ran by itself.

A fresh server whose first request is a page URL (say `/per_image`) runs that file directly, by
Streamlit's legacy discovery of a `pages/` folder next to the main script: the main script (`app.py`)
has not run, so the page lacks the app's navigation, sidebar and wide layout. `hand_over()` notices it
(the main script is `app.py` but this run did not pass through `app_run()`), registers the app's pages
with `st.navigation` (which ends the legacy mode) and reruns: `app.py` then opens the same page (pages
are keyed by URL path).
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app.py"
# (file, title, icon); the first is the home page
PAGES = [
    ("app_pages/home.py", "Overview", ":material/home:"),
    ("app_pages/runs.py", "Runs", ":material/play_circle:"),
    ("app_pages/live.py", "Live training", ":material/monitoring:"),
    ("app_pages/slimming.py", "Slimming", ":material/content_cut:"),
    ("app_pages/per_image.py", "Per-image MACs", ":material/image:"),
    ("app_pages/similarity.py", "Similarity", ":material/grid_on:"),
    ("app_pages/ablations.py", "Ablations", ":material/table_chart:"),
    ("app_pages/speed.py", "Speed", ":material/speed:"),
]
_run = threading.local()  # set while app.py runs a page (a script run is one thread)


def navigation() -> st.Page:
    """`st.navigation` over the pages whose file exists (a missing analysis page is left out)."""
    pages = [st.Page(ROOT / path, title=title, icon=icon, default=(path == PAGES[0][0]))
             for path, title, icon in PAGES if (ROOT / path).is_file()]
    return st.navigation(pages)


def page_link(path: str, label: str, icon: str | None = None, query_params: dict[str, str] | None = None) -> None:
    """`st.page_link` to the app page `path` (e.g. "app_pages/live.py"); a page run on its own (AppTest of
    one file, no navigation) names the page in the sidebar instead."""
    if getattr(_run, "active", False) and (ROOT / path).is_file():
        st.page_link(str(ROOT / path), label=label, icon=icon, query_params=query_params)
        return
    title = next((title for file, title, _ in PAGES if file == path), path)
    st.markdown(f"{label}: open **{title}** in the sidebar.")


@contextlib.contextmanager
def app_run() -> Iterator[None]:
    """Wrap `app.py`'s `navigation.run()`: pages run inside it are under the app's navigation."""
    _run.active = True
    try:
        yield
    finally:
        _run.active = False


def hand_over() -> None:
    """Rerun through `app.py` when Streamlit ran this page without it (see the module docstring)."""
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    if getattr(_run, "active", False) or main is None or Path(main).resolve() != APP:
        return  # under app.py, or a page run on its own (AppTest.from_file of the page)
    navigation()
    st.rerun()

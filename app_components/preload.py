"""Start loading the browser's chart library while the server reads the runs (the session's first run only).

Streamlit's front end loads its Plotly chart code (a 4.7 MB module) lazily, when the first chart arrives, and
then spends about 1.4 s on this 2-core machine compiling it before anything is drawn. Importing that module at
the start of a session, before the app's own imports and the runs table, lets the browser compile it while the
server works: measured on a fresh server, the Overview's first chart came at 3.1 s instead of 3.5-3.8 s with
the preload after the navigation, earlier still with it first (docs/benchmarks.md, "Pages in a real browser").
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

CHART_MODULE_PREFIX = "PlotlyChart."  # the front end's lazily loaded chart module: PlotlyChart.<hash>.js
_STATIC_JS = Path(st.__file__).parent / "static" / "static" / "js"
_DONE = "_chart_library_preloaded"


def chart_module() -> str | None:
    """The file name of the front end's Plotly chart module in this Streamlit (None when it has none)."""
    try:
        return next((p.name for p in sorted(_STATIC_JS.glob(f"{CHART_MODULE_PREFIX}*.js"))), None)
    except OSError:
        return None


def preload_chart_library() -> None:
    """Ask the browser to import the chart module now, once per session (a script in the sidebar: it draws
    nothing; the module's URL is relative to the page, as the front end's own lazy import is)."""
    module = chart_module()
    if module is None or st.session_state.get(_DONE):
        return
    st.session_state[_DONE] = True
    st.sidebar.html(f"<script>import('./static/js/{module}')</script>", unsafe_allow_javascript=True)

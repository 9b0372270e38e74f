"""The app as a read-only viewer for a class: `PRUNELAB_VIEWER=1 streamlit run app.py`, or
`streamlit run app.py -- --viewer`.

The switch is the core's (`prunelab.runs.viewer`): with it on, the core refuses to create, train, schedule,
cancel, resume or delete a run and to write a view into a run directory, whoever asks. Here are the app's
sides of it: the `--viewer` option read from the script's arguments (`apply_options`), the one-line note the
Runs page and the sidebar show (`note`, `SIDEBAR`), and `offer`, which leaves out a sentence that tells the
reader to start, resume or delete a run (the pages' hints) when this server is a viewer. The pages ask
`active()` and show no form, no cancel, delete or resume button and no button that computes a view.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import streamlit as st

from prunelab.runs import viewer
from prunelab.runs.store import default_runs_dir

APP_SCRIPT = "app.py"
NOTE = ("This PruneLab is a **read-only viewer**: it shows the bundled demos and the runs in {folder}; nothing can "
        "be trained, cancelled, resumed or deleted here.")
SIDEBAR = "Viewer: read-only (no training, cancelling or deleting)."
NOT_COMPUTED = ("This viewer computes no view on request; before class, "
                "`python scripts/precompute_views.py RUNS_DIR` stores every view next to the runs.")


def apply_options(argv: Sequence[str]) -> str | None:
    """Read the app's own options (after `--` on the `streamlit run app.py` line: `--viewer`, nothing else) and
    the `PRUNELAB_VIEWER` switch; the one line naming the problem when either is wrong, else None.

    Only a script run by `streamlit run app.py` has its options in `argv` (Streamlit sets `sys.argv` to the
    script and the words after `--`); under another runner (AppTest) `argv` is that runner's, and is ignored."""
    if not argv or Path(argv[0]).name != APP_SCRIPT:
        return _check_switch()
    unknown = [word for word in argv[1:] if word != viewer.APP_OPTION]
    if unknown:
        return (f"unknown option {unknown[0]!r} after `streamlit run app.py --`: the app takes "
                f"{viewer.APP_OPTION} (a read-only viewer) and nothing else")
    if viewer.APP_OPTION in argv[1:]:
        viewer.set_active(True)
    return _check_switch()


def _check_switch() -> str | None:
    try:
        viewer.active()
    except viewer.ViewerModeError as error:  # PRUNELAB_VIEWER holds a word that is not a switch
        return str(error)
    return None


def active() -> bool:
    """Whether this server is a read-only viewer (`prunelab.runs.viewer.active`)."""
    return viewer.active()


def note() -> None:
    """The one line saying this server is a viewer, and what it shows."""
    st.info(NOTE.format(folder=f"`{default_runs_dir()}`"), icon=":material/visibility:")


def offer(text: str) -> str:
    """`text` (a sentence that tells the reader to start, resume or delete a run), or "" on a viewer."""
    return "" if active() else text

"""Viewer mode: a read-only PruneLab for a room of students (`PRUNELAB_VIEWER=1`, or the app's `--viewer`).

The switch is read from the environment once, on first use (`active()`); the app's `--viewer` option turns it on
for its process (`set_active`). While it is on, the core refuses everything that would write into a runs folder,
whatever page, widget or script asks: creating a run (`RunStore.create`), training one (`run_training`), a
scheduler (`JobManager`, `RaySuiteRunner`) and every request to one (submit, submit a suite, cancel, resume),
deleting a run (`RunStore.delete`) and writing a computed view into a run directory (`prunelab.analysis.views`).
Each refusal is a `ViewerModeError` in one line that names viewer mode and how to leave it. Reading is
untouched: listings, pages, exports computed in memory, and the derived files a read-only demo run gets in the
cache folder (never in a runs folder).

It imports nothing from PruneLab but `run_format`, so the store, the run-life module and both schedulers can
ask it without an import cycle.
"""

from __future__ import annotations

import os

from prunelab.runs.run_format import RunStoreError

ENV = "PRUNELAB_VIEWER"
APP_OPTION = "--viewer"  # `streamlit run app.py -- --viewer`
ON = ("1", "true", "yes", "on")
OFF = ("", "0", "false", "no", "off")
HOW_TO_LEAVE = (f"this PruneLab is a read-only viewer ({ENV}=1 or `streamlit run app.py -- {APP_OPTION}`); "
                f"start it without {ENV} and {APP_OPTION} to train, cancel, resume or delete runs")

_switch: dict[str, bool] = {}  # {"on": ...} once read (or set by the app's option)


class ViewerModeError(RunStoreError):
    """A write into a runs folder refused in viewer mode, or a `PRUNELAB_VIEWER` value that is not a switch:
    one line."""


def parse(value: str | None) -> bool:
    """Whether `value` (the environment variable's text; None when unset) turns viewer mode on. Anything but
    the listed words is refused in one line: a misspelt switch must not leave a class server writable."""
    word = (value or "").strip().lower()
    if word in ON:
        return True
    if word in OFF:
        return False
    raise ViewerModeError(f"{ENV}={value!r} is not a switch: {', '.join(ON)} turn viewer mode on; "
                          f"{', '.join(repr(w) for w in OFF)} (or unset) leave it off")


def active() -> bool:
    """Whether this process is a read-only viewer: `PRUNELAB_VIEWER`, read once, unless `set_active` said."""
    if "on" not in _switch:
        _switch["on"] = parse(os.environ.get(ENV))
    return _switch["on"]


def set_active(on: bool | None) -> None:
    """Turn viewer mode on or off for this process (the app's `--viewer`; tests); None: read the environment
    again at the next `active()`."""
    if on is None:
        _switch.pop("on", None)
    else:
        _switch["on"] = bool(on)


def refusal(action: str) -> str:
    """The one line that refuses `action` (e.g. "cannot start a run") in viewer mode."""
    return f"{action}: {HOW_TO_LEAVE}"


def refuse(action: str) -> None:
    """Raise `ViewerModeError` refusing `action` when viewer mode is on; nothing otherwise."""
    if active():
        raise ViewerModeError(refusal(action))

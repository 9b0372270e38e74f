"""Shared Streamlit helpers: run pickers, reading a run, concept boxes and the job manager.

A page reads a run's files with `read(path, ARTEFACT)`: `prunelab.runs.run.Run.read` wrapped in
`st.cache_data` keyed by the file's version, so a page re-reads a file only when it changed on disk (e.g.
a run still training). A corrupt file is reported on the page (`st.error` naming the file and the
problem) and read as None; `report_missing` then tells a file not written yet from one missing in a
finished run.
"""

from __future__ import annotations

import hashlib
import importlib
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import streamlit as st

from app_components import viewer_mode
from prunelab.analysis import results
from prunelab.analysis.figures import MAC_LABEL as MAC_LABEL  # the unit's one name, the core's
from prunelab.config import METHOD_FACTS
from prunelab.runs.artefact_checks import artefact_for
from prunelab.runs.artefacts import CONFIG, SUMMARY
from prunelab.runs.reading import Artefact, ArtefactError
from prunelab.runs.run import Run
from prunelab.runs.safe_text import printable
from prunelab.runs.store import default_runs_dir

T = TypeVar("T")

METHOD_HELP = {name: facts.help for name, facts in METHOD_FACTS.items()}  # how to make a run of each


# ----------------------------------------------------------------------------------------------
# the runs table and run pickers


def runs_frame() -> pd.DataFrame:
    """Every readable run (user runs, then the demo), re-read only when a run's files changed."""
    roots = results.run_roots()
    return _runs_frame(tuple(str(root) for root in roots), results.roots_signature(roots))


IN_THIS_SETTING = "in this run's setting (its dataset, model, width and epochs in all)"


def setting_runs(run: Path) -> pd.DataFrame:
    """The finished runs (`tables.ablation_table`) in `run`'s setting: those a page showing `run` judges the
    papers' claims on (`lessons.in_setting_of`), never another dataset's or budget's."""
    from prunelab.analysis import lessons, tables

    return lessons.in_setting_of(computed(tables.ablation_table, runs_frame()), run)


@st.cache_data(show_spinner=False, max_entries=16)
def _runs_frame(roots: tuple[str, ...], signature: tuple[tuple[str, float], ...]) -> pd.DataFrame:
    return results.runs_table([Path(root) for root in roots])


def _matching_runs(methods: Sequence[str] | None, states: Sequence[str] | None) -> pd.DataFrame:
    runs = runs_frame()
    if methods is not None:
        runs = runs[runs["method"].isin(list(methods))]
    if states is not None:
        runs = runs[runs["state"].isin(list(states))]
    return runs


def _no_runs_message(methods: Sequence[str] | None, states: Sequence[str] | None) -> None:
    """Say which run this page needs, why none is listed and how to make one."""
    wanted = " or ".join(METHOD_HELP.get(m, m) for m in methods) if methods else "a run"
    unfinished = _matching_runs(methods, None)
    if states is not None:
        unfinished = unfinished[~unfinished["state"].isin(list(states))]
    note = ""
    if len(unfinished):
        counts = unfinished["state"].value_counts().to_dict()
        note = " Matching runs exist but are " + ", ".join(f"{n} {s}" for s, n in counts.items()) + "."
    start = viewer_mode.offer(" Start one from the **Runs** page or a terminal.")
    st.info(f"This page needs {wanted} that has finished.{note}{start} Runs are read from `{default_runs_dir()}`.")


def _labels(runs: pd.DataFrame) -> dict[str, str]:
    return {row["path"]: results.run_label(row) for _, row in runs.iterrows()}


def pick_dataset(datasets: Sequence[str] | pd.Series, label: str, key: str) -> str | None:
    """One dataset of `datasets` (in their order; a choice only when there are several): pages show one
    dataset at a time, so runs on two datasets (the shapes and the CIFAR-10 demo) are never mixed."""
    names = list(dict.fromkeys(str(d) for d in datasets))
    if len(names) <= 1:
        return names[0] if names else None
    return st.segmented_control(label, names, default=names[0], key=key,
                                format_func=results.dataset_short_name) or names[0]


def pick_run(label: str, methods: Sequence[str] | None = None, key: str = "run",
             states: Sequence[str] | None = ("done",), default: Any = None,
             param: str | None = None) -> Path | None:
    """A selectbox over matching runs (demo runs marked); None, with a helpful message, when none.

    It opens on `default` (a function of the runs table giving a run's path, e.g. a method's
    `lesson_runs.opening_run`; the first run when None), or on the run named in the URL's `?<param>=<run id>`,
    and writes the chosen run's id back there, so the URL of the page opens it on the same run."""
    runs = _matching_runs(methods, states)
    if runs.empty:
        _no_runs_message(methods, states)
        return None
    labels = _labels(runs)
    wanted = _from_url(param, key, labels)
    if wanted:
        st.session_state[key] = wanted[0]
    if st.session_state.get(key) not in labels:
        st.session_state.pop(key, None)
        first = default(runs) if default is not None else None
        if first in labels:
            st.session_state[key] = first
    choice = st.selectbox(label, list(labels), format_func=labels.__getitem__, key=key)
    _to_url(param, key, [choice] if choice else [])
    return Path(choice) if choice else None


def _from_url(param: str | None, key: str, labels: dict[str, str]) -> list[str]:
    """The listed runs the URL's `param` names (run ids, comma-separated) when it says something the widget
    `key` has not written there itself (a shared link, a page opened with it); else []."""
    wanted = st.query_params.get(param) if param else None
    if not wanted or wanted == st.session_state.get(f"_url_{key}"):
        return []
    by_id = {Path(path).name: path for path in labels}
    return [by_id[name] for name in wanted.split(",") if name in by_id]


def _to_url(param: str | None, key: str, paths: Sequence[str | Path]) -> None:
    if param:
        st.query_params[param] = st.session_state[f"_url_{key}"] = ",".join(Path(p).name for p in paths)


def dataset_of(run: str | Path) -> str | None:
    """The dataset of a listed run (its config's `data.dataset`), None when the run is not listed."""
    runs = runs_frame()
    match = runs.loc[runs["path"] == str(run), "dataset"]
    return str(match.iloc[0]) if len(match) else None


def pick_runs(label: str, methods: Sequence[str] | None = None, key: str = "runs",
              states: Sequence[str] | None = ("done",), default_count: int | None = None,
              dataset: str | None = None, default: Sequence[str | Path] | None = None,
              param: str | None = None, follow: str | Path | None = None) -> list[Path]:
    """A multiselect over matching runs; with `dataset`, only the runs on that dataset (a comparison never
    mixes two), in one widget per dataset (key `<key>_<dataset>`).

    It opens on `default` (run paths), else the first `default_count` runs, else all of them; or on the runs
    the URL's `?<param>=<id>,<id>` names, and writes the chosen ones back there. With `follow` (the run the
    page shows), choosing another run there starts from that run's defaults again."""
    runs = _matching_runs(methods, states)
    if dataset is not None:
        runs = runs[runs["dataset"] == dataset]
    if runs.empty:
        _no_runs_message(methods, states)
        return []
    labels = _labels(runs)
    widget = key if dataset is None else f"{key}_{dataset}"
    if follow is not None and st.session_state.get(f"_follow_{widget}") != str(follow):
        st.session_state.pop(widget, None)
        st.session_state[f"_follow_{widget}"] = str(follow)
    wanted = _from_url(param, widget, labels)
    if wanted:
        st.session_state[widget] = wanted
    elif widget not in st.session_state or not set(st.session_state[widget]) <= set(labels):
        if default is not None:
            first = [str(path) for path in default if str(path) in labels]
        else:
            first = list(labels)[:default_count] if default_count is not None else list(labels)
        st.session_state[widget] = first
    chosen = st.multiselect(label, list(labels), format_func=labels.__getitem__, key=widget)
    _to_url(param, widget, chosen)
    return [Path(path) for path in chosen]


# ----------------------------------------------------------------------------------------------
# reading a run: `prunelab.runs.run.Run`, cached per artefact file version


@st.cache_data(show_spinner=False, max_entries=512)
def _read(path: str, file: str, version: tuple[int, int] | None) -> Any:
    artefact = artefact_for(file)
    if artefact is None:
        raise ValueError(f"no reader for {file!r}")
    return Run(path).read(artefact)


def read(path: str | Path, artefact: Artefact[T]) -> T | None:
    """`Run(path).read(artefact)`, cached by the file's version: None when the file does not exist (or its
    artefact's empty value), and None with an error on the page naming the file when it is corrupt."""
    try:
        return _read(str(path), artefact.file, Run(path).version(artefact))
    except ArtefactError as error:
        st.error(f"Run {md_code(Path(path).name)}: {md_text(error.short)}."
                 + viewer_mode.offer(" Delete the run on the **Runs** page or run it again."))
        return None


def report_missing(path: str | Path, file: str, note: str) -> None:
    """Say why `read` gave None for `file`: nothing more when it exists (it is corrupt and `read` showed
    the error), an error when a finished run lacks it, else `note` (not written yet)."""
    if (Path(path) / file).exists():
        return
    if Run(path).state == "done":
        st.error(f"Run {md_code(Path(path).name)} has finished but `{file}` is missing. {note}")
    else:
        st.info(note)


def config_of(path: str | Path) -> Any:
    """The run's RunConfig (None when missing or corrupt: `read` says)."""
    return read(path, CONFIG)


def summary_of(path: str | Path) -> dict[str, Any] | None:
    """The run's summary.json (None before it finished)."""
    return read(path, SUMMARY)


@st.cache_data(show_spinner=False, max_entries=64)
def _class_names(path: str, version: tuple[int, int] | None) -> list[str]:
    return results.class_names(path)


def class_names_of(path: str | Path) -> list[str]:
    """The class names of the run's dataset (`results.class_names`), cached by its config's version."""
    return _class_names(str(path), Run(path).version(CONFIG))


@st.cache_data(show_spinner=False, max_entries=64)
def _test_images(path: str, mtime: float, indices: tuple[int, ...]) -> np.ndarray | None:
    return results.load_test_images(path, indices)


def cached_test_images(path: str | Path, indices_tuple: tuple[int, ...]) -> np.ndarray | None:
    """uint8 [n, 32, 32, 3] test images of the run's dataset (None when the dataset is unavailable)."""
    return _test_images(str(path), Run(path).newest_version(), tuple(int(i) for i in indices_tuple))


# ----------------------------------------------------------------------------------------------
# presentation and jobs


_MARKUP = re.compile(r"[!-/:-@\[-`{-~]")  # ASCII punctuation: markdown may read any of it, and escapes all of it


def md_text(value: object) -> str:
    """A string from a run's files (its name, an error, a node) as markdown that shows exactly its characters, for
    `st.markdown`, `st.error`, `st.caption` and the other elements that render markdown: every ASCII punctuation
    character backslash-escaped (no emphasis, link, image, HTML, `:colour[...]` or `$...$` can start), control
    characters as visible escapes (`prunelab.runs.safe_text.printable`)."""
    return _MARKUP.sub(r"\\\g<0>", printable(value))


def md_code(value: object) -> str:
    """A string from a run's files as inline code (a run's folder name): fenced by more backticks than any run
    of them inside it, so nothing closes the span early; control characters as visible escapes."""
    text = printable(value)
    fence = "`" * (max(map(len, re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def title(text: str) -> None:
    """The page's title."""
    st.title(text)


MISSING = "—"  # a figure a row does not have (e.g. ρ(MACs, loss) of a slimming run), instead of "None"
CELL_FORMATS = {"percent": "{:.1%}".format, "compact": lambda v: f"{v / 1e6:.2f} M" if abs(v) >= 1e5 else f"{v:,.0f}"}


def table(frame: pd.DataFrame, columns: dict[str, tuple[str, str | None]], **kwargs: Any) -> Any:
    """`st.dataframe` of `frame` with `columns` (name -> (label, format: "percent", "compact", a format string
    such as "{:.3f}", or None)); a missing value shows as MISSING, never "None" (Streamlit draws any null cell
    as "None", whatever its format). Complete columns stay numbers (formatted by a pandas Styler, so they sort
    as numbers); a column with missing values is shown as text."""
    formats = {name: _formatter(fmt) for name, (_, fmt) in columns.items() if name in frame}
    shown, as_text = frame.copy(), set()
    for name in shown.columns:
        missing = shown[name].isna()
        if missing.any():
            write, numeric = formats.get(name, _cell), pd.api.types.is_numeric_dtype(shown[name])
            shown[name] = [MISSING if gone else write(value) for value, gone in zip(shown[name], missing, strict=True)]
            as_text |= {name} if numeric else set()
    styled = shown.style.format({name: write for name, write in formats.items()
                                 if pd.api.types.is_numeric_dtype(shown[name])})
    config = {name: st.column_config.TextColumn(label, alignment="right") if name in as_text
              else st.column_config.Column(label) for name, (label, _) in columns.items()}
    config |= {name: st.column_config.TextColumn(alignment="right") for name in as_text - set(config)}
    return st.dataframe(styled, hide_index=True, column_config=config, **kwargs)


def _formatter(fmt: str | None) -> Any:
    if fmt is None:
        return _cell
    return CELL_FORMATS.get(fmt, fmt.format)


def _cell(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float | np.floating) else str(value)


def explain(text: str, formula: str | None = None) -> None:
    """A short concept box for a student: two or three sentences, then the formula (LaTeX)."""
    with st.container(border=True):
        st.markdown(text)
        if formula:
            st.latex(formula)


VERDICT_ICONS = {"holds": "✅", "does not hold": "❌", "within seed noise": "〰️", "not enough runs": "…",
                 "one seed": "❔"}


def show_claims(found: Sequence[Any], empty: str | None = None) -> None:
    """The papers' claims next to the selected runs' figures (`prunelab.analysis.lessons.Claim`), with a verdict: a
    compact table (claim, paper, measured, verdict) a reader scans, every claim in full on demand."""
    from prunelab.analysis import lessons

    if not found:
        if empty:
            st.caption(empty)
        return
    table = lessons.claims_table(found)
    csv_download(table, "prunelab_claims.csv", "Download these claims as CSV")
    table["verdict"] = [f"{verdict_icon(v)} {v}" for v in table["verdict"]]
    st.table(table, hide_index=True, border="horizontal")  # a static table wraps its text: nothing cut off
    with st.expander("Every claim in full: the paper's words and the measured figures over seeds"):
        for claim in found:
            st.markdown(f"{verdict_icon(claim.verdict)} **{claim.lesson}** — *{claim.verdict}*  \n"
                        f"Paper: {claim.paper}  \nMeasured here: {claim.measured}")
    st.caption("Mean ± standard deviation over seeds. A difference counts as real when the means lie more than "
               "two standard errors apart; a claim that does not hold at this small scale is a finding, not a "
               "failure.")


def csv_download(frame: pd.DataFrame, file_name: str, label: str = "Download as CSV", key: str = "") -> None:
    """A CSV download of a table drawn without `st.dataframe`'s own toolbar (a static `st.table`), keyed by its
    content and `key` (what tells apart two equal tables on one page; no rerun on click)."""
    st.download_button(label, frame.to_csv(index=False).encode("utf-8"), file_name=file_name, mime="text/csv",
                       key=f"csv_{key}_{frame_key(frame)[:16]}", on_click="ignore", icon=":material/download:")


def verdict_icon(verdict: str) -> str:
    return next((mark for start, mark in VERDICT_ICONS.items() if verdict.startswith(start)), "•")


def selected_custom(event: Any, position: int = 0) -> list[Any]:
    """The `position`-th custom-data value of every point selected on a Plotly chart (`st.plotly_chart(...,
    on_select="rerun")`), in selection order. Plotly ships a numpy column as a typed array, so a point's
    custom data comes back as a list or as a typed-array row serialised as {"0": value, ...}."""
    points = event.selection.points if event is not None and hasattr(event, "selection") else []
    values = []
    for point in points:
        custom = point.get("customdata")
        if isinstance(custom, dict):
            custom = [custom[k] for k in sorted(custom, key=int)]
        elif custom is not None and not isinstance(custom, list | tuple):
            custom = [custom]  # one column: plotly may hand the value itself
        if custom is not None and len(custom) > position:
            values.append(custom[position])
    return values


@st.cache_resource(show_spinner=False)
def start_umap_warm_up() -> Any:
    """Compile umap-learn's numba kernels in the background, once per server, so the Similarity page's
    first UMAP does not wait ~30-60 s for them (the thread never touches Streamlit)."""
    from prunelab.analysis import tables

    return tables.warm_up_umap_in_background()


@st.cache_resource(show_spinner=False)
def _job_manager(runs_dir: str) -> Any:
    from prunelab.scheduling.jobs import JobManager

    return JobManager(runs_dir, max_concurrent=1)


def get_job_manager() -> Any:
    """The process-wide JobManager of the runs dir (one worker: a 2-core CPU gains nothing from two)."""
    return _job_manager(str(default_runs_dir().resolve()))


def frame_key(frame: pd.DataFrame) -> str:
    """A digest of a frame's columns and values (list cells included, which pandas' own hashing refuses): how
    the caches below tell one table from another."""
    text = frame.to_json(orient="split", default_handler=str, date_format="iso")
    return hashlib.sha1(text.encode()).hexdigest()


@st.cache_data(show_spinner=False, max_entries=64, hash_funcs={pd.DataFrame: frame_key})
def _computed(name: str, table: pd.DataFrame, options: tuple[tuple[str, Any], ...]) -> Any:
    module, function = name.split(":")
    return getattr(importlib.import_module(module), function)(table, **dict(options))


def computed(function: Callable[..., T], table: pd.DataFrame, **options: Any) -> T:
    """`function(table, **options)` for a pure function of a table that a page calls on every rerun (the claims,
    the variant groups), cached by the function, the table's content and the options."""
    return _computed(f"{function.__module__}:{function.__qualname__}", table, tuple(sorted(options.items())))


@st.cache_data(show_spinner=False, max_entries=8, hash_funcs={pd.DataFrame: frame_key})
def _run_figures(table: pd.DataFrame, signature: tuple[tuple[str, float], ...]) -> pd.DataFrame:
    from prunelab.analysis import lessons

    return lessons.with_run_figures(table)


def cached_run_figures(table: pd.DataFrame) -> pd.DataFrame:
    """`lessons.with_run_figures(table)` (the figures the methods' claims read from their runs' files, such as
    every ManiDP run's accuracy at its form's matched MACs reduction, from the runs' what-if curves), cached by the
    table and each run's newest file mtime."""
    paths = [str(path) for path in table["path"]] if "path" in table else []
    return _run_figures(table, tuple((path, Run(path).newest_version()) for path in paths))

"""Widgets of the Runs page: the run and suite forms, the live jobs panel and the runs browser.

Forms build a `RunConfig` (or a `Suite`) and hand it to a scheduler of this server (`schedulers()`: the
process-wide `JobManager`, and the Ray runner once a suite ran on Ray); nothing here trains. Validation is
pydantic's: a bad value is reported with the field's name and allowed range. On a read-only viewer
(`app_components.viewer_mode`) the forms and the jobs panel draw nothing and the runs browser offers no action.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pandas as pd
import streamlit as st
from pydantic import ValidationError

from app_components import common, live_view, ray_jobs, run_exports, viewer_mode
from prunelab.analysis import results
from prunelab.config import (
    DATASET_NAMES,
    METHOD_CONFIGS,
    METHOD_FACTS,
    METHOD_NAMES,
    METHOD_PARAMS,
    SWEEP_PARAMS,
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    describe_validation_error,
    field_bounds,
)
from prunelab.models.catalog import MODEL_NAMES, TORCHVISION_NAMES, TORCHVISION_PREFIX, is_torchvision
from prunelab.runs.progress import accuracy_text
from prunelab.runs.run_format import ACTIVE_STATES, RunStoreError
from prunelab.runs.store import default_runs_dir, describe_os_error
from prunelab.scheduling import suites
from prunelab.scheduling.jobs import RESUMABLE_STATES, JobError
from prunelab.scheduling.limits import SUITE_RUNS, SWEEP_VALUES
from prunelab.scheduling.protocol import JobInfo, Scheduler
from prunelab.training.preflight import NotRunnable, check_runnable, check_suite_runnable

ROOT = Path(__file__).resolve().parent.parent
ANALYSIS_PAGES = {
    "app_pages/slimming.py": "**Slimming**: γ histograms, threshold, what-if prune ratio",
    "app_pages/per_image.py": "**Per-image MACs**: which images get small sub-networks",
    "app_pages/similarity.py": "**Similarity**: gate versus feature similarity",
    "app_pages/ablations.py": "**Ablations**: accuracy against MACs for every run",
}
FOLDER_OPTION = "folder:PATH"
# the settings each method's run form shows: the fields its config marks `form` (prunelab.config.ParamFacts)
METHOD_FIELDS: dict[str, tuple[str, ...]] = {
    method: tuple(name for name, facts in params.items() if facts.form) for method, params in METHOD_PARAMS.items()}
POLL_S = 1.0
PENDING_DELETE = "pending_delete"
TABLE_COLUMNS = ["name", "demo", "suite", "method", "settings", "dataset", "model", "width", "seed", "state",
                 "fraction", "test_acc", "macs_per_image", "params", "epochs_total", "parent_run", "wall_time_s",
                 "error", "problem"]


# ----------------------------------------------------------------------------------------------
# first visit


def first_visit_note(runs: pd.DataFrame) -> None:
    """Point a newcomer at the analysis pages when only the bundled demo runs exist."""
    if runs.empty:
        st.info("No runs yet. Start one below, or press **Run the demo live** under *Start a suite*.")
    elif runs["demo"].all():
        pages = "\n".join(f"- {text}" for path, text in ANALYSIS_PAGES.items() if (ROOT / path).is_file())
        st.success("The precomputed demo runs are listed below (marked *demo*). Open the pages in the "
                   f"sidebar to explore them:\n{pages}")


# ----------------------------------------------------------------------------------------------
# forms


def _field_input(cls: Any, name: str, key: str) -> Any:
    """A widget for one pydantic field, labelled with its title, initialised with its default and
    described by its description.

    Number inputs take their maximum from the field's constraint (`field_bounds`); lower bounds are
    left to the config's validation, which names the field and the allowed range.
    """
    info = cls.model_fields[name]
    label, default = info.title or name, info.default
    high = field_bounds(cls, name)[1]
    if isinstance(default, bool):
        return st.checkbox(label, value=default, help=info.description, key=key)
    if get_origin(info.annotation) is Literal:  # a choice, such as a method's form (reference or prunelab)
        choices = list(get_args(info.annotation))
        return st.selectbox(label, choices, index=choices.index(default), help=info.description, key=key)
    if isinstance(default, int):
        return st.number_input(label, value=default, step=1, max_value=high, help=info.description, key=key)
    high = None if high is None else float(high)
    return st.number_input(label, value=float(default), format="%g", max_value=high, help=info.description,
                           key=key)


def _departure_input(method: str) -> dict[str, Any]:
    """The departures from the authors' code to switch on besides the chosen form's (the prunelab form has them
    all): {field: its PruneLab value} for each one picked; the fields left out take the form's values."""
    departures = METHOD_FACTS[method].departures
    if not departures:
        return {}
    chosen = st.multiselect("Departures from the authors' code (on top of the form; the prunelab form makes them "
                            "all)", [d.name for d in departures], key=f"form_{method}_departures",
                            help="; ".join(f"{d.name}: {d.summary}" for d in departures))
    return {d.field: d.prunelab for d in departures if d.name in chosen}


def _dataset_input(key: str) -> str:
    choice = st.selectbox("Dataset", [*DATASET_NAMES, FOLDER_OPTION], key=f"{key}_dataset")
    folder = st.text_input("Image folder (for folder:PATH)", key=f"{key}_folder",
                           placeholder="/data/my_images with train/ and test/")
    return f"folder:{folder.strip()}" if choice == FOLDER_OPTION else choice


def _optional_int_input(label: str, key: str, field: tuple[Any, str], step: int = 500,
                        default_name: str = "dataset default") -> int | None:
    """A whole-number input for the config field `field` = (model, name) where 0 means "not set" (None)."""
    cls, name = field
    value = int(st.number_input(f"{label} (0: {default_name})", value=0, step=step, key=key,
                                max_value=field_bounds(cls, name)[1], help=cls.model_fields[name].description))
    return None if value == 0 else value


def _build(raw: dict[str, Any]) -> RunConfig | None:
    """Validate a raw config; show pydantic's message (naming the field) and return None if invalid."""
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as error:
        st.error(f"Invalid settings: {describe_validation_error(error)}")
        return None
    try:
        check_runnable(config)  # the CLI's checks: a folder:PATH dataset exists, the run fits in memory
    except NotRunnable as error:
        st.error(f"Cannot start this run: {error}")
        return None
    return config


def model_settings(model: str, width: float, cifar_stem: bool, weights: str | None) -> dict[str, Any]:
    """The form's model section: a torchvision model takes the stem and weights (at its own widths), PruneLab's
    own the width (a weights file given for one is passed on, so the config names the mistake)."""
    if is_torchvision(model):
        return {"name": model, "cifar_stem": cifar_stem, "weights": weights}
    return {"name": model, "width": width, **({"weights": weights} if weights else {})}


def run_form() -> None:
    """Method, dataset, model and training settings -> a validated RunConfig -> the job manager (nothing on a
    viewer)."""
    if viewer_mode.active():
        return
    method = st.radio("Method", METHOD_NAMES, horizontal=True, key="form_method")
    with st.form("run_form"):
        left, middle, right = st.columns(3)
        with left:
            name = st.text_input("Run name (optional)", key="form_name")
            dataset = _dataset_input("form")
            train_size = _optional_int_input("Training images", "form_train_size", (DataConfig, "train_size"))
            test_size = _optional_int_input("Test images", "form_test_size", (DataConfig, "test_size"))
        with middle:
            model_names = [*MODEL_NAMES, *(TORCHVISION_PREFIX + name for name in TORCHVISION_NAMES)]
            model = st.selectbox("Model", model_names, index=model_names.index(ModelConfig().name), key="form_model",
                                 help=ModelConfig.model_fields["name"].description + "; `python -m prunelab models` "
                                 "says which torchvision models each method runs on")
            width = _field_input(ModelConfig, "width", "form_width")
            cifar_stem = st.checkbox("CIFAR stem (torchvision models)", value=True, key="form_cifar_stem",
                                     help=ModelConfig.model_fields["cifar_stem"].description)
            weights = st.text_input("Weights file (torchvision models, optional)", key="form_weights",
                                    help=ModelConfig.model_fields["weights"].description)
            epochs = _field_input(TrainConfig, "epochs", "form_epochs")
            lr = _field_input(TrainConfig, "lr", "form_lr")
            batch_size = _field_input(TrainConfig, "batch_size", "form_batch_size")
            threads = _optional_int_input("CPU threads", "form_threads", (TrainConfig, "threads"), step=1,
                                          default_name="torch's default")
        with right:
            fields = METHOD_FIELDS[method]
            st.caption(f"{method} settings" if fields else "baseline: plain training, no pruning")
            settings = {f: _field_input(METHOD_CONFIGS[method], f, f"form_{method}_{f}") for f in fields}
            settings.update(_departure_input(method))
        submitted = st.form_submit_button("Start run", type="primary")
    if not submitted:
        return
    config = _build({
        "name": name.strip() or None,
        "data": {"dataset": dataset, "train_size": train_size, "test_size": test_size},
        "model": model_settings(model, width, cifar_stem, weights.strip() or None),
        "train": {"epochs": epochs, "lr": lr, "batch_size": batch_size, "threads": threads},
        "method": {"name": method, **settings},
    })
    if config is not None and (run_id := _submit(lambda: common.get_job_manager().submit(config))) is not None:
        st.success(f"Started run `{run_id}`: follow it in the jobs table below, or its curves live.")
        live_view.link_to(run_id)


def suite_form() -> None:
    """A registered suite (`suites.SUITES`: demo, slimming, ablation, controls) or a one-parameter sweep, on the
    default data (nothing on a viewer)."""
    if viewer_mode.active():
        return
    with st.form("suite_form"):
        left, right = st.columns(2)
        name = left.selectbox("Suite", [*suites.SUITES, "sweep"], key="suite_name",
                              help="controls: slimming with random channels at its counts and its architecture "
                              "from scratch, ManiDP with a static network of its mean MACs, every run at one budget")
        epochs = left.number_input("Epochs per run", value=suites.DEMO_EPOCHS, step=1, key="suite_epochs",
                                   max_value=field_bounds(TrainConfig, "epochs")[1])
        param = right.selectbox("Sweep parameter (sweep only)", list(SWEEP_PARAMS), key="suite_param")
        values = right.text_input("Sweep values (sweep only)", "0, 1e-4, 1e-3", key="suite_values",
                                  help=f"Comma-separated, {SWEEP_VALUES.allowed()} values ({SWEEP_VALUES.reason}); "
                                  f"a suite holds {SUITE_RUNS.allowed()} runs.")
        backend = ray_jobs.backend_input()
        submitted = st.form_submit_button("Start suite")
    live = st.button("Run the demo live", key="demo_live",
                     help="Train the suite behind the precomputed demo runs here, now: a baseline, slimming "
                     "at three λ and the four-row ManiDP ablation (the same settings as assets/demo_runs).")
    if not (submitted or live):
        return
    try:
        base = RunConfig()
        if live:
            demo_base = RunConfig(model=ModelConfig(name=results.DEMO_MODEL, width=results.DEMO_WIDTH))
            suite = suites.build_suite("demo", demo_base, suites.DEMO_EPOCHS, suites.DEMO_FINETUNE_EPOCHS)
        elif name == "sweep":
            suite = suites.sweep(None, param, suites.parse_values(values), base, epochs=int(epochs))
        else:
            suite = suites.build_suite(name, base, epochs=int(epochs))
        check_suite_runnable([item.config for item in suite.runs])
    except ValueError as error:  # the run and field, the bad sweep value, or the memory
        st.error(str(error))
        return
    local = common.get_job_manager().submit_suite
    if (run_ids := _submit(lambda: ray_jobs.submit_suite(backend, suite, local))) is not None:
        where = " on Ray" if backend["backend"] == "ray" else ""
        st.success(f"Started suite `{suite.suite_id}`{where}: {len(run_ids)} runs queued.")


def _submit(submit: Callable[[], Any]) -> Any:
    """Hand a run or suite to the job manager; a failed write is shown on the page and gives None."""
    try:
        return submit()
    except OSError as error:
        st.error(_write_error(error))
        return None


def _write_error(error: OSError) -> str:
    return f"Cannot start: {describe_os_error(error)}. Is the runs folder `{default_runs_dir()}` writable?"


# ----------------------------------------------------------------------------------------------
# jobs


def _job_text(snap: dict[str, Any]) -> str:
    """'sparsity epoch 2/5 · 43% · ETA 12 s · test acc 0.712' from a progress snapshot."""
    phase = common.md_text(snap.get("phase") or snap.get("state"))  # a Ray run's comes from its status.json
    parts = [f"{phase} epoch {snap.get('epoch', 0)}/{snap.get('epochs_total', 0)}",
             f"{100 * float(snap.get('fraction') or 0.0):.0f}%"]
    if snap.get("eta_s"):
        parts.append(f"ETA {snap['eta_s']:.0f} s")
    acc = accuracy_text(snap.get("metrics") or {})
    if acc:
        parts.append(acc)
    return " · ".join(parts)


def schedulers() -> list[Scheduler]:
    """The schedulers this server holds for the runs folder (each in `st.cache_resource`): the job manager,
    and the Ray runner once a suite has been started on Ray."""
    ray_runner = ray_jobs.started_runner()
    return [common.get_job_manager(), *([ray_runner] if ray_runner is not None else [])]


def _scheduled_jobs() -> list[tuple[Scheduler, JobInfo]]:
    """Every job of this server with the scheduler that holds it, each scheduler's in submission order."""
    return [(scheduler, job) for scheduler in schedulers() for job in scheduler.jobs()]


def _job_row(scheduler: Scheduler, job: JobInfo) -> None:
    name, bar, action = st.columns([3, 6, 1], vertical_alignment="center")
    label = common.md_text(job.name or job.run_id)  # a resumed run's name is its folder's: anything but a slash
    name.markdown(f"**{label}**  \n{job.method} · {job.state}{ray_jobs.where(job)}")
    bar.progress(min(1.0, float(job.progress.get("fraction") or 0.0)), text=_job_text(job.progress))
    if job.state in ACTIVE_STATES:  # cancelled by the scheduler that runs it
        action.button("Cancel", key=f"cancel_{job.run_id}", on_click=scheduler.cancel, args=(job.run_id,))
    if job.state == "failed":
        st.error(f"{label} failed: {common.md_text(job.error)}")


def jobs_panel() -> None:
    """The jobs of this app process, polled every POLL_S seconds while one is queued or running (nothing on a
    viewer: it holds no scheduler)."""
    if viewer_mode.active():
        return
    active = any(job.state in ACTIVE_STATES for _, job in _scheduled_jobs())
    st.fragment(_jobs_body, run_every=POLL_S if active else None)()


def _jobs_body() -> None:
    scheduled = _scheduled_jobs()
    if not scheduled:
        st.caption("No jobs started from this app yet. Runs started with `python -m prunelab` appear in the "
                   "runs table below.")
        return
    for scheduler, job in reversed(scheduled):
        _job_row(scheduler, job)
    active = {job.run_id for _, job in scheduled if job.state in ACTIVE_STATES}
    if active != st.session_state.get("active_jobs", active):
        st.session_state["active_jobs"] = active
        st.rerun()  # a job ended or started: refresh the runs table (and stop polling when idle)
    st.session_state["active_jobs"] = active


# ----------------------------------------------------------------------------------------------
# runs browser


def _filtered(runs: pd.DataFrame) -> pd.DataFrame:
    columns = st.columns(3)
    for column, field in zip(columns, ("method", "state", "suite"), strict=True):
        options = sorted(runs[field].dropna().unique().tolist())
        chosen = column.multiselect(f"Filter by {field}", options, key=f"filter_{field}")
        if chosen:
            runs = runs[runs[field].isin(chosen)]
    return runs


def runs_browser(runs: pd.DataFrame, read_only: bool | None = None) -> None:
    """The runs table with filters and row selection (one selected run: its exports); selected user runs can be
    deleted, resumed or restarted unless `read_only` (default: on a viewer, `app_components.viewer_mode`)."""
    read_only = viewer_mode.active() if read_only is None else read_only
    if runs.empty:
        st.caption("No runs in the runs folder yet.")
        return
    broken = runs["problem"].notna()
    runs = runs.assign(state=runs["state"].where(~broken, "broken"))
    if broken.any():
        st.warning(f"{int(broken.sum())} run(s) have missing or corrupt files and are listed as *broken*; "
                   "the problem column names the file." + ("" if read_only else " Select them to delete them."))
    view = _filtered(runs).assign(settings=lambda df: df.apply(results.method_settings, axis=1))
    event = st.dataframe(
        view[TABLE_COLUMNS], hide_index=True, on_select="rerun", selection_mode="multi-row", key="runs_table",
        column_config={
            "fraction": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0),
            "test_acc": st.column_config.NumberColumn("test acc", format="%.3f"),
            "macs_per_image": st.column_config.NumberColumn("MACs / image", format="compact"),
            "params": st.column_config.NumberColumn("params", format="compact"),
            "wall_time_s": st.column_config.NumberColumn("time (s)", format="%.0f"),
            "epochs_total": st.column_config.NumberColumn("epochs in all", help="every epoch behind the final "
                                                          "weights, a parent run's included"),
            "parent_run": st.column_config.TextColumn("parent run"),
            "demo": st.column_config.CheckboxColumn("demo"),
        },
    )
    selected = view.iloc[event.selection.rows] if event is not None else view.iloc[:0]
    if len(selected) == 1:
        run_exports.run_detail(Path(selected["path"].iloc[0]))
    if not read_only:
        _run_actions(selected)


def _run_actions(selected: pd.DataFrame) -> None:
    """Delete, resume or restart the selected runs."""
    if st.button(f"Delete selected runs ({len(selected)})", disabled=selected.empty, key="delete_runs"):
        st.session_state[PENDING_DELETE] = selected["path"].tolist()
    if st.session_state.get(PENDING_DELETE):
        _confirm_delete(st.session_state[PENDING_DELETE])
    stopped = selected[selected["state"].isin(RESUMABLE_STATES) & ~selected["demo"].astype(bool)]
    resume, restart = st.columns(2)
    if resume.button(f"Resume selected ({len(stopped)})", disabled=stopped.empty, key="resume_runs"):
        _resume(stopped["path"].tolist(), from_scratch=False)
    if restart.button(f"Restart selected from scratch ({len(stopped)})", disabled=stopped.empty,
                      key="restart_runs", help="Keeps each run's settings; removes its checkpoint, metrics "
                      "and results (e.g. after a corrupt checkpoint)."):
        _resume(stopped["path"].tolist(), from_scratch=True)


def _resume(paths: list[str], from_scratch: bool) -> None:
    """Hand interrupted, cancelled or failed runs back to the job manager (from their checkpoint or anew)."""
    for path in paths:
        try:
            common.get_job_manager().resume(path, from_scratch=from_scratch)
        except JobError as error:
            st.error(common.md_text(error))
        except OSError as error:
            st.error(_write_error(error))


def _clear_pending() -> None:
    st.session_state.pop(PENDING_DELETE, None)


@st.dialog("Delete runs?", on_dismiss=_clear_pending)
def _confirm_delete(paths: list[str]) -> None:
    """Confirmation of a deletion kept in session state, so the dialog survives its own reruns."""
    demo = [path for path in paths if results.is_demo(path)]
    doomed = [path for path in paths if not results.is_demo(path)]
    if demo:
        st.warning(f"{len(demo)} demo run(s) are read-only and will be kept.")
    if doomed:
        st.markdown("These run directories will be removed from disk:\n" +
                    "\n".join(f"- {common.md_code(path)}" for path in doomed))
    confirm, cancel = st.columns(2)
    if doomed and confirm.button("Delete for good", type="primary", key="delete_confirm"):
        errors = []
        for path in doomed:
            try:
                results.delete_run(path)
            except RunStoreError as error:
                errors.append(str(error))
        _clear_pending()
        if errors:
            st.error("\n\n".join(common.md_text(error) for error in errors))
        else:
            st.rerun()
    if cancel.button("Cancel", key="delete_cancel"):
        _clear_pending()
        st.rerun()

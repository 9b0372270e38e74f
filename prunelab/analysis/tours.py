"""Guided tours of both papers: one question, one knob and one view per step, defined once for the Lessons page
and the handout (`prunelab.export.handout`), which only render them.

`TOURS` holds one tour per paper (`prunelab.analysis.tour_slimming.STEPS`, `prunelab.analysis.tour_manidp.STEPS`),
keyed by its method's name. A step reads one dataset's finished runs (`tour_table`: the bundled demo's when the runs
hold demo runs on that dataset, so a lecturer's tour shows what the text says, else every run there):
`knob(table, tour, step)` gives the values its knob offers and the one it opens on, `view(table, tour, step, value)`
its `StepView`. Every step has its own URL (`url_params`, `place`): `?tour=<method>&step=<n>&dataset=<name>` and,
once the knob has moved, `&knob=<value>`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from prunelab.analysis import tables, tour_manidp, tour_slimming
from prunelab.analysis.tour_base import Step, StepView, nothing
from prunelab.config import dataset_short_name
from prunelab.methods.manidp.config import NAME as MANIDP
from prunelab.methods.slimming.config import NAME as SLIMMING

log = logging.getLogger("prunelab.analysis.tours")


@dataclass(frozen=True)
class Tour:
    """One paper's tour: its method's name (the URL's `tour`), title, the paper and its steps (numbered from 1)."""

    key: str
    title: str
    paper: str
    steps: tuple[Step, ...]


TOURS = {tour.key: tour for tour in (
    Tour(SLIMMING, "Network Slimming", "Liu et al., Learning Efficient Convolutional Networks through Network "
         "Slimming, ICCV 2017", tour_slimming.STEPS),
    Tour(MANIDP, "ManiDP", "Tang et al., Manifold Regularized Dynamic Network Pruning, CVPR 2021",
         tour_manidp.STEPS),
)}
URL_KEYS = ("tour", "step", "dataset", "knob")


# ----------------------------------------------------------------------------------------------
# the runs a tour reads


def datasets(runs: pd.DataFrame) -> list[str]:
    """The datasets of the finished runs in `runs` (a runs table), the bundled demos' first, in table order."""
    if runs.empty or "dataset" not in runs:
        return []
    done = runs[(runs["state"] == "done")] if "state" in runs else runs
    if "demo" in done:
        demo = done["demo"].fillna(False).astype(bool)
        done = pd.concat([done[demo], done[~demo]])
    return list(dict.fromkeys(str(d) for d in done["dataset"].dropna()))


def tour_table(runs: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """The finished runs on `dataset` as an ablation table (`tables.ablation_table`): only the bundled demo's when
    `runs` holds demo runs on it."""
    mine = runs[runs["dataset"] == dataset] if "dataset" in runs else runs.iloc[0:0]
    if "demo" in mine and mine["demo"].fillna(False).astype(bool).any():
        mine = mine[mine["demo"].fillna(False).astype(bool)]
    return tables.ablation_table(mine)


def image_runs(runs: pd.DataFrame) -> list[str]:
    """The runs whose test images the tours show: ManiDP's opening run on each dataset."""
    found = (tour_manidp.opening(tour_table(runs, dataset)) for dataset in datasets(runs))
    return [path for path in found if path is not None]


def warm_up_in_background(paths: Sequence[str]) -> threading.Thread:
    """Load the test images of the runs at `paths` in a daemon thread (`results.run_dataset`, kept in memory by
    `load_dataset`): a fresh server generates the shapes set once, seconds a step would otherwise wait for."""
    from prunelab.analysis import results

    def load() -> None:
        for path in paths:
            try:
                results.run_dataset(path)
            except Exception as error:  # noqa: BLE001 - a failed warm-up only means a step loads them itself
                log.info("warm-up of %s: %s", path, error)

    thread = threading.Thread(target=load, name="prunelab-tour-images", daemon=True)
    thread.start()
    return thread


# ----------------------------------------------------------------------------------------------
# a step: its knob and its view


def step_of(tour: str, step: int) -> Step:
    """Step `step` (from 1) of the tour `tour`."""
    return TOURS[tour].steps[step - 1]


def knob(table: pd.DataFrame, tour: str, step: int) -> tuple[list[Any], Any]:
    """The values the step's knob offers on these runs and the one it opens on (([], None) when there are none)."""
    spec = step_of(tour, step).knob
    try:
        options = spec.options(table)
        if not options:
            return [], None
        return options, spec.default(table, options) if spec.default is not None else options[0]
    except Exception as error:  # noqa: BLE001 - runs this step cannot read: its view says why
        log.warning("the knob of %s step %d cannot be read: %s", tour, step, error)
        return [], None


def view(table: pd.DataFrame, tour: str, step: int, value: Any) -> StepView:
    """What step `step` of `tour` shows at knob `value` on these runs; a step its runs cannot draw says why in its
    note instead of failing."""
    try:
        return step_of(tour, step).view(table, value)
    except Exception as error:  # noqa: BLE001 - a run with a missing or corrupt file: one step says so, not the page
        log.warning("%s step %d cannot be drawn: %s", tour, step, error)
        return nothing(f"This step cannot be drawn from these runs: {error}")


# ----------------------------------------------------------------------------------------------
# the URL of a step


def value_key(value: Any) -> str:
    """A knob value as the URL writes it: '0.004', '0.5', 'blocks.3.gate_a'."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def knob_value(options: Sequence[Any], text: str | None, default: Any) -> Any:
    """The option the URL's `knob` names (`value_key`), else `default`."""
    return next((option for option in options if value_key(option) == text), default)


@dataclass(frozen=True)
class Place:
    """Where a tour stands: tour, step (from 1), dataset (as in the runs table) and the URL's knob text (None: the
    step's default)."""

    tour: str
    step: int
    dataset: str
    knob: str | None = None


def place(params: Mapping[str, str], names: Sequence[str]) -> Place:
    """The place a URL's query parameters name among the datasets `names` (the first tour, step and dataset where
    they name none, or one that does not exist)."""
    tour = params.get("tour") if params.get("tour") in TOURS else next(iter(TOURS))
    try:
        step = min(max(int(params.get("step", "1")), 1), len(TOURS[tour].steps))
    except ValueError:
        step = 1
    wanted = params.get("dataset")
    dataset = next((name for name in names if dataset_short_name(name) == wanted), names[0] if names else "")
    return Place(tour, step, dataset, params.get("knob"))


def url_params(at: Place) -> dict[str, str]:
    """The query parameters of a place: what `place` reads back."""
    params = {"tour": at.tour, "step": str(at.step), "dataset": dataset_short_name(at.dataset)}
    return params | ({"knob": at.knob} if at.knob is not None else {})

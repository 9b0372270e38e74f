"""What a guided tour's step is made of, and the pieces every step's view reads its runs with.

A step (`Step`) asks one question, turns one knob (`Knob`: the values the runs offer, the one it opens on) and
draws one view (`StepView`: a Plotly figure, the measured figures as mean ± std over seeds, the paper's claims as
the app judges them, images, a note said plainly). The steps of each paper are in `prunelab.analysis.tour_slimming`
and `prunelab.analysis.tour_manidp`, the tours and their one entry point in `prunelab.analysis.tours`; the Lessons
page and the handout (`prunelab.export.handout`) only render them.

A step reads an ablation table (`prunelab.analysis.tables.ablation_table`: one row per finished run of one
dataset) and the runs' files through `prunelab.runs.run.Run`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from prunelab.analysis import lessons
from prunelab.analysis.lessons import SETTING_KEYS, Claim, Stat

Options = Callable[[pd.DataFrame], list[Any]]


@dataclass(frozen=True)
class Knob:
    """The one control of a step: `options(table)` the values the runs offer (in order), `default(table,
    options)` the one the step opens on (None: the first), `text` a value as the page shows it; `slider`: the
    values are ordered (a slider), else a choice."""

    label: str
    options: Options
    default: Callable[[pd.DataFrame, list[Any]], Any] | None = None
    text: Callable[[Any], str] = str
    slider: bool = False
    help: str = ""


@dataclass
class StepView:
    """What one step shows at one knob value. `measured`: the demo's figures (mean ± std over seeds where the
    runs hold seeds); `claims`: the paper's claims as the app judges them (`prunelab.analysis.lessons.Claim`);
    `note`: what the runs lack or where the claim does not hold, in one line; `run`: the run the full page opens on;
    `images`: (caption, uint8 [32, 32, 3]) test images, `images_note` what they are."""

    figure: go.Figure | None
    measured: list[str] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    note: str = ""
    run: str | None = None
    images: list[tuple[str, np.ndarray]] = field(default_factory=list)
    images_note: str = ""  # what the images are


@dataclass(frozen=True)
class Step:
    """One question of a tour: the paper's `claim` in the app's words, what the demo `measures` and how to read
    the chart, one `knob`, the `view` it draws (`view(table, value) -> StepView`) and the app `page` (a file of
    `app_pages/`, opened with `?run=` on the step's run) that shows more."""

    title: str
    question: str
    claim: str
    measures: str
    knob: Knob
    view: Callable[[pd.DataFrame, Any], StepView]
    page: str


def nothing(note: str) -> StepView:
    """A view with no figure, only its note: what the runs lack for this step."""
    return StepView(None, note=note)


def run_id(path: str | Path | None) -> str | None:
    return None if path is None else Path(path).name


def row_at(table: pd.DataFrame, path: str | Path) -> pd.Series:
    """The ablation-table row of the run at `path`."""
    return table[table["path"].astype(str) == str(path)].iloc[0]


def same_variant(table: pd.DataFrame, path: str | Path) -> pd.Series:
    """A mask of the runs of `table` in the same variant as the run at `path` (its seeds)."""
    row = row_at(table, path)
    mask = pd.Series(True, index=table.index)
    for key in ["method", "variant", *SETTING_KEYS]:
        mask &= table[key].isna() if pd.isna(row[key]) else table[key] == row[key]
    return mask


def stat_of(table: pd.DataFrame, mask: pd.Series, figure: str) -> Stat:
    """Mean ± std over seeds of `figure` on the runs `mask` selects (`lessons.figure_stat`)."""
    return lessons.figure_stat(table, mask, figure)


def percent(stat: Stat) -> str:
    """'72.5% ± 2.8% (n = 3)' (mean ± std over seeds)."""
    return stat.text(".1f", percent=True)


def millions(stat: Stat) -> str:
    """'6.12 M ± 0.11 M (n = 3)' (MACs, mean ± std over seeds)."""
    if stat.n == 0:
        return "no runs"
    spread = f" ± {stat.std / 1e6:.2f} M" if stat.n >= 2 else ""
    return f"{stat.mean / 1e6:.2f} M{spread} ({'n = ' + str(stat.n) if stat.n >= 2 else '1 seed'})"


def claims_about(found: Sequence[Claim], *starts: str) -> list[Claim]:
    """The claims whose lesson begins with one of `starts` (a claim of one setting and form names no suffix)."""
    return [claim for claim in found if claim.lesson.startswith(starts)]


def form_of(table: pd.DataFrame, path: str | Path) -> str:
    """The form label (`tables.form_label`) of the run at `path`, '' for a method without forms."""
    from prunelab.analysis.tables import form_label

    return form_label(row_at(table, path)) or ""

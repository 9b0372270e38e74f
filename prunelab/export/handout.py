"""The handout: the guided tours (`prunelab.analysis.tours`) as one self-contained HTML file that needs no server
and no network, `python -m prunelab report [RUNS_DIR...] --out lesson.html`.

The static reading path of the Lessons page: every step of both tours on every dataset the runs hold, at the knob
value the step opens on, with its question, chart (a Plotly figure, drawn by plotly.js embedded once in the file),
test images (PNG data URIs), the paper's claim, what the demo measures (mean ± std over seeds) and the claims as the
app judges them. Opens from a USB stick in any browser; every chart has Plotly's "download as PNG" button.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from prunelab.analysis import figures, lessons, results, tours
from prunelab.analysis.tour_base import Step, StepView
from prunelab.config import dataset_short_name
from prunelab.export.common import ExportError
from prunelab.runs.run_format import atomic_write_bytes

UPSCALE = 3  # a 32x32 test image as a 96x96 PNG (drawn pixelated)
PLOT_CONFIG = {"displaylogo": False, "responsive": True, "toImageButtonOptions": {"format": "png", "scale": 2}}
STYLE = """
body {font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px; margin: 2rem auto;
  padding: 0 1.5rem; color: #222; line-height: 1.45;}
h1 {margin-bottom: 0.2rem;} h2 {margin-top: 3rem; border-bottom: 2px solid #ddd;} h3 {margin-top: 2.5rem;}
section {border-top: 1px solid #e5e5e5; padding-top: 1rem; margin-top: 2rem;}
.question {font-weight: 600; font-size: 1.05rem;} .knob {color: #555; font-size: 0.9rem;}
.chart {width: 100%; min-height: 300px;} .note {background: #eef5fb; padding: 0.6rem 0.8rem; border-radius: 6px;}
.columns {display: grid; grid-template-columns: 1fr 1fr; gap: 1.5rem;}
.images {display: flex; flex-wrap: wrap; gap: 0.5rem;} .images figure {margin: 0; width: 96px; font-size: 0.7rem;}
.images img {width: 96px; height: 96px; image-rendering: pixelated;}
table {border-collapse: collapse; width: 100%; font-size: 0.88rem; margin-top: 0.8rem;}
th, td {border-bottom: 1px solid #ddd; padding: 0.35rem; text-align: left; vertical-align: top;}
code {background: #f3f3f3; padding: 0 0.2rem;} .small {color: #666; font-size: 0.85rem;}
nav li {margin: 0.15rem 0;}
"""


@dataclass(frozen=True)
class Handout:
    """What `write_handout` wrote: the file, its size, and how many steps and charts it holds."""

    path: Path
    size: int
    steps: int
    charts: int


def write_handout(roots: Sequence[str | Path], out: str | Path) -> Handout:
    """Write the handout of the finished runs in the folders `roots` to `out` (atomically: an existing file is
    replaced only by a complete new one); ExportError (one line) when a folder is missing or holds no finished run,
    or when `out` cannot be written."""
    folders, target = [Path(root) for root in roots], Path(out)
    missing = [str(folder) for folder in folders if not folder.is_dir()]
    if missing:
        raise ExportError(f"no runs folder {missing[0]!r}")
    if not target.parent.is_dir():
        raise ExportError(f"cannot write {str(target)!r}: its folder does not exist")
    runs = results.runs_table(folders).assign(demo=False)  # the folders given are the ones to read, demo or not
    names = tours.datasets(runs)
    if not names:
        raise ExportError(f"no finished run in {', '.join(str(f) for f in folders)}: the handout reads finished runs")
    body, figures = [], []
    for dataset in names:
        table = tours.tour_table(runs, dataset)
        body.append(f"<h2 id='{_anchor(dataset)}'>Dataset: {_text(dataset_short_name(dataset))}</h2>")
        for key, tour in tours.TOURS.items():
            body.append(f"<h3 id='{_anchor(dataset, key)}'>{_text(tour.title)}</h3>"
                        f"<p class='small'>{_text(tour.paper)}</p>")
            for number, step in enumerate(tour.steps, start=1):
                options, value = tours.knob(table, key, number)
                view = tours.view(table, key, number, value)
                place = tours.Place(key, number, dataset)
                body.append(_section(step, view, place, options, value, len(figures)))
                if view.figure is not None:
                    figures.append(view.figure)
    page = _page(names, body, figures, folders)
    try:
        atomic_write_bytes(target, page.encode("utf-8"))
        target.chmod(0o644)  # a handout to copy and share, not a private file
    except OSError as error:
        raise ExportError(f"cannot write {str(target)!r}: {error.strerror or error}") from None
    steps = len(names) * sum(len(tour.steps) for tour in tours.TOURS.values())
    return Handout(target, len(page.encode("utf-8")), steps, len(figures))


# ----------------------------------------------------------------------------------------------
# one step


def _section(step: Step, view: StepView, place: tours.Place, options: list, value: object, chart: int) -> str:
    knob = (f"<p class='knob'>Knob: {_text(step.knob.label)} = <b>{_text(step.knob.text(value))}</b>"
            f"{' (in the app it moves; the step opens here)' if len(options) > 1 else ''}</p>" if options else "")
    parts = [f"<section id='{_anchor(place.dataset, place.tour, str(place.step))}'>",
             f"<h4>{place.step}. {_text(step.title)}</h4>", f"<p class='question'>{_text(step.question)}</p>", knob]
    if view.figure is not None:
        parts.append(f"<div class='chart' id='chart-{chart}'></div>")
    if view.note:
        parts.append(f"<p class='note'>{_markdown(view.note)}</p>")
    if view.images:
        parts.append(f"<p class='small'>{_text(view.images_note)}</p><div class='images'>" + "".join(
            f"<figure><img alt='{_text(caption)}' src='{_png(image)}'><figcaption>{_text(caption)}</figcaption>"
            "</figure>" for caption, image in view.images) + "</div>")
    measured = "".join(f"<li>{_text(line)}</li>" for line in view.measured)
    parts.append(f"<div class='columns'><div><b>The paper.</b> {_text(step.claim)}</div>"
                 f"<div><b>What the demo measures.</b> {_text(step.measures)}<ul>{measured}</ul></div></div>")
    if view.claims:
        rows = lessons.claims_table(view.claims)
        cells = ("<tr>" + "".join(f"<td>{_text(cell)}</td>" for cell in row) + "</tr>"
                 for row in rows.itertuples(index=False))
        parts.append("<table><tr>" + "".join(f"<th>{_text(c)}</th>" for c in rows.columns) + "</tr>"
                     + "".join(cells) + "</table>")
        parts.append("<details><summary class='small'>Every claim in full</summary><ul>" + "".join(
            f"<li><b>{_text(c.lesson)}</b> ({_text(c.verdict)})<br>Paper: {_text(c.paper)}<br>Measured here: "
            f"{_text(c.measured)}</li>" for c in view.claims) + "</ul></details>")
    link = "?" + "&amp;".join(f"{k}={_text(v)}" for k, v in tours.url_params(place).items())
    parts.append(f"<p class='small'>In the app: the Lessons page at <code>/lessons{link}</code>"
                 f"{f', and the full page of run <code>{_text(view.run)}</code>' if view.run else ''}.</p></section>")
    return "".join(parts)


# ----------------------------------------------------------------------------------------------
# the page


def _page(names: list[str], body: list[str], figures: list, folders: list[Path]) -> str:
    import plotly.io
    from plotly.offline import get_plotlyjs

    contents = "".join(
        f"<li><a href='#{_anchor(name)}'>{_text(dataset_short_name(name))}</a>: " + ", ".join(
            f"<a href='#{_anchor(name, key)}'>{_text(tour.title)}</a>" for key, tour in tours.TOURS.items()) + "</li>"
        for name in names)
    data = ",".join(plotly.io.to_json(figure, validate=False) for figure in figures)
    draw = (f"const FIGURES = [{_script_safe(data)}];\nconst CONFIG = {json.dumps(PLOT_CONFIG)};\n"
            "FIGURES.forEach((f, i) => Plotly.newPlot('chart-' + i, f.data, f.layout, CONFIG));")
    made = ", ".join(_text(str(folder)) for folder in folders)
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>PruneLab: guided tours of Network "
            f"Slimming and ManiDP</title><style>{STYLE}</style><script>{_script_safe(get_plotlyjs())}</script></head>"
            "<body><h1>PruneLab: guided tours of Network Slimming and ManiDP</h1>"
            f"<p class='small'>Made on {date.today().isoformat()} by <code>python -m prunelab report</code> from "
            f"{made}. One file, no server, no network: every chart is drawn here (hover for values; the camera "
            "button downloads it as PNG).</p>"
            "<p>Each step asks one question and shows the view that answers it, the paper's claim next to what the "
            "demo measures (mean ± standard deviation over seeds). A difference counts as real when the means lie more "
            "than two standard errors apart; a claim that does not hold at this small scale is a finding, not a "
            f"failure.</p><nav><ul>{contents}</ul></nav>{''.join(body)}<script>{draw}</script></body></html>")


def _anchor(*parts: str) -> str:
    return "-".join(re.sub(r"[^A-Za-z0-9]+", "-", dataset_short_name(part)).strip("-") for part in parts)


def _text(value: object) -> str:
    return html.escape(str(value), quote=True)


def _markdown(text: str) -> str:
    """A note's markdown as HTML: escaped, with its `code` spans and **bold** kept."""
    escaped = _text(text)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", escaped)


def _script_safe(text: str) -> str:
    """Text inside a <script> element: no '</' that could close it early."""
    return text.replace("</", "<\\/")


def _png(image: np.ndarray) -> str:
    """A uint8 [32, 32, 3] test image as an upscaled PNG data URI."""
    return "data:image/png;base64," + base64.b64encode(figures.png_bytes(image, UPSCALE)).decode("ascii")


def default_roots() -> list[Path]:
    """The folders the app reads: the user's runs folder, then the bundled demos (`results.run_roots`)."""
    return results.run_roots()


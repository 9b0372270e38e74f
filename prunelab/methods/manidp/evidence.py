"""ManiDP's claims judged by the paper's own kind of test, from a finished run's files.

Tang et al. (CVPR 2021) support their two terms with (a) which images get the cheapest and the costliest
sub-networks, and (b) accuracy at matched FLOPs in their ablation table. The figures here follow that:

- complexity: each test image's sub-network cost relative to the run's mean, `macs_i / mean_j macs_j`,
  averaged within quintiles of an *external* difficulty, the parent model's own test loss (`parent_loss` in
  per_image.parquet: measured before the gates existed, so not caused by the allocation it is meant to
  explain). `complexity_quintile_gap` = mean relative MACs of the hardest fifth minus the easiest fifth:
  > 0 when harder images get larger sub-networks;
- similarity: `similarity_rank_correlation` = Spearman's rho between feature similarity R and gate
  similarity T over the pairs (i < j) of the held-out probe images (probe.npz), averaged over the gated
  layers: do images with similar features get similar sub-networks? (‖T − R‖ is the term's own objective,
  which training lowers by construction; this is the claim);
- dynamism: `macs_cv` (std / mean of per-image MACs) and `decision_disagreement` (summary.json): do the
  gates route different images differently at all?
- matched MACs: accuracy at a common MACs reduction, interpolated linearly along the run's what-if curve
  (accuracy against MACs reduction at other target densities) where the run has one.

ManiDP's finalize writes these figures into summary.json; `backfill(path)` adds them to a
run that finished before it did, from the run's files (`scripts/backfill_evidence.py`). `evidence_table` shows
them per variant, mean ± std over seeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from prunelab.methods.manidp.artefacts import PER_IMAGE, PROBE
from prunelab.methods.manidp.config import NAME as MANIDP
from prunelab.methods.manidp.report import (
    macs_cv,
    quintile_gap,
    relative_macs_by_quintile,
    similarity_rank_correlation,
)
from prunelab.runs.artefacts import SUMMARY
from prunelab.runs.run import Run
from prunelab.runs.run_format import MODEL_FILE, RunStoreError
from prunelab.runs.store import RunDir

EVIDENCE_COLUMNS = ["complexity_quintile_gap", "similarity_rank_correlation", "macs_cv", "decision_disagreement"]


def run_evidence(path: str | Path, summary: dict[str, Any] | None = None) -> dict[str, float | None]:
    """EVIDENCE_COLUMNS of one finished ManiDP run from its files (None where a file or column is missing)."""
    summary = summary or {}
    out: dict[str, float | None] = dict.fromkeys(EVIDENCE_COLUMNS)
    table = Run(path).read(PER_IMAGE)
    if table is not None:
        macs = table["macs"].to_numpy(dtype=np.float64)
        out["macs_cv"] = macs_cv(macs)
        if "parent_loss" in table:
            out["complexity_quintile_gap"] = quintile_gap(macs, table["parent_loss"].to_numpy())
    probe = Run(path).read(PROBE)
    if probe is not None:
        out["similarity_rank_correlation"] = similarity_rank_correlation(probe.T, probe.R)
    for key in ("macs_cv", "decision_disagreement"):
        if isinstance(summary.get(key), int | float):
            out[key] = float(summary[key])
    return out


def backfill(path: str | Path) -> dict[str, float]:
    """Add to summary.json the EVIDENCE_COLUMNS it lacks (a run finished before ManiDP's finalize wrote
    them), computed from the run's own files; returns what was added."""
    run = RunDir(Path(path))
    summary = run.read_summary()
    added = {key: value for key, value in run_evidence(path, summary).items()
             if value is not None and key not in summary}
    if "decision_disagreement" not in summary and run.file(MODEL_FILE).is_file():
        added.update(_dynamism_from_model(Path(path)))
    if added:
        run.write_summary({**summary, **added})
    return added


def _dynamism_from_model(path: Path) -> dict[str, float]:
    """macs_cv and decision_disagreement from the run's gated model.pt, every test image evaluated again."""
    from prunelab.methods.manidp.gated_run import gated_run
    from prunelab.methods.manidp.report import gate_dynamism

    run = gated_run(path)
    result = run.trainer.context.evaluate(run.model, "test")
    return gate_dynamism(result.extras["masks"].numpy(), result.extras["macs"].numpy())


def control_of(table: pd.DataFrame, run: str | Path, term: str = "complexity") -> str | None:
    """The path of the run in `table` (an ablation table) that differs from `run` only in ManiDP's `term`
    ("complexity" or "similarity"): same form and departures, the other term, seed and setting alike."""
    rows = table[table["path"].astype(str) == str(run)] if "path" in table else table.iloc[0:0]
    if rows.empty:
        return None
    me = rows.iloc[0]
    keys = ["method", "form", "dataset", "model", "width", "epochs_total", "seed", "target_density",
            "complexity", "similarity"]
    same = pd.Series(True, index=table.index)
    for key in (k for k in keys if k in table):
        value = (not bool(me[key])) if key == term else me[key]
        same &= table[key].isna() if pd.isna(value) else table[key] == value
    if "departures" in table:
        mine = list(me["departures"]) if isinstance(me["departures"], list | tuple) else []
        same &= table["departures"].map(lambda d: list(d) if isinstance(d, list | tuple) else []) == pd.Series(
            [mine] * len(table), index=table.index)
    found = table[same]
    return None if found.empty else str(found.iloc[0]["path"])


def quintile_table(runs: dict[str, str | Path]) -> pd.DataFrame:
    """Relative MACs by quintile of parent_loss for each named run that has it: rows = quintile (1 easiest),
    columns = run labels."""
    columns = {}
    for label, path in runs.items():
        table = Run(path).read(PER_IMAGE)
        if table is None or "parent_loss" not in table:
            continue
        columns[label] = relative_macs_by_quintile(table["macs"].to_numpy(), table["parent_loss"].to_numpy())
    frame = pd.DataFrame(columns)
    frame.index = pd.Index(range(1, len(frame) + 1), name="quintile of parent loss (1 = easiest)")
    return frame


WHATIF_ACCURACY_KEY = "whatif_accuracy"


def accuracy_curve(run_dir: str | Path) -> pd.DataFrame:
    """The run's what-if curve as accuracy against MACs reduction per target density: from its stored curve
    (`prunelab.analysis.views.whatif_accuracy`), else from the points its summary.json keeps (`keep_accuracy_curve`);
    empty when it has neither."""
    from prunelab.analysis.views import whatif_accuracy

    curve = whatif_accuracy(run_dir)
    if not curve.empty:
        return curve
    try:
        points = (Run(run_dir).read(SUMMARY) or {}).get(WHATIF_ACCURACY_KEY) or []
    except RunStoreError:
        points = []
    return pd.DataFrame(points, columns=list(curve.columns))


def keep_accuracy_curve(run_dir: str | Path, densities: Sequence[float]) -> list[dict[str, float]]:
    """Write the run's what-if curve at `densities` as accuracy points into its summary.json (key
    `whatif_accuracy`), computing what is not stored yet, and return them. A demo ships one gated model per
    variant; the seeds whose model is not shipped keep these points, so the matched-MACs ablation has every
    seed (a few hundred bytes instead of the ~150 kB per-image curve, which belongs to a model)."""
    from prunelab.analysis.views import compute_whatif, whatif_accuracy

    compute_whatif(run_dir, densities)
    points = whatif_accuracy(run_dir).to_dict("records")
    run = RunDir(run_dir)
    summary = run.read_summary()
    summary[WHATIF_ACCURACY_KEY] = points
    run.write_summary(summary)
    return points


def with_matched_accuracy(table: pd.DataFrame, setting: Sequence[str] = ()) -> pd.DataFrame:
    """`table` (an ablation table) with `matched_reduction` and `acc_at_matched` on every ManiDP run with a
    stored what-if curve: its accuracy at one common MACs reduction per form and `setting` (columns that a
    comparison never mixes, such as the dataset; `matched_reduction`), interpolated along its curve; NaN
    elsewhere and outside a curve. The paper's ablation compares the variants at matched FLOPs; this is that
    comparison for runs whose own reductions differ."""
    from prunelab.analysis.tables import form_label

    out = table.copy()
    out["matched_reduction"], out["acc_at_matched"] = np.nan, np.nan
    if out.empty or "method" not in out or "path" not in out:
        return out
    manidp = out[out["method"] == MANIDP]
    if manidp.empty:
        return out
    keys = [key for key in setting if key in manidp]
    forms = manidp.apply(lambda row: form_label(row) or "", axis=1)
    for _, group in manidp.groupby([*(manidp[key].astype(str) for key in keys), forms], sort=False):
        curves = {index: accuracy_curve(row["path"]) for index, row in group.iterrows()}
        reduction = matched_reduction(group["macs_reduction"], [c for c in curves.values() if not c.empty])
        for index, curve in curves.items():
            at = accuracy_at(curve, reduction)
            if at is not None:
                out.loc[index, ["matched_reduction", "acc_at_matched"]] = [reduction, at]
    return out


def matched_reduction(own: pd.Series, curves: Sequence[pd.DataFrame]) -> float:
    """The MACs reduction a group of runs is compared at: the median of their own reductions, moved into the
    range every curve covers when they share one (a variant whose gates cut a fixed share whatever the target
    density spans a narrow range); the median when they share none (the runs outside it then have no
    figure)."""
    reduction = float(own.median())
    if not curves:
        return reduction
    low = max(float(c["macs_reduction"].min()) for c in curves)
    high = min(float(c["macs_reduction"].max()) for c in curves)
    return float(np.clip(reduction, low, high)) if low <= high else reduction


def accuracy_at(curve: pd.DataFrame, reduction: float) -> float | None:
    """Accuracy at MACs reduction `reduction`, interpolated linearly along `curve` (columns macs_reduction,
    test_acc); None outside the curve's range."""
    points = curve.dropna(subset=["macs_reduction", "test_acc"]).sort_values("macs_reduction")
    x, y = points["macs_reduction"].to_numpy(), points["test_acc"].to_numpy()
    if x.size == 0 or reduction < x[0] - 1e-9 or reduction > x[-1] + 1e-9:
        return None
    return float(np.interp(reduction, x, y))


# (figure, column title, format, shown as a percentage)
EVIDENCE_SHOWN = [("test_acc", "accuracy", ".1f", True), ("macs_reduction", "MACs reduction", ".1f", True),
                  ("macs_cv", "MACs CV", ".3f", False),
                  ("decision_disagreement", "decisions off majority", ".1f", True),
                  ("complexity_quintile_gap", "hardest − easiest fifth", ".3f", False),
                  ("similarity_rank_correlation", "ρ(R, T)", ".3f", False),
                  ("matched_reduction", "matched MACs reduction", ".1f", True),
                  ("acc_at_matched", "accuracy at matched MACs", ".1f", True)]


def evidence_table(groups: pd.DataFrame) -> pd.DataFrame:
    """The ManiDP variants of `prunelab.analysis.lessons.variant_groups(...)` with the paper's tests and gate
    dynamism as 'mean ± std' texts, one row per variant (its form in the variant's name): the Ablations page's and
    the lessons report's "ManiDP by the paper's own tests"."""
    rows = groups[groups["method"] == MANIDP] if "method" in groups else groups.iloc[0:0]
    out = []
    for _, row in rows.iterrows():
        entry = {"variant": row["variant"], "epochs in all": row["epochs_total"], "seeds": row["seeds"]}
        for key, label, fmt, percent in EVIDENCE_SHOWN:
            mean, std = row.get(f"{key}_mean"), row.get(f"{key}_std")
            scale, unit = (100.0, "%") if percent else (1.0, "")
            if mean is None or pd.isna(mean):
                entry[label] = ""
                continue
            text = f"{mean * scale:{fmt}}{unit}"
            entry[label] = text if pd.isna(std) else f"{text} ± {std * scale:{fmt}}{unit}"
        out.append(entry)
    return pd.DataFrame(out)

"""Print the papers' claims next to what a runs folder shows, as Markdown (mean ± std over seeds).

The same figures as the Ablations, Slimming, Per-image and Similarity pages (`prunelab.analysis.lessons`), for
a README, a report or a closing note:

    python scripts/lessons_report.py assets/demo_runs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prunelab.analysis import controls, lessons, tables  # noqa: E402
from prunelab.analysis.results import runs_table  # noqa: E402
from prunelab.methods.manidp.evidence import evidence_table  # noqa: E402

FIGURES = [("test_acc", "test accuracy", ".3f"), ("macs_per_image", "MMACs / image", ".2f"),
           ("acc_after_prune", "acc. right after pruning", ".3f"),
           ("gamma_frac_below_0.05", "share of abs(γ) < 0.05", ".3f"),
           ("similarity_gap_mean", "mean ‖T − R‖_F", ".2f"), ("spearman_macs_loss", "ρ(MACs, loss)", ".3f"),
           ("spearman_macs_difficulty", "ρ(MACs, difficulty)", ".3f"),
           ("macs_cv", "MACs CV", ".3f"), ("decision_disagreement", "decisions off majority", ".3f"),
           ("complexity_quintile_gap", "hardest − easiest fifth (rel. MACs)", ".3f"),
           ("similarity_rank_correlation", "ρ(R, T) test pairs", ".3f"),
           ("acc_at_matched", "acc. at matched MACs", ".3f")]


def cell(mean: float, std: float, fmt: str, scale: float = 1.0) -> str:
    if mean != mean:  # NaN: the variant has no such figure
        return ""
    body = f"{mean / scale:{fmt}}"
    return body if std != std else f"{body} ± {std / scale:{fmt}}"


def report(root: Path) -> str:
    table = lessons.with_run_figures(tables.ablation_table(runs_table([root])))
    groups = lessons.variant_groups(table)
    shown = [f for f in FIGURES if groups[f"{f[0]}_mean"].notna().any()]
    lines = ["| variant | epochs in all | seeds | " + " | ".join(label for _, label, _ in shown) + " |",
             "|---" * (3 + len(shown)) + "|"]
    for _, row in groups.iterrows():
        cells = [cell(row[f"{key}_mean"], row[f"{key}_std"], fmt, 1e6 if key == "macs_per_image" else 1.0)
                 for key, _, fmt in shown]
        lines.append(f"| {row['variant']} | {int(row['epochs_total'])} | {row['seeds']} | " + " | ".join(cells) + " |")
    evidence = evidence_table(groups)
    if not evidence.empty:
        lines += ["", "ManiDP by the paper's own tests, per form (mean ± std over seeds):", "",
                  "| " + " | ".join(evidence.columns) + " |", "|---" * len(evidence.columns) + "|"]
        lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in evidence.itertuples(index=False)]
    matched = table[table["acc_at_matched"].notna()]
    if not matched.empty:
        lines += ["", "Accuracy at a matched MACs reduction (per form: the median of its ManiDP runs' own), along each "
                  "run's stored what-if curve:", "",
                  "| variant | seed | own MACs reduction | own accuracy | matched reduction | accuracy there |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {r.variant} | {r.seed} | {r.macs_reduction:.1%} | {r.test_acc:.1%} | {r.matched_reduction:.1%} "
                  f"| {r.acc_at_matched:.1%} |" for r in matched.itertuples()]
    found = controls.controls(table)
    if found:
        lines += ["", "Controls at equal MACs (each control run against its own parent; mean ± std over seeds):", "",
                  "| question | method | control | method's accuracy | control's accuracy | MMACs (method, control) "
                  "| paired difference | verdict |", "|---" * 8 + "|"]
        lines += [f"| {c.question} | {c.reference} | {c.control} | {c.reference_acc.text('.1f', percent=True)} | "
                  f"{c.acc.text('.1f', percent=True)} | {c.reference_macs.mean / 1e6:.2f}, {c.macs.mean / 1e6:.2f} | "
                  f"{c.difference.text('.1f', percent=True)} | {c.verdict} |" for c in found]
        lines += ["", *(f"- {c.finding}" for c in found)]
    lines += ["", "| claim | verdict | measured |", "|---|---|---|"]
    for claim in lessons.claims(table):
        measured = claim.measured.replace("|", "\\|")  # |γ| inside a Markdown table cell
        lines.append(f"| {claim.lesson} | {claim.verdict} | {measured} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, help="a runs folder, e.g. assets/demo_runs")
    args = parser.parse_args(argv)
    if not args.runs.is_dir():
        print(f"error: {args.runs} is not a folder", file=sys.stderr)
        return 2
    print(report(args.runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

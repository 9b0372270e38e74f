"""Which torchvision models each method runs on: the table `scripts/model_support.py` measures and writes.

`prunelab/models/model_support.csv` (`SUPPORT_FILE`) holds one row per torchvision classification model (slimming
yes/no, ManiDP yes/no, the gated share of MACs, the share of MACs removed at 30% of the channels, the reason when no);
`python -m prunelab models` prints it and README.md shows it between its markers (a test keeps them equal).
Plain data: no torch. The two method columns are named by the method packages (`NAME`).
"""

from __future__ import annotations

import csv
from pathlib import Path

from prunelab.methods.manidp.config import NAME as GATED_METHOD
from prunelab.methods.slimming.config import NAME as STATIC_METHOD

SUPPORT_FILE = "prunelab/models/model_support.csv"
SUPPORT_FIELDS = ["model", STATIC_METHOD, GATED_METHOD, "gated_macs_share", "macs_removed_at_30pct", "reason"]
README_START = "<!-- model-support:start (scripts/model_support.py writes this table) -->"
README_END = "<!-- model-support:end -->"


def support_rows(path: Path | None = None) -> list[dict[str, str]]:
    """The shipped table's rows (empty when the file is missing)."""
    file = path or Path(__file__).resolve().parents[2] / SUPPORT_FILE
    if not file.is_file():
        return []
    with open(file, newline="") as handle:
        return [{key: row.get(key) or "" for key in SUPPORT_FIELDS} for row in csv.DictReader(handle)]


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")


def table_markdown(rows: list[dict[str, str]]) -> str:
    """The README table: counts per method, then one row per model."""
    slimming = sum(row[STATIC_METHOD] == "yes" for row in rows)
    manidp = sum(row[GATED_METHOD] == "yes" for row in rows)
    lines = [f"{slimming} of {len(rows)} torchvision classification models run Network Slimming, {manidp} run "
             "ManiDP (32x32 inputs, the CIFAR stem; measured by `python scripts/model_support.py`). Gated share: "
             "the dense MACs of the layers a ManiDP gate governs, over all MACs; removed: the share of MACs a "
             "slimming cut of 30% of the channels removes.", "",
             "| model | slimming | ManiDP | gated share of MACs | MACs removed at 30% | why not |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['model']} | {row[STATIC_METHOD]} | {row[GATED_METHOD]} | "
                     f"{row['gated_macs_share'] or '-'} | {row['macs_removed_at_30pct'] or '-'} | "
                     f"{_cell(row['reason'])} |")
    return "\n".join(lines)


def readme_with_table(readme: str, rows: list[dict[str, str]] | None = None) -> str:
    """README.md's text with the table between the markers replaced (appended with them when absent)."""
    block = f"{README_START}\n{table_markdown(support_rows() if rows is None else rows)}\n{README_END}"
    if README_START in readme and README_END in readme:
        head, rest = readme.split(README_START, 1)
        return head + block + rest.split(README_END, 1)[1]
    return readme.rstrip("\n") + "\n\n" + block + "\n"

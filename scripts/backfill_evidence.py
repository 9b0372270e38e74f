"""Add ManiDP's evidence figures (prunelab.manidp_evidence) to the summary.json of finished runs that lack them.

Runs that finished before ManiDP's finalize wrote `macs_cv`, `complexity_quintile_gap` (needs `parent_loss` in
per_image.parquet) and `similarity_rank_correlation` get them from their own files; nothing else changes:

    python scripts/backfill_evidence.py assets/demo_runs assets/cifar10_runs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prunelab.manidp_evidence import backfill  # noqa: E402
from prunelab.methods.manidp.config import NAME as MANIDP  # noqa: E402
from prunelab.store import RunStore  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="runs folders")
    args = parser.parse_args(argv)
    for root in args.runs:
        for info in RunStore(root).iter_runs():
            if info.config.method.name != MANIDP or info.status.get("state") != "done":
                continue
            added = backfill(info.path)
            if added:
                print(f"{info.run_id}: " + ", ".join(f"{key} {value:.4f}" for key, value in added.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Precompute what the demo pages show at once, for every finished ManiDP run with a model and every slimming
run in a runs folder.

For each such run, `prunelab.analysis.views.precompute` writes two small files into the run directory: the ManiDP
what-if over a grid of target densities (`whatif_curve.parquet`) and the UMAPs of the sub-network map
(`subnet_umap.npz`), so neither the Per-image nor the Similarity page waits for them; for each slimming
run, its re-pruning at every ratio of the Slimming page's slider (`whatif_prune.json.gz`). The demo makers
(`scripts/make_demo.py`, `scripts/make_cifar_demo.py`) call it when a demo is made; run it on an existing
runs folder after regenerating or retraining its ManiDP runs:

    python scripts/precompute_views.py assets/demo_runs assets/cifar10_runs [--densities 0.1,0.2,...]

A run whose files already hold the views for its current model.pt only gains what is missing. Prints each
run's files and their sizes, and the size of each folder.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prunelab.analysis.views import DENSITY_GRID, precompute_folder  # noqa: E402


def densities(text: str) -> list[float]:
    values = [float(part) for part in text.split(",") if part.strip()]
    if not values or any(not 0.0 < value <= 1.0 for value in values):
        raise argparse.ArgumentTypeError("densities are comma-separated numbers in (0, 1]")
    return values


def precompute_views(runs: Path, grid: list[float] | tuple[float, ...] = DENSITY_GRID) -> list[Path]:
    """Precompute every ManiDP run of `runs`, printing progress; returns the files written. The runs' relative
    dataset paths are read from the repository root, as the demo makers do."""
    shown: dict[Path, int] = {}

    def report(run: Path, fraction: float, message: str) -> None:
        tenth = int(fraction * 10)
        if shown.get(run) != tenth:
            shown[run] = tenth
            print(f"  {run.name}: {fraction:4.0%} {message}", flush=True)

    with contextlib.chdir(ROOT):
        return precompute_folder(runs.resolve(), grid, report)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="runs folders (e.g. assets/demo_runs)")
    parser.add_argument("--densities", type=densities, default=list(DENSITY_GRID),
                        help="target densities of the what-if (default 0.2, 0.3, ..., 1.0; the run's own is added)")
    args = parser.parse_args(argv)
    for runs in args.runs:
        if not runs.is_dir():
            parser.error(f"{runs} is not a folder")
    for runs in args.runs:
        started = time.perf_counter()
        written = precompute_views(runs, args.densities)
        for file in written:
            print(f"{file.parent.name}/{file.name}: {file.stat().st_size / 1e3:.0f} kB")
        total = sum(path.stat().st_size for path in runs.rglob("*") if path.is_file())
        print(f"{runs}: {len(written)} files in {time.perf_counter() - started:.0f} s; the folder holds "
              f"{total / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

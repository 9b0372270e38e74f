"""Regenerate the precomputed demo runs shipped in assets/demo_runs.

The runs are made by PruneLab's own suite command, run from the repository root:

    python -m prunelab suite demo --runs-dir assets/demo_runs --model resnet20 --width 0.5 \
        --epochs 4 --finetune-epochs 2

then the files no page reads are removed (epoch checkpoints with optimizer state, torch.export
archives), which keeps the demo under 5 MB. Usage:

    python scripts/make_demo.py [--force] [--device auto|cpu|cuda] [--max-concurrent N]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prunelab.results import DEMO_EPOCHS, DEMO_FINETUNE_EPOCHS, DEMO_MODEL, DEMO_WIDTH  # noqa: E402

OUT = Path("assets") / "demo_runs"  # relative: ManiDP runs record `init_from` under this path
NOT_SHIPPED = ("checkpoint.pt", "compact_model.pt2", "traceback.txt")


def suite_command(device: str, max_concurrent: int) -> list[str]:
    """The exact `python -m prunelab suite demo ...` command line the demo is made with."""
    settings = ["--model", DEMO_MODEL, "--width", str(DEMO_WIDTH),
                "--epochs", str(DEMO_EPOCHS), "--finetune-epochs", str(DEMO_FINETUNE_EPOCHS)]
    return [sys.executable, "-m", "prunelab", "suite", "demo", "--runs-dir", str(OUT), *settings,
            "--device", device, "--max-concurrent", str(max_concurrent)]


def strip(runs: Path) -> int:
    """Delete files the pages never read; returns the bytes left."""
    for path in runs.rglob("*"):
        if path.is_file() and (path.name in NOT_SHIPPED or path.name.endswith(".tmp")):
            path.unlink()
    return sum(path.stat().st_size for path in runs.rglob("*") if path.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--force", action="store_true", help="replace existing demo runs")
    parser.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    parser.add_argument("--max-concurrent", type=int, default=1, help="runs trained at once (default 1)")
    args = parser.parse_args(argv)
    out = ROOT / OUT
    if out.exists() and any(out.iterdir()):
        if not args.force:
            print(f"{out} already holds runs; pass --force to replace them", file=sys.stderr)
            return 2
        shutil.rmtree(out)
    command = suite_command(args.device, args.max_concurrent)
    print("running:", " ".join(command[1:]), flush=True)
    status = subprocess.run(command, cwd=ROOT, check=False).returncode
    if status != 0:
        print(f"the suite ended with status {status}; {out} left as is for inspection", file=sys.stderr)
        return status
    size = strip(out)
    print(f"demo runs in {out}: {size / 1e6:.2f} MB after removing {', '.join(NOT_SHIPPED)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

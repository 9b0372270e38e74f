"""Regenerate the precomputed demo runs shipped in assets/demo_runs.

The runs are made by PruneLab's own suite command, run from the repository root:

    python -m prunelab suite demo --runs-dir assets/demo_runs --model resnet20 --width 0.5 \\
        --epochs 3 --finetune-epochs 3 --seeds 3

(per seed: a 6-epoch baseline; slimming at each lambda, 3 sparsity + 3 fine-tune epochs; a 3-epoch
`pretrain` baseline and the four ManiDP ablation runs, 3 epochs each from it: every compared run is
shaped by 6 epochs in all), then the files no page reads are removed (epoch checkpoints with their
optimizer state, final model files but the seed-0 ManiDP runs' gated models that the ManiDP what-if and
the sub-network map read, torch.export archives), which keeps the demo under 28 MB with every form's
rows; then the views its pages show at once are precomputed for the runs with a model
(`scripts/precompute_views.py`). The shapes test images are not shipped (a test-image pack of them would
take 5.9 MB: procedural noise does not compress); the pages generate them once and cache them on disk. Usage:

    python scripts/make_demo.py [--force] [--device auto|cpu|cuda] [--max-concurrent N] [--seeds N]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from precompute_views import precompute_views  # noqa: E402

from prunelab.analysis.results import DEMO_MODEL, DEMO_SEEDS, DEMO_WIDTH  # noqa: E402
from prunelab.methods.manidp.config import NAME as MANIDP  # noqa: E402
from prunelab.methods.slimming.config import NAME as SLIMMING  # noqa: E402
from prunelab.runs.artefacts import CONFIG, SUMMARY  # noqa: E402
from prunelab.runs.run import Run  # noqa: E402
from prunelab.runs.run_format import DENSE_MODEL_FILE, MODEL_FILE, PER_IMAGE_FILE, WHATIF_CURVE_FILE  # noqa: E402
from prunelab.scheduling.suites import DEMO_EPOCHS, DEMO_FINETUNE_EPOCHS  # noqa: E402

OUT = Path("assets") / "demo_runs"
# no page reads these: checkpoints (optimizer state), final models, torch.export archives and tracebacks;
# except the models of each variant's seed-0 run that a page re-evaluates: a ManiDP run's gated model.pt (the
# what-if and the sub-network map) and a slimming run's dense_model.pt (the what-if slider); every seed's
# would break the size budget, and the other seeds' pages say which file the slider or the what-if needs
NOT_SHIPPED = ("checkpoint.pt", MODEL_FILE, DENSE_MODEL_FILE, "compact_model.pt2", "traceback.txt", "owner.lock")
SIZE_BUDGET = 15_000_000  # with every form's rows; with the CIFAR-10 demo's 24 MB, assets/ stays within its 40 MB


def suite_command(device: str, max_concurrent: int, seeds: int, threads: int | None, out: Path = OUT,
                  model: str = DEMO_MODEL, width: float = DEMO_WIDTH, epochs: int = DEMO_EPOCHS,
                  finetune_epochs: int = DEMO_FINETUNE_EPOCHS, extra: tuple[str, ...] = ()) -> list[str]:
    """The exact `python -m prunelab suite demo ...` command line a demo is made with (`extra`: data flags
    such as --dataset and --train-size, method settings such as --target-density)."""
    settings = [*extra, "--model", model, "--width", str(width), "--epochs", str(epochs),
                "--finetune-epochs", str(finetune_epochs), "--seeds", str(seeds)]
    if threads is not None:
        settings += ["--threads", str(threads)]
    return [sys.executable, "-m", "prunelab", "suite", "demo", "--runs-dir", str(out), *settings,
            "--device", device, "--max-concurrent", str(max_concurrent)]


def run_suite(command: list[str], out: Path, force: bool) -> int:
    """Run the suite into `out` (replacing its runs only with `force`); returns the exit status."""
    if out.exists() and any(out.iterdir()):
        if not force:
            print(f"{out} already holds runs; pass --force to replace them", file=sys.stderr)
            return 2
        shutil.rmtree(out)
    print("running:", " ".join(command[1:]), flush=True)
    status = subprocess.run(command, cwd=ROOT, check=False).returncode
    if status != 0:
        print(f"the suite ended with status {status}; {out} left as is for inspection", file=sys.stderr)
    return status


def strip(runs: Path, not_shipped: tuple[str, ...] = NOT_SHIPPED) -> int:
    """Delete files the pages never read; returns the bytes left. A ManiDP model.pt that goes first leaves its
    run the what-if curve's accuracy points (`keep_curves`)."""
    keep_curves(runs)
    for path in runs.rglob("*"):
        if path.is_file() and ((path.name in not_shipped and not _what_if_model(path)) or path.name.endswith(".tmp")):
            path.unlink()
    return sum(path.stat().st_size for path in runs.rglob("*") if path.is_file())


def write_pack(runs: Path) -> Path:
    """Write the test split the runs in `runs` were evaluated on beside them (prunelab/data/test_pack.py):
    the pages read the demo's test images from it instead of loading the dataset (the CIFAR-10 demo's
    PNG release is not shipped)."""
    from prunelab.data import load_dataset
    from prunelab.data.test_pack import write_test_pack

    configs = [Run(path).require(CONFIG) for path in sorted(runs.iterdir()) if (path / "config.json").is_file()]
    data = {config.data.model_dump_json(exclude={"train_size", "augment"}) for config in configs}
    if len(data) != 1:
        raise SystemExit(f"the runs in {runs} do not share one test split: {sorted(data)}")
    return write_test_pack(runs, configs[0].data, load_dataset(configs[0].data))


# the target densities whose accuracy a seed without its model keeps: the span the matched-MACs comparisons of the
# demos fall in (20-65% fewer MACs), at the page's 0.1 steps; fewer than the page's grid, each costs calibration
KEPT_DENSITIES = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def keep_curves(runs: Path, densities: tuple[float, ...] = KEPT_DENSITIES) -> list[Path]:
    """The what-if curve's accuracy points (`prunelab.methods.manidp.evidence.keep_accuracy_curve` at `densities`
    and the run's own) in the summary.json of every finished ManiDP run under `runs` whose model.pt `strip`
    deletes and whose summary lacks them: the matched-MACs ablation then has every seed, not only the one
    whose model ships. The per-image curve file goes with the model it belongs to. Returns the runs done.
    Dataset paths are read from the repository root, as the demo makers do."""
    import contextlib

    from prunelab.analysis.views import grid_of
    from prunelab.methods.manidp.evidence import WHATIF_ACCURACY_KEY, keep_accuracy_curve

    done = []
    for model in sorted(runs.rglob(MODEL_FILE)):
        run = model.parent
        if _what_if_model(model) or not _finished_manidp(run) or not (run / PER_IMAGE_FILE).is_file():
            continue
        if Run(run).require(SUMMARY).get(WHATIF_ACCURACY_KEY):
            continue
        with contextlib.chdir(ROOT):
            points = keep_accuracy_curve(run.resolve(), grid_of(run, densities))
        (run / WHATIF_CURVE_FILE).unlink(missing_ok=True)
        done.append(run)
        print(f"  {run.name}: what-if accuracy at {len(points)} densities kept in its summary", flush=True)
    return done


def _finished_manidp(run: Path) -> bool:
    from prunelab.runs.run_format import RunStoreError

    try:
        return Run(run).require(CONFIG).method.name == MANIDP and Run(run).state == "done"
    except RunStoreError:
        return False


# the model file a page re-evaluates, by method: ManiDP's gated model, slimming's dense model
WHAT_IF_MODELS = {MANIDP: MODEL_FILE, SLIMMING: DENSE_MODEL_FILE}


def _what_if_model(path: Path) -> bool:
    """True for the model a page re-evaluates (WHAT_IF_MODELS) of a seed-0 run."""
    from prunelab.runs.run_format import RunStoreError

    try:
        config = Run(path.parent).require(CONFIG)
    except RunStoreError:
        return False
    return WHAT_IF_MODELS.get(config.method.name) == path.name and config.train.seed == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--force", action="store_true", help="replace existing demo runs")
    parser.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    parser.add_argument("--max-concurrent", type=int, default=1, help="runs trained at once (default 1)")
    parser.add_argument("--seeds", type=int, default=DEMO_SEEDS, help=f"seeds per variant (default {DEMO_SEEDS})")
    parser.add_argument("--threads", type=int, help="CPU threads per run (e.g. 1 with --max-concurrent 2)")
    args = parser.parse_args(argv)
    out = ROOT / OUT
    command = suite_command(args.device, args.max_concurrent, args.seeds, args.threads)
    status = run_suite(command, out, args.force)
    if status != 0:
        return status
    size = strip(out)
    print(f"demo runs in {out}: {size / 1e6:.2f} MB after removing {', '.join(NOT_SHIPPED)}")
    precompute_views(out)  # the what-if curve and the sub-network map of every run with a model
    size = sum(path.stat().st_size for path in out.rglob("*") if path.is_file())
    print(f"with the precomputed views (scripts/precompute_views.py): {size / 1e6:.2f} MB")
    if size > SIZE_BUDGET:
        print(f"warning: over the {SIZE_BUDGET / 1e6:.0f} MB budget", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

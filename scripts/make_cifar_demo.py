"""Regenerate the CIFAR-10 demo runs shipped in assets/cifar10_runs.

The data is the public PNG release of CIFAR-10 (github.com/cyizhuo/CIFAR-10-dataset: train/<class>/*.png,
test/<class>/*.png), extracted outside the repository, for example:

    git clone --depth 1 https://github.com/cyizhuo/CIFAR-10-dataset data/CIFAR-10-dataset

The script builds `data/cifar10-demo` (ignored by git): `train` links to the release's training set and
`test` holds a balanced subset of its test set (the first PER_CLASS files of every class, by name),
the images the app shows. It then runs PruneLab's own demo suite on `folder:data/cifar10-demo`
(baseline; slimming at each lambda; `pretrain` and the four-row ManiDP ablation, at equal budgets, over
seeds; see prunelab/scheduling/suites.py) into a work folder (`data/cifar10-demo-runs`, committed between sessions,
see below). When every run is done it ships them: copied to assets/cifar10_runs, the files no page reads
removed (the shapes demo's rule, scripts/make_demo.py: of the final models only the gated model.pt of
each seed-0 ManiDP run ships; every seed's would break the size budget), and the test split written as
`assets/cifar10_runs/test_images.npz` (prunelab/data/test_pack.py), so the pages show the photographs on
a fresh install without the PNG release.

On a CPU the suite takes hours. A suite cut short (a session ended, the machine restarted) goes on with
`--continue`, which resumes each unfinished run from its last epoch checkpoint and then ships. A session's
machine is not kept for the next one, so the work folder travels in git while the suite trains
(`.gitignore` lets `data/cifar10-demo-runs` through, lock files aside): at a session's end, pause the
suite (`kill -STOP`), delete the `checkpoint.pt` of the runs that are done (only unfinished runs resume)
and commit the folder. On the new machine, extract the release again and pass it: `--continue --source
DIR` rebuilds `data/cifar10-demo` first (without it, --continue names what is missing). Once the demo
ships, the work folder leaves the repository. Both
`--continue` and `--ship-done` first check that the runs were made with the pruning settings and the ManiDP
split the script gives now (its constants or the flags passed); a folder made with others is refused, run
by run.
`--ship-done` ships the runs done so far (a suite spanning sessions shows its first runs early).
Usage (run from anywhere):

    python scripts/make_cifar_demo.py --source data/CIFAR-10-dataset [--force] [--device auto|cpu|cuda]
        [--model resnet20] [--width 1.0] [--epochs E] [--finetune-epochs F] [--pretrain-epochs P] [--seeds N]
        [--train-size N] [--target-density D] [--lambda-prime L] [--manidp-lr-scale S] [--lambdas L1,L2,..]
        [--prune-ratio R]
        [--max-concurrent N] [--threads N] [--work DIR]
    python scripts/make_cifar_demo.py --continue [--work DIR] [--source DIR]   # --source on a new machine
        [--max-concurrent 2 --threads 1]   # two runs at once, one thread each
    python scripts/make_cifar_demo.py --ship-done [--work DIR]    # ship the runs done so far
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from make_demo import run_suite, strip, suite_command, write_pack  # noqa: E402
from precompute_views import precompute_views  # noqa: E402

from prunelab.analysis.results import CIFAR_DEMO_RUNS_DIR  # noqa: E402
from prunelab.config import METHOD_PARAMS, RunConfig  # noqa: E402
from prunelab.methods.manidp.config import NAME as MANIDP  # noqa: E402
from prunelab.methods.slimming.config import NAME as SLIMMING  # noqa: E402
from prunelab.runs.store import BrokenRun, RunInfo, RunStore  # noqa: E402
from prunelab.scheduling.suites import (  # noqa: E402
    check_manidp_lr_scale,
    finetune_base,
    format_values,
    parse_values,
    suite_budget,
)

PREPARED = Path("data") / "cifar10-demo"  # relative to the repository root: the runs record this path
WORK = Path("data") / "cifar10-demo-runs"  # where the suite trains (kept in git between sessions); shipped when done
PER_CLASS = 200  # 10 classes x 200 = 2,000 test images shipped
# ManiDP's settings, the best of five measured at the suite's 16-epoch budget (seed 0, assets/README.md):
# a ResNet block's MACs scale about as (d + d^2) / 2 at density d, and the sparsity term pushes the gates
# below the target (measured density 0.66 at d = 0.7, lambda' = 0.01), so d = 0.7 removes 44% of the MACs,
# clear of the >= 40% the demo must show; lambda' = 0.01 (the default 0.05 zeroes more gates: 82.05% at
# 52% fewer MACs with d = 0.65, against 82.95% at 44% here)
TARGET_DENSITY = 0.7
LAMBDA_PRIME = 0.01
# Network Slimming's lambdas and prune ratio at the 16-epoch budget (seed 0, assets/README.md). The shapes
# demo's lambdas (prunelab.scheduling.suites.SLIMMING_LAMBDAS: 0, 4e-3, 8e-3) are too strong for 8 sparsity epochs on
# CIFAR-10: at 4e-3 the network ends sparsity training at 76.75% (82.6% without the L1 term) and, pruned
# losslessly at ratio 0.5, fine-tunes only to 82.0%. At 1e-3 it ends at 81.3%; pruning costs more but
# fine-tuning recovers it: 84.35% / 84.80% / 83.85% at prune ratio 0.3 / 0.4 / 0.5 (30% / 39% / 47% fewer
# MACs; the suite's own run at 0.4 then ended at 84.30%). 0 keeps the flat-gamma control and 4e-3 the
# polarised one the paper's Figure 4 shows.
SLIMMING_LAMBDAS = (0.0, 1e-3, 4e-3)
PRUNE_RATIO = 0.4
# ManiDP's split of the 16 epochs (assets/README.md): a 4-epoch parent and 12 ManiDP epochs end at 83.75% and
# 83.20% (seeds 0, 1) with 42% fewer MACs, against 82.95% and 82.75% for the default 8 + 8 (and 81.75% for
# 12 + 4 at d = 0.65, seed 0): the gates need the longer phase more than the parent needs its epochs
PRETRAIN_EPOCHS = 4
# the ManiDP runs' lr over the baseline's 0.1 (assets/README.md). The suite's default, 0.5, is the paper's for
# fine-tuning a converged network; a 4-epoch parent is far from converged, and at lr 0.05 the 4 + 12 pipeline
# travels a cosine lr area of 0.5 against the baseline's 0.8. At 1.0 (lr 0.1, area 0.8) ManiDP-both ended at
# 84.35% / 84.10% with 44.8% / 42.0% fewer MACs (seeds 0, 1), against 83.75% / 83.20% at 41.8% / 42.2% with 0.5
MANIDP_LR_SCALE = 1.0
# the method fields this script sets for every run of the method (each has its prunelab CLI flag, which is
# also this script's flag): passed to the suite command, and checked by settings_drift before --continue;
# the slimming lambdas are set per run (--lambdas) and checked per seed
SCRIPT_SETTINGS = {MANIDP: ("target_density", "lambda_prime"), SLIMMING: ("prune_ratio",)}
SIZE_BUDGET = 24_000_000  # with the shapes demo's 15 MB, assets/ stays within its 40 MB
# trained first by --continue: the runs the demo's quality bar compares (baseline; ManiDP with both terms,
# after its parent; slimming at the middle lambda), seed 0's then seed 1's, so early sessions already show
# whether the bar is met on the mean over seeds; then creation order (the suite creates every seed-0 run
# before seed 1's)
BAR_RUNS = ("demo-baseline", "demo-pretrain", "demo-manidp-both", "demo-slim-l1e-3")
FIRST = tuple(f"{run}-s{seed}" for seed in (0, 1) for run in BAR_RUNS)


def prepare(source: Path, per_class: int) -> Path:
    """Build PREPARED from the PNG release at `source`; returns its absolute path."""
    for split in ("train", "test"):
        if not (source / split).is_dir():
            raise SystemExit(f"{source} has no {split}/ folder; expected the PNG release of CIFAR-10 "
                             f"(train/<class>/*.png, test/<class>/*.png)")
    target = ROOT / PREPARED
    if target.exists():
        shutil.rmtree(target)
    (target / "test").mkdir(parents=True)
    os.symlink((source / "train").resolve(), target / "train", target_is_directory=True)
    for class_dir in sorted(p for p in (source / "test").iterdir() if p.is_dir()):
        files = sorted(p for p in class_dir.iterdir() if p.suffix.lower() == ".png")[:per_class]
        if len(files) < per_class:
            raise SystemExit(f"{class_dir} has {len(files)} PNG files, fewer than {per_class}")
        (target / "test" / class_dir.name).mkdir()
        for file in files:
            shutil.copy2(file, target / "test" / class_dir.name / file.name)
    return target


def unfinished(work: Path) -> list[Path]:
    """The runs in `work` (`RunStore.scan`, a broken one included) not yet done: FIRST's (by name suffix),
    then the rest in the order the suite created them (parents before their children either way)."""

    def order(run: RunInfo | BrokenRun) -> tuple[int, float, str]:
        first = next((i for i, key in enumerate(FIRST) if run.path.name.endswith(f"-{key}")), len(FIRST))
        created = float(run.status.get("created_at") or 0.0) if isinstance(run, RunInfo) else 0.0
        return first, created, run.path.name

    return [run.path for run in sorted(RunStore(work).scan(), key=order) if run.state != "done"]


def trains_on_prepared(work: Path) -> bool:
    """Whether an unfinished run in `work` trains on PREPARED (which a new machine lacks)."""
    return any(isinstance(run, RunInfo) and run.state != "done" and run.config.data.dataset == f"folder:{PREPARED}"
               for run in RunStore(work).scan())


def settings_drift(work: Path, args: argparse.Namespace) -> list[str]:
    """The runs in `work` whose pruning settings differ from the ones this script gives (its constants, or
    the flags passed): ManiDP's target density, lambda' and lr, slimming's lambdas and prune ratio. Empty when
    they agree. A folder made with other settings must not be finished and shipped under the new ones; nor
    one whose ManiDP runs split the budget otherwise (pretrain P epochs, ManiDP E + F - P)."""
    lambdas = sorted(args.lambdas)
    drift, slimming = [], {}
    epochs = suite_budget(args.epochs, args.finetune_epochs, args.pretrain_epochs)  # the suite's own split
    split = {"pretrain": epochs.pretrain, MANIDP: epochs.manidp}
    manidp_lr = finetune_base(RunConfig(), args.manidp_lr_scale).train.lr  # the suite's own rule
    for run in RunStore(work).scan():
        if not isinstance(run, RunInfo):
            continue
        method, name = run.config.method, run.path.name
        role = "pretrain" if "-pretrain-" in f"{name}-" else method.name
        if role in split and run.config.train.epochs != split[role]:
            drift.append(f"{name}: {run.config.train.epochs} epochs, this script gives {role} {split[role]} "
                         f"(--pretrain-epochs {args.pretrain_epochs})")
        for field in SCRIPT_SETTINGS.get(method.name, ()):
            have, wanted = getattr(method, field), getattr(args, field)
            if have != wanted:
                drift.append(f"{name}: {field} {have}, this script gives {wanted}")
        if method.name == MANIDP and not math.isclose(run.config.train.lr, manidp_lr):
            drift.append(f"{name}: lr {run.config.train.lr:g}, this script gives {manidp_lr:g} "
                         f"(--manidp-lr-scale {args.manidp_lr_scale:g})")
        if method.name == SLIMMING:
            slimming.setdefault(run.config.train.seed, []).append(method.sparsity_lambda)
    for seed, have in sorted(slimming.items()):
        if sorted(have) != lambdas:
            drift.append(f"seed {seed}'s slimming runs: lambdas {format_values(sorted(have))}, "
                         f"this script gives {format_values(lambdas)}")
    return drift


def lambdas(text: str) -> list[float]:
    """--lambdas '0,1e-3,4e-3' -> [0.0, 0.001, 0.004] (argparse reports a bad list in one line)."""
    return parse_values(text, "--lambdas")


def lr_scale(text: str) -> float:
    """--manidp-lr-scale: a number the suite accepts (`check_manidp_lr_scale`; argparse reports anything else
    in one line)."""
    try:
        return check_manidp_lr_scale(float(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parents_done(runs: dict[str, RunInfo | BrokenRun], path: Path) -> bool:
    """Whether every run that the run at `path` depends on (its status's `depends_on`: a ManiDP run's
    `pretrain` parent) is done; `runs` maps the work folder's run names to their `RunStore.scan` entries."""
    run = runs.get(path.name)
    parents = (run.status.get("depends_on") or []) if isinstance(run, RunInfo) else []
    return all(name in runs and runs[name].state == "done" for name in parents)


def continue_suite(work: Path, lanes: int = 1, threads: int | None = None, poll_s: float = 2.0) -> int:
    """Resume every unfinished run in `work` (`python -m prunelab resume`, one process per run): a suite
    killed at the end of a session goes on from its last epoch checkpoints.

    Up to `lanes` runs train at once, each with `threads` torch threads (OMP_NUM_THREADS; None: torch's
    default), in `unfinished` order; a run starts only when its parent is done. On 2 CPU cores two lanes of
    one thread train resnet20 about 1.3x faster in all than one run on two threads (0.87 s against 0.56 s
    per batch of 128, so 2.3 against 1.8 batches a second), though each run takes longer. When a run fails,
    no new one starts; the runs still training finish, and its status is returned."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)} if threads else None
    pending, running, status = unfinished(work), {}, 0
    while pending or running:
        for name, process in list(running.items()):
            if process.poll() is not None:
                del running[name]
                if process.returncode != 0:
                    print(f"{name} ended with status {process.returncode}; {work} left as is", file=sys.stderr)
                    status = status or process.returncode
        runs = {run.path.name: run for run in RunStore(work).scan()}
        ready = [path for path in pending if parents_done(runs, path)] if status == 0 else []
        for path in ready[:max(0, lanes - len(running))]:
            print(f"resuming {path.name}", flush=True)
            pending.remove(path)
            running[path.name] = subprocess.Popen(
                [sys.executable, "-m", "prunelab", "resume", path.name, "--runs-dir", str(work)], cwd=ROOT, env=env)
        if not running:
            if status != 0:
                return status
            if pending:  # nothing trains, and what is left waits for a parent that is not done
                print(f"{', '.join(p.name for p in pending)} wait for runs that are not done; {work} left as is",
                      file=sys.stderr)
                return 1
        else:
            time.sleep(poll_s)
    return status


def ship(work: Path, partial: bool = False) -> int:
    """Copy the finished runs of `work` into assets/cifar10_runs with their test images, stripped.

    Only when every run is done, unless `partial`: then the done runs ship now (the pages show what they
    hold; the rest ship, with them, when they are done) and the unfinished ones are named."""
    left = unfinished(work)
    if left and not partial:
        print(f"{len(left)} run(s) in {work} are not done ({', '.join(p.name for p in left[:3])}...); "
              "finish them with --continue, or ship the done ones with --ship-done", file=sys.stderr)
        return 1
    if len(left) == sum(1 for _ in RunStore(work).scan()):
        print(f"no run in {work} is done yet; nothing shipped", file=sys.stderr)
        return 1
    if CIFAR_DEMO_RUNS_DIR.exists():
        shutil.rmtree(CIFAR_DEMO_RUNS_DIR)
    skipped = {p.name for p in left}
    shutil.copytree(work, CIFAR_DEMO_RUNS_DIR, symlinks=False, ignore=lambda folder, names: (
        [name for name in names if name in skipped] if Path(folder) == work else []))
    with contextlib.chdir(ROOT):  # the runs record the dataset path relative to the repository root
        pack = write_pack(CIFAR_DEMO_RUNS_DIR)
    size = strip(CIFAR_DEMO_RUNS_DIR)  # the shapes demo's rule: seed-0 ManiDP runs keep their gated model
    precompute_views(CIFAR_DEMO_RUNS_DIR)  # what-if curves and sub-network maps of the runs with a model
    size = sum(path.stat().st_size for path in CIFAR_DEMO_RUNS_DIR.rglob("*") if path.is_file())
    print(f"CIFAR-10 demo runs in {CIFAR_DEMO_RUNS_DIR}: {size / 1e6:.2f} MB with its test images ({pack.name})")
    if skipped:
        print(f"not shipped, still training: {', '.join(sorted(skipped))}")
    if size > SIZE_BUDGET:
        print(f"warning: over the {SIZE_BUDGET / 1e6:.0f} MB budget", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path,
                        help="the extracted PNG release of CIFAR-10 (with --continue: rebuild the prepared data)")
    parser.add_argument("--work", type=Path, default=ROOT / WORK,
                        help=f"where the runs train before they are shipped (default {WORK})")
    parser.add_argument("--continue", dest="resume", action="store_true",
                        help="resume the unfinished runs in --work, then ship")
    parser.add_argument("--ship-done", action="store_true",
                        help="ship the runs of --work that are done now, leaving the rest to train (no training)")
    parser.add_argument("--force", action="store_true", help="replace the runs in --work")
    parser.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--epochs", type=int, default=8, help="E (default 8: the baseline trains E + F = 16)")
    parser.add_argument("--finetune-epochs", type=int, default=8, help="F (default 8)")
    parser.add_argument("--pretrain-epochs", type=int, default=PRETRAIN_EPOCHS,
                        help=f"P: ManiDP's parent (default {PRETRAIN_EPOCHS}); the ManiDP runs train E + F - P")
    parser.add_argument("--manidp-lr-scale", type=lr_scale, default=MANIDP_LR_SCALE,
                        help=f"the ManiDP runs' lr over the baseline's (default {MANIDP_LR_SCALE:g})")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--train-size", type=int, help="training images (default: all 50,000)")
    parser.add_argument("--target-density", type=float, default=TARGET_DENSITY,
                        help=f"ManiDP's target density (default {TARGET_DENSITY})")
    parser.add_argument("--lambda-prime", type=float, default=LAMBDA_PRIME,
                        help=f"ManiDP's maximum sparsity weight lambda' (default {LAMBDA_PRIME})")
    parser.add_argument("--lambdas", type=lambdas, default=format_values(SLIMMING_LAMBDAS),
                        help=f"Network Slimming's L1 weights (default {format_values(SLIMMING_LAMBDAS)})")
    parser.add_argument("--prune-ratio", type=float, default=PRUNE_RATIO,
                        help=f"Network Slimming's global prune ratio (default {PRUNE_RATIO})")
    parser.add_argument("--per-class", type=int, default=PER_CLASS, help="test images per class shipped")
    parser.add_argument("--max-concurrent", type=int, default=1,
                        help="runs trained at once (default 1); with --continue, each in its own process")
    parser.add_argument("--threads", type=int, help="CPU threads per run (e.g. 1 with --max-concurrent 2, about "
                                                    "1.3x faster in all on 2 cores)")
    args = parser.parse_args(argv)
    work = args.work.resolve()
    if (args.ship_done or args.resume) and not work.is_dir():
        parser.error(f"{work} holds no runs to {'ship' if args.ship_done else 'continue'}")
    if args.max_concurrent < 1 or (args.threads is not None and args.threads < 1):
        parser.error("--max-concurrent and --threads take a whole number >= 1")
    if args.ship_done or args.resume:
        try:
            drift = settings_drift(work, args)
        except ValueError as error:  # --pretrain-epochs outside 1..E + F - 1
            parser.error(str(error))
        if drift:
            print(f"the runs in {work} were made with other pruning settings than this script gives; pass "
                  f"the settings they were made with, or remake them with --source ... --force:\n  "
                  + "\n  ".join(drift), file=sys.stderr)
            return 2
    if args.ship_done:
        return ship(work, partial=True)
    if args.resume:
        if args.source is not None:  # a new machine: the release extracted again, the prepared split rebuilt
            prepare(args.source, args.per_class)
        elif not (ROOT / PREPARED).is_dir() and trains_on_prepared(work):
            parser.error(f"{PREPARED}, the dataset the runs train on, is missing (a new machine?); pass --source "
                         "with the extracted PNG release to rebuild it")
        status = continue_suite(work, args.max_concurrent, args.threads)
        return status if status != 0 else ship(work)
    if args.source is None:
        parser.error("--source is required (unless --continue)")
    prepare(args.source, args.per_class)
    # channels-last on the CPU too: resnet20 at width 1.0 trains 1.4x faster in it on the 2-core machine
    extra = ["--dataset", f"folder:{PREPARED}", "--lambdas", format_values(args.lambdas), "--channels-last", "true",
             "--pretrain-epochs", str(args.pretrain_epochs), "--manidp-lr-scale", str(args.manidp_lr_scale)]
    for method, fields in SCRIPT_SETTINGS.items():
        extra += [arg for field in fields for arg in (METHOD_PARAMS[method][field].cli_flag, str(getattr(args, field)))]
    if args.train_size is not None:
        extra += ["--train-size", str(args.train_size)]
    command = suite_command(args.device, args.max_concurrent, args.seeds, args.threads, out=work,
                            model=args.model, width=args.width, epochs=args.epochs,
                            finetune_epochs=args.finetune_epochs, extra=tuple(extra))
    status = run_suite(command, work, args.force)
    return status if status != 0 else ship(work)


if __name__ == "__main__":
    raise SystemExit(main())

"""Regenerate the CIFAR-10 demo runs shipped in assets/cifar10_runs.

The data is the public PNG release of CIFAR-10 (github.com/cyizhuo/CIFAR-10-dataset: train/<class>/*.png,
test/<class>/*.png), extracted outside the repository, for example:

    git clone --depth 1 https://github.com/cyizhuo/CIFAR-10-dataset data/CIFAR-10-dataset

The script builds `data/cifar10-demo` (ignored by git): `train` links to the release's training set and
`test` holds a balanced subset of its test set (the first PER_CLASS files of every class, by name),
the images the app shows. It then runs PruneLab's own demo suite on `folder:data/cifar10-demo`
(baseline; slimming at each lambda; `pretrain` and the four-row ManiDP ablation, at equal budgets, over
seeds; see prunelab/suites.py), removes the files no page reads, and writes the test split as
`assets/cifar10_runs/test_images.npz` (prunelab/data/test_pack.py), so the pages show the photographs on
a fresh install without the PNG release. Usage (run from anywhere):

    python scripts/make_cifar_demo.py --source data/CIFAR-10-dataset [--force] [--device auto|cpu|cuda]
        [--model resnet20] [--width 1.0] [--epochs E] [--finetune-epochs F] [--seeds N]
        [--train-size N] [--max-concurrent N] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from make_demo import run_suite, strip, suite_command  # noqa: E402

from prunelab.config import DataConfig  # noqa: E402
from prunelab.data import load_dataset  # noqa: E402
from prunelab.data.test_pack import write_test_pack  # noqa: E402
from prunelab.results import CIFAR_DEMO_RUNS_DIR  # noqa: E402

PREPARED = Path("data") / "cifar10-demo"  # relative to the repository root: the runs record this path
PER_CLASS = 200  # 10 classes x 200 = 2,000 test images shipped
# the optimizer state and torch.export archives are not read by any page; model.pt is kept (what-if)
NOT_SHIPPED = ("checkpoint.pt", "compact_model.pt2", "traceback.txt", "owner.lock")
SIZE_BUDGET = 25_000_000  # with the 15 MB shapes demo, assets/ stays under 40 MB


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, required=True, help="the extracted PNG release of CIFAR-10")
    parser.add_argument("--force", action="store_true", help="replace existing demo runs")
    parser.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--epochs", type=int, default=15, help="E (default 15)")
    parser.add_argument("--finetune-epochs", type=int, default=15, help="F (default 15)")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--train-size", type=int, help="training images (default: all 50,000)")
    parser.add_argument("--per-class", type=int, default=PER_CLASS, help="test images per class shipped")
    parser.add_argument("--max-concurrent", type=int, default=1, help="runs trained at once (default 1)")
    parser.add_argument("--threads", type=int, help="CPU threads per run (e.g. 1 with --max-concurrent 2)")
    args = parser.parse_args(argv)
    prepare(args.source, args.per_class)
    data = ["--dataset", f"folder:{PREPARED}"]
    if args.train_size is not None:
        data += ["--train-size", str(args.train_size)]
    command = suite_command(args.device, args.max_concurrent, args.seeds, args.threads, out=CIFAR_DEMO_RUNS_DIR,
                            model=args.model, width=args.width, epochs=args.epochs,
                            finetune_epochs=args.finetune_epochs, data=tuple(data))
    status = run_suite(command, CIFAR_DEMO_RUNS_DIR, args.force)
    if status != 0:
        return status
    os.chdir(ROOT)  # the runs record the relative dataset path
    dataset = load_dataset(DataConfig(dataset=f"folder:{PREPARED}", train_size=args.train_size))
    write_test_pack(CIFAR_DEMO_RUNS_DIR, f"folder:{PREPARED}", dataset)
    size = strip(CIFAR_DEMO_RUNS_DIR, NOT_SHIPPED)
    print(f"CIFAR-10 demo runs in {CIFAR_DEMO_RUNS_DIR}: {size / 1e6:.2f} MB with {dataset.test_size} test images")
    if size > SIZE_BUDGET:
        print(f"warning: over the {SIZE_BUDGET / 1e6:.0f} MB budget", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

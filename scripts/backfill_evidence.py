"""Add ManiDP's evidence figures (prunelab.methods.manidp.evidence) to the summary.json of finished runs that lack them.

Runs that finished before ManiDP's finalize wrote `macs_cv`, `complexity_quintile_gap` (needs `parent_loss` in
per_image.parquet) and `similarity_rank_correlation` get them from their own files; nothing else changes:

    python scripts/backfill_evidence.py assets/demo_runs assets/cifar10_runs

A run made before ManiDP wrote `parent_loss` (its parent's own loss on each test image, the external difficulty
of the paper's kind of complexity test) gets it with `--parents DIR`: a folder holding its parent run (the run
its config's `init_from` names) with that parent's model.pt, for example a parent retrained from its shipped
config.json by `scripts/make_form_rows.py`. The column is then the retrained parent's loss, which is not
bit-identical to the original parent's on another machine: the run's summary records where it came from
(`parent_loss_source`) and both parents' test accuracies.

    python scripts/backfill_evidence.py assets/cifar10_runs --parents data/cifar10-demo-runs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prunelab.methods.manidp.config import NAME as MANIDP  # noqa: E402
from prunelab.methods.manidp.evidence import backfill  # noqa: E402
from prunelab.runs.artefacts import SUMMARY  # noqa: E402
from prunelab.runs.model_file import load_model_file  # noqa: E402
from prunelab.runs.run import Run  # noqa: E402
from prunelab.runs.run_format import MODEL_FILE, PER_IMAGE_FILE, atomic_write_parquet  # noqa: E402
from prunelab.runs.store import RunDir, RunInfo, RunStore  # noqa: E402


def parent_test_loss(parent: RunDir, run: RunInfo) -> tuple[list[float], float]:
    """The parent's cross-entropy on each of `run`'s test images (its test order, float32, ungated, as ManiDP's
    finalize computes it on a CPU) and the parent's accuracy on them."""
    import torch
    import torch.nn.functional as F

    from prunelab.data.loader import BatchLoader
    from prunelab.data.test_pack import dataset_or_pack
    from prunelab.methods.manidp.method import backbone_state
    from prunelab.models import build_model

    data, _ = dataset_or_pack(run.path.parent, run.config.data)
    state = load_model_file(parent, MODEL_FILE)
    model = build_model(state["model_spec"]).eval()
    model.load_state_dict(backbone_state(state["model_state"]))
    loader = BatchLoader(data.test_images, data.test_labels, 500, mean=data.mean, std=data.std, shuffle=False,
                         augment=False, device="cpu")
    losses, correct = [], 0
    with torch.no_grad():
        for images, labels, _ in loader:
            logits = model(images).float()
            losses.append(F.cross_entropy(logits, labels, reduction="none"))
            correct += int((logits.argmax(1) == labels).sum())
    return torch.cat(losses).tolist(), correct / len(data.test_labels)


def add_parent_loss(run: RunInfo, parents: Path) -> str | None:
    """Write `parent_loss` into `run`'s per_image.parquet from its parent in `parents`; returns what was done,
    None when the run has the column already or its parent (with model.pt) is not in `parents`."""
    import pandas as pd

    parent_id = getattr(run.config.method, "init_from", None)
    target = RunDir(run.path)
    table = pd.read_parquet(target.file(PER_IMAGE_FILE))
    if not parent_id or "parent_loss" in table or not (parents / parent_id / MODEL_FILE).is_file():
        return None
    parent = RunDir(parents / parent_id)
    losses, accuracy = parent_test_loss(parent, run)
    if len(losses) != len(table):
        raise SystemExit(f"{run.run_id}: {len(table)} test images in {PER_IMAGE_FILE}, {len(losses)} in its "
                         f"dataset; the column would not line up")
    table["parent_loss"] = pd.Series(losses, dtype="float32").to_numpy()[table["index"].to_numpy()]
    atomic_write_parquet(target.file(PER_IMAGE_FILE), table)
    shipped = run.path.parent / parent_id
    original = Run(shipped).require(SUMMARY).get("test_acc") if (shipped / "summary.json").is_file() else None
    summary = target.read_summary()
    summary["parent_loss_source"] = (f"retrained parent {parent_id} (its test accuracy {accuracy:.4f}; the original "
                                     f"parent's {original if original is None else f'{original:.4f}'})")
    target.write_summary(summary)
    return summary["parent_loss_source"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="runs folders")
    parser.add_argument("--parents", type=Path, help="a folder with the parent runs (and their model.pt) of runs "
                                                     "made before ManiDP wrote parent_loss")
    args = parser.parse_args(argv)
    for root in args.runs:
        for info in RunStore(root).iter_runs():
            if info.config.method.name != MANIDP or info.status.get("state") != "done":
                continue
            if args.parents is not None:
                source = add_parent_loss(info, args.parents)
                if source:
                    print(f"{info.run_id}: parent_loss from the {source}")
            added = backfill(info.path)
            if added:
                print(f"{info.run_id}: " + ", ".join(f"{key} {value:.4f}" for key, value in added.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Try both methods on every torchvision classification model and write the support table.

    python scripts/model_support.py            # all 80 models, one subprocess each (about 20 minutes on 2 cores)
    python scripts/model_support.py resnet18 mobilenet_v2   # some of them, printed only
    python scripts/model_support.py --update mnasnet0_5     # re-try some, replacing their rows in the table

Each model is built as PruneLab builds `torchvision:NAME` (fresh weights, 10 classes, the CIFAR stem) and tried on
32x32 inputs, BN scales and statistics randomised so that pruning has something to choose:
- slimming: every BN channel group (the reference scope), 30% of the channels removed at one global threshold,
  the compact network checked against the masked one (`verify_compact`) and its MACs counted;
- ManiDP: the reference gates on every free group, per-image MACs from the masks checked against FlopCounterMode
  on each image's sliced sub-network and the sliced logits against the masked model's (`verify_macs`), and the
  gated share of MACs: the dense MACs of the layers a gate governs over all dense MACs.
Writes `prunelab/models/model_support.csv` (what `python -m prunelab models` prints) and the table in README.md
between its model-support markers.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prunelab.analysis.model_support import (  # noqa: E402
    GATED_METHOD,
    STATIC_METHOD,
    SUPPORT_FIELDS,
    SUPPORT_FILE,
    readme_with_table,
    support_rows,
)
from prunelab.models.catalog import TORCHVISION_NAMES  # noqa: E402

TIMEOUT_S = 900  # per model


def one_line(error: Exception) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0][:200] if text else ''}"


def try_model(arch: str) -> dict[str, object]:
    """One model's row (run in a subprocess of its own)."""
    import torch

    from prunelab.methods.manidp.gates import GateStyle, install_gates
    from prunelab.methods.manidp.macs import build_plan, verify_macs
    from prunelab.methods.manidp.method import ManiDP
    from prunelab.methods.slimming.pruning import (
        channel_scores,
        compact_model,
        find_channel_groups,
        masked_model,
        select_channels,
        select_units,
        verify_compact,
    )
    from prunelab.models import build_model, model_spec
    from prunelab.training.flops import count_macs

    torch.manual_seed(0)
    torch.set_num_threads(2)
    shape = (3, 32, 32)
    row: dict[str, object] = {"model": arch, STATIC_METHOD: "no", GATED_METHOD: "no", "gated_macs_share": "",
                              "macs_removed_at_30pct": "", "reason": ""}
    started = time.time()
    try:
        model = build_model(model_spec(f"torchvision:{arch}", 10)).eval()
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.weight.uniform_(0.0, 1.0)
                    module.running_mean.uniform_(-0.5, 0.5)
                    module.running_var.uniform_(0.5, 1.5)
        images = torch.randn(2, *shape)
    except Exception as error:  # noqa: BLE001 - the table says why
        row["reason"] = f"build: {one_line(error)}"
        return row
    reasons = []
    try:
        units = select_units(find_channel_groups(model, shape), True)
        keep = select_channels(channel_scores(model, units), 0.3).keep
        compact = compact_model(model, units, keep)
        verify_compact(compact, masked_model(model, units, keep), images)
        dense_macs, compact_macs = count_macs(model, shape), count_macs(compact, shape)
        row[STATIC_METHOD] = "yes"
        row["macs_removed_at_30pct"] = f"{1 - compact_macs / dense_macs:.2f}"
    except Exception as error:  # noqa: BLE001
        reasons.append(f"{STATIC_METHOD}: {one_line(error)}")
    try:
        ManiDP.check_model(model, shape)
        gated = install_gates(build_model(model_spec(f"torchvision:{arch}", 10)), GateStyle()).eval()
        gated.load_state_dict(model.state_dict(), strict=False)
        plan = build_plan(gated, shape)
        with torch.no_grad():
            scale = max(1.0, float(gated(images).abs().max()))
        check = verify_macs(gated, images, plan, atol=1e-4 * scale)
        if not check["passed"]:
            raise RuntimeError(f"per-image MACs off by {check['max_abs_diff']}")
        if not check["output_passed"]:
            raise RuntimeError("the sliced sub-network differs from the masked model by "
                               f"{check['output_max_abs_diff']:.3g}")
        reach = plan.reach()
        row[GATED_METHOD] = "yes"
        row["gated_macs_share"] = f"{reach['macs_in_reach'] / reach['macs_dense']:.2f}"
    except Exception as error:  # noqa: BLE001
        reasons.append(f"{GATED_METHOD}: {one_line(error)}")
    row["reason"] = " | ".join(reasons)
    row["seconds"] = round(time.time() - started, 1)
    return row


def run_isolated(arch: str) -> dict[str, object]:
    try:
        done = subprocess.run([sys.executable, __file__, "--one", arch], capture_output=True, text=True,
                              timeout=TIMEOUT_S, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"model": arch, STATIC_METHOD: "not tried", GATED_METHOD: "not tried", "gated_macs_share": "",
                "macs_removed_at_30pct": "", "reason": f"the check ran past {TIMEOUT_S} s on 2 CPU cores"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["killed"])[-1][:160]
        return {"model": arch, STATIC_METHOD: "not tried", GATED_METHOD: "not tried", "gated_macs_share": "",
                "macs_removed_at_30pct": "", "reason": f"the check process failed: {tail}"}
    return json.loads(lines[-1])


def main(argv: list[str]) -> int:
    if argv[:1] == ["--one"]:
        print(json.dumps(try_model(argv[1])))
        return 0
    update = argv[:1] == ["--update"]  # re-try some models and replace their rows in the written table
    if update:
        argv = argv[1:]
    names = argv or list(TORCHVISION_NAMES)
    rows = []
    for arch in names:
        row = run_isolated(arch)
        rows.append(row)
        print(f"{arch:24s} {STATIC_METHOD} {row[STATIC_METHOD]:9s} {GATED_METHOD} {row[GATED_METHOD]:9s} "
              f"gated {row['gated_macs_share'] or '-':5s} {row.get('seconds', '')} s  {row['reason'][:110]}",
              flush=True)
    if argv and not update:
        return 0
    if update:
        tried = {str(row["model"]): row for row in rows}
        rows = [tried.get(row["model"], row) for row in support_rows()]
    with open(ROOT / SUPPORT_FILE, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=SUPPORT_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    readme = ROOT / "README.md"
    readme.write_text(readme_with_table(readme.read_text()))
    print(f"wrote {SUPPORT_FILE} and README.md's table", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

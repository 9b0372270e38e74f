"""Run directories with one malformed file each, copied from the bundled demo runs (no training).

`make_broken_runs(root)` writes good baseline, slimming and ManiDP runs plus one run per malformed-file
case into `root` and returns {case: (run directory, the file that is wrong)}. Model files are left
out (nothing here needs them), so a copy takes milliseconds.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

DEMO = Path(__file__).resolve().parents[1] / "assets" / "demo_runs"
# the demo run copied for each method (run ids carry the suite's time stamp, so they are found by name)
PATTERNS = {"baseline": "*-demo-baseline*", "slimming": "*-demo-slim-l[1-9]*", "manidp": "*-demo-manidp-both*"}


def demo_run(method: str) -> Path:
    """The first bundled demo run of `method` (for slimming: one with lambda > 0)."""
    found = sorted(DEMO.glob(PATTERNS[method]))
    if not found:
        raise FileNotFoundError(f"no bundled demo run matches {PATTERNS[method]} in {DEMO}")
    return found[0]


SOURCES = {method: demo_run(method).name for method in PATTERNS}
GOOD = {"good-baseline": "baseline", "good-slimming": "slimming", "good-manidp": "manidp"}


def copy_demo_run(root: Path, method: str, run_id: str) -> Path:
    """A copy of the demo run of `method` named `run_id` (its name in config.json too), without model files."""
    path = root / run_id
    shutil.copytree(DEMO / SOURCES[method], path, ignore=shutil.ignore_patterns("*.pt", "*.pt2"))
    config = json.loads((path / "config.json").read_text())
    config.update(run_id=run_id, name=run_id, suite=None)
    (path / "config.json").write_text(json.dumps(config))
    return path


def _edit_json(path: Path, **fields: object) -> None:
    data = json.loads(path.read_text())
    data.update(fields)
    path.write_text(json.dumps(data))


def make_broken_runs(root: Path) -> dict[str, tuple[Path, str]]:
    """Good runs and one run per malformed-file case under `root`; returns {case: (run dir, bad file)}."""
    root.mkdir(parents=True, exist_ok=True)
    for run_id, method in GOOD.items():
        copy_demo_run(root, method, run_id)
    cases: dict[str, tuple[Path, str]] = {}

    path = copy_demo_run(root, "baseline", "status-list")
    (path / "status.json").write_text("[]")
    cases["status-list"] = (path, "status.json")

    path = copy_demo_run(root, "baseline", "summary-na")
    _edit_json(path / "summary.json", test_acc="n/a")
    cases["summary-na"] = (path, "summary.json")

    path = copy_demo_run(root, "slimming", "slim-summary-na")
    _edit_json(path / "summary.json", test_acc="n/a")
    cases["slim-summary-na"] = (path, "summary.json")

    path = copy_demo_run(root, "slimming", "pruning-shape")
    _edit_json(path / "pruning.json", layers={"conv1": [1, 0, 1]})
    cases["pruning-shape"] = (path, "pruning.json")

    path = copy_demo_run(root, "manidp", "parquet-corrupt")
    (path / "per_image.parquet").write_bytes(b"PAR1 this is not a parquet file PAR1")
    cases["parquet-corrupt"] = (path, "per_image.parquet")

    path = copy_demo_run(root, "manidp", "parquet-missing")
    (path / "per_image.parquet").unlink()
    cases["parquet-missing"] = (path, "per_image.parquet")

    path = copy_demo_run(root, "manidp", "npz-corrupt")
    data = (path / "probe.npz").read_bytes()
    (path / "probe.npz").write_bytes(data[: len(data) // 2])  # truncated mid-write
    cases["npz-corrupt"] = (path, "probe.npz")

    path = copy_demo_run(root, "manidp", "npz-missing")
    (path / "probe.npz").unlink()
    cases["npz-missing"] = (path, "probe.npz")

    path = copy_demo_run(root, "slimming", "gamma-corrupt")
    (path / "gamma_history.npz").write_bytes(b"PK\x03\x04 not really a zip")
    cases["gamma-corrupt"] = (path, "gamma_history.npz")
    return cases

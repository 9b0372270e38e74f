"""Cancel Ray runs at chosen moments after they are submitted, then check that each worker still trains.

`ray.cancel` interrupts a task on whatever line it is on, and early in a task that is `import torch`
(`prunelab.scheduling.ray_backend.cancel_as_flag`). For each delay D this starts a 20-epoch shapes run on a local Ray
instance, cancels it D seconds after submitting it, and waits for it to settle. It then checks that
`--after` more 1-epoch runs finish `done` on the same workers. It prints one line per run and exits 1 if a
cancelled run does not end `cancelled` within `--timeout` seconds, or if a later run does not end `done`:

    python scripts/ray_cancel_check.py --delays 0.5,2,2,1.0,2,2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prunelab.config import RunConfig  # noqa: E402
from prunelab.methods.slimming.config import NAME as SLIMMING  # noqa: E402
from prunelab.runs.store import RunDir  # noqa: E402
from prunelab.scheduling.ray_backend import RaySuiteRunner, import_ray  # noqa: E402
from prunelab.scheduling.suites import Suite, SuiteRun  # noqa: E402


def shapes_run(epochs: int) -> Suite:
    """A one-run suite: slimming on 2,000 shapes images, about 1 s per epoch on one core."""
    config = RunConfig.model_validate({
        "data": {"dataset": "shapes", "train_size": 2000, "test_size": 500},
        "model": {"name": "vgg11", "width": 0.25},
        "train": {"epochs": epochs, "batch_size": 50, "lr": 0.05, "device": "cpu"},
        "method": {"name": SLIMMING, "sparsity_lambda": 0.0},
    })
    return Suite("cancel-check", "cancel-check", (SuiteRun("run", config),))


def run_once(runs: Path, epochs: int, cancel_after: float | None, timeout: float) -> tuple[str, float]:
    """Submit one run (a new driver, as each suite the app starts has), cancel it after `cancel_after`
    seconds if given, and return its final state and the seconds from the cancel (or submission) to it."""
    with RaySuiteRunner(runs) as runner:
        (run_id,) = runner.submit_suite(shapes_run(epochs))
        if cancel_after is not None:
            time.sleep(cancel_after)
            runner.cancel(run_id)
        started = time.monotonic()
        runner.wait(timeout=timeout)
        return RunDir(runs / run_id).state, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--delays", default="0.5,2,2,1.0,2,2",
                        help="seconds between submitting each run and cancelling it, comma-separated")
    parser.add_argument("--after", type=int, default=2, help="1-epoch runs that must then end done")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a run may take to settle")
    args = parser.parse_args()
    delays = [float(value) for value in args.delays.split(",")]
    ray = import_ray()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    wrong = 0
    try:
        with tempfile.TemporaryDirectory(prefix="prunelab-cancel-check-") as folder:
            for delay in delays:
                state, seconds = run_once(Path(folder), 20, delay, args.timeout)
                wrong += state != "cancelled"
                print(f"cancelled {delay:g} s after submitting: {state} {seconds:.1f} s later", flush=True)
            for _ in range(args.after):
                state, seconds = run_once(Path(folder), 1, None, args.timeout)
                wrong += state != "done"
                print(f"1-epoch run afterwards: {state} in {seconds:.1f} s", flush=True)
    finally:
        ray.shutdown()
    print(f"{wrong} of {len(delays) + args.after} runs did not end as expected")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())

"""Add ManiDP or slimming rows of another form (or with other departures) to a shipped demo, at the same budget.

Each new run copies an existing ManiDP run of the demo (its data, model, training settings, epochs, seed,
target density and parent) and changes only the method's form and departures; its name puts a tag after
`manidp-` (`demo-manidp-both-s0` -> `demo-manidp-ref-both-s0`). The loss weights λ' and γ are the form's
defaults unless given. The parent (`pretrain`) runs are shipped without their model.pt, so each is
retrained into a work folder from its own config.json under its own run id, and the new runs start from
there. The retrained parents are not bit-identical to the shipped ones on another machine (the script prints
both test accuracies: seen 0.662 / 0.668, 0.719 / 0.715, 0.627 / 0.623), so rows compared across forms
should all start from the same retrained parents: `--tag ''` retrains the shipped rows in place from them.
Finished runs are copied into the demo without the files no page reads; a ManiDP run whose model.pt is not
shipped keeps its what-if curve's accuracy points (`make_demo.keep_curves`), so the matched-MACs ablation
has every seed.
`--seeds 1,2` makes the rows of those seeds only. The templates are the shipped prunelab rows without a tag.

    python scripts/make_form_rows.py assets/demo_runs --tag ref --form reference --rows both,neither \\
        --work /tmp/form-rows --max-concurrent 2
    python scripts/make_form_rows.py assets/demo_runs --tag refsi --form reference \\
        --departure small_gate_init --work /tmp/form-rows

`--method slimming` does the same for the shipped slimming runs (no parents): `demo-slim-l4e-3-s0` ->
`demo-slim-ref-l4e-3-s0`, the same λ, prune ratio and epochs in another form.

    python scripts/make_form_rows.py assets/demo_runs --method slimming --tag ref --form reference \\
        --work /tmp/form-rows
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prunelab.config import RunConfig  # noqa: E402
from prunelab.methods.manidp.config import MANIDP_DEPARTURES, MANIDP_VARIANTS  # noqa: E402
from prunelab.methods.manidp.config import NAME as MANIDP  # noqa: E402
from prunelab.methods.slimming.config import NAME as SLIMMING  # noqa: E402
from prunelab.methods.slimming.config import SLIMMING_DEPARTURES  # noqa: E402
from prunelab.runs.artefacts import CONFIG, SUMMARY  # noqa: E402
from prunelab.runs.run import Run  # noqa: E402
from prunelab.runs.run_format import CHECKPOINT_FILE, RunStoreError  # noqa: E402
from prunelab.runs.store import RunDir, RunStore  # noqa: E402
from scripts.make_demo import strip  # noqa: E402

ROW_LABELS = {label.replace(" only", ""): key for key, label in MANIDP_VARIANTS.items()}  # both, neither, ...
DEPARTURE_FIELDS = {d.name: d.field for d in (*MANIDP_DEPARTURES, *SLIMMING_DEPARTURES)}
METHOD_DEPARTURES = {MANIDP: {d.name for d in MANIDP_DEPARTURES},
                     SLIMMING: {d.name for d in SLIMMING_DEPARTURES}}


def new_method(template: dict[str, Any], form: str, departures: list[str],
               weights: dict[str, float]) -> dict[str, Any]:
    """The template run's method settings with another form: its departure fields and the form-dependent
    loss weights are left to the form, except the departures and weights given."""
    method = {key: value for key, value in template.items()
              if key not in {"form", "departures", "lambda_prime", "gamma_sim", *DEPARTURE_FIELDS.values()}}
    method.update(form=form, **{DEPARTURE_FIELDS[name]: True for name in departures}, **weights)
    return method


def is_template(name: str, method: dict[str, Any]) -> bool:
    """True for a shipped prunelab-form ManiDP row without a tag (`demo-manidp-both-s0`, not
    `demo-manidp-refsi-both-s0`): the rows every other form copies."""
    if method.get("name") != MANIDP or "-manidp-" not in name:
        return False
    row = name.split("-manidp-", 1)[1].split("-", 1)[0]
    return row in ROW_LABELS and method.get("form", "prunelab") == "prunelab"


def plan_rows(runs: Path, tag: str, form: str, departures: list[str], rows: list[str],
              weights: dict[str, float], seeds: set[int] | None = None) -> list[tuple[str, RunConfig, str]]:
    """(new run id, its config, its parent's run id) for each shipped ManiDP row of the chosen rows (and
    seeds; None: every seed)."""
    wanted = {ROW_LABELS[row] for row in rows}
    planned = []
    for path in sorted(p for p in runs.iterdir() if (p / "config.json").is_file()):
        raw = json.loads((path / "config.json").read_text())
        method = raw.get("method", {})
        if not is_template(str(raw.get("name")), method):
            continue
        if (bool(method.get("complexity")), bool(method.get("similarity"))) not in wanted:
            continue
        if seeds is not None and raw.get("train", {}).get("seed") not in seeds:
            continue
        infix = f"-manidp-{tag}-" if tag else "-manidp-"  # no tag: retrain the template in place
        name = str(raw["name"]).replace("-manidp-", infix, 1)
        run_id = str(raw["run_id"]).replace("-manidp-", infix, 1)
        body = {key: value for key, value in raw.items() if key != "run_id"}
        body.update(name=name, method=new_method(method, form, departures, weights))
        planned.append((run_id, RunConfig.model_validate(body), str(method["init_from"])))
    return planned


def plan_slimming_rows(runs: Path, tag: str, form: str, departures: list[str],
                       seeds: set[int] | None = None) -> list[tuple[str, RunConfig, None]]:
    """(new run id, its config, None) for each shipped slimming run made before forms (the prunelab form):
    the same λ, prune ratio, epochs and seed in `form` with `departures`."""
    planned = []
    for path in sorted(p for p in runs.iterdir() if (p / "config.json").is_file()):
        raw = json.loads((path / "config.json").read_text())
        method = raw.get("method", {})
        if method.get("name") != SLIMMING or "-slim-" not in str(raw.get("name")):
            continue
        if method.get("form", "prunelab") != "prunelab" or method.get("departures"):
            continue
        if seeds is not None and raw.get("train", {}).get("seed") not in seeds:
            continue
        body = {key: value for key, value in raw.items() if key != "run_id"}
        body.update(name=str(raw["name"]).replace("-slim-", f"-slim-{tag}-", 1),
                    method=new_method(method, form, departures, {}))
        planned.append((str(raw["run_id"]).replace("-slim-", f"-slim-{tag}-", 1),
                        RunConfig.model_validate(body), None))
    return planned


def _train(job: tuple[str, str]) -> tuple[str, str]:
    """Train the queued run `run_id` in `root` (a worker process); returns (run id, final state)."""
    import torch

    from prunelab.training.engine import run_training

    root, run_id = job
    torch.set_num_threads(1)
    run = RunDir(Path(root) / run_id)
    resume = run.file(CHECKPOINT_FILE).is_file()  # a run cut short (a session ended) goes on from its checkpoint
    try:
        run_training(run.read_config(), run, resume=resume)
    except Exception as error:  # the run's status and traceback say what happened
        return run_id, f"failed: {error}"
    return run_id, "done"


def _done(run: RunDir) -> bool:
    try:
        return run.read_status().get("state") == "done"
    except RunStoreError:
        return False


POLL_S = 5.0  # how often train_all looks for a finished run


def train_all(work: Path, jobs: list[str], max_concurrent: int,
              parents: Mapping[str, str] | None = None) -> dict[str, str]:
    """Train the runs `jobs` in `work` that are not done, at most `max_concurrent` at once (one process each), taken
    in their order; one with a parent (`parents`: run id -> parent run id in `work`) starts as soon as that run is
    done, beside whatever else trains. Returns the final state of each run trained."""
    parents = parents or {}
    pending = [run_id for run_id in jobs if not _done(RunDir(work / run_id))]
    results: dict[str, str] = {}
    if not pending:
        return results
    with multiprocessing.get_context("spawn").Pool(max_concurrent) as pool:
        running: dict[str, Any] = {}
        while pending:
            for run_id in list(pending):
                parent = parents.get(run_id)
                if len(running) < max_concurrent and (parent is None or _done(RunDir(work / parent))):
                    pending.remove(run_id)
                    running[run_id] = pool.apply_async(_train, ((str(work), run_id),))
            if not running:  # the rest wait for parents that did not finish
                break
            finished = [run_id for run_id, result in running.items() if result.ready()]
            for run_id in finished:
                _, results[run_id] = running.pop(run_id).get()
                print(f"  {run_id}: {results[run_id]}", flush=True)
            if not finished:
                time.sleep(POLL_S)
        for run_id, result in running.items():
            _, results[run_id] = result.get()
            print(f"  {run_id}: {results[run_id]}", flush=True)
    for run_id in pending:
        print(f"  {run_id}: not started, its parent {parents[run_id]} did not finish", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, help="the demo's runs folder, e.g. assets/demo_runs")
    parser.add_argument("--method", choices=sorted(METHOD_DEPARTURES), default=MANIDP,
                        help="the method whose shipped rows are copied (default manidp)")
    parser.add_argument("--tag", required=True, help=("inserted after 'manidp-' in the new runs' names; '' retrains "
                                                      "the shipped runs in place with today's code"))
    parser.add_argument("--form", choices=["reference", "prunelab"], default="reference")
    parser.add_argument("--departure", action="append", default=[], choices=sorted(DEPARTURE_FIELDS),
                        help="a departure switched on besides the form's (repeatable)")
    parser.add_argument("--rows", default="both,neither,complexity,similarity",
                        help="ablation rows (default all four)")
    parser.add_argument("--lambda-prime", type=float, help="λ' (default: the form's)")
    parser.add_argument("--gamma-sim", type=float, help="γ (default: the form's)")
    parser.add_argument("--seeds", help="comma-separated seeds of the rows to make (default: every shipped seed)")
    parser.add_argument("--work", type=Path, required=True, help="work folder outside the repository")
    parser.add_argument("--max-concurrent", type=int, default=2)
    args = parser.parse_args(argv)
    rows = [row.strip() for row in args.rows.split(",") if row.strip()]
    unknown = [row for row in rows if row not in ROW_LABELS]
    if unknown:
        parser.error(f"unknown rows {unknown}; allowed: {', '.join(ROW_LABELS)}")
    try:
        seeds = None if args.seeds is None else {int(seed) for seed in args.seeds.split(",") if seed.strip()}
    except ValueError:
        parser.error(f"--seeds takes comma-separated integers, not {args.seeds!r}")
    weights = {key: value for key, value in (("lambda_prime", args.lambda_prime), ("gamma_sim", args.gamma_sim))
               if value is not None}
    foreign = sorted(set(args.departure) - METHOD_DEPARTURES[args.method])
    if foreign:
        parser.error(f"{foreign} are not departures of {args.method}; allowed: "
                     f"{', '.join(sorted(METHOD_DEPARTURES[args.method]))}")
    if args.method == SLIMMING:
        if not args.tag:
            parser.error("--method slimming needs a --tag (the shipped slimming rows stay as they are)")
        planned = plan_slimming_rows(args.runs, args.tag, args.form, args.departure, seeds)
    else:
        planned = plan_rows(args.runs, args.tag, args.form, args.departure, rows, weights, seeds)
    if not planned:
        print(f"no shipped prunelab-form {args.method} runs to copy in {args.runs}", file=sys.stderr)
        return 2
    store = RunStore(args.work)
    parents = sorted({parent for _, _, parent in planned if parent is not None})
    for parent in parents:
        if not (args.work / parent).is_dir():
            store.create(Run(args.runs / parent).require(CONFIG), parent)
    print(f"retraining {len(parents)} parent runs in {args.work}", flush=True)
    train_all(args.work, parents, args.max_concurrent)
    for parent in parents:
        shipped = Run(args.runs / parent).require(SUMMARY)["test_acc"]
        again = Run(args.work / parent).require(SUMMARY)["test_acc"]
        print(f"  {parent}: shipped test acc {shipped:.4f}, retrained {again:.4f}", flush=True)
    for run_id, config, _ in planned:
        if not (args.work / run_id).is_dir():
            store.create(config, run_id)
    print(f"training {len(planned)} runs", flush=True)
    train_all(args.work, [run_id for run_id, _, _ in planned], args.max_concurrent)
    return ship(args.work, args.runs, [run_id for run_id, _, _ in planned])


def ship(work: Path, runs: Path, run_ids: list[str]) -> int:
    """Copy each finished run of `run_ids` from `work` into `runs` (replacing a run of that id) without the files no
    page reads (`make_demo.strip`); 0 when every one was finished, else 1."""
    copied = 0
    for run_id in run_ids:
        source, target = work / run_id, runs / run_id
        if _done(RunDir(source)):
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(source, target)
            strip(target)
            copied += 1
    print(f"{copied} of {len(run_ids)} runs copied into {runs}")
    return 0 if copied == len(run_ids) else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Add the controls of `suite controls` to a shipped demo, against the demo's own slimming and ManiDP runs.

The controls (prunelab/scheduling/suites.py, `controls_suite`; prunelab/analysis/controls.py): random channels at
a slimming run's per-layer counts, that run's architecture trained from scratch, and a static network of a ManiDP
run's mean MACs per image trained from scratch, every one at the demo's budget (E + F epochs in all).

    python scripts/make_controls.py assets/demo_runs --work /work/data/controls-runs --max-concurrent 2
    python scripts/make_controls.py assets/demo_runs --work /work/data/controls-runs --continue  # after a stop

The suite is built with the demo's settings, read from the runs it ships (`demo_settings`): its `baseline-s0`
run's data, model and training settings; its budget (E + F: the baseline's epochs; F: the slimming rows'
fine-tuning; P: the `pretrain-s0` run's epochs) and seeds (its `baseline-s<n>` runs); slimming at the demo's
largest λ (the rows without a tag; the |γ| criterion meets random channels where it should help most) with
that row's method settings; ManiDP's settings and its lr over the baseline's from the `manidp-both-s0` row.
`--form` (default prunelab) names the form those untagged rows must have. So the shapes demo
(E = F = 3, 3 seeds, λ = 8e-3) and the CIFAR-10 demo (E = F = 8, P = 4, 2 seeds, λ = 4e-3, prune ratio 0.4,
ManiDP at lr scale 1.0) each get controls at their own budget. Every run of the suite the demo ships already (baseline,
slimming at the suite's λ, pretrain, ManiDP with both terms) must have the shipped run's config but for its
identity (name, suite, parent), or the script stops naming the fields; the controls get the demo's run-id prefix,
names and suite id, and their parents' shipped run ids.

Parents. Random channels start from the slimming run's dense model after sparsity training, which the demo ships
for seed 0 only, and a slimming run retrained on another machine is not bit-identical to the shipped one. So a
slimming parent the demo ships without its dense model is retrained in the work folder from its own config.json
under its own run id (its re-pruning view precomputed there, while its dense model is at hand) and replaces the
shipped run; one shipped with its dense model is copied as it ships (`--retrain-all` retrains it too): every
control is compared with the very run it derives from. The ManiDP runs are not retrained (the static network
reads only their summary.json, the mean MACs per image): they are copied into the work folder as shipped.

Finished runs are copied into the demo without the files no page reads (`make_demo.strip`: a seed-0 slimming run
keeps its dense model). Without `--continue` the work folder must not hold the planned runs yet; with it, a run
cut short resumes from its last epoch checkpoint and a finished one is kept.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prunelab.config import RunConfig  # noqa: E402
from prunelab.methods.baseline.config import NAME as BASELINE  # noqa: E402
from prunelab.methods.manidp.config import NAME as MANIDP  # noqa: E402
from prunelab.methods.scratch.config import NAME as SCRATCH  # noqa: E402
from prunelab.methods.slimming.config import NAME as SLIMMING  # noqa: E402
from prunelab.runs.artefacts import CONFIG, SUMMARY  # noqa: E402
from prunelab.runs.run import Run  # noqa: E402
from prunelab.runs.run_format import DENSE_MODEL_FILE  # noqa: E402
from prunelab.runs.store import RunDir, RunStore  # noqa: E402
from prunelab.scheduling.suites import Suite, build_suite  # noqa: E402
from scripts.make_form_rows import _done, ship, train_all  # noqa: E402

TEMPLATE = "baseline-s0"  # the shipped run whose settings the suite is built with


def demo_template(runs: Path) -> tuple[RunConfig, str]:
    """The demo's `baseline-s0` config and the run-id prefix of its runs ('20261201-142625-demo-')."""
    for path in sorted(runs.iterdir()):
        if path.name.endswith(f"-{TEMPLATE}") and (path / "config.json").is_file():
            config = Run(path).require(CONFIG)
            if config.method.name == BASELINE:
                return config, path.name.removesuffix(TEMPLATE)
    raise SystemExit(f"{runs} holds no *-{TEMPLATE} baseline run to take the demo's settings from")


def identity_free(config: RunConfig) -> dict[str, Any]:
    """A config without what tells two runs of one setting apart: name, suite and parent run."""
    raw = config.model_dump(mode="json")
    raw.pop("name", None)
    raw.pop("suite", None)
    raw["method"].pop("init_from", None)
    return raw


def differences(a: Any, b: Any, where: str = "") -> list[str]:
    """The fields (dotted paths) in which two JSON-like values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for key in sorted(set(a) | set(b)) for d in differences(a.get(key), b.get(key), f"{where}.{key}")]
    return [] if a == b else [f"{where.lstrip('.')}: {a!r} (suite) vs {b!r} (shipped)"]


@dataclass(frozen=True)
class DemoSettings:
    """What suite controls needs to rebuild a demo's runs: budget (E, F, P), seeds, the slimming λ, ManiDP's lr over
    the baseline's, and each method's settings (the shipped rows' method fields the suite does not set itself)."""

    epochs: int
    finetune: int
    pretrain: int
    seeds: int
    lam: float
    lr_scale: float
    settings: dict[str, dict[str, Any]]


SUITE_SET = {SLIMMING: {"name", "sparsity_lambda", "finetune_epochs"},
             MANIDP: {"name", "init_from", "complexity", "similarity"}}  # fields each suite run sets itself


def shipped_keys(runs: Path, stem: str) -> dict[str, str]:
    """The run id of each run the demo ships, by its key: a run id is '<date>-<time>-' + stem + key, the time the
    second its run was created, so one demo's ids need not share a prefix ('20261202-103407-demo-baseline-s0',
    '20261202-103408-demo-baseline-s1')."""
    keys = {}
    for path in sorted(runs.iterdir()):
        found = re.fullmatch(rf"\d{{8}}-\d{{6}}-{re.escape(stem)}(.+)", path.name)
        if found and (path / "config.json").is_file():
            keys[found.group(1)] = path.name
    return keys


def demo_settings(runs: Path, keys: dict[str, str], template: RunConfig, form: str) -> DemoSettings:
    """The settings the demo in `runs` was trained with, read from its shipped runs (`keys`: their ids by key;
    `template`: its baseline-s0 config)."""
    def shipped(key: str) -> RunConfig:
        if key not in keys:
            raise SystemExit(f"the demo in {runs} ships no {key} run: the controls compare with the demo's own runs")
        return Run(runs / keys[key]).require(CONFIG)

    slimming_rows = [shipped(key) for key in keys if re.fullmatch(r"slim-l[0-9.e+-]+-s0", key)]
    if not slimming_rows:
        raise SystemExit(f"{runs} ships no untagged slimming row (slim-l<λ>-s0) to set controls against")
    slimming = max(slimming_rows, key=lambda config: config.method.sparsity_lambda)
    manidp = shipped("manidp-both-s0")
    for config in (slimming, manidp):
        if config.method.form != form:
            raise SystemExit(f"{config.name} has the {config.method.form} form, not {form} (--form)")
    total = template.train.epochs
    finetune = slimming.method.finetune_epochs
    if slimming.train.epochs + finetune != total:
        raise SystemExit(f"{slimming.name} trains {slimming.train.epochs} + {finetune} epochs, the baseline {total}: "
                         "not one budget")
    seeds = sum(1 for key in keys if re.fullmatch(rf"{TEMPLATE[:-1]}\d+", key))
    settings = {name: {field: value for field, value in config.method.model_dump(mode="json").items()
                       if field not in SUITE_SET[name]}
                for name, config in ((SLIMMING, slimming), (MANIDP, manidp))}
    return DemoSettings(epochs=slimming.train.epochs, finetune=finetune, pretrain=shipped("pretrain-s0").train.epochs,
                        seeds=seeds, lam=slimming.method.sparsity_lambda,
                        lr_scale=manidp.train.lr / template.train.lr, settings=settings)


def plan(runs: Path, form: str) -> tuple[Suite, dict[str, str], dict[str, RunConfig]]:
    """The controls suite at the demo's settings; each run's id (the shipped one, or the demo's prefix and the
    run's key); and the config of each control, named and wired into the demo (by run id)."""
    template, prefix = demo_template(runs)
    keys = shipped_keys(runs, template.name.removesuffix(TEMPLATE))
    demo = demo_settings(runs, keys, template, form)
    base = RunConfig.model_validate({**template.model_dump(mode="json"), "name": None, "suite": None})
    suite = build_suite("controls", base, demo.epochs, demo.finetune, seeds=demo.seeds,
                        method_settings=demo.settings, lambdas=[demo.lam], pretrain_epochs=demo.pretrain,
                        manidp_lr_scale=demo.lr_scale)
    ids = {run.key: keys.get(run.key, f"{prefix}{run.key}") for run in suite.runs}
    controls: dict[str, RunConfig] = {}
    for run in suite.runs:
        shipped = runs / ids[run.key]
        if (shipped / "config.json").is_file() and not _is_control(run.config):
            found = differences(identity_free(run.config), identity_free(Run(shipped).require(CONFIG)))
            if found:
                raise SystemExit(f"{shipped.name} ships with other settings than suite controls gives it: "
                                 + "; ".join(found))
            continue
        if not _is_control(run.config):
            raise SystemExit(f"the demo ships no {ids[run.key]}: the controls compare with the demo's own runs")
        raw = run.with_init_from(ids[str(run.init_from)]).model_dump(mode="json")
        raw.update(name=f"{template.name.removesuffix(TEMPLATE)}{run.key}", suite=template.suite)
        controls[ids[run.key]] = RunConfig.model_validate(raw)
    return suite, ids, controls


def _is_control(config: RunConfig) -> bool:
    return config.method.name not in (BASELINE, SLIMMING, MANIDP)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, help="the demo's runs folder, e.g. assets/demo_runs")
    parser.add_argument("--work", type=Path, required=True, help="work folder outside the repository")
    parser.add_argument("--form", choices=["prunelab", "reference"], default="prunelab",
                        help="the form of the slimming and ManiDP runs the controls are set against")
    parser.add_argument("--max-concurrent", type=int, default=2)
    parser.add_argument("--continue", dest="resume", action="store_true",
                        help="go on with the runs in the work folder (resumed from their checkpoints)")
    parser.add_argument("--retrain-all", action="store_true",
                        help="retrain a slimming parent the demo ships with its dense model too")
    args = parser.parse_args(argv)
    _, _, controls = plan(args.runs, args.form)
    parents = sorted({str(config.method.init_from) for config in controls.values()})
    planned = [*parents, *controls]
    there = [run_id for run_id in planned if (args.work / run_id).is_dir()]
    if there and not args.resume:
        parser.error(f"{args.work} holds {len(there)} of the planned runs already (e.g. {there[0]}); pass "
                     "--continue to go on with them")
    store = RunStore(args.work)
    retrained = [run_id for run_id in parents if Run(args.runs / run_id).require(CONFIG).method.name == SLIMMING
                 and (args.retrain_all or not (args.runs / run_id / DENSE_MODEL_FILE).is_file())]
    for run_id in parents:
        if (args.work / run_id).is_dir():
            continue
        if run_id in retrained:
            store.create(Run(args.runs / run_id).require(CONFIG), run_id)
        else:  # read only: copied as it ships
            shutil.copytree(args.runs / run_id, args.work / run_id)
    for run_id, config in controls.items():
        if not (args.work / run_id).is_dir():
            store.create(config, run_id)
    print(f"retraining {len(retrained)} slimming parents, copying {len(parents) - len(retrained)} parents as they "
          f"ship, training {len(controls)} control runs in {args.work}", flush=True)
    # the retrained parents first, then the controls of slimming runs (they answer the skeptic's two questions of
    # Network Slimming together) before the static networks of the ManiDP runs; within each, from scratch (E + F
    # epochs) before random channels (F): each starts as soon as its parent is done
    def rank(run_id: str) -> tuple[bool, bool]:
        parent = str(controls[run_id].method.init_from)
        return Run(args.work / parent).require(CONFIG).method.name != SLIMMING, controls[run_id].method.name != SCRATCH

    order = [*retrained, *sorted(controls, key=rank)]
    train_all(args.work, order, args.max_concurrent,
              {run_id: str(config.method.init_from) for run_id, config in controls.items()})
    from prunelab.analysis.views import precompute

    for run_id in retrained:
        path = args.work / run_id
        if _done(RunDir(path)) and not (path / "whatif_prune.json.gz").is_file():
            precompute(path)  # the Slimming page's re-pruning, from the dense model the demo ships only for seed 0
        shipped = Run(args.runs / run_id).require(SUMMARY)["test_acc"]
        again = Run(path).require(SUMMARY)["test_acc"] if _done(RunDir(path)) else float("nan")
        print(f"  {run_id}: shipped test acc {shipped:.4f}, retrained {again:.4f}", flush=True)
    return ship(args.work, args.runs, [*retrained, *controls])


if __name__ == "__main__":
    raise SystemExit(main())

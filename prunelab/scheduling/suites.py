"""Experiment suites: named sets of runs submitted together (`JobManager.submit_suite`).

A `Suite` is an ordered list of `SuiteRun`s sharing one `DataConfig` (so the job manager loads the
dataset once) and one suite id (`RunConfig.suite`). A run may start from another run's final model
(`init_from`: ManiDP's gates are trained on top of a converged baseline, as in the paper; a control takes a
pruned run's counts, dense model or architecture); the job manager then runs it after that run is `done`.

Equal budgets. With E = `epochs`, F = `finetune_epochs` and P = `pretrain_epochs` (default E), every
compared run is shaped by E + F epochs in all (`summary.json`'s `epochs_total`):
- `baseline`: E + F epochs of plain training (the unpruned reference);
- slimming: E sparsity epochs + F fine-tune epochs;
- ManiDP: E + F - P epochs (F by default) from `pretrain`, a plain baseline of P epochs (its parent,
  referenced by run id). A shorter parent gives the gates a longer phase at the same budget. The ManiDP
  runs train at the baseline's lr * `manidp_lr_scale` (default MANIDP_LR_SCALE) with Nesterov momentum.

Seeds. `seeds=N` repeats every run with train seeds 0..N-1 (same data); run keys then end in `-s<seed>`
and each seed's ManiDP runs start from that seed's `pretrain`.

Limits (`prunelab.scheduling.limits`, ValueError naming the limit and its range): seeds (`SEEDS`), sweep
values and lambdas (`SWEEP_VALUES`), E + F (`SUITE_EPOCHS`: within the epochs a run may train) and the runs of
a suite (`SUITE_RUNS`: `Suite` itself refuses more).

Registered suites (`SUITES`):
- `demo`: baseline; Network Slimming at SLIMMING_LAMBDAS (or the `lambdas` given: the CLI's `--lambdas`);
  the ManiDP ablation (neither term, complexity only, similarity only, both) from `pretrain`.
- `slimming`: baseline + the slimming runs; `ablation`: baseline, pretrain + the four ManiDP runs.
- `controls`: the controls a skeptic asks for (`prunelab.analysis.controls`), every run E + F epochs in all:
  baseline; slimming at CONTROLS_LAMBDAS (or `lambdas`), each with random channels at its per-layer counts
  (`rand-<key>`: its E sparsity epochs + F fine-tune epochs) and its architecture trained from scratch
  (`scratch-<key>`: E + F epochs, fresh weights; Liu et al., ICLR 2019); pretrain and ManiDP with both terms, with
  a static network of its mean MACs per image trained from scratch (`scratch-manidp-both`: E + F epochs).
  Each control names its parent by run id (`init_from`), as ManiDP names pretrain.
Method settings. `method_settings={MANIDP: {"target_density": 0.65}}` sets fields of every run of that method
(the CLI: `suite demo --target-density 0.65`); a field the suite sets itself (a swept value, slimming's
`finetune_epochs`, the ablation's two terms) or a method the suite does not run is refused.
`sweep(method, param, values)` builds a one-parameter sweep over a sweep parameter of a method
(`prunelab.config.SWEEP_PARAMS`: lambda, prune ratio, lambda', gamma, gamma_c, target density) with the
same budget rule; run names use each method's and parameter's short labels (`sweep-slim-l1e-4`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from prunelab.config import (
    METHOD_FACTS,
    METHOD_PARAMS,
    PARAM_ALIASES,
    SWEEP_PARAMS,
    RunConfig,
    describe_validation_error,
)
from prunelab.methods.baseline.config import NAME as BASELINE
from prunelab.methods.manidp.config import NAME as MANIDP
from prunelab.methods.random.config import NAME as RANDOM
from prunelab.methods.scratch.config import NAME as SCRATCH
from prunelab.methods.slimming.config import NAME as SLIMMING
from prunelab.scheduling.limits import MANIDP_LR_SCALE as LR_SCALE_LIMIT
from prunelab.scheduling.limits import SEEDS, SUITE_EPOCHS, SUITE_RUNS, SWEEP_VALUES

DEMO_EPOCHS = 3
DEMO_FINETUNE_EPOCHS = 3
SLIMMING_LAMBDAS = (0.0, 4e-3, 8e-3)  # demo length (3 sparsity epochs, no BN decay): |gamma| < 0.05 for 0% / 30% / 71%
# ManiDP runs that start from the suite's baseline fine-tune it: the reference schedule uses lr 0.05 with
# Nesterov momentum from a pretrained model, half the from-scratch lr 0.1 (at the full lr 0.1 the gated
# runs diverged to NaN on shapes after one epoch). A short parent is far from converged and may want more:
# `manidp_lr_scale` (the CLI's --manidp-lr-scale) sets it per suite; the CIFAR-10 demo uses 1.0
MANIDP_LR_SCALE = 0.5
# (label, complexity term, similarity term): the ManiDP paper's ablation rows
MANIDP_ABLATION = (("neither", False, False), ("complexity", True, False),
                   ("similarity", False, True), ("both", True, True))
# the controls suite's slimming λ unless given: the demo's largest, whose |γ| pile up at zero (71% below 0.05 on
# the shapes demo), so that the |γ| criterion meets random channels where it should help most
CONTROLS_LAMBDAS = (SLIMMING_LAMBDAS[-1],)



MethodSettings = Mapping[str, Mapping[str, Any]]  # {method: {config field: value}} for every run of the method


@dataclass(frozen=True)
class SuiteRun:
    """One run of a suite; `init_from` names the `key` of the run whose final model initialises it."""

    key: str
    config: RunConfig
    init_from: str | None = None

    def with_init_from(self, parent: str) -> RunConfig:
        """This run's config with `method.init_from` set to the parent run (its id in the same runs folder)."""
        raw = self.config.model_dump(mode="json")
        raw["method"]["init_from"] = parent
        return RunConfig.model_validate(raw)


@dataclass(frozen=True)
class Suite:
    """A suite's runs, at most SUITE_RUNS.high of them (ValueError naming the limit): whoever builds one,
    no scheduler is handed more."""

    name: str
    suite_id: str
    runs: tuple[SuiteRun, ...]

    def __post_init__(self) -> None:
        if not SUITE_RUNS.contains(len(self.runs)):
            raise ValueError(f"suite {self.name}: {SUITE_RUNS.refusal(len(self.runs))}")

    def run_keys(self) -> list[str]:
        return [run.key for run in self.runs]


def format_value(value: float) -> str:
    """Compact value for run names: 0 -> '0', 1e-4 -> '1e-4', 0.5 -> '0.5', 2.0 -> '2'."""
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    if abs(value) < 1e-2:
        mantissa, exponent = f"{value:.5e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return f"{value:.6g}"


def format_values(values: Sequence[float], sep: str = ",") -> str:
    """[0, 1e-3, 4e-3] -> '0,1e-3,4e-3' (format_value for each)."""
    return sep.join(map(format_value, values))


def _suite_id(name: str) -> str:
    return f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def _run_config(base: RunConfig, suite_id: str, name: str, method: dict[str, Any],
                epochs: int | None, seed: int | None = None) -> RunConfig:
    """`base`'s data, model and training settings with another method, name, suite id (and seed)."""
    raw = base.model_dump(mode="json")
    raw.update(name=name, suite=suite_id, method=method)
    if epochs is not None:
        raw["train"]["epochs"] = epochs
    if seed is not None:
        raw["train"]["seed"] = seed
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as error:
        raise ValueError(f"{name}: {describe_validation_error(error)}") from None


@dataclass(frozen=True)
class Budget:
    """A suite's epoch counts: E sparsity (slimming) epochs, F fine-tune epochs, P epochs of ManiDP's parent.

    Every compared run trains `total` = E + F epochs in all; a ManiDP run trains `manidp` = E + F - P of
    them after its P-epoch parent."""

    epochs: int
    finetune: int
    pretrain: int

    @property
    def total(self) -> int:
        return self.epochs + self.finetune

    @property
    def manidp(self) -> int:
        return self.total - self.pretrain


def suite_budget(epochs: int | None, finetune_epochs: int | None, pretrain_epochs: int | None = None) -> Budget:
    """Budget(E, F, P). Defaults DEMO_EPOCHS / DEMO_FINETUNE_EPOCHS; with only E given, F = E / 2 (at
    least 1); F >= 0 and E + F within SUITE_EPOCHS (the baseline trains E + F); P = E unless given, between 1
    and E + F - 1 (a ManiDP run needs a parent and an epoch)."""
    if epochs is None:
        epochs, finetune = DEMO_EPOCHS, DEMO_FINETUNE_EPOCHS if finetune_epochs is None else finetune_epochs
    else:
        finetune = max(1, round(epochs / 2)) if finetune_epochs is None else finetune_epochs
    if finetune < 0:
        raise ValueError(f"--finetune-epochs must be at least 0, got {finetune}")
    SUITE_EPOCHS.check(epochs + finetune)
    pretrain = epochs if pretrain_epochs is None else pretrain_epochs
    if not 1 <= pretrain < epochs + finetune:
        raise ValueError(f"--pretrain-epochs must be between 1 and E + F - 1 = {epochs + finetune - 1} "
                         f"(the ManiDP runs train E + F - P epochs after it), got {pretrain}")
    return Budget(epochs, finetune, pretrain)


def _seeds(seeds: int) -> list[int | None]:
    """[None] for one seed (the base config's seed, keys without suffix), else 0..N-1."""
    SEEDS.check(seeds)
    return [None] if seeds == 1 else list(range(seeds))


def _key(key: str, seed: int | None) -> str:
    return key if seed is None else f"{key}-s{seed}"


def _flag(method: str, field: str) -> str:
    """The CLI flag of a method field (the field's name where it has none)."""
    facts = METHOD_PARAMS.get(method, {}).get(field)
    return facts.cli_flag if facts else field


def _method(name: str, fixed: dict[str, Any], settings: MethodSettings | None) -> dict[str, Any]:
    """A run's method config: the user's settings for `name`, then the fields the suite sets (`fixed`)."""
    given = dict((settings or {}).get(name, {}))
    clash = sorted(set(given) & set(fixed))
    if clash:
        flags = ", ".join(_flag(name, field) for field in clash)
        raise ValueError(f"{flags}: the suite sets this for each {name} run itself")
    return {"name": name, **given, **fixed}


def _check_settings(settings: MethodSettings | None, methods: Sequence[str], suite: str) -> None:
    """Refuse settings for a method the suite does not run (a field one of its methods has too, as `form`,
    is a shared flag and sets that method's runs)."""
    for name, fields in (settings or {}).items():
        foreign = [field for field in fields if not any(field in METHOD_PARAMS[m] for m in methods)]
        if foreign and name not in methods:
            flags = ", ".join(_flag(name, field) for field in foreign)
            raise ValueError(f"{flags} set {name} runs, and suite {suite} has none "
                             f"(its methods: {', '.join(methods)})")


def _swept_key(param: str, value: float) -> str:
    """'slim-l1e-4': the short labels of the parameter's method and of the parameter, then the value."""
    facts = SWEEP_PARAMS[param]
    return f"{METHOD_FACTS[facts.method].short}-{facts.sweep_label}{format_value(float(value))}"


def _baseline(base: RunConfig, suite_id: str, prefix: str, epochs: int, seed: int | None = None,
              label: str = BASELINE) -> SuiteRun:
    key = _key(label, seed)
    config = _run_config(base, suite_id, f"{prefix}-{key}", {"name": BASELINE}, epochs, seed)
    return SuiteRun(key, config)


def slimming_lambdas(values: Sequence[float] | None) -> tuple[float, ...]:
    """The suite's slimming lambdas: `values` (distinct, >= 0, kept in the order given) or SLIMMING_LAMBDAS."""
    if values is None:
        return SLIMMING_LAMBDAS
    lambdas = tuple(float(value) for value in values)
    if not lambdas:
        raise ValueError("--lambdas is empty; give a comma-separated list like 0,1e-3,4e-3")
    SWEEP_VALUES.check(len(lambdas), "the number of lambdas (--lambdas)")
    if any(value < 0 for value in lambdas):
        raise ValueError(f"--lambdas: every lambda must be >= 0, got {format_values(lambdas, ', ')}")
    if len({format_value(value) for value in lambdas}) < len(lambdas):  # two runs would share a name
        raise ValueError(f"--lambdas: each lambda once, got {format_values(lambdas, ', ')}")
    return lambdas


def _slimming_runs(base: RunConfig, suite_id: str, prefix: str, epochs: int, finetune: int,
                   seed: int | None, settings: MethodSettings | None, lambdas: Sequence[float]) -> list[SuiteRun]:
    runs = []
    for lam in lambdas:
        key = _key(_swept_key("sparsity_lambda", lam), seed)
        method = _method(SLIMMING, {"sparsity_lambda": lam, "finetune_epochs": finetune}, settings)
        runs.append(SuiteRun(key, _run_config(base, suite_id, f"{prefix}-{key}", method, epochs, seed)))
    return runs


def finetune_base(base: RunConfig, lr_scale: float | None = None) -> RunConfig:
    """`base` with the training settings of a run that fine-tunes a parent: lr * `lr_scale` (default
    MANIDP_LR_SCALE, 0.5) and Nesterov momentum."""
    raw = base.model_dump(mode="json")
    raw["train"].update(lr=base.train.lr * (MANIDP_LR_SCALE if lr_scale is None else lr_scale), nesterov=True)
    return RunConfig.model_validate(raw)


def _ablation_runs(base: RunConfig, suite_id: str, prefix: str, epochs: int,
                   seed: int | None = None, settings: MethodSettings | None = None,
                   lr_scale: float | None = None, rows: Sequence[tuple[str, bool, bool]] = MANIDP_ABLATION,
                   ) -> list[SuiteRun]:
    """The ManiDP `rows` (default the four of the ablation), `epochs` (E + F - P) each from this seed's
    `pretrain`, at lr * `lr_scale`."""
    runs, tuned = [], finetune_base(base, lr_scale)
    for label, complexity, similarity in rows:
        key = _key(f"{METHOD_FACTS[MANIDP].short}-{label}", seed)
        method = _method(MANIDP, {"complexity": complexity, "similarity": similarity}, settings)
        config = _run_config(tuned, suite_id, f"{prefix}-{key}", method, epochs, seed)
        runs.append(SuiteRun(key, config, _key("pretrain", seed)))
    return runs


def _control_runs(base: RunConfig, suite_id: str, prefix: str, parent: SuiteRun, budget: Budget,
                  seed: int | None, settings: MethodSettings | None) -> list[SuiteRun]:
    """The controls of one run of the suite (its `parent`, E + F epochs in all), each E + F too: of a slimming
    run, random channels at its counts (F fine-tune epochs after its E sparsity epochs) and its architecture
    from scratch; of a ManiDP run, a static network of its mean MACs per image from scratch."""
    stem = parent.key if seed is None else parent.key.removesuffix(f"-s{seed}")
    runs = []
    if parent.config.method.name == SLIMMING:
        key = _key(f"{METHOD_FACTS[RANDOM].short}-{stem}", seed)
        method = _method(RANDOM, {"finetune_epochs": budget.finetune}, settings)
        runs.append(SuiteRun(key, _run_config(base, suite_id, f"{prefix}-{key}", method, budget.epochs, seed),
                             parent.key))
    key = _key(f"{METHOD_FACTS[SCRATCH].short}-{stem}", seed)
    method = _method(SCRATCH, {}, settings)
    runs.append(SuiteRun(key, _run_config(base, suite_id, f"{prefix}-{key}", method, budget.total, seed),
                         parent.key))
    return runs


def _check_manidp_phase(pretrain_epochs: int | None, lr_scale: float | None, manidp: bool, suite: str) -> None:
    """Refuse --pretrain-epochs and --manidp-lr-scale for a suite without ManiDP runs, and a scale outside
    the limit LR_SCALE_LIMIT."""
    if pretrain_epochs is not None and not manidp:
        raise ValueError(f"--pretrain-epochs sets the ManiDP runs' parent, and {suite} has none")
    if lr_scale is None:
        return
    if not manidp:
        raise ValueError(f"--manidp-lr-scale sets the ManiDP runs' learning rate, and {suite} has none")
    check_manidp_lr_scale(lr_scale)


def check_manidp_lr_scale(lr_scale: float) -> float:
    """`lr_scale` when it lies within LR_SCALE_LIMIT (above 0, at most 4); else ValueError naming the range."""
    return float(LR_SCALE_LIMIT.check(lr_scale))


def _suite(name: str, base: RunConfig | None, epochs: int | None, finetune_epochs: int | None, seeds: int,
           slimming: bool, manidp: bool, settings: MethodSettings | None = None,
           lambdas: Sequence[float] | None = None, pretrain_epochs: int | None = None,
           manidp_lr_scale: float | None = None, controls: bool = False) -> Suite:
    """Per seed: the equal-budget baseline (E + F), slimming (E + F) at each lambda, pretrain (P) and
    ManiDP (E + F - P). With `controls`: slimming at CONTROLS_LAMBDAS unless given, only ManiDP's row with both
    terms, and after each slimming or ManiDP run its controls (`_control_runs`, E + F each)."""
    _check_settings(settings, [SLIMMING] * slimming + [MANIDP] * manidp + [RANDOM, SCRATCH] * controls, name)
    if lambdas is not None and not slimming:
        raise ValueError(f"--lambdas sets the slimming runs, and suite {name} has none")
    _check_manidp_phase(pretrain_epochs, manidp_lr_scale, manidp, f"suite {name}")
    lambdas = slimming_lambdas(CONTROLS_LAMBDAS if controls and lambdas is None else lambdas)
    base = base or RunConfig()
    budget = suite_budget(epochs, finetune_epochs, pretrain_epochs)
    suite_id = _suite_id(name)
    runs: list[SuiteRun] = []

    def with_controls(parents: list[SuiteRun], seed: int | None) -> list[SuiteRun]:
        if not controls:
            return parents
        return [run for parent in parents
                for run in (parent, *_control_runs(base, suite_id, name, parent, budget, seed, settings))]

    for seed in _seeds(seeds):
        runs.append(_baseline(base, suite_id, name, budget.total, seed))
        if slimming:
            runs.extend(with_controls(_slimming_runs(base, suite_id, name, budget.epochs, budget.finetune, seed,
                                                     settings, lambdas), seed))
        if manidp:
            runs.append(_baseline(base, suite_id, name, budget.pretrain, seed, label="pretrain"))
            rows = MANIDP_ABLATION[-1:] if controls else MANIDP_ABLATION
            runs.extend(with_controls(_ablation_runs(base, suite_id, name, budget.manidp, seed, settings,
                                                     manidp_lr_scale, rows), seed))
    return Suite(name, suite_id, tuple(runs))


def demo_suite(base: RunConfig | None = None, epochs: int | None = None,
               finetune_epochs: int | None = None, seeds: int = 1,
               method_settings: MethodSettings | None = None,
               lambdas: Sequence[float] | None = None, pretrain_epochs: int | None = None,
               manidp_lr_scale: float | None = None) -> Suite:
    """Baseline, slimming at `lambdas` (default SLIMMING_LAMBDAS) and the four-row ManiDP ablation, at
    equal budgets."""
    return _suite("demo", base, epochs, finetune_epochs, seeds, slimming=True, manidp=True,
                  settings=method_settings, lambdas=lambdas, pretrain_epochs=pretrain_epochs,
                  manidp_lr_scale=manidp_lr_scale)


def slimming_suite(base: RunConfig | None = None, epochs: int | None = None,
                   finetune_epochs: int | None = None, seeds: int = 1,
                   method_settings: MethodSettings | None = None,
                   lambdas: Sequence[float] | None = None, pretrain_epochs: int | None = None,
                   manidp_lr_scale: float | None = None) -> Suite:
    """Baseline and Network Slimming at `lambdas` (default SLIMMING_LAMBDAS: the gamma-distribution
    comparison)."""
    return _suite(SLIMMING, base, epochs, finetune_epochs, seeds, slimming=True, manidp=False,
                  settings=method_settings, lambdas=lambdas, pretrain_epochs=pretrain_epochs,
                  manidp_lr_scale=manidp_lr_scale)


def ablation_suite(base: RunConfig | None = None, epochs: int | None = None,
                   finetune_epochs: int | None = None, seeds: int = 1,
                   method_settings: MethodSettings | None = None,
                   lambdas: Sequence[float] | None = None, pretrain_epochs: int | None = None,
                   manidp_lr_scale: float | None = None) -> Suite:
    """Baseline, pretrain and the ManiDP ablation: neither term, complexity only, similarity only, both
    (no slimming runs: `lambdas` must be None)."""
    return _suite("ablation", base, epochs, finetune_epochs, seeds, slimming=False, manidp=True,
                  settings=method_settings, lambdas=lambdas, pretrain_epochs=pretrain_epochs,
                  manidp_lr_scale=manidp_lr_scale)


def controls_suite(base: RunConfig | None = None, epochs: int | None = None,
                   finetune_epochs: int | None = None, seeds: int = 1,
                   method_settings: MethodSettings | None = None,
                   lambdas: Sequence[float] | None = None, pretrain_epochs: int | None = None,
                   manidp_lr_scale: float | None = None) -> Suite:
    """The controls a skeptic asks for, per seed and every run E + F epochs in all: the baseline; slimming at
    `lambdas` (default CONTROLS_LAMBDAS), each with random channels at its per-layer counts and its architecture
    trained from scratch; pretrain (P) and ManiDP with both terms (E + F - P), with a static network of its mean
    MACs per image trained from scratch."""
    return _suite("controls", base, epochs, finetune_epochs, seeds, slimming=True, manidp=True,
                  settings=method_settings, lambdas=lambdas, pretrain_epochs=pretrain_epochs,
                  manidp_lr_scale=manidp_lr_scale, controls=True)


SuiteBuilder = Callable[..., Suite]
SUITES: dict[str, SuiteBuilder] = {"demo": demo_suite, "slimming": slimming_suite, "ablation": ablation_suite,
                                   "controls": controls_suite}


def build_suite(name: str, base: RunConfig | None = None, epochs: int | None = None,
                finetune_epochs: int | None = None, seeds: int = 1,
                method_settings: MethodSettings | None = None, lambdas: Sequence[float] | None = None,
                pretrain_epochs: int | None = None, manidp_lr_scale: float | None = None) -> Suite:
    """A registered suite by name (`lambdas`: its slimming runs' lambdas, default SLIMMING_LAMBDAS;
    `pretrain_epochs`: P, its ManiDP runs' parent, default E; `manidp_lr_scale`: the ManiDP runs' lr over the
    baseline's, default MANIDP_LR_SCALE); raises ValueError listing the allowed names."""
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; allowed: {', '.join([*SUITES, 'sweep'])}")
    return SUITES[name](base, epochs, finetune_epochs, seeds, method_settings, lambdas, pretrain_epochs,
                        manidp_lr_scale)


def resolve_param(param: str) -> str:
    """Canonical sweep parameter name ('lambda' -> 'sparsity_lambda', 'gamma' -> 'gamma_sim', ...)."""
    name = PARAM_ALIASES.get(param, param)
    if name not in SWEEP_PARAMS:
        allowed = ", ".join([*SWEEP_PARAMS, *PARAM_ALIASES])
        raise ValueError(f"unknown sweep parameter {param!r}; allowed: {allowed}")
    return name


def sweep(method: str | None, param: str, values: Sequence[float], base_config: RunConfig | None = None,
          epochs: int | None = None, finetune_epochs: int | None = None,
          baseline: bool | None = None, seeds: int = 1, method_settings: MethodSettings | None = None,
          pretrain_epochs: int | None = None, manidp_lr_scale: float | None = None) -> Suite:
    """One run per value of `param` (a field of the method's config) and seed, the rest from `base_config`
    (and `method_settings` for the method's other fields).

    `method` may be None (inferred from the parameter). Budgets as in the module docstring: ManiDP
    sweeps add `pretrain` (P epochs, default E: the parent of every swept run, which trains E + F - P) and an
    equal-budget `baseline` (E + F) unless `baseline=False`; `baseline=True` adds one to slimming sweeps.
    """
    param = resolve_param(param)
    owner = SWEEP_PARAMS[param].method
    method = method or owner
    if method != owner:
        allowed = ", ".join(p.name for p in SWEEP_PARAMS.values() if p.method == method) or "none"
        raise ValueError(f"parameter {param!r} does not apply to method {method!r}; "
                         f"{method} sweeps: {allowed}")
    if not values:
        raise ValueError("a sweep needs at least one value")
    SWEEP_VALUES.check(len(values), "the number of sweep values (--values)")
    if not all(math.isfinite(float(value)) for value in values):
        raise ValueError(f"sweep values must be finite numbers, got {list(values)}")
    if len(set(values)) != len(values):
        raise ValueError(f"sweep values repeat: {list(values)}")
    _check_settings(method_settings, [method], f"sweep over {param}")
    _check_manidp_phase(pretrain_epochs, manidp_lr_scale, method == MANIDP, f"a {method} sweep")
    base = base_config or RunConfig()
    budget = suite_budget(epochs, finetune_epochs, pretrain_epochs)
    short = METHOD_FACTS[method].short
    name = f"sweep-{short}-{param}"
    suite_id = _suite_id(name)
    prefix = f"sweep-{short}"
    with_baseline = (method == MANIDP) if baseline is None else baseline
    runs: list[SuiteRun] = []
    for seed in _seeds(seeds):
        if with_baseline:
            runs.append(_baseline(base, suite_id, prefix, budget.total, seed))
        parent = _key("pretrain", seed) if method == MANIDP else None
        if parent is not None:
            runs.append(_baseline(base, suite_id, prefix, budget.pretrain, seed, label="pretrain"))
        swept_base = finetune_base(base, manidp_lr_scale) if parent else base
        for value in values:
            key = _key(_swept_key(param, value), seed)
            fixed: dict[str, Any] = {param: value}
            if method == SLIMMING:
                fixed["finetune_epochs"] = budget.finetune
            config = _run_config(swept_base, suite_id, f"sweep-{key}", _method(method, fixed, method_settings),
                                 budget.manidp if parent else budget.epochs, seed)
            runs.append(SuiteRun(key, config, parent))
    return Suite(name, suite_id, tuple(runs))


def parse_values(text: str, flag: str = "--values") -> list[float]:
    """'0,1e-4,1e-3' -> [0.0, 0.0001, 0.001]; raises ValueError naming `flag` and the bad item."""
    values = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            value = float(item)
        except ValueError:
            raise ValueError(f"{flag}: {item!r} is not a number; "
                             "give a comma-separated list like 0,1e-4,1e-3") from None
        if not math.isfinite(value):
            raise ValueError(f"{flag}: {item!r} is not a finite number; "
                             "give a comma-separated list like 0,1e-4,1e-3")
        values.append(value)
    if not values:
        raise ValueError(f"{flag} is empty; give a comma-separated list like 0,1e-4,1e-3")
    return values

"""Experiment suites: named sets of runs submitted together (`JobManager.submit_suite`).

A `Suite` is an ordered list of `SuiteRun`s sharing one `DataConfig` (so the job manager loads the
dataset once) and one suite id (`RunConfig.suite`). A run may start from another run's final model
(`init_from`, ManiDP only: the gates are trained on top of a converged baseline, as in the paper);
the job manager then runs it after that run is `done`.

Registered suites (`SUITES`):
- `demo`: baseline; Network Slimming at lambda 0, 1e-4 and 1e-3; the ManiDP ablation (neither term,
  complexity only, similarity only, both), the four ManiDP runs initialised from the suite's baseline.
- `slimming`: baseline + the three slimming runs; `ablation`: baseline + the four ManiDP runs.
`sweep(method, param, values)` builds a one-parameter sweep (lambda, prune ratio, lambda', gamma,
target density).

Default length (`DEMO_EPOCHS` = 3, `DEMO_FINETUNE_EPOCHS` = 2): with E training and F fine-tune
epochs the demo trains E (baseline) + 3 * (E + F) (slimming) + 4 * E (ManiDP) epochs. On `shapes`
(10k/2k images, the default vgg11 at width 0.25) the fastest epochs seen on the 2-core CPU were
~14 s for a dense epoch, ~7 s for a fine-tune epoch of the pruned model and ~18 s for a ManiDP epoch;
with ~1-5 s of pruning/artefacts per run and ~3 s of data generation that puts E = 3, F = 2 at about
7.5-8 minutes on an idle machine. Measured once end to end (`python -m prunelab suite demo`): all 8
runs done in 19 min wall, but with other jobs holding the machine at a load average of 6-9, so
that figure is an upper bound, not the idle time. E = 4 (~9.9 min) would leave no margin.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from prunelab.config import RunConfig, describe_validation_error

DEMO_EPOCHS = 3
DEMO_FINETUNE_EPOCHS = 2
SLIMMING_LAMBDAS = (0.0, 1e-4, 1e-3)
# ManiDP runs that start from the suite's baseline fine-tune it: the reference schedule uses lr 0.05 with
# Nesterov momentum from a pretrained model, half the from-scratch lr 0.1 (at the full lr 0.1 the gated
# runs diverged to NaN on shapes after one epoch)
MANIDP_LR_SCALE = 0.5
# (label, complexity term, similarity term): the ManiDP paper's ablation rows
MANIDP_ABLATION = (("neither", False, False), ("complexity", True, False),
                   ("similarity", False, True), ("both", True, True))

# sweepable parameter -> (method, short label used in run names)
SWEEP_PARAMS: dict[str, tuple[str, str]] = {
    "sparsity_lambda": ("slimming", "l"),
    "prune_ratio": ("slimming", "r"),
    "lambda_prime": ("manidp", "lp"),
    "gamma_sim": ("manidp", "g"),
    "target_density": ("manidp", "d"),
}
PARAM_ALIASES = {"lambda": "sparsity_lambda", "ratio": "prune_ratio", "lambda'": "lambda_prime",
                 "gamma": "gamma_sim", "density": "target_density"}
METHOD_LABELS = {"baseline": "baseline", "slimming": "slim", "manidp": "manidp"}


@dataclass(frozen=True)
class SuiteRun:
    """One run of a suite; `init_from` names the `key` of the run whose final model initialises it."""

    key: str
    config: RunConfig
    init_from: str | None = None

    def with_init_from(self, run_dir: str) -> RunConfig:
        """This run's config with `method.init_from` set to the parent run's directory."""
        raw = self.config.model_dump(mode="json")
        raw["method"]["init_from"] = run_dir
        return RunConfig.model_validate(raw)


@dataclass(frozen=True)
class Suite:
    name: str
    suite_id: str
    runs: tuple[SuiteRun, ...]

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


def _suite_id(name: str) -> str:
    return f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def _run_config(base: RunConfig, suite_id: str, name: str, method: dict[str, Any],
                epochs: int | None) -> RunConfig:
    """`base`'s data, model and training settings with another method, name and suite id."""
    raw = base.model_dump(mode="json")
    raw.update(name=name, suite=suite_id, method=method)
    if epochs is not None:
        raw["train"]["epochs"] = epochs
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as error:
        raise ValueError(f"{name}: {describe_validation_error(error)}") from None


def _lengths(epochs: int | None, finetune_epochs: int | None) -> tuple[int, int]:
    """(training epochs, slimming fine-tune epochs): defaults, or half the given epochs for fine-tuning."""
    if epochs is None:
        return DEMO_EPOCHS, DEMO_FINETUNE_EPOCHS if finetune_epochs is None else finetune_epochs
    return epochs, max(1, round(epochs / 2)) if finetune_epochs is None else finetune_epochs


def _baseline(base: RunConfig, suite_id: str, prefix: str, epochs: int) -> SuiteRun:
    config = _run_config(base, suite_id, f"{prefix}-baseline", {"name": "baseline"}, epochs)
    return SuiteRun("baseline", config)


def _slimming_runs(base: RunConfig, suite_id: str, prefix: str, epochs: int, finetune: int) -> list[SuiteRun]:
    runs = []
    for lam in SLIMMING_LAMBDAS:
        key = f"slim-l{format_value(lam)}"
        method = {"name": "slimming", "sparsity_lambda": lam, "finetune_epochs": finetune}
        runs.append(SuiteRun(key, _run_config(base, suite_id, f"{prefix}-{key}", method, epochs)))
    return runs


def finetune_base(base: RunConfig) -> RunConfig:
    """`base` with the training settings of a run that fine-tunes a baseline (lr * 0.5, Nesterov)."""
    raw = base.model_dump(mode="json")
    raw["train"].update(lr=base.train.lr * MANIDP_LR_SCALE, nesterov=True)
    return RunConfig.model_validate(raw)


def _ablation_runs(base: RunConfig, suite_id: str, prefix: str, epochs: int) -> list[SuiteRun]:
    runs, tuned = [], finetune_base(base)
    for label, complexity, similarity in MANIDP_ABLATION:
        key = f"manidp-{label}"
        method = {"name": "manidp", "complexity": complexity, "similarity": similarity}
        config = _run_config(tuned, suite_id, f"{prefix}-{key}", method, epochs)
        runs.append(SuiteRun(key, config, "baseline"))
    return runs


def demo_suite(base: RunConfig | None = None, epochs: int | None = None,
               finetune_epochs: int | None = None) -> Suite:
    """Baseline, slimming at lambda 0/1e-4/1e-3 and the four-row ManiDP ablation (from the baseline)."""
    base = base or RunConfig()
    epochs, finetune = _lengths(epochs, finetune_epochs)
    suite_id = _suite_id("demo")
    runs = [_baseline(base, suite_id, "demo", epochs),
            *_slimming_runs(base, suite_id, "demo", epochs, finetune),
            *_ablation_runs(base, suite_id, "demo", epochs)]
    return Suite("demo", suite_id, tuple(runs))


def slimming_suite(base: RunConfig | None = None, epochs: int | None = None,
                   finetune_epochs: int | None = None) -> Suite:
    """Baseline and Network Slimming at lambda 0, 1e-4 and 1e-3 (the gamma-distribution comparison)."""
    base = base or RunConfig()
    epochs, finetune = _lengths(epochs, finetune_epochs)
    suite_id = _suite_id("slimming")
    runs = [_baseline(base, suite_id, "slimming", epochs),
            *_slimming_runs(base, suite_id, "slimming", epochs, finetune)]
    return Suite("slimming", suite_id, tuple(runs))


def ablation_suite(base: RunConfig | None = None, epochs: int | None = None,
                   finetune_epochs: int | None = None) -> Suite:
    """Baseline and the ManiDP ablation: neither term, complexity only, similarity only, both."""
    base = base or RunConfig()
    epochs, _ = _lengths(epochs, finetune_epochs)
    suite_id = _suite_id("ablation")
    runs = [_baseline(base, suite_id, "ablation", epochs),
            *_ablation_runs(base, suite_id, "ablation", epochs)]
    return Suite("ablation", suite_id, tuple(runs))


SuiteBuilder = Callable[..., Suite]
SUITES: dict[str, SuiteBuilder] = {"demo": demo_suite, "slimming": slimming_suite, "ablation": ablation_suite}


def build_suite(name: str, base: RunConfig | None = None, epochs: int | None = None,
                finetune_epochs: int | None = None) -> Suite:
    """A registered suite by name; raises ValueError listing the allowed names."""
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; allowed: {', '.join([*SUITES, 'sweep'])}")
    return SUITES[name](base, epochs, finetune_epochs)


def resolve_param(param: str) -> str:
    """Canonical sweep parameter name ('lambda' -> 'sparsity_lambda', 'gamma' -> 'gamma_sim', ...)."""
    name = PARAM_ALIASES.get(param, param)
    if name not in SWEEP_PARAMS:
        allowed = ", ".join([*SWEEP_PARAMS, *PARAM_ALIASES])
        raise ValueError(f"unknown sweep parameter {param!r}; allowed: {allowed}")
    return name


def sweep(method: str | None, param: str, values: Sequence[float], base_config: RunConfig | None = None,
          epochs: int | None = None, finetune_epochs: int | None = None,
          baseline: bool | None = None) -> Suite:
    """One run per value of `param` (a field of the method's config), everything else from `base_config`.

    `method` may be None (inferred from the parameter). ManiDP sweeps add a baseline run (default)
    that every swept run starts from; `baseline=True` adds one to slimming sweeps for comparison.
    """
    param = resolve_param(param)
    owner, label = SWEEP_PARAMS[param]
    method = method or owner
    if method != owner:
        allowed = ", ".join(p for p, (m, _) in SWEEP_PARAMS.items() if m == method) or "none"
        raise ValueError(f"parameter {param!r} does not apply to method {method!r}; "
                         f"{method} sweeps: {allowed}")
    if not values:
        raise ValueError("a sweep needs at least one value")
    if not all(math.isfinite(float(value)) for value in values):
        raise ValueError(f"sweep values must be finite numbers, got {list(values)}")
    if len(set(values)) != len(values):
        raise ValueError(f"sweep values repeat: {list(values)}")
    base = base_config or RunConfig()
    epochs, finetune = _lengths(epochs, finetune_epochs)
    name = f"sweep-{METHOD_LABELS[method]}-{param}"
    suite_id = _suite_id(name)
    prefix = f"sweep-{METHOD_LABELS[method]}"
    with_baseline = (method == "manidp") if baseline is None else baseline
    runs = [_baseline(base, suite_id, prefix, epochs)] if with_baseline else []
    parent = "baseline" if with_baseline and method == "manidp" else None
    swept_base = finetune_base(base) if parent else base
    for value in values:
        key = f"{METHOD_LABELS[method]}-{label}{format_value(float(value))}"
        settings: dict[str, Any] = {"name": method, param: value}
        if method == "slimming":
            settings["finetune_epochs"] = finetune
        config = _run_config(swept_base, suite_id, f"sweep-{key}", settings, epochs)
        runs.append(SuiteRun(key, config, parent))
    return Suite(name, suite_id, tuple(runs))


def parse_values(text: str) -> list[float]:
    """'0,1e-4,1e-3' -> [0.0, 0.0001, 0.001]; raises ValueError naming the bad item."""
    values = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            value = float(item)
        except ValueError:
            raise ValueError(f"--values: {item!r} is not a number; "
                             "give a comma-separated list like 0,1e-4,1e-3") from None
        if not math.isfinite(value):
            raise ValueError(f"--values: {item!r} is not a finite number; "
                             "give a comma-separated list like 0,1e-4,1e-3")
        values.append(value)
    if not values:
        raise ValueError("--values is empty; give a comma-separated list like 0,1e-4,1e-3")
    return values

"""Every upper limit on a number a user gives PruneLab, with its reason.

The counts of scheduling are stated here, one `Limit` each: runs trained at once, seeds, sweep values and
runs per suite, a suite's epochs, the ManiDP runs' lr scale, the rows of `jobs`, a Ray task's CPU and GPU
share. The run settings' bounds are the config fields' (`prunelab.config` and each method's `config.py`:
pydantic `ge`/`gt`/`le`/`lt`, the reason in the field's description); `config_limits()` reads them from
there, without repeating a number. The CLI (exit status 2, one line), the app's widgets (`max_value=`) and
the core (`JobManager`, the suite builders, the Ray runner: ValueError) all check against these, and
README.md's list of limits is generated from `every_limit()` (scripts/readme_limits.py). No torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

from pydantic import BaseModel

from prunelab.config import (
    MAX_EPOCHS,
    METHOD_CONFIGS,
    DataConfig,
    ModelConfig,
    TrainConfig,
    field_constraints,
)

Number = int | float


def format_number(value: Number) -> str:
    """4096 -> '4,096', 0.5 -> '0.5', 4.0 -> '4': a limit or a value as messages and the README show it."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


@dataclass(frozen=True)
class Limit:
    """The range a number must lie in: `low` (None: no lower bound) to `high`, either end open or closed.

    `name` is how a user gives it (a CLI flag, or what it counts), `what` says what it is, and `reason` why
    the limit is where it is."""

    name: str
    what: str
    low: Number | None
    high: Number
    reason: str
    low_open: bool = False
    high_open: bool = False

    def allowed(self) -> str:
        """'between 1 and 64', 'above 0 and at most 1,024', 'at least 0 and below 1', 'at most 4'."""
        high = f"{'below' if self.high_open else 'at most'} {format_number(self.high)}"
        if self.low is None:
            return high
        low = format_number(self.low)
        if not self.low_open and not self.high_open:
            return f"between {low} and {format_number(self.high)}"
        return f"{'above' if self.low_open else 'at least'} {low} and {high}"

    def contains(self, value: Number) -> bool:
        """Whether `value` lies within the limit (nan never does)."""
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = value < self.high if self.high_open else value <= self.high
        return bool(above and below)

    def refusal(self, value: Number, name: str | None = None) -> str:
        """'--max-concurrent must be between 1 and 64 (why), got 100,000': the one line that refuses `value`."""
        return f"{name or self.name} must be {self.allowed()} ({self.reason}), got {format_number(value)}"

    def check(self, value: Number, name: str | None = None) -> Any:
        """`value` when it lies within the limit; else ValueError naming the limit (`name`: as the caller calls
        the number, default `self.name`), its range and its reason."""
        if not self.contains(value):
            raise ValueError(self.refusal(value, name))
        return value


# -- the counts of scheduling ---------------------------------------------------------------------------------

MAX_CONCURRENT = Limit(
    "--max-concurrent", "runs the local backend trains at once", 1, 64,
    "each is a worker thread of one process, and torch spreads a single run over every core already: past 64 "
    "runs at once nothing is gained and the threads exhaust the OS")
SEEDS = Limit(
    "--seeds", "seeds of a suite", 1, 10,
    "each seed repeats every run of the suite; 10 give the mean and spread the lessons compare, with room to spare")
SWEEP_VALUES = Limit(
    "--values, --lambdas", "values of a sweep, or slimming lambdas of a suite", 1, 100,
    "each value is one run per seed; 100 points resolve any curve, and a longer list is likelier a slip than a "
    "plan: split a finer grid into several suites")
SUITE_RUNS = Limit(
    "runs in a suite", "runs one suite creates and queues at once (presets and sweeps, every seed)", 1, 500,
    "every run's directory is made and queued at once, and 500 runs, 10 seeds of a 48-value sweep, keep a CPU "
    "busy for hours even at the demo's size: split a larger study into several suites")
SUITE_EPOCHS = Limit(
    "--epochs + --finetune-epochs", "epochs of every compared run of a suite, E + F", 2, MAX_EPOCHS,
    f"the baseline trains E + F epochs in one run, and train.epochs is at most {format_number(MAX_EPOCHS)}; "
    "--pretrain-epochs P lies between 1 and E + F - 1, so that every ManiDP run trains an epoch")
MANIDP_LR_SCALE = Limit(
    "--manidp-lr-scale", "the ManiDP runs' learning rate over the baseline's", 0, 4.0,
    "0.5 is the paper's for fine-tuning a converged parent and 1.0 suits a short one; 4 leaves room to search, "
    "and the learning rate itself stays within train.lr's bound", low_open=True)
JOBS_RECENT = Limit(
    "--recent", "finished runs the jobs table lists beside the active ones", 0, 10_000,
    "a longer table is not read on a terminal; `list` shows every run")
RAY_NUM_CPUS = Limit(
    "--num-cpus", "CPUs of each run's Ray task", 0, 1024.0,
    "one run's share of a node: torch uses at most a node's cores, and no node has more than 1,024",
    low_open=True)
RAY_NUM_GPUS = Limit(
    "--num-gpus", "GPUs of each run's Ray task (fractions share a GPU; above 1, whole numbers: Ray's rule)", 0, 64.0,
    "a run trains on one GPU, so a larger share only holds a node's others idle; no node has more than 64")

SCHEDULING_LIMITS: tuple[Limit, ...] = (MAX_CONCURRENT, SEEDS, SWEEP_VALUES, SUITE_RUNS, SUITE_EPOCHS,
                                        MANIDP_LR_SCALE, JOBS_RECENT, RAY_NUM_CPUS, RAY_NUM_GPUS)


# -- the run settings' bounds, read from the config classes ------------------------------------------------------

def _is_number(info: Any) -> bool:
    """An int or float field (`| None` allowed), not a bool."""
    types = [t for t in (get_args(info.annotation) or (info.annotation,)) if t is not type(None)]
    return bool(types) and types[0] in (int, float)


def field_limit(model: type[BaseModel], field: str, name: str) -> Limit:
    """The limit of a numeric config field, from its constraints and description (its reason); ValueError when
    the field has no upper bound."""
    info = model.model_fields[field]
    rules = field_constraints(model, field)
    if "le" not in rules and "lt" not in rules:
        raise ValueError(f"{name} has no upper limit; give the field le= or lt= and say why in its description")
    return Limit(name, info.title or field, rules.get("ge", rules.get("gt")), rules.get("le", rules.get("lt")),
                 info.description or "", low_open="gt" in rules, high_open="lt" in rules)


def config_limits() -> list[Limit]:
    """Every numeric field of a run's config, named `section.field` (`<method>.field` for a method's), with the
    range its constraints give and its description as the reason: data, model, training, then each method's."""
    sections: list[tuple[str, type[BaseModel]]] = [("data", DataConfig), ("model", ModelConfig),
                                                   ("train", TrainConfig), *METHOD_CONFIGS.items()]
    return [field_limit(model, field, f"{section}.{field}") for section, model in sections
            for field, info in model.model_fields.items() if _is_number(info)]


def every_limit() -> list[Limit]:
    """The run settings' limits, then the counts of scheduling: what README.md lists."""
    return [*config_limits(), *SCHEDULING_LIMITS]

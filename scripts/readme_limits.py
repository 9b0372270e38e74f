"""Write README.md's list of limits from where the limits are stated, so that it never goes stale.

The section between `<!-- limits:start -->` and `<!-- limits:end -->` lists every limit of
`prunelab.scheduling.limits.every_limit()`: the run settings' bounds, read from the config classes (their
pydantic constraints, the reason in each field's description), then the counts of scheduling (runs at once,
seeds, sweep values, runs per suite, Ray shares, ...), each with its range and its reason.
tests/test_readme_limits.py fails when README.md's section differs from what this script writes:

    python scripts/readme_limits.py          # rewrite the section in README.md
    python scripts/readme_limits.py --check  # exit 1 when it is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prunelab.cli.args import COMMON_FLAGS  # noqa: E402
from prunelab.config import METHOD_PARAMS  # noqa: E402
from prunelab.scheduling.limits import SCHEDULING_LIMITS, Limit, config_limits  # noqa: E402

README = ROOT / "README.md"
START, END = "<!-- limits:start -->", "<!-- limits:end -->"


def config_flag(name: str) -> str | None:
    """The CLI flag of a config field named `section.field` ('train.batch_size' -> '--batch-size'), None when
    no flag sets it."""
    section, field = name.split(".")
    if section in METHOD_PARAMS:
        return METHOD_PARAMS[section][field].cli_flag
    flags = [dest for dest, where in COMMON_FLAGS.items() if where == (section, field)]
    return f"--{flags[0].replace('_', '-')}" if flags else None


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text.endswith(".") else f"{text}."


def config_item(limit: Limit) -> str:
    flag = config_flag(limit.name)
    given = f"`{flag}` (`{limit.name}`)" if flag else f"`{limit.name}` (no flag: a config field)"
    return f"- {given}: {limit.allowed()}. {_sentence(limit.reason)}"


def scheduling_item(limit: Limit) -> str:
    given = ", ".join(f"`{name}`" for name in limit.name.split(", ")) if limit.name.startswith("--") else limit.name
    return f"- {given}, {limit.what}: {limit.allowed()}. Why: {_sentence(limit.reason)}"


def section() -> str:
    """The generated lines between the markers (the markers excluded)."""
    return "\n".join([
        "<!-- written by scripts/readme_limits.py from prunelab/scheduling/limits.py and the config classes; "
        "edit those, then run it -->",
        "A run's settings (`RunConfig`: the same bounds in `run`, in `suite` and in the app's run form; each "
        "field's description says why):",
        "",
        *(config_item(limit) for limit in config_limits()),
        "",
        "Suites, jobs and Ray (`prunelab/scheduling/limits.py`: the CLI, the app's suite form and the core's "
        "`JobManager`, suite builders and Ray runner refuse the same):",
        "",
        *(scheduling_item(limit) for limit in SCHEDULING_LIMITS),
    ])


def rewritten(text: str) -> str:
    """`text` (README.md) with its limits section replaced by `section()`; ValueError without the markers."""
    head, start, rest = text.partition(START)
    _, end, tail = rest.partition(END)
    if not start or not end:
        raise ValueError(f"README.md has no {START} ... {END} section")
    return f"{head}{START}\n{section()}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when README.md's section is stale")
    args = parser.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    new = rewritten(text)
    if args.check:
        if new != text:
            print("README.md's list of limits is stale: run python scripts/readme_limits.py", file=sys.stderr)
            return 1
        return 0
    if new != text:
        README.write_text(new, encoding="utf-8")
        print("README.md: list of limits rewritten")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""README.md's list of limits is what scripts/readme_limits.py writes from prunelab.scheduling.limits and the
config classes, so it names every limit and never goes stale."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from prunelab.scheduling.limits import SCHEDULING_LIMITS, every_limit, format_number

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from readme_limits import END, START, main, rewritten, section  # noqa: E402


def test_readme_section_is_what_the_script_writes() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert text.count(START) == 1 and text.count(END) == 1
    assert rewritten(text) == text, "README.md's list of limits is stale: run python scripts/readme_limits.py"
    assert main(["--check"]) == 0


def test_the_section_names_every_limit_with_its_range_and_reason() -> None:
    items = [line for line in section().splitlines() if line.startswith("- ")]
    limits = every_limit()
    assert len(items) == len(limits)
    for item, limit in zip(items, limits, strict=True):  # one item a limit, in the same order
        assert limit.allowed() in item and limit.reason.strip().rstrip(".") in item, limit.name
    assert any(item.startswith("- `--batch-size` (`train.batch_size`): between 1 and 4,096. ") for item in items)
    assert f"- `--train-size` (`data.train_size`): between 10 and {format_number(2_000_000)}." in items[0]
    assert items[-len(SCHEDULING_LIMITS)].startswith("- `--max-concurrent`, runs the local backend trains at once: "
                                                      "between 1 and 64. Why: ")
    assert "- `--values`, `--lambdas`, values of a sweep" in section()


def test_rewriting_replaces_only_the_marked_section() -> None:
    text = f"intro\n{START}\nold list\n{END}\nrest\n"
    assert rewritten(text) == f"intro\n{START}\n{section()}\n{END}\nrest\n"
    with pytest.raises(ValueError, match="no <!-- limits:start -->"):
        rewritten("no markers")

"""The test tiers hold: `slow`, `ray` and `browser` are registered, every test module that drives a browser is
marked `browser` and `slow`, every module that uses Ray is marked `ray`, and every test that starts a local
Ray instance is marked `slow`, so no such test slips into the quick tier (`-m "not slow"`) unmarked.

Read from the test files' source with `ast`, like tests/test_architecture.py."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
MODULES = sorted(path for path in TESTS.rglob("*.py") if path != Path(__file__).resolve())
# a browser: Playwright; Ray: the Ray backend or a Ray instance of the test's own
BROWSER = re.compile(r"\bplaywright\b")
# (an import or a call, not a module name quoted in a string, as the import-graph tests do)
RAY = re.compile(r"\bray\.init\(|^\s*import ray\b|^\s*from prunelab(\.ray_backend\b| import ray_backend\b)|"
                 r"\bray_backend\.|RaySuiteRunner|\"--backend\", \"ray\"", re.M)


def marks(node: ast.AST | None) -> set[str]:
    """The names X of every `pytest.mark.X` (called or not) inside `node`."""
    return {sub.attr for sub in ast.walk(node) if isinstance(sub, ast.Attribute)
            and isinstance(sub.value, ast.Attribute) and sub.value.attr == "mark"} if node else set()


def module_marks(tree: ast.Module) -> set[str]:
    """The marks of the module's `pytestmark`."""
    return set().union(*(marks(node.value) for node in tree.body if isinstance(node, ast.Assign)
                         and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets)))


def test_the_tier_markers_are_registered_and_unknown_ones_refused() -> None:
    options = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    registered = {line.split(":")[0] for line in options["markers"]}
    assert {"slow", "ray", "browser", "gpu"} <= registered
    assert "--strict-markers" in options["addopts"]  # a misspelt marker fails instead of selecting nothing
    assert options["timeout"] > 0


def test_browser_modules_are_marked_browser_and_slow() -> None:
    browser = [path for path in MODULES if path.name.startswith("test_") and BROWSER.search(path.read_text())]
    assert browser, "no browser test found: the pattern is stale"
    for path in browser:
        assert {"browser", "slow"} <= module_marks(ast.parse(path.read_text())), path.relative_to(REPO)


def test_ray_modules_are_marked_ray_and_tests_that_start_ray_slow() -> None:
    ray = [path for path in MODULES if path.name.startswith("test_") and RAY.search(path.read_text())]
    assert ray, "no Ray test found: the pattern is stale"
    for path in ray:
        tree = ast.parse(path.read_text())
        assert "ray" in module_marks(tree), path.relative_to(REPO)
        starters = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)
                    and "ray.init(" in ast.get_source_segment(path.read_text(), node)}
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_") and \
                    starters & {arg.arg for arg in node.args.args}:
                assert "slow" in module_marks(tree).union(*map(marks, node.decorator_list)), \
                    f"{path.relative_to(REPO)}::{node.name} starts Ray but is not marked slow"

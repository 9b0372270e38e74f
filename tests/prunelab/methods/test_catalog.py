"""The one registry of methods: every package under prunelab/methods with a config.py, its config class in
RunConfig's union, its plug-in registered for that class, all readable without importing torch."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from prunelab.config import METHOD_CONFIGS, METHOD_FACTS, METHOD_NAMES, RunConfig
from prunelab.methods import METHODS, register_method
from prunelab.methods.catalog import method_packages

REPO = Path(__file__).resolve().parents[3]


def test_every_method_package_is_one_config_and_one_plugin() -> None:
    packages = {name.rpartition(".")[2] for name in method_packages()}
    assert packages == set(METHOD_NAMES) == set(METHODS)
    assert METHOD_NAMES[:3] == ("baseline", "slimming", "manidp")  # the facts' order: forms, tables, legends
    for name, cls in METHODS.items():
        assert cls.config_class is METHOD_CONFIGS[name] and cls.__module__ == f"prunelab.methods.{name}.method"
        assert RunConfig.model_validate({"method": {"name": name}}).method.__class__ is METHOD_CONFIGS[name]


def test_a_config_class_outside_the_catalog_cannot_register() -> None:
    class Stray(BaseModel):
        name: str = "stray"

    with pytest.raises(ValueError, match="not the config class of a method package"):
        register_method(Stray)


def python_says(code: str) -> str:
    """What a fresh interpreter running `code` in the repository prints (it must exit cleanly)."""
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_configs_listings_and_the_cli_import_no_torch() -> None:
    code = ("import sys, prunelab.config, prunelab.cli.main, prunelab.analysis.results, prunelab.scheduling.suites, "
            "prunelab.analysis.lessons, prunelab.methods, prunelab.methods.catalog; "
            "assert 'torch' not in sys.modules, 'torch imported'; "
            "print(prunelab.config.METHOD_NAMES)")
    assert "random" in python_says(code)


def test_the_facts_lesson_functions_live_in_their_method_package() -> None:
    """Each method's claims, run figures and formulas (`MethodFacts`) are functions of its own package's modules,
    imported on first call (`deferred`): reading the facts imports neither pandas nor the core's analysis."""
    found = {}
    for name, facts in METHOD_FACTS.items():
        for field in ("claims", "run_figures", "formulas", "controls"):
            function = getattr(facts, field)
            if function is None:
                continue
            assert function.__module__.startswith(f"prunelab.methods.{name}."), (name, field, function.__module__)
            target = getattr(importlib.import_module(function.__module__), function.__name__)
            assert callable(target) and target is not function
            found.setdefault(field, []).append(name)
    assert found == {"claims": ["slimming", "manidp", "random", "scratch"], "run_figures": ["manidp"],
                     "formulas": ["slimming", "manidp"], "controls": ["random", "scratch"]}
    python_says("import sys, prunelab.config; loaded = set(sys.modules); "
                "assert not {'pandas', 'prunelab.analysis.lessons', 'prunelab.analysis.method_card'} & loaded")


def test_a_deferred_function_imports_its_module_on_first_call() -> None:
    python_says("import sys; from prunelab.methods.spec import deferred; "
                "close = deferred('difflib', 'get_close_matches'); assert 'difflib' not in sys.modules; "
                "assert (close.__module__, close.__name__) == ('difflib', 'get_close_matches'); "
                "assert close('slim', ['slimming', 'manidp']) == ['slimming'] and 'difflib' in sys.modules")

"""The one registry of methods: every package under prunelab/methods with a config.py, its config class in
RunConfig's union, its plug-in registered for that class, all readable without importing torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from prunelab.config import METHOD_CONFIGS, METHOD_NAMES, RunConfig
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


def test_configs_listings_and_the_cli_import_no_torch() -> None:
    code = ("import sys, prunelab.config, prunelab.cli.main, prunelab.analysis.results, prunelab.scheduling.suites, "
            "prunelab.analysis.lessons, prunelab.methods, prunelab.methods.catalog; "
            "assert 'torch' not in sys.modules, 'torch imported'; "
            "print(prunelab.config.METHOD_NAMES)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "random" in result.stdout

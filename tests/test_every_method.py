"""Every registered method, end to end on a tiny run: trained, stopped mid-epoch and resumed, its final
model rebuilt by `prunelab.load_model`, its artefacts read and checked, and every page of the app rendered
on it (CPU, seconds each). Every table derived from a method's facts (flags, the run form, sweep
parameters and aliases, runs-table columns, required artefacts) covers that method's config fields."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from streamlit.testing.v1 import AppTest

import prunelab
from app_components import run_widgets
from prunelab.analysis import results, tables
from prunelab.cli.args import config_from_args, method_flags
from prunelab.cli.main import build_parser
from prunelab.config import (
    METHOD_CONFIGS,
    METHOD_FACTS,
    METHOD_NAMES,
    METHOD_PARAMS,
    PARAM_ALIASES,
    SWEEP_PARAMS,
    field_bounds,
)
from prunelab.data import load_dataset
from prunelab.methods import METHODS
from prunelab.methods.slimming.reprune import _accuracy
from prunelab.runs.artefact_checks import artefact_for, required_artefacts, run_problems
from prunelab.runs.progress import Cancelled, Progress
from prunelab.runs.run import Run
from prunelab.runs.store import RunStore
from prunelab.scheduling import suites
from prunelab.training.engine import run_training
from tests.helpers import tiny_config

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "app_pages").glob("*.py"))
TINY = {"train_size": 120, "test_size": 40, "batch_size": 30, "model": "resnet20", "width": 0.25}


def test_registry_and_config_name_the_same_methods() -> None:
    assert sorted(METHODS) == sorted(METHOD_NAMES)
    for name, cls in METHODS.items():
        assert cls.config_class is METHOD_CONFIGS[name]
        assert cls.facts is METHOD_FACTS[name] is METHOD_CONFIGS[name].facts
    shorts = [facts.short for facts in METHOD_FACTS.values()]
    labels = [facts.label for facts in METHOD_FACTS.values()]
    assert len(set(shorts)) == len(shorts) and len(set(labels)) == len(labels) and all(shorts) and all(labels)


def fields_of(method: str) -> set[str]:
    return set(METHOD_CONFIGS[method].model_fields) - {"name"}


def test_runs_table_has_a_column_for_every_method_field() -> None:
    # and the departures from the authors' code in effect, a computed field of the methods with a form
    everything = set().union(*(fields_of(method) for method in METHODS)) | {"departures"}
    assert set(results.HYPER_COLUMNS) == everything and len(results.HYPER_COLUMNS) == len(everything)
    assert not everything & set(results.BASE_COLUMNS)  # a method field never shadows a run's own column


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_field_has_facts_and_the_run_form_shows_the_marked_ones(method: str) -> None:
    params = METHOD_PARAMS[method]
    assert set(params) == fields_of(method)
    for name, facts in params.items():
        # every field has a human label of its own (its title), used by the form and the sweep picker
        assert facts.label == METHOD_CONFIGS[method].model_fields[name].title and facts.label != name
        assert facts.method == method and facts.flag.startswith("--")
    shown = run_widgets.METHOD_FIELDS[method]
    assert set(shown) == {name for name, facts in params.items() if facts.form}
    assert set(shown) <= set(tables.ABLATION_EXTRAS)  # the settings the ablation table carries
    for name in shown:  # a form widget needs a default to start from
        assert METHOD_CONFIGS[method].model_fields[name].default is not None


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_flag_reaches_its_field(method: str) -> None:
    parser = build_parser()
    fields = METHOD_CONFIGS[method].model_fields
    for dest, (flag, info) in method_flags(method).items():
        field = dest.removeprefix("no_")
        if info.annotation is bool:
            args = parser.parse_args(["run", method, flag])
            assert getattr(args, dest) is True
            assert getattr(config_from_args(method, args).method, field) is (not fields[field].default)
        else:
            assert flag == METHOD_PARAMS[method][field].flag
            assert getattr(parser.parse_args(["run", method, flag, "7"]), dest) in (7, "7")
    if method == "slimming":  # a field that names its own flag
        assert method_flags(method)["sparsity_lambda"][0] == "--lambda"


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_artefact_of_a_method_has_a_checking_reader(method: str) -> None:
    """Each file a method declares is found by its name, and a finished run must have it; a JSON file has a
    schema, an array file a check that also runs on its headers (the listings)."""
    artefacts = METHOD_FACTS[method].artefacts
    assert required_artefacts(method) == tuple(artefact.file for artefact in artefacts)
    for artefact in artefacts:
        assert artefact_for(artefact.file) is artefact
        suffix = Path(artefact.file).suffix
        assert (suffix == ".json" and artefact.schema is not None) or \
            (suffix in (".npz", ".parquet") and artefact.probe is not None), artefact.file


def sweep_values(param: str) -> list[float]:
    """Two values the parameter accepts: its default and half of it (or its upper bound when 0)."""
    facts = SWEEP_PARAMS[param]
    default = METHOD_CONFIGS[facts.method].model_fields[param].default
    assert isinstance(default, int | float) and not isinstance(default, bool)
    high = field_bounds(METHOD_CONFIGS[facts.method], param)[1]
    return [float(default), float(default) / 2] if default else [0.0, float(high or 1.0)]


@pytest.mark.parametrize("param", list(SWEEP_PARAMS))
def test_every_sweep_parameter_builds_a_sweep(param: str) -> None:
    """suites.sweep builds a suite for each sweep parameter (built, not trained): the method inferred, the
    value set on exactly that field, run names from the method's and the parameter's short labels."""
    facts, values = SWEEP_PARAMS[param], sweep_values(param)
    suite = suites.sweep(None, param, values, epochs=2, finetune_epochs=1)
    swept = [run for run in suite.runs if run.config.method.name == facts.method]
    assert [getattr(run.config.method, param) for run in swept] == values
    short = METHOD_FACTS[facts.method].short
    assert [run.key for run in swept] == [f"{short}-{facts.sweep_label}{suites.format_value(v)}" for v in values]
    assert suite.name == f"sweep-{short}-{param}"
    defaults = METHOD_CONFIGS[facts.method]()
    for run in swept:  # nothing else of the method's settings moved but the suite's budget and parent
        keep = {param, "finetune_epochs", "init_from"}
        assert run.config.method.model_dump(exclude=keep) == defaults.model_dump(exclude=keep)
    for alias in facts.aliases:
        assert suites.resolve_param(alias) == param
        assert suites.sweep(None, alias, values).run_keys() == suites.sweep(None, param, values).run_keys()
    for other in METHODS:
        if other != facts.method:
            with pytest.raises(ValueError, match="does not apply"):
                suites.sweep(other, param, values)


def test_every_alias_resolves_and_analysis_charts_the_same_parameters() -> None:
    assert PARAM_ALIASES
    for alias, name in PARAM_ALIASES.items():
        assert alias in SWEEP_PARAMS[name].aliases and suites.resolve_param(alias) == name
    runs = pd.DataFrame([{"method": facts.method, "state": "done", "test_acc": 0.5, "macs_per_image": 1.0,
                          "name": f"{param}{i}", "run_id": f"{param}{i}", "suite": None,
                          **{p: (i + 1.0 if p == param else None) for p in SWEEP_PARAMS}}
                         for param, facts in SWEEP_PARAMS.items() for i in range(2)])
    assert tables.sweepable_params(runs) == list(SWEEP_PARAMS)
    for param in SWEEP_PARAMS:
        assert tables.sweep_table(runs, param)["value"].tolist() == [1.0, 2.0]


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_field_of_a_method_config_has_a_flag(method: str) -> None:
    fields = set(METHOD_CONFIGS[method].model_fields) - {"name"}
    flags = method_flags(method)
    assert {dest.removeprefix("no_") for dest in flags} == fields
    config = config_from_args(method, build_parser().parse_args(["run", method]))
    assert config.method == METHOD_CONFIGS[method]()  # no flag given: the config class's defaults


def stop_in_second_epoch() -> Progress:
    """A Progress that cancels the run two batches into its second epoch (of two)."""
    progress = Progress()

    def listener(snap: dict[str, Any]) -> None:
        if snap.get("batch") == 2 and float(snap.get("fraction") or 0.0) > 0.5:
            progress.request_cancel()

    progress.add_listener(listener)
    return progress


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.slow
def test_method_trains_resumes_loads_and_renders(method: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRUNELAB_CACHE_DIR", str(tmp_path / "data-cache"))
    # two epochs in all (a method that fine-tunes: one of training, one of fine-tuning), four batches each
    config = (tiny_config(method, epochs=1, finetune_epochs=1, **TINY)
              if "finetune_epochs" in METHOD_CONFIGS[method].model_fields else tiny_config(method, epochs=2, **TINY))
    runs = tmp_path / "runs"
    run = RunStore(runs).create(config, method)
    with pytest.raises(Cancelled):
        run_training(config, run, stop_in_second_epoch())
    assert len(run.read_metrics()) == 1  # the first epoch's row; the second epoch was cut short
    summary = run_training(config, run, resume=True)
    assert run.state == "done" and len(run.read_metrics()) == 2
    for artefact in METHODS[method].facts.artefacts:  # written, and read back through its checking reader
        assert Run(run.path).require(artefact) is not None
    assert run_problems(run.path, method, "done") == []

    model = prunelab.load_model(run.path)
    dataset = load_dataset(config.data)
    assert _accuracy(model, dataset) == pytest.approx(summary["test_acc"], abs=1.5 / dataset.test_size)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert model(x).shape == (3, dataset.num_classes)
        torch.testing.assert_close(prunelab.load_model(run.path)(x), model(x))

    monkeypatch.setenv("PRUNELAB_RUNS_DIR", str(runs))
    monkeypatch.setenv("PRUNELAB_NO_DEMO", "1")
    monkeypatch.chdir(ROOT)
    for page in PAGES:
        at = AppTest.from_file(str(ROOT / page), default_timeout=120).run()
        assert not at.exception, (page, [e.value for e in at.exception])

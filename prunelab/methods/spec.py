"""What every method package declares without importing torch: the base of its config class and its facts.

A method package (`prunelab/methods/<name>/`) has a `config.py` that imports only this module, pydantic,
`prunelab.runs.run_format` and the package's own `artefacts.py` (its run files, read with
`prunelab.runs.reading`), and defines its config class (a `Strict` or `MethodWithForm` subclass with
`name: Literal["<name>"]` and `facts: ClassVar[MethodFacts]`) as `METHOD_CONFIG`. `prunelab.methods.catalog`
collects them into the `RunConfig` union; the listings and the CLI read them without importing torch.
The facts' lesson functions (the paper's claims, the method card's formulas) live in the package's own
analysis modules, which import pandas or the core's analysis: the facts hold them `deferred`, imported on
first call, as the catalog imports each package's `method.py`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, computed_field, model_validator

from prunelab.runs.reading import Artefact

if TYPE_CHECKING:
    import pandas as pd

    from prunelab.analysis.controls import Control
    from prunelab.analysis.lessons import Claim
    from prunelab.analysis.method_card import Formula

MAX_EPOCHS = 1000
MAX_SEED = 2**32 - 1  # numpy's seeds are 32-bit


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


@dataclass(frozen=True)
class MethodFacts:
    """What the CLI, suites, listings and the app know of a method besides its settings."""

    label: str  # display name, e.g. "Network Slimming"
    short: str  # in suite and run names, e.g. "slim": sweep-slim-prune_ratio, slim-r0.5
    # the files a finished run writes besides the core's (prunelab.runs.reading.Artefact, declared in the
    # package's `artefacts` module): how each is read and checked; a `done` run without one is broken
    artefacts: tuple[Artefact[Any], ...] = ()
    # the authors' code this method's reference form follows (cited on the method card)
    reference_code: tuple[str, ...] = ()
    # every way the PruneLab form differs from that code: a named, optional config field each
    departures: tuple[Departure, ...] = ()
    # changes from that code in every form, because without them a run cannot execute (shown on the card)
    safeguards: tuple[str, ...] = ()
    # -- presentation: what the app, the listings and the exports show of the method
    order: int = 100  # position among the methods (forms, tables, legends): lower first
    colour: str = "#333333"  # the app's one colour for the method (charts, the Overview's sentences)
    symbols: tuple[str, ...] = ()  # one marker symbol per variant in the accuracy-against-MACs charts
    marker_size: int = 12  # later methods smaller, drawn on top
    help: str = ""  # how to make a run of it, e.g. "a baseline run (`python -m prunelab run baseline`)"
    overview: str = ""  # the Overview's one sentence on what the method does (markdown)
    model_kind: str = "final model"  # what its model.pt is, e.g. "compact slimming network (pruned, fine-tuned)"
    model_note: str | None = None  # a caveat of the exported model (ONNX)
    live_panel: str | None = None  # the live view's panel under the curves (a kind of panel, app_components)
    # its phases' names as the live view shows them ("train" is "training" for every method), and the names
    # of what happens between two of its phases, e.g. (("sparsity", "finetune"), "prune")
    phase_labels: tuple[tuple[str, str], ...] = ()
    boundary_labels: tuple[tuple[tuple[str, str], str], ...] = ()
    # the settings that tell its runs apart, from a runs-table row: 'λ=0.0001, prune 50% of all channels'
    settings: Callable[[Mapping[str, Any]], str] | None = None
    # the variant's name from a row and its form suffix (' (reference)'): 'ManiDP (reference): both'
    variant: Callable[[Mapping[str, Any], str], str] | None = None
    # the run it starts from is a required parent (a run id in the same runs folder): its config field
    parent_field: str | None = None
    # -- the paper's lessons (prunelab.analysis.lessons, prunelab.analysis.method_card), each `deferred`
    # its paper's claims judged on the runs of one setting (an ablation table's rows): `lessons.claims` loops over them
    claims: Callable[[pd.DataFrame], list[Claim]] | None = None
    # an ablation table with the figures its claims read from its runs' files beyond summary.json, within each
    # setting (those columns), unchanged where it has them already (ManiDP: accuracy at a matched MACs reduction)
    run_figures: Callable[[pd.DataFrame, Sequence[str]], pd.DataFrame] | None = None
    # the model of its paper's published CIFAR-10 result (prunelab.analysis.references.PUBLISHED) that its
    # runs are set against at the baseline's budget (`lessons.budget_claims`); None: no budget claim
    budget_reference: str | None = None
    # the method card's formulas from a run's method config, chosen by the fields the training code branches on
    formulas: Callable[[Any], list[Formula]] | None = None
    # a control method's runs set against the runs they control (their parents), within one setting
    # (`prunelab.analysis.controls`: random channels against slimming, a from-scratch network against slimming or
    # ManiDP at equal MACs); `prunelab.analysis.controls.controls` loops over them
    controls: Callable[[pd.DataFrame], list[Control]] | None = None


def parent_phrase(row: Mapping[str, Any], named: str, ratio: str, otherwise: str) -> str:
    """What a run built from another names in its settings and variant (a runs-table row): `named` followed by
    its parent's variant (`parent_variant`: the ablation table adds it, the same for every seed's parent) or run
    id (`init_from`), 'counts of slimming λ=0.008, ...'; without a parent, `ratio` with the row's `uniform_ratio`
    ('{:.0%} of each layer'); else `otherwise`."""
    parent = row.get("parent_variant") or row.get("init_from")
    if isinstance(parent, str) and parent:
        return f"{named} {parent}"
    try:
        return ratio.format(float(row.get("uniform_ratio")))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return otherwise


def deferred(module: str, name: str) -> Callable[..., Any]:
    """The function `name` of `module`, imported on its first call: a fact that lives in a module `config.py` may
    not import (one that imports pandas or the core's analysis, or imports `config.py` itself: a cycle)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__module__, call.__name__, call.__qualname__ = module, name, name  # where it lives, for a reader and tests
    return call


@dataclass(frozen=True)
class Departure:
    """One named change from the authors' code: the config field `field` at a value other than `reference`.

    The `prunelab` form sets the field to `prunelab`, the `reference` form to `reference`; a run records the
    names of the departures in effect (`departures` in config.json and summary.json) and the method card
    shows each with its reason and where its effect is measured.
    """

    name: str  # e.g. "detached_complexity_weight"
    field: str  # the method-config field that switches it
    reference: Any  # the field's value in the authors' code
    prunelab: Any  # the field's value in the PruneLab form
    summary: str  # what changes, one line
    reason: str  # why PruneLab made the change, one line
    effect: str  # where its effect is measured (a comparison of runs, a test), one line


FORMS = ("reference", "prunelab")
Form = Literal["reference", "prunelab"]
FORM_DESCRIPTION = ("reference: every choice as the authors' code makes it; prunelab: PruneLab's changes "
                    "(each a named departure, listed in the run). A departure's own field overrides the form")


class MethodWithForm(Strict):
    """A method config with a `form`: its departure fields left unset take the form's value."""

    facts: ClassVar[MethodFacts]

    @model_validator(mode="before")
    @classmethod
    def _apply_form(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = {key: value for key, value in data.items() if key != "departures"}  # derived, recorded only
        form = data.get("form", "reference")
        for departure in cls.facts.departures:
            if data.get(departure.field) is None and form in FORMS:
                data[departure.field] = departure.prunelab if form == "prunelab" else departure.reference
        for name, (reference, prunelab) in cls.form_defaults().items():
            if data.get(name) is None and form in FORMS:
                data[name] = prunelab if form == "prunelab" else reference
        return data

    @classmethod
    def form_defaults(cls) -> dict[str, tuple[Any, Any]]:
        """Settings (not departures) whose default differs by form: field -> (reference, prunelab)."""
        return {}

    @computed_field  # type: ignore[prop-decorator]
    @property
    def departures(self) -> list[str]:
        """Names of the departures from the authors' code in effect (empty: the reference form)."""
        return [d.name for d in self.facts.departures if getattr(self, d.field) != d.reference]


def field_facts(*, form: bool = False, flag: str | None = None, sweep: str | None = None,
           aliases: tuple[str, ...] = ()) -> dict[str, Any]:
    """`json_schema_extra` of a method-config field: shown in the app's run form (`form`), its CLI flag
    when not --<field-name> (`flag`), its short label in sweep run names, which makes it a sweep parameter
    (`sweep`), and other names a sweep accepts for it (`aliases`)."""
    extra: dict[str, Any] = {"form": True} if form else {}
    if flag is not None:
        extra["flag"] = flag
    if sweep is not None:
        extra["sweep_label"] = sweep
    if aliases:
        extra["aliases"] = list(aliases)
    return extra



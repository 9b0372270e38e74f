"""A run's method card: its form, the formulas exactly as the run computed them, and every departure from
the authors' code with its reason and where its effect is measured.

`method_card(config)` reads only the run's validated method config (prunelab.config): each formula is chosen
by the same fields the training code branches on, so the card cannot show the paper's formula for a run
that computed another. The formulas live in each method's package (`prunelab/methods/<name>/formulas.py`, the
method's `MethodFacts.formulas`); the departures' texts beside the fields that switch them
(`prunelab.config.Departure`, in each method's `MethodFacts.departures`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prunelab.config import METHOD_FACTS, Departure


@dataclass(frozen=True)
class Formula:
    label: str
    latex: str
    note: str = ""  # what in this run makes it so (e.g. "CE_i attached: the reference")


@dataclass(frozen=True)
class MethodCard:
    method: str
    form: str | None  # "reference", "prunelab" or None (a method without forms)
    formulas: list[Formula] = field(default_factory=list)
    departures: list[Departure] = field(default_factory=list)  # the departures in effect, in the facts' order
    reference_code: tuple[str, ...] = ()
    safeguards: tuple[str, ...] = ()  # changes from the authors' code in every form (MethodFacts.safeguards)

    @property
    def title(self) -> str:
        label = METHOD_FACTS[self.method].label if self.method in METHOD_FACTS else self.method
        if self.form is None:
            return label
        if not self.departures:
            return f"{label}, reference form (as the authors' code runs it)"
        names = ", ".join(d.name for d in self.departures)
        return f"{label}, {self.form} form: {len(self.departures)} departure(s) from the authors' code ({names})"


def _in_effect(config: Any) -> list[Departure]:
    facts = METHOD_FACTS.get(config.name)
    names = set(getattr(config, "departures", []) or [])
    return [d for d in (facts.departures if facts else ()) if d.name in names]


def method_card(config: Any) -> MethodCard:
    """The card of a run's method config (`RunConfig.method`)."""
    facts = METHOD_FACTS.get(config.name)
    build = facts.formulas if facts else None
    return MethodCard(config.name, getattr(config, "form", None), build(config) if build else [],
                      _in_effect(config), facts.reference_code if facts else (), facts.safeguards if facts else ())

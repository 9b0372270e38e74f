"""The method card of the selected runs (`prunelab.analysis.method_card`): form, formulas as each run computed them,
and each departure from the authors' code with its reason and where its effect is measured."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import streamlit as st

from app_components import common
from prunelab.analysis.method_card import MethodCard, method_card


def card_of(run: str | Path) -> MethodCard | None:
    config = common.config_of(run)
    return None if config is None else method_card(config.method)


def show(runs: Sequence[str | Path] | str | Path, expanded: bool = False) -> None:
    """One expander per distinct card among `runs` (runs of one form and setting share a card)."""
    paths = [runs] if isinstance(runs, str | Path) else list(runs)
    cards: dict[str, MethodCard] = {}
    for path in paths:
        card = card_of(path)
        if card is not None and card.formulas:
            cards.setdefault(repr(card), card)
    for card in cards.values():
        with st.expander(f"Method card: {card.title}", expanded=expanded):
            for formula in card.formulas:
                st.markdown(f"**{formula.label}**" + (f" — {formula.note}" if formula.note else ""))
                st.latex(formula.latex)
            if card.form is not None:
                if card.departures:
                    st.markdown("**Departures from the authors' code in this run**")
                    departures = pd.DataFrame([{"departure": d.name, "what changes": d.summary, "why": d.reason,
                                                "effect measured in": d.effect} for d in card.departures])
                    st.table(departures, hide_index=True)
                    card_key = hashlib.sha1(repr(card).encode()).hexdigest()[:12]  # equal departures, other formulas
                    common.csv_download(departures, "prunelab_departures.csv", key=card_key)
                else:
                    st.markdown("**No departure**: every choice above is the authors' code's.")
            for safeguard in card.safeguards:
                st.markdown(f"**Safeguard in every form** (not a switch): {safeguard}.")
            if card.reference_code:
                st.caption("Compared against: " + "; ".join(card.reference_code))

"""Every page that shows a ManiDP or slimming formula shows the selected run's form and departures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from prunelab.methods.manidp.config import MANIDP_DEPARTURES
from tests.app_pages.page_helpers import fixture_run

PAGES = Path(__file__).resolve().parents[2] / "app_pages"
TIMEOUT = 90


def _card_labels(page: str, key: str, run: Path) -> list[str]:
    at = AppTest.from_file(str(PAGES / page), default_timeout=TIMEOUT).run()
    at.selectbox(key=key).set_value(str(run)).run()
    assert not at.exception, [e.value for e in at.exception]
    return [e.label for e in at.expander if e.label.startswith("Method card")], at


@pytest.mark.parametrize(("page", "key"), [("per_image.py", "pi_run"), ("similarity.py", "sim_run")])
def test_a_reference_run_shows_the_reference_card(runs_env: Path, page: str, key: str) -> None:
    run = fixture_run(runs_env, "fx-manidp-full", "probe.npz")
    labels, at = _card_labels(page, key, run)
    assert labels == ["Method card: ManiDP, reference form (as the authors' code runs it)"]
    assert any("No departure" in m.value for m in at.markdown)
    assert any("Safeguard in every form" in m.value and "most salient channel" in m.value for m in at.markdown)


def test_a_prunelab_run_names_every_departure(runs_env: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    source = fixture_run(runs_env, "fx-manidp-full", "probe.npz")
    runs = tmp_path / "runs"
    run = runs / source.name
    shutil.copytree(source, run)
    config = json.loads((run / "config.json").read_text())
    config["method"] = {key: value for key, value in config["method"].items()
                        if key not in {"departures", *(d.field for d in MANIDP_DEPARTURES)}}
    config["method"]["form"] = "prunelab"  # as the run's config says: the card follows the config
    (run / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("PRUNELAB_RUNS_DIR", str(runs))
    labels, at = _card_labels("per_image.py", "pi_run", run)
    assert len(labels) == 1 and "prunelab form: 7 departure(s)" in labels[0]
    shown = at.table[0].value
    assert list(shown["departure"]) == [d.name for d in MANIDP_DEPARTURES]
    assert "rewards a higher loss on easy images" in " ".join(shown["why"])
    assert not any("uses the reference's threshold rule" in c.value for c in at.caption)  # pair quantiles


def test_a_reference_threshold_runs_what_if_says_it_approximates_the_rule(runs_env: Path) -> None:
    run = fixture_run(runs_env, "fx-manidp-full", "probe.npz")  # the reference form: channel-mean thresholds
    _, at = _card_labels("per_image.py", "pi_run", run)
    assert any("uses the reference's threshold rule" in c.value for c in at.caption)

"""scripts/make_demo.py strips what no page reads and keeps what the ManiDP what-if reads."""

from __future__ import annotations

import sys
from pathlib import Path

from prunelab.store import RunStore
from tests.helpers import tiny_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from make_demo import strip  # noqa: E402


def test_strip_keeps_the_gated_model_of_seed_0_manidp_runs_only(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    runs = {"manidp-s0": tiny_config("manidp"), "baseline-s0": tiny_config("baseline")}
    later = tiny_config("manidp")
    runs["manidp-s1"] = later.model_copy(update={"train": later.train.model_copy(update={"seed": 1})})
    for name, config in runs.items():
        run = store.create(config, name)
        for file in ("model.pt", "checkpoint.pt", "per_image.parquet"):
            run.file(file).write_bytes(b"x" * 10)
    left = strip(tmp_path)
    kept = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.pt"))
    assert kept == ["manidp-s0/model.pt"]
    assert all((tmp_path / name / "per_image.parquet").is_file() for name in runs)
    assert left == sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())

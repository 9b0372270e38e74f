"""prunelab.runs.run.Run: one accessor per artefact (the core's and each method's), None for a missing file,
ArtefactError naming a corrupt one, cached by file version and never changed by a reader."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prunelab.config import RunConfig
from prunelab.methods.manidp.artefacts import MANIDP_INFO, PER_IMAGE, PROBE
from prunelab.methods.slimming.artefacts import GAMMA_HISTORY, PRUNING
from prunelab.runs import run as run_module
from prunelab.runs.artefact_checks import run_problems
from prunelab.runs.artefacts import CONFIG, SUMMARY
from prunelab.runs.reading import ArtefactError
from prunelab.runs.run import Run
from prunelab.runs.store import RunStore

PRUNING_JSON = {"threshold": 0.1, "prune_ratio": 0.5, "min_channels": 1, "guard_fired_layers": [],
                "layers": [{"name": "a", "channels_before": 2, "channels_after": 1, "kept_mask": [1, 0]}],
                "verification": {"max_abs_diff": 0.0, "passed": True}}


def make_run(root: Path, method: dict, summary: dict | None = None) -> Path:
    run = RunStore(root).create(RunConfig.model_validate({"method": method}), "r")
    run.write_status(state="done", fraction=1.0)
    if summary is not None:
        run.write_summary({"method": method["name"], "dataset": "shapes", "model": "vgg11", "test_acc": 0.5,
                           "params": 1, "macs_per_image": 1, "wall_time_s": 1.0, **summary})
    return run.path


def test_every_artefact_reads_its_documented_format(tmp_path: Path) -> None:
    path = make_run(tmp_path, {"name": "slimming", "sparsity_lambda": 2e-4}, {"test_acc": 0.5})
    gammas = [np.random.default_rng(i).random((3, 4 + i)).astype(np.float32) for i in range(2)]
    np.savez(path / "gamma_history.npz", epochs=np.arange(3), layer_names=np.array(["a", "b"]),
             sparsity_lambda=np.float64(1e-4), layer_0=gammas[0], layer_1=gammas[1])
    run = Run(path)
    history = run.read(GAMMA_HISTORY)
    assert history is not None and history.layer_names == ["a", "b"] and history.epochs.tolist() == [0, 1, 2]
    assert history.sparsity_lambda == 2e-4  # one stored copy: the config's, not the file's old second one
    assert all(np.array_equal(g, h) for g, h in zip(gammas, history.gammas, strict=True))

    gates, feats = np.random.default_rng(0).random((6, 5)), np.random.default_rng(1).random((6, 5))
    cos = np.corrcoef(gates)
    np.savez(path / "probe.npz", indices=np.arange(6), labels=np.array([0, 0, 1, 1, 2, 2]),
             layer_names=np.array(["l0"]), gates_0=gates, features_0=feats, T_0=cos, R_0=cos.T)
    probe = run.read(PROBE)
    assert probe is not None and probe.layer_names == ["l0"] and probe.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert np.array_equal(probe.gates[0], gates) and np.array_equal(probe.R[0], cos.T)

    frame = pd.DataFrame({"index": [0, 1], "label": [3, 4], "macs": [10, 20], "density_l0": [0.5, 1.0]})
    frame = frame.assign(pred=[3, 1], loss=np.float32([0.1, 2.0]), correct=[True, False],
                         difficulty=np.float32([0.2, 0.9]), gate_macs=[1, 1])
    frame.to_parquet(path / "per_image.parquet")
    pd.testing.assert_frame_equal(run.read(PER_IMAGE), frame)
    (path / "pruning.json").write_text(json.dumps(PRUNING_JSON))
    manidp = {"layers": ["l0"], "channels": [5], "thresholds": [0.1], "macs_dense": 7, "gate_macs": 1,
              "macs_verification": {"max_abs_diff": 0, "passed": True}}
    (path / "manidp.json").write_text(json.dumps(manidp))
    assert run.read(PRUNING) == PRUNING_JSON and run.read(MANIDP_INFO)["macs_dense"] == 7
    assert run.summary["test_acc"] == 0.5 and run.read(SUMMARY) == run.summary
    assert run.config.method.name == "slimming" and run.read(CONFIG) == run.config
    assert run.state == "done"


def test_missing_files_give_none_and_corrupt_ones_an_error_naming_them(tmp_path: Path,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    run = Run(make_run(tmp_path, {"name": "manidp"}))
    artefacts = [SUMMARY, PRUNING, MANIDP_INFO, PER_IMAGE, PROBE, GAMMA_HISTORY]
    assert all(run.read(artefact) is None for artefact in artefacts)
    assert run.metrics.empty and run.log_tail() == []
    for artefact in artefacts:
        run.file(artefact.file).write_bytes(b"\x00garbage")
        with pytest.raises(ArtefactError, match=f"{artefact.file} is corrupt"):
            run.read(artefact)
        with pytest.raises(ArtefactError, match=f"{artefact.file} is corrupt"):
            run.require(artefact)
    with caplog.at_level(logging.WARNING):
        run.file("metrics.jsonl").write_text('{"epoch": 1, "test_acc": 0.5}\n[]\n{"epoch": 2, "te')  # torn last line
        assert run.metrics["epoch"].tolist() == [1]
    assert any("torn line" in record.message for record in caplog.records)
    np.savez(run.file("probe.npz"), indices=np.arange(2))  # readable but incomplete
    with pytest.raises(ArtefactError, match="'labels' is missing"):
        run.read(PROBE)
    run.file("config.json").write_text("[]")
    with pytest.raises(ArtefactError, match=r"config\.json is corrupt: expected a JSON object"):
        _ = run.config
    run.file("status.json").unlink()
    assert run.state == "broken"
    with pytest.raises(ArtefactError, match=r"summary\.json is missing"):
        Run(tmp_path / "nothing").require(SUMMARY)


def test_a_file_is_read_once_per_version_and_readers_cannot_change_it(tmp_path: Path) -> None:
    path = make_run(tmp_path, {"name": "slimming"}, {"test_acc": 0.5})
    np.savez(path / "gamma_history.npz", epochs=np.arange(2), layer_names=np.array(["a"]),
             layer_0=np.ones((2, 3), dtype=np.float32))
    run_module.clear_cache()
    first = Run(path).read(GAMMA_HISTORY)
    assert Run(path).read(GAMMA_HISTORY) is first  # the same parsed object: read once
    with pytest.raises(ValueError, match="read-only"):
        first.gammas[0][0, 0] = 5.0
    summary = Run(path).summary
    summary["test_acc"] = 0.9  # a reader's copy
    assert Run(path).summary["test_acc"] == 0.5
    # a new version of the file is read again
    np.savez(path / "gamma_history.npz", epochs=np.arange(3), layer_names=np.array(["a"]),
             layer_0=np.zeros((3, 3), dtype=np.float32))
    stat = (path / "gamma_history.npz").stat()
    os.utime(path / "gamma_history.npz", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    again = Run(path).read(GAMMA_HISTORY)
    assert again is not first and again.epochs.tolist() == [0, 1, 2]


def test_the_listing_checks_array_files_by_their_headers(tmp_path: Path) -> None:
    """run_problems finds a wrong dtype or shape from the npz headers and a parquet file's schema; reading the
    file checks its content too (a density outside [0, 1] is found only then)."""
    path = make_run(tmp_path, {"name": "manidp"}, {"test_acc": 0.5})
    np.savez(path / "probe.npz", indices=np.arange(3), labels=np.arange(3), layer_names=np.array(["l0"]),
             gates_0=np.ones((3, 2)), features_0=np.ones((3, 2)), T_0=np.ones((3, 3)), R_0=np.ones((2, 3)))
    frame = pd.DataFrame({"index": [0], "label": [3], "macs": [10], "density_l0": [1.5], "pred": [3],
                          "loss": [0.1], "correct": [True], "difficulty": [0.2], "gate_macs": [1]})
    frame.to_parquet(path / "per_image.parquet")
    problems = run_problems(path, "manidp", "done")
    assert "probe.npz is corrupt: array 'R_0' should have shape (3, 3), has (2, 3)" in problems
    assert not any(problem.startswith("per_image.parquet") for problem in problems)
    with pytest.raises(ArtefactError, match=r"'density_l0' holds 1\.5, above 1"):
        Run(path).read(PER_IMAGE)
    frame.assign(macs=["ten"]).to_parquet(path / "per_image.parquet")
    assert any(problem.startswith("per_image.parquet is corrupt: column 'macs' should hold integer values")
               for problem in run_problems(path, "manidp", "done"))

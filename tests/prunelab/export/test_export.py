"""`python -m prunelab export onnx|tensorboard` on real tiny runs (the page tests' fixture runs): ONNX files run
by onnxruntime give PyTorch's outputs; TensorBoard's own reader finds metrics.jsonl's values, the |gamma|
histograms, the hparams and the gate embedding; bad input is refused in one line and changes nothing."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from google.protobuf import text_format
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.plugins.projector import projector_config_pb2

import prunelab
from prunelab.data import load_dataset, normalize
from prunelab.export.onnx import MANIDP_NOTE
from prunelab.runs.run_format import RunStoreError
from prunelab.runs.store import RunDir
from tests.app_pages.fixture_runs import ensure_fixture_runs
from tests.helpers import run_cli

pytestmark = pytest.mark.slow  # every test reads the trained fixture runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The page tests' fixture runs (built once per session, whoever asks first)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PRUNELAB_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "data-cache"))
        return ensure_fixture_runs(tmp_path_factory.getbasetemp() / "fixture-runs")


def fixture(runs: Path, name: str) -> Path:
    path = runs / name
    if not (path / "model.pt").is_file():
        pytest.skip(f"the fixture run {name} is not available")
    return path


def first_test_images(run: Path, count: int) -> torch.Tensor:
    config = RunDir(run).read_config()
    data = load_dataset(config.data)
    return normalize(data.test_images[:count], data.mean, data.std)


def onnx_logits(path: Path, images: torch.Tensor) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (name,) = [i.name for i in session.get_inputs()]
    return session.run(None, {name: images.numpy()})[0]


@pytest.mark.parametrize(("name", "kind"), [
    ("fx-slim-l0", "compact slimming network (pruned, fine-tuned)"),
    ("fx-baseline", "baseline network"),
    ("fx-manidp-full", "dense ManiDP network with its gates"),
])
def test_onnx_export_runs_in_onnxruntime_like_pytorch(runs: Path, tmp_path: Path, name: str, kind: str) -> None:
    run = fixture(runs, name)
    out = tmp_path / "model.onnx"
    code, stdout, stderr = run_cli("export", "onnx", str(run), "--out", str(out))
    assert code == 0, stderr
    lines = stdout.strip().splitlines()
    assert lines[0].startswith(f"{name}: {kind}") and lines[-1] == str(out)
    assert ("note: " + MANIDP_NOTE in lines) == (name == "fx-manidp-full")  # ManiDP: said to run with masks
    model = prunelab.load_model(run)
    images = first_test_images(run, 40)
    with torch.no_grad():
        expected = model(images).numpy()
    for batch in (images[:1], images[:17], images):  # the batch dimension is dynamic
        got = onnx_logits(out, batch)
        assert got.shape == (batch.shape[0], expected.shape[1])
        scale = max(1.0, float(np.abs(expected).max()))  # the export's tolerance: 1e-3 on logits of order 1
        assert np.abs(got - expected[: batch.shape[0]]).max() <= 1e-3 * scale
    graph = onnx.load(str(out)).graph
    assert all(t.data_location == onnx.TensorProto.DEFAULT for t in graph.initializer)  # one file, weights inside
    # the network's own convolutions (BatchNorm folded into them): the compact widths for slimming
    convs = sorted(tuple(m.weight.shape) for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert sorted(tuple(t.dims) for t in graph.initializer if len(t.dims) == 4) == convs
    if name == "fx-slim-l0":  # the compact network: fewer parameters than the dense one before pruning
        summary = json.loads((run / "summary.json").read_text())
        assert sum(p.numel() for p in model.parameters()) == summary["params_after"] < summary["params_before"]
    if name == "fx-manidp-full":  # the gates are in the graph: argmax and scatter of the keep-one guard
        ops = {node.op_type for node in graph.node}
        assert {"ArgMax", "ScatterElements"} <= ops or {"ArgMax", "ScatterND"} <= ops, ops


def test_onnx_export_refuses_bad_input_and_keeps_what_exists(runs: Path, tmp_path: Path) -> None:
    existing = tmp_path / "keep.onnx"
    existing.write_bytes(b"an earlier export")
    cases = [
        (["no-such-run"], f"no run 'no-such-run' in {runs}"),
        ([str(runs / "fx-running")],
         "run fx-running has no model.pt (state running): this export needs a finished run"),
        ([str(runs / "fx-failed")], "run fx-failed has no model.pt (state failed)"),
    ]
    for argv, expected in cases:
        code, out, err = run_cli("export", "onnx", *argv, "--out", str(existing), "--runs-dir", str(runs))
        (line,) = err.strip().splitlines()
        assert code == 2 and out == "" and line.startswith(f"error: {expected}")
        assert existing.read_bytes() == b"an earlier export"
    code, _, err = run_cli("export", "onnx", "fx-baseline", "--out", str(tmp_path), "--runs-dir", str(runs))
    assert code == 2 and "is a folder" in err
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("x")
    code, _, err = run_cli("export", "onnx", "fx-baseline", "--out", str(blocked / "m.onnx"), "--runs-dir", str(runs))
    assert code == 2 and err.startswith(f"error: cannot write the ONNX file in {blocked}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.onnx", "not-a-folder"]  # no temp file left


def copy_of(runs: Path, name: str, tmp_path: Path) -> Path:
    """A copy of a fixture run (same folder name and run id) that a test may break."""
    return Path(shutil.copytree(fixture(runs, name), tmp_path / "runs" / name))


def test_an_export_of_a_run_with_a_corrupt_summary_writes_nothing(runs: Path, tmp_path: Path) -> None:
    """summary.json is read before the output is touched: an existing ONNX file stays byte-identical, an
    existing TensorBoard folder unchanged, and the command says why in one line."""
    run = copy_of(runs, "fx-baseline", tmp_path)
    (run / "summary.json").write_text('{"test_acc": "high"}')
    existing = tmp_path / "model.onnx"
    existing.write_bytes(b"an earlier export")
    code, out, err = run_cli("export", "onnx", str(run), "--out", str(existing))
    (line,) = err.strip().splitlines()
    assert code == 2 and out == "" and "Traceback" not in err
    assert line.startswith("error: run fx-baseline: summary.json is corrupt")
    assert existing.read_bytes() == b"an earlier export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "runs"]  # no temp file left
    board = tmp_path / "tb"
    assert run_cli("export", "tensorboard", "fx-baseline", "--out", str(board), "--runs-dir", str(runs))[0] == 0
    before = {p: p.read_bytes() for p in board.rglob("*") if p.is_file()}
    code, out, err = run_cli("export", "tensorboard", str(run), "--out", str(board))
    (line,) = err.strip().splitlines()
    assert code == 2 and out == "" and line.startswith("error: run fx-baseline: summary.json is corrupt")
    assert {p: p.read_bytes() for p in board.rglob("*") if p.is_file()} == before


def test_a_tensorboard_export_that_fails_while_swapping_puts_the_old_one_back(runs: Path, tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The earlier export of a run is moved aside before the new one moves in: when that second rename fails
    (a full or read-only disk), the earlier one is put back and the command says why in one line."""
    fixture(runs, "fx-baseline")
    board = tmp_path / "tb"
    assert run_cli("export", "tensorboard", "fx-baseline", "--out", str(board), "--runs-dir", str(runs))[0] == 0
    before = {p: p.read_bytes() for p in board.rglob("*") if p.is_file()}
    real_rename = Path.rename

    def refuse_moving_in(self: Path, target: Path) -> Path:
        if self.parent.name.startswith(".prunelab-export-") and Path(target).parent == board:
            raise OSError(28, "No space left on device", str(target))
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", refuse_moving_in)
    code, out, err = run_cli("export", "tensorboard", "fx-baseline", "--out", str(board), "--runs-dir", str(runs))
    monkeypatch.undo()
    (line,) = err.strip().splitlines()
    assert code == 2 and out == "" and line == f"error: cannot write {board / 'fx-baseline'}: No space left on device"
    assert {p: p.read_bytes() for p in board.rglob("*") if p.is_file()} == before  # no staging folder left either


def test_a_model_copied_from_another_run_is_not_exported(runs: Path, tmp_path: Path) -> None:
    """model.pt names the run it was written for: another run's is refused, naming both, before anything is
    written."""
    run = copy_of(runs, "fx-baseline", tmp_path)
    shutil.copyfile(fixture(runs, "fx-manidp-full") / "model.pt", run / "model.pt")
    existing = tmp_path / "model.onnx"
    existing.write_bytes(b"an earlier export")
    code, out, err = run_cli("export", "onnx", str(run), "--out", str(existing))
    (line,) = err.strip().splitlines()
    assert code == 2 and out == "" and "Traceback" not in err
    assert line.startswith(f"error: run fx-baseline: {run / 'model.pt'} belongs to run fx-manidp-full (manidp "
                           "vgg11 at width 0.25), not to run fx-baseline (baseline vgg11 at width 0.25)")
    assert existing.read_bytes() == b"an earlier export"
    with pytest.raises(RunStoreError, match="belongs to run fx-manidp-full"):
        prunelab.load_model(run)


def accumulator(folder: Path) -> EventAccumulator:
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "histograms": 0, "tensors": 0})
    return events.Reload()


def test_tensorboard_export_reads_back_with_tensorboards_reader(runs: Path, tmp_path: Path) -> None:
    slim, manidp = fixture(runs, "fx-slim-l1e-3"), fixture(runs, "fx-manidp-full")
    out = tmp_path / "tb"
    code, stdout, stderr = run_cli("export", "tensorboard", "fx-slim-l1e-3", "fx-manidp-full", "--out", str(out),
                                   "--runs-dir", str(runs))
    assert code == 0, stderr
    assert "gate embedding of 20 test images with sprites" in stdout
    for run in (slim, manidp):
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        events = accumulator(out / run.name)
        tags = events.Tags()
        # accuracy and loss per epoch over the whole run, and per phase over the phase's epochs
        for key, tag in (("test_acc", "accuracy/test"), ("train_acc", "accuracy/train"), ("test_loss", "loss/test")):
            scalars = events.Scalars(tag)
            assert [s.step for s in scalars] == list(range(1, len(rows) + 1))
            assert [s.value for s in scalars] == [np.float32(row[key]) for row in rows]
            assert [s.wall_time for s in scalars] == pytest.approx([row["time"] for row in rows])
            for phase in {row["phase"] for row in rows}:
                mine = [row for row in rows if row["phase"] == phase]
                scalars = events.Scalars(f"{phase}/{tag}")
                assert [(s.step, s.value) for s in scalars] == [(r["epoch"], np.float32(r[key])) for r in mine]
        # hparams: the config and the final figures
        content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
        start = hparams_metadata.parse_session_start_info_plugin_data(content)
        config = json.loads((run / "config.json").read_text())
        assert start.hparams["method.name"].string_value == config["method"]["name"]
        assert start.hparams["train.lr"].number_value == pytest.approx(config["train"]["lr"])
        summary = json.loads((run / "summary.json").read_text())
        assert events.Scalars("final/test_acc")[0].value == np.float32(summary["test_acc"])
        assert "gamma/all" in tags["histograms"] if run == slim else "manidp/macs_per_image" in tags["histograms"]
    # slimming: |gamma| per epoch as histograms
    history = np.load(slim / "gamma_history.npz")
    gammas = np.concatenate([history[f"layer_{i}"] for i in range(len(history["layer_names"]))], axis=1)
    events = accumulator(out / slim.name)
    histograms = events.Histograms("gamma/all")
    assert [h.step for h in histograms] == history["epochs"].tolist()
    for event, values in zip(histograms, gammas, strict=True):
        assert event.histogram_value.num == values.size
        assert event.histogram_value.min == pytest.approx(values.min()) and event.histogram_value.max == pytest.approx(
            values.max())
        assert event.histogram_value.sum == pytest.approx(values.sum(), rel=1e-5)
    start = hparams_metadata.parse_session_start_info_plugin_data(
        events.PluginTagToContent("hparams")["_hparams_/session_start_info"])
    assert start.hparams["method.sparsity_lambda"].number_value == pytest.approx(1e-3)
    # ManiDP: the probe images' gate vectors as a projector embedding, with sprites and metadata
    config = text_format.Parse((out / manidp.name / "projector_config.pbtxt").read_text(),
                               projector_config_pb2.ProjectorConfig())
    (embedding,) = config.embeddings
    folder = out / manidp.name
    tensors = np.loadtxt(folder / embedding.tensor_path, delimiter="\t", ndmin=2)
    probe = np.load(manidp / "probe.npz")
    gates = np.concatenate([probe[f"gates_{i}"] for i in range(len(probe["layer_names"]))], axis=1)
    assert tensors.shape == gates.shape and np.allclose(tensors, gates, rtol=1e-5, atol=1e-6)
    meta = (folder / embedding.metadata_path).read_text().strip().splitlines()
    assert meta[0].split("\t") == ["index", "class", "label", "macs", "correct", "loss", "difficulty"]
    per_image = {int(r.split("\t")[0]): r.split("\t") for r in meta[1:]}
    assert sorted(per_image) == sorted(probe["indices"].tolist())
    import pandas as pd

    table = pd.read_parquet(manidp / "per_image.parquet").set_index("index")
    for index, row in per_image.items():
        assert int(row[3]) == int(table.loc[index, "macs"]) and int(row[2]) == int(table.loc[index, "label"])
    from PIL import Image

    side = int(np.ceil(np.sqrt(len(per_image)))) * 32
    with Image.open(folder / embedding.sprite.image_path) as sprite:
        assert sprite.size == (side, side)
    assert list(embedding.sprite.single_image_dim) == [32, 32]
    # one HParams experiment over both runs at the top: every hparam of either method is a column
    top = accumulator(out)
    experiment = hparams_metadata.parse_experiment_plugin_data(
        top.PluginTagToContent("hparams")["_hparams_/experiment"])
    names = {info.name for info in experiment.hparam_infos}
    assert {"method.sparsity_lambda", "method.target_density", "method.name"} <= names
    assert {m.name.tag for m in experiment.metric_infos} >= {"final/test_acc", "final/macs_per_image"}


def test_tensorboard_export_again_replaces_and_bad_input_changes_nothing(runs: Path, tmp_path: Path) -> None:
    fixture(runs, "fx-baseline")
    out = tmp_path / "tb"
    assert run_cli("export", "tensorboard", "fx-baseline", "--out", str(out), "--runs-dir", str(runs))[0] == 0
    first = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    assert run_cli("export", "tensorboard", "fx-baseline", "--out", str(out), "--runs-dir", str(runs))[0] == 0
    again = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    assert len(again) == len(first) and len(list((out / "fx-baseline").glob("events.out.tfevents.*"))) == 1
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    queued = RunDir(runs / "fx-baseline").read_config()
    empty = prunelab.RunStore(tmp_path / "other").create(queued, "fx-queued")
    cases = [
        (["fx-baseline", "no-such-run"], str(runs), f"no run 'no-such-run' in {runs}"),
        ([str(empty.path)], str(runs), "run fx-queued has no metrics.jsonl rows yet (state queued)"),
        (["fx-baseline", "fx-baseline"], str(runs), "run fx-baseline is given twice"),
    ]
    for names, root, expected in cases:
        code, stdout, err = run_cli("export", "tensorboard", *names, "--out", str(out), "--runs-dir", root)
        assert code == 2 and stdout == "" and len(err.strip().splitlines()) == 1 and expected in err
        assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before
    code, _, err = run_cli("export", "tensorboard", "fx-baseline", "--out", str(out / "fx-baseline" / next(
        p.name for p in (out / "fx-baseline").iterdir())), "--runs-dir", str(runs))
    assert code == 2 and "is a file" in err
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        code, _, err = run_cli("export", "tensorboard", "fx-baseline", "--out", str(locked / "tb"),
                               "--runs-dir", str(runs))
        assert code == 2 and "cannot write the TensorBoard folder" in err

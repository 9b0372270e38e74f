"""ManiDP what-if and sub-network space against the run's own records and plain reference computations."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from prunelab.analysis import views
from prunelab.methods.manidp.gated_run import GatedModelMissing, gated_run
from prunelab.methods.manidp.gates import get_thresholds, records, set_thresholds
from prunelab.methods.manidp.subnet_space import embedding
from prunelab.methods.manidp.whatif import GROUPS, Calibration, WhatIf, compute, cost_groups, what_if
from prunelab.runs.run_format import UMAP_FILE, WHATIF_CURVE_FILE
from prunelab.runs.store import RunDir, RunStore
from prunelab.training.engine import run_training
from tests.helpers import tiny_config, write_folder_dataset


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ManiDP run long enough (36 steps) for its moving-average thresholds to settle at the target.

    In a 5-step run they never do (training density 0.9999 against a target of 0.7), so the thresholds
    it saved were calibrated with far more channels open upstream and keep 0.73 on the test images: no
    recalibration at 0.7 can reproduce that run, nor should it.
    """
    # the prunelab form: these tests check the pair-quantile rule (the reference's rule: test_reference_form.py)
    config = tiny_config("manidp", epochs=3, train_size=300, test_size=200, batch_size=25, probe_size=20,
                         target_density=0.7, form="prunelab")
    run = RunStore(tmp_path_factory.mktemp("whatif-runs")).create(config, "wi-manidp")
    with pytest.MonkeyPatch.context() as patch:  # fewer sliced / timed images keep the run short
        patch.setattr("prunelab.methods.manidp.method.VERIFY_IMAGES", 4)
        patch.setattr("prunelab.methods.manidp.method.LATENCY_IMAGES", 2)
        run_training(config, run)
    return run.path


def own_density(run: Path) -> float:
    return float(json.loads((run / "config.json").read_text())["method"]["target_density"])


@pytest.mark.slow
def test_own_density_reproduces_the_run(run: Path) -> None:
    summary = json.loads((run / "summary.json").read_text())
    trained = pd.read_parquet(run / "per_image.parquet")
    result = what_if(run, own_density(run))
    assert result.calibration.images == "training"
    assert result.trained["test_acc"] == pytest.approx(summary["test_acc"])
    assert result.trained["macs_mean"] == pytest.approx(summary["macs_per_image"])
    # The run calibrated once, with its moving-average thresholds in effect; the what-if settles the
    # thresholds for the network as it runs at the target, so some images differ by a channel or two.
    # (On the shapes demo's configuration, 2,000 test images: mean MACs +0.3%, accuracy +0.5 points.)
    frame = result.per_image
    assert result.macs["mean"] == pytest.approx(summary["macs_per_image"], rel=0.02)
    assert float(np.median(np.abs(frame["macs"] - trained["macs"]) / trained["macs"])) <= 0.02
    assert result.density_measured == pytest.approx(summary["density_mean"], abs=0.02)
    assert float(frame["loss"].mean()) == pytest.approx(summary["test_loss"], rel=0.02)
    # a 3-epoch tiny run sits near chance, where a slightly different mask flips near-tied logits
    assert float((frame["pred"] == trained["pred"]).mean()) >= 0.85
    assert abs(result.test_acc - summary["test_acc"]) <= 0.03
    assert result.macs_dense == summary["macs_dense"]


@pytest.mark.slow
def test_recalibrated_thresholds_keep_the_target_share_of_the_calibration_pairs(run: Path) -> None:
    """The reference: one calibration pass with the new thresholds in effect keeps a fraction eta of the
    (image, channel) pairs in every layer (the rule's definition), or every pair with pi > 0 when fewer
    than that are nonzero."""
    for density in (0.3, 0.9):
        result = what_if(run, density)
        context = gated_run(run)
        with context.lock:
            set_thresholds(context.model, result.thresholds)
            try:
                saliencies = context.method.calibration_saliencies(context.model)
            finally:
                context.restore()
        for pi, xi in zip(saliencies, result.thresholds, strict=True):
            kept = float(((pi >= xi) & (pi > 0)).float().mean())  # a channel with pi = 0 is always pruned
            reachable = float((pi > 0).float().mean())
            assert kept == pytest.approx(min(density, reachable), abs=0.01 + 1.0 / pi.numel())
        assert result.calibration.kept == pytest.approx(
            [float(((pi >= xi) & (pi > 0)).float().mean()) for pi, xi in zip(saliencies, result.thresholds,
                                                                                strict=True)], abs=0.01)
        assert result.reachable == pytest.approx(float(np.mean([(pi > 0).float().mean() for pi in saliencies])),
                                                 abs=0.01)


@pytest.mark.slow
def test_lower_density_means_fewer_macs_and_the_mean_density_follows_the_target(run: Path) -> None:
    densities = (0.3, 0.5, 0.7, 0.9)
    found = [what_if(run, d) for d in densities]
    means = [r.macs["mean"] for r in found]
    assert means == sorted(means) and len(set(means)) == len(means)
    for density, result in zip(densities, found, strict=True):
        assert result.density_measured == pytest.approx(density, abs=0.08)
        frame = result.per_image
        assert result.test_acc == pytest.approx(float((frame["pred"] == frame["label"]).mean()))
        assert result.macs["std"] == pytest.approx(float(frame["macs"].std(ddof=0)))
        assert result.macs["max"] <= result.macs_dense


def test_cost_groups_and_moves_against_a_loop() -> None:
    rng = np.random.default_rng(0)
    macs = rng.integers(1, 6, size=30) * 1000  # many ties
    groups = cost_groups(macs)
    for value, group in zip(macs, groups, strict=True):
        below, equal = int((macs < value).sum()), int((macs == value).sum())
        share = (below + (equal + 1) / 2) / len(macs)  # average rank / n
        assert group == ("cheap" if share <= 0.5 else "costly")
    assert all(groups[macs == v][0] == g for v, g in zip(macs, groups, strict=True))  # ties share a group


def test_images_that_become_wrong_or_right() -> None:
    correct_trained = [True, True, False, False, True, False]
    correct = [True, False, True, False, False, True]
    frame = pd.DataFrame({"correct_trained": correct_trained, "correct": correct})
    result = WhatIf(density=0.5, thresholds=[], layer_names=[], density_measured=0.5, test_acc=0.5, macs_dense=1,
                    macs={}, trained={}, per_image=frame, moves=pd.DataFrame(),
                    calibration=Calibration([], 1, [], [], "training"))
    pairs = list(zip(correct_trained, correct, strict=True))
    assert result.became_wrong == pairs.count((True, False)) == 2
    assert result.became_right == pairs.count((False, True)) == 2


@pytest.mark.slow
def test_moves_table_and_moved_images_agree(run: Path) -> None:
    result = what_if(run, 0.4)
    frame = result.per_image
    assert list(result.moves.index) == list(GROUPS) == list(result.moves.columns)
    assert int(result.moves.to_numpy().sum()) == len(frame)
    for before in GROUPS:
        for after in GROUPS:
            expected = int(((frame["group_trained"] == before) & (frame["group"] == after)).sum())
            assert result.moves.loc[before, after] == expected == len(result.crossed(before, after))
    assert len(result.moved) == len(frame) - int(np.trace(result.moves.to_numpy()))
    trained = pd.read_parquet(run / "per_image.parquet")
    assert (frame["macs_trained"] == trained["macs"]).all() and (frame["group_trained"] ==
                                                                 cost_groups(trained["macs"])).all()


@pytest.mark.slow
def test_the_run_is_left_as_it_was(run: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    what_if(run, 0.55)
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before
    saved = json.loads((run / "manidp.json").read_text())["thresholds"]
    assert get_thresholds(gated_run(run).model) == pytest.approx(saved)


@pytest.mark.slow
def test_bad_input(run: Path, tmp_path: Path) -> None:
    for density in (0.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="target density"):
            what_if(run, density)
    baseline = RunStore(tmp_path / "runs").create(tiny_config("baseline"), "base")
    (baseline.path / "model.pt").write_bytes(b"")  # the config is what is refused, before any model is read
    with pytest.raises(ValueError, match="needs a ManiDP run"):
        gated_run(baseline.path)
    copy = tmp_path / "no-model"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("*.pt"))
    with pytest.raises(GatedModelMissing, match=r"model\.pt"):
        what_if(copy, 0.5)


# ------------------------------------------------------------------------------------------------
# sub-network space


@pytest.mark.slow
def test_vectors_of_every_test_image_match_the_probe_and_the_per_image_table(run: Path, tmp_path: Path) -> None:
    from prunelab.methods.manidp.subnet_space import VECTORS_FILE, derived_dir, subnet_vectors

    vectors = subnet_vectors(run, cache_dir=tmp_path)
    trained = pd.read_parquet(run / "per_image.parquet")
    assert (vectors.indices == trained["index"].to_numpy()).all()
    assert (vectors.labels == trained["label"].to_numpy()).all()
    assert (vectors.macs == trained["macs"].to_numpy()).all()  # same model, same thresholds, same masks
    probe = np.load(run / "probe.npz")
    assert vectors.layer_names == [str(n) for n in probe["layer_names"]]
    for i in range(len(vectors.layer_names)):
        np.testing.assert_allclose(vectors.gates[i][probe["indices"]], probe[f"gates_{i}"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(vectors.features[i][probe["indices"]], probe[f"features_{i}"], rtol=1e-5,
                                   atol=1e-6)
    file = derived_dir(run, tmp_path) / VECTORS_FILE
    assert file.is_file() and not (run / VECTORS_FILE).exists()
    again = subnet_vectors(run, cache_dir=tmp_path)  # read back from the derived file
    assert all(np.array_equal(a, b) for a, b in zip(again.gates, vectors.gates, strict=True))


@pytest.mark.slow
def test_vectors_are_the_gates_saliencies(run: Path, tmp_path: Path) -> None:
    """Reference: a plain forward pass of the saved model over the first test images."""
    import prunelab
    from prunelab.data import load_dataset, normalize
    from prunelab.methods.manidp.subnet_space import subnet_vectors
    from prunelab.runs.store import RunDir

    vectors = subnet_vectors(run, cache_dir=tmp_path)
    model = prunelab.load_model(run)
    data = load_dataset(RunDir(run).read_config().data)
    with torch.no_grad():
        model(normalize(data.test_images[:7], data.mean, data.std))
    for i, record in enumerate(records(model)):
        np.testing.assert_allclose(vectors.gates[i][:7], record.saliency.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_embedding_of_every_test_image_is_cached(run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from prunelab.analysis import tables
    from prunelab.methods.manidp.subnet_space import derived_dir, embedding, subnet_vectors

    count = len(subnet_vectors(run, cache_dir=tmp_path).indices)
    calls = []
    real = tables.umap_embedding

    def counted(vectors: np.ndarray, **kwargs: object) -> np.ndarray | None:
        calls.append(vectors.shape)
        return real(vectors, **kwargs)

    monkeypatch.setattr(tables, "umap_embedding", counted)
    names = subnet_vectors(run, cache_dir=tmp_path).layer_names
    layer = names[-1]
    first = embedding(run, "gates", layer, cache_dir=tmp_path)
    assert first is not None and first.shape == (count, 2) and np.isfinite(first).all()
    assert (derived_dir(run, tmp_path) / f"umap_gates_{len(names) - 1}.npz").is_file()
    again = embedding(run, "gates", layer, cache_dir=tmp_path)
    assert np.array_equal(first, again) and len(calls) == 1  # the second call read the cached file
    with pytest.raises(ValueError, match="not a gated layer"):
        embedding(run, "gates", "no-such-layer", cache_dir=tmp_path)


@pytest.mark.slow
def test_without_its_training_images_the_shipped_test_images_calibrate(tmp_path: Path) -> None:
    """A demo trained on a dataset outside the repository ships only its test images (a test pack)."""
    from prunelab.config import RunConfig
    from prunelab.data import load_dataset
    from prunelab.data.test_pack import write_test_pack
    from prunelab.methods.manidp.subnet_space import subnet_vectors

    data = tmp_path / "data"
    write_folder_dataset(data, classes=("a", "b", "c"), per_class=10)
    config = RunConfig.model_validate({
        "data": {"dataset": f"folder:{data}"}, "model": {"name": "vgg11", "width": 0.25},
        "train": {"epochs": 1, "batch_size": 10, "device": "cpu"}, "method": {"name": "manidp", "probe_size": 6}})
    runs = tmp_path / "runs"
    run = RunStore(runs).create(config, "folder-manidp")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("prunelab.methods.manidp.method.VERIFY_IMAGES", 2)
        patch.setattr("prunelab.methods.manidp.method.LATENCY_IMAGES", 2)
        run_training(config, run)
    write_test_pack(runs, config.data, load_dataset(config.data))
    shutil.rmtree(data)  # the training images are gone; the pack beside the run holds the test images

    result = what_if(run.path, 0.5)
    assert result.calibration.images == "test"
    assert len(result.per_image) == 30
    assert result.density_measured == pytest.approx(0.5, abs=0.1)
    trained = pd.read_parquet(run.file("per_image.parquet"))
    vectors = subnet_vectors(run.path, cache_dir=tmp_path / "cache")
    assert (vectors.macs == trained["macs"].to_numpy()).all()


# ----------------------------------------------------------------------------------------------
# precomputed views (prunelab.analysis.views): what the files give back is what the computations give


@pytest.mark.slow
def test_a_precomputed_run_gives_back_the_what_if_and_the_umaps(run: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRUNELAB_CACHE_DIR", str(tmp_path / "cache"))
    reports: list[tuple[float, str]] = []
    from prunelab.methods.manidp.subnet_space import subnet_vectors

    first = subnet_vectors(run).layer_names[0]
    written = views.precompute(run, densities=(0.4,), layers=[None, first],
                               report=lambda f, m: reports.append((f, m)))
    assert [path.name for path in written] == [WHATIF_CURVE_FILE, UMAP_FILE]
    assert views.whatif_densities(run) == [0.4, 0.7]  # the grid and the run's own density
    assert reports[-1][0] == 1.0 and any("s left" in message for _, message in reports)
    for density in (0.4, 0.7):
        stored, fresh = views.load_whatif(run, density), compute(run, density)
        assert stored.test_acc == fresh.test_acc and stored.macs == fresh.macs
        assert stored.density_measured == pytest.approx(fresh.density_measured)
        assert stored.per_image.drop(columns="loss").equals(fresh.per_image.drop(columns="loss"))
        assert np.allclose(stored.per_image["loss"], fresh.per_image["loss"], rtol=1e-3, atol=1e-3)  # float16
        assert stored.moves.equals(fresh.moves)
        assert stored.calibration == fresh.calibration and stored.trained == fresh.trained
    assert views.load_whatif(run, 0.55) is None
    for kind in views.KINDS:
        for layer in (None, first):
            exact = embedding(run, kind, layer)
            shipped = views.load_umap(run, kind, layer)
            step = (exact.max(axis=0) - exact.min(axis=0)) / views.LEVELS
            assert shipped.shape == exact.shape and np.all(np.abs(shipped - exact) <= step / 2 + 1e-5)
    assert views.load_umap(run, "gates", subnet_vectors(run).layer_names[1]) is None  # not asked for


@pytest.mark.slow
def test_views_of_another_model_are_ignored_and_a_request_adds_one_density(run: Path, tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRUNELAB_CACHE_DIR", str(tmp_path / "cache"))
    copy = tmp_path / "runs" / run.name
    shutil.copytree(run, copy)
    (copy / WHATIF_CURVE_FILE).unlink(missing_ok=True)
    views.compute_whatif(copy, [0.5], out_dir=views.cache_dir(copy))  # a read-only run's request goes to the cache
    assert not (copy / WHATIF_CURVE_FILE).exists() and views.whatif_densities(copy) == [0.5]
    views.compute_whatif(copy, [0.3], out_dir=views.cache_dir(copy))
    assert views.whatif_densities(copy) == [0.3, 0.5]
    if (copy / UMAP_FILE).exists():
        assert views.load_umap(copy, "gates") is not None
    with open(copy / "model.pt", "ab") as handle:  # another model: nothing stored holds for it
        handle.write(b"\0")
    assert views.whatif_densities(copy) == [] and views.load_umap(copy, "gates") is None


@pytest.mark.slow
def test_the_accuracy_curve_read_from_the_stored_frame_is_the_what_ifs(run: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """`views.whatif_accuracy` (the matched-MACs ablation's reader) gives each stored density's test accuracy
    and MACs reduction as the full `load_whatif` does."""
    monkeypatch.setenv("PRUNELAB_CACHE_DIR", str(tmp_path / "cache"))
    copy = tmp_path / "runs" / run.name
    shutil.copytree(run, copy)
    (copy / WHATIF_CURVE_FILE).unlink(missing_ok=True)
    views.compute_whatif(copy, [0.4, 0.6])
    curve = views.whatif_accuracy(copy)
    assert curve["density"].tolist() == [0.4, 0.6]
    for row in curve.itertuples():
        full = views.load_whatif(copy, row.density)
        assert row.test_acc == pytest.approx(full.test_acc)
        assert row.macs_reduction == pytest.approx(1.0 - full.macs["mean"] / full.macs_dense)
    assert row.macs_reduction < curve["macs_reduction"].iloc[0]  # fewer channels kept, more MACs removed


@pytest.mark.slow
def test_a_run_shipped_without_its_model_keeps_its_curves_accuracy(run: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A demo ships one gated model per variant: the other seeds keep their curve's accuracy points in
    summary.json, and the matched-MACs ablation reads the same curve from them once the model is gone."""
    from prunelab.methods.manidp.evidence import accuracy_curve, keep_accuracy_curve

    monkeypatch.setenv("PRUNELAB_CACHE_DIR", str(tmp_path / "cache"))
    copy = tmp_path / "runs" / run.name
    shutil.copytree(run, copy)
    (copy / WHATIF_CURVE_FILE).unlink(missing_ok=True)
    points = keep_accuracy_curve(copy, [0.4, 0.6])
    with_model = accuracy_curve(copy)
    assert [p["density"] for p in points] == with_model["density"].tolist() == [0.4, 0.6]
    (copy / "model.pt").unlink()
    (copy / WHATIF_CURVE_FILE).unlink()
    assert views.whatif_densities(copy) == []  # the per-image curve belonged to the model
    pd.testing.assert_frame_equal(accuracy_curve(copy), with_model)
    RunDir(copy).read_summary()  # the points pass summary.json's schema

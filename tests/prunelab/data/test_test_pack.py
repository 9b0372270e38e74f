"""Test-image packs: a run whose folder dataset is gone still shows its test images from the pack."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from prunelab.analysis import results
from prunelab.config import DataConfig
from prunelab.data import DatasetError, clear_memory_cache, load_dataset
from prunelab.data.test_pack import TEST_PACK_FILE, load_test_pack, write_test_pack
from tests.helpers import run_cli, write_folder_dataset


@pytest.fixture()
def folder_run(tmp_path):
    """A finished baseline run trained on a tiny folder dataset; returns (run dir, dataset root)."""
    root = tmp_path / "photos"
    write_folder_dataset(root, classes=("cat", "dog", "frog"), per_class=4)
    runs = tmp_path / "runs"
    code, _out, err = run_cli("run", "baseline", "--dataset", f"folder:{root}", "--epochs", "1",
                             "--model", "vgg11", "--width", "0.25", "--batch-size", "4", "--device", "cpu",
                             "--runs-dir", str(runs), "--name", "photo-run")
    assert code == 0, err
    return runs / "photo-run", root


def test_pack_stands_in_for_a_missing_folder_dataset(folder_run):
    run, root = folder_run
    dataset = f"folder:{root}"
    indices = list(range(12))
    before = results.load_test_images(run, indices)
    names_before = results.class_names(run)
    assert before is not None and before.shape == (12, 32, 32, 3)

    write_test_pack(run.parent, DataConfig(dataset=dataset), load_dataset(DataConfig(dataset=dataset)))
    shutil.rmtree(root)
    clear_memory_cache()
    for cached in root.parent.glob("**/folder_*.npz"):
        cached.unlink()

    after = results.load_test_images(run, indices)
    assert after is not None and np.array_equal(after, before)
    assert results.class_names(run) == names_before == ["cat", "dog", "frog"]
    pack = load_test_pack(run.parent, DataConfig(dataset=dataset))
    assert pack is not None and pack.train_size == 0 and pack.test_labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4


def test_pack_of_another_dataset_or_corrupt_is_refused(folder_run, tmp_path, caplog):
    run, root = folder_run
    write_test_pack(run.parent, DataConfig(dataset="folder:elsewhere"),
                    load_dataset(DataConfig(dataset=f"folder:{root}")))
    with pytest.raises(DatasetError, match="holds 'folder:elsewhere'"):
        load_test_pack(run.parent, DataConfig(dataset=f"folder:{root}"))
    shutil.rmtree(root)
    clear_memory_cache()
    for cached in tmp_path.glob("**/folder_*.npz"):
        cached.unlink()
    assert results.load_test_images(run, [0]) is None  # the page gets None and says so; no traceback
    (run.parent / TEST_PACK_FILE).write_bytes(b"not an npz")
    with pytest.raises(DatasetError, match="corrupt"):
        load_test_pack(run.parent, DataConfig(dataset=f"folder:{root}"))
    assert results.load_test_images(run, [0]) is None
    assert "test-image pack" in caplog.text


def _shapes_run(runs, test_size: int):
    code, _out, err = run_cli("run", "baseline", "--epochs", "1", "--train-size", "40", "--test-size", str(test_size),
                             "--model", "vgg11", "--width", "0.125", "--batch-size", "20", "--device", "cpu",
                             "--runs-dir", str(runs), "--name", f"shapes-{test_size}")
    assert code == 0, err
    return runs / f"shapes-{test_size}"


def test_a_pack_of_the_runs_test_split_is_read_before_the_dataset(tmp_path, monkeypatch):
    run = _shapes_run(tmp_path / "runs", 30)
    config = DataConfig(dataset="shapes", train_size=40, test_size=30)
    own = results.load_test_images(run, range(30))
    write_test_pack(run.parent, config, load_dataset(config))

    def no_dataset(*args, **kwargs):
        raise AssertionError("the dataset was loaded although the pack holds the run's test split")

    monkeypatch.setattr("prunelab.data.load_dataset", no_dataset)
    assert np.array_equal(results.load_test_images(run, range(30)), own)


def test_a_pack_of_another_test_split_is_not_used(tmp_path):
    runs = tmp_path / "runs"
    run = _shapes_run(runs, 30)
    other = DataConfig(dataset="shapes", train_size=40, test_size=30, data_seed=7)  # same size, other images
    write_test_pack(runs, other, load_dataset(other))
    with pytest.raises(DatasetError, match="data seed 7"):
        load_test_pack(runs, DataConfig(dataset="shapes", train_size=40, test_size=30))
    own = load_dataset(DataConfig(dataset="shapes", train_size=40, test_size=30)).test_images
    assert not np.array_equal(load_dataset(other).test_images, own)
    assert np.array_equal(results.load_test_images(run, range(30)), own.permute(0, 2, 3, 1).numpy())


@pytest.mark.slow
def test_slimming_what_if_reads_the_pack_when_its_folder_dataset_is_gone(tmp_path):
    """Like ManiDP's what-if (gated_run), slimming's re-pruning falls back to the pack beside the run."""
    from prunelab.methods.slimming.reprune import what_if

    root = tmp_path / "photos"
    write_folder_dataset(root, classes=("cat", "dog", "frog"), per_class=4)
    runs = tmp_path / "runs"
    code, _out, err = run_cli("run", "slimming", "--dataset", f"folder:{root}", "--epochs", "1",
                             "--finetune-epochs", "1", "--lambda", "1e-3", "--model", "vgg11", "--width", "0.25",
                             "--batch-size", "4", "--device", "cpu", "--runs-dir", str(runs), "--name", "slim")
    assert code == 0, err
    data = DataConfig(dataset=f"folder:{root}")
    before = what_if(runs / "slim", 0.3)
    write_test_pack(runs, data, load_dataset(data))
    shutil.rmtree(root)
    clear_memory_cache()
    for cached in tmp_path.glob("**/folder_*.npz"):
        cached.unlink()
    with pytest.raises(DatasetError):
        load_dataset(data)
    after = what_if(runs / "slim", 0.3)
    assert after == before

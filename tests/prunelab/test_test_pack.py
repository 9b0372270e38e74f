"""Test-image packs: a run whose folder dataset is gone still shows its test images from the pack."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from prunelab import results
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

    write_test_pack(run.parent, dataset, load_dataset(DataConfig(dataset=dataset)))
    shutil.rmtree(root)
    clear_memory_cache()
    for cached in root.parent.glob("**/folder_*.npz"):
        cached.unlink()

    after = results.load_test_images(run, indices)
    assert after is not None and np.array_equal(after, before)
    assert results.class_names(run) == names_before == ["cat", "dog", "frog"]
    pack = load_test_pack(run.parent, dataset)
    assert pack is not None and pack.train_size == 0 and pack.test_labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4


def test_pack_of_another_dataset_or_corrupt_is_refused(folder_run, tmp_path, caplog):
    run, root = folder_run
    write_test_pack(run.parent, "folder:elsewhere", load_dataset(DataConfig(dataset=f"folder:{root}")))
    with pytest.raises(DatasetError, match="holds 'folder:elsewhere'"):
        load_test_pack(run.parent, f"folder:{root}")
    shutil.rmtree(root)
    clear_memory_cache()
    for cached in tmp_path.glob("**/folder_*.npz"):
        cached.unlink()
    assert results.load_test_images(run, [0]) is None  # the page gets None and says so; no traceback
    (run.parent / TEST_PACK_FILE).write_bytes(b"not an npz")
    with pytest.raises(DatasetError, match="corrupt"):
        load_test_pack(run.parent, f"folder:{root}")
    assert results.load_test_images(run, [0]) is None
    assert "test-image pack" in caplog.text

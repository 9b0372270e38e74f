"""Tests of prunelab.data: shapes generator, caching, BatchLoader, folder and torchvision loaders."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from prunelab.config import DataConfig
from prunelab.data import (
    BatchLoader,
    DatasetError,
    ImageDataset,
    clear_memory_cache,
    generate_shapes,
    load_dataset,
    normalize,
    torchvision_sets,
)
from prunelab.data import dataset as dataset_module
from prunelab.data import folder as folder_module
from tests.helpers import write_folder_dataset


@pytest.fixture(autouse=True)
def _fresh_memory_cache():
    # one intra-op thread: these tensors are small, and on a busy 2-core machine OpenMP threads
    # contending with other processes make small ops tens of times slower
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    clear_memory_cache()
    yield
    clear_memory_cache()
    torch.set_num_threads(threads)


# ------------------------------------------------------------------------------------------ shapes


def test_shapes_deterministic_and_seed_dependent():
    a = generate_shapes(300, seed=3)
    b = generate_shapes(300, seed=3)
    c = generate_shapes(300, seed=4)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    assert not torch.equal(a[0], c[0])
    # a smaller set is a prefix of a larger one with the same seed; train and test streams differ
    small = generate_shapes(100, seed=3)
    assert torch.equal(small[0], a[0][:100])
    test = generate_shapes(100, seed=3, split="test")
    assert not torch.equal(test[0], small[0])


def test_shapes_dataset_layout(tmp_path):
    ds = load_dataset(DataConfig(train_size=500, test_size=200, data_seed=1), cache_dir=tmp_path)
    assert isinstance(ds, ImageDataset)
    assert ds.name == "shapes"
    assert ds.train_images.shape == (500, 3, 32, 32) and ds.train_images.dtype == torch.uint8
    assert ds.test_images.shape == (200, 3, 32, 32) and ds.test_images.dtype == torch.uint8
    assert ds.train_labels.dtype == torch.int64 and ds.test_labels.dtype == torch.int64
    assert ds.num_classes == 10 and len(set(ds.class_names)) == 10
    assert ds.image_shape == (3, 32, 32)
    assert int(ds.train_labels.min()) >= 0 and int(ds.train_labels.max()) == 9
    counts = torch.bincount(ds.train_labels, minlength=10)
    assert counts.min() >= 40 and counts.max() <= 60
    for diff, n in ((ds.train_difficulty, 500), (ds.test_difficulty, 200)):
        assert diff is not None and diff.shape == (n,) and diff.dtype == torch.float32
        assert float(diff.min()) >= 0.0 and float(diff.max()) <= 1.0
        assert float(diff.min()) < 0.1 and float(diff.max()) > 0.9
    assert all(0.0 < m < 1.0 for m in ds.mean) and all(0.0 < s < 1.0 for s in ds.std)
    assert ds.hflip is True
    assert "shapes" in repr(ds)


def test_shapes_difficulty_makes_images_harder():
    images, labels, difficulty, info = generate_shapes(1000, seed=0, return_info=True)
    order = torch.argsort(difficulty)
    easy, hard = order[:200], order[-200:]
    # object area, contrast: smaller when hard; noise, clutter, occlusion: more when hard
    assert info["area"][hard].mean() < 0.4 * info["area"][easy].mean()
    assert info["contrast"][hard].mean() < 0.4 * info["contrast"][easy].mean()
    assert info["noise"][hard].mean() > 3 * info["noise"][easy].mean()
    assert info["strokes"][hard].mean() > 2.0 > info["strokes"][easy].mean()
    assert info["occluded"][hard].float().mean() > 0.3 and not info["occluded"][easy].any()
    # the easiest images are big, clean and centred: the centre pixel differs strongly from the corner
    # pixels for filled shapes (circle, square, diamond)
    x = images.float() / 255.0
    filled = easy[torch.isin(labels[easy], torch.tensor([0, 1, 6]))]
    centre = x[filled, :, 16, 16]
    corner = x[filled, :, 1, 1]
    gap = (centre - corner).abs().mean(dim=1)
    assert gap.mean() > 0.5 and gap.min() > 0.15
    # and their pixel noise is small: neighbouring background pixels are nearly equal
    assert (x[easy, :, 0, 0] - x[easy, :, 0, 1]).abs().mean() < 0.05


def test_shapes_cache_round_trip(tmp_path, monkeypatch):
    cfg = DataConfig(train_size=250, test_size=100, data_seed=7)
    first = load_dataset(cfg, cache_dir=tmp_path)
    files = list(tmp_path.glob("shapes_*.npz"))
    assert len(files) == 1
    clear_memory_cache()

    def _no_generation(*args, **kwargs):
        raise AssertionError("cache not used")

    monkeypatch.setattr("prunelab.data.shapes.generate_shapes", _no_generation)
    second = load_dataset(cfg, cache_dir=tmp_path)
    assert torch.equal(first.train_images, second.train_images)
    assert torch.equal(first.test_labels, second.test_labels)
    assert torch.equal(first.train_difficulty, second.train_difficulty)
    assert first.mean == pytest.approx(second.mean)
    # the in-process cache returns the very same object
    assert load_dataset(cfg, cache_dir=tmp_path) is second


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNELAB_CACHE_DIR", str(tmp_path / "envcache"))
    load_dataset(DataConfig(train_size=50, test_size=20))
    assert list((tmp_path / "envcache").glob("shapes_*.npz"))


# ------------------------------------------------------------------------------------ BatchLoader


def _toy(n: int = 37) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    return images, torch.arange(n) % 5


MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


@pytest.mark.parametrize("drop_last", [False, True])
def test_loader_covers_every_index_once(drop_last):
    images, labels = _toy()
    loader = BatchLoader(
        images, labels, 8, mean=MEAN, std=STD, shuffle=True, augment=True, drop_last=drop_last
    )
    seen = []
    for x, y, idx in loader:
        assert x.shape[1:] == (3, 32, 32) and x.dtype == torch.float32
        assert y.dtype == torch.int64 and idx.dtype == torch.int64
        assert torch.equal(y, labels[idx])
        seen.append(idx)
    assert len(seen) == len(loader) == (4 if drop_last else 5)
    all_idx = torch.cat(seen)
    assert len(set(all_idx.tolist())) == all_idx.numel()
    if not drop_last:
        assert sorted(all_idx.tolist()) == list(range(37))


def test_loader_without_augmentation_is_exact():
    images, labels = _toy()
    loader = BatchLoader(images, labels, 10, mean=MEAN, std=STD, shuffle=False, augment=False)
    xs, ys, idxs = zip(*loader, strict=True)
    assert torch.equal(torch.cat(idxs), torch.arange(37))
    assert torch.equal(torch.cat(ys), labels)
    expected = normalize(images, MEAN, STD)
    assert torch.allclose(torch.cat(xs), expected)
    manual = (images.float() / 255 - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    assert torch.allclose(expected, manual)
    assert normalize(images[0], MEAN, STD).shape == (3, 32, 32)


def test_loader_augmentation_crops_and_flips():
    images, labels = _toy(64)
    loader = BatchLoader(images, labels, 64, mean=MEAN, std=STD, shuffle=False, augment=True, seed=1)
    x, _, idx = next(iter(loader))
    base = normalize(images[idx], MEAN, STD)
    assert x.shape == base.shape
    assert not all(torch.allclose(x[i], base[i]) for i in range(64))  # something was augmented
    # every augmented image is a crop of the reflect-padded original (possibly flipped)
    padded = torch.nn.functional.pad(base, (4, 4, 4, 4), mode="reflect")
    for i in range(8):
        found = False
        for cand in (x[i], x[i].flip(-1)):
            windows = padded[i].unfold(1, 32, 1).unfold(2, 32, 1)  # [3, 9, 9, 32, 32]
            diff = (windows - cand.view(3, 1, 1, 32, 32)).abs().amax(dim=(0, 3, 4))
            found = found or bool((diff < 1e-5).any())
        assert found
    # hflip=False and pad=0: identity
    plain = BatchLoader(
        images, labels, 64, mean=MEAN, std=STD, shuffle=False, augment=True, hflip=False, pad=0
    )
    assert torch.allclose(next(iter(plain))[0], base)


def test_loader_flip_only_and_options():
    images, labels = _toy(200)
    loader = BatchLoader(
        images,
        labels,
        200,
        mean=MEAN,
        std=STD,
        shuffle=False,
        augment=True,
        pad=0,
        channels_last=True,
        dtype=torch.bfloat16,
    )
    x, _, idx = next(iter(loader))
    assert x.dtype == torch.bfloat16 and x.is_contiguous(memory_format=torch.channels_last)
    base = normalize(images[idx], MEAN, STD, dtype=torch.bfloat16)
    n_flipped = sum(torch.equal(x[i], base[i].flip(-1)) for i in range(200))
    assert 60 < n_flipped < 140


def test_loader_determinism_by_seed_and_epoch():
    images, labels = _toy()

    def run(seed: int, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        loader = BatchLoader(images, labels, 8, mean=MEAN, std=STD, shuffle=True, augment=True, seed=seed)
        loader.set_epoch(epoch)
        xs, _, idxs = zip(*loader, strict=True)
        return torch.cat(xs), torch.cat(idxs)

    a, b = run(0, 0), run(0, 0)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    c = run(0, 1)
    assert not torch.equal(a[1], c[1])
    d = run(5, 0)
    assert not torch.equal(a[1], d[1])


def test_loader_rejects_bad_input():
    images, labels = _toy()
    with pytest.raises(TypeError):
        BatchLoader(images.float(), labels, 8, mean=MEAN, std=STD, shuffle=False, augment=False)
    with pytest.raises(ValueError):
        BatchLoader(images, labels[:5], 8, mean=MEAN, std=STD, shuffle=False, augment=False)


# ----------------------------------------------------------------------------------- folder:PATH


def test_folder_dataset_and_cache(tmp_path, monkeypatch):
    root = tmp_path / "tree"
    write_folder_dataset(root, per_class=6)
    cache = tmp_path / "cache"
    cfg = DataConfig(dataset=f"folder:{root}")
    ds = load_dataset(cfg, cache_dir=cache)
    assert ds.class_names == ["cat", "dog"]
    assert ds.train_images.shape == (12, 3, 32, 32) and ds.train_images.dtype == torch.uint8
    assert ds.test_images.shape == (12, 3, 32, 32)
    assert ds.train_labels.tolist() == [0] * 6 + [1] * 6
    # red channel encodes the class
    red = ds.train_images[:, 0].float().mean(dim=(1, 2))
    assert (red[:6] < 80).all() and (red[6:] > 150).all()
    assert len(list(cache.glob("folder_*.npz"))) == 1

    # second load (fresh process cache) reads the .npz without decoding
    clear_memory_cache()

    def _no_decode(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr("prunelab.data.folder.decode_images", _no_decode)
    listings = []
    real_scan = folder_module._scan
    monkeypatch.setattr("prunelab.data.folder._scan", lambda root: listings.append(root) or real_scan(root))
    again = load_dataset(cfg, cache_dir=cache)
    assert torch.equal(again.train_images, ds.train_images)
    assert listings == []  # nothing changed on disk: the first listing is reused, no 60k-file walk
    monkeypatch.undo()

    # a new file changes the key: decoded again and the subset size applies
    Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)).save(root / "train" / "dog" / "new.png")
    os.utime(root / "train" / "dog" / "new.png", (time.time() + 5, time.time() + 5))
    small = load_dataset(DataConfig(dataset=f"folder:{root}", train_size=10, test_size=20), cache_dir=cache)
    assert small.train_images.shape[0] == 10 and small.test_images.shape[0] == 12
    assert len(list(cache.glob("folder_*.npz"))) == 2
    assert folder_module.scan_folder(root)["count"] == 25  # the new file was listed


def test_folder_errors(tmp_path):
    cache = tmp_path / "cache"
    missing = tmp_path / "nope"
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(DataConfig(dataset=f"folder:{missing}"), cache_dir=cache)

    root = tmp_path / "tree"
    (root / "train" / "a").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no test/ subfolder"):
        load_dataset(DataConfig(dataset=f"folder:{root}"), cache_dir=cache)

    write_folder_dataset(root, classes=("a", "b"), per_class=1)
    (root / "train" / "c").mkdir()
    (root / "test" / "c").mkdir()
    with pytest.raises(DatasetError, match=r"no images .* for class\(es\) c"):
        load_dataset(DataConfig(dataset=f"folder:{root}"), cache_dir=cache)

    (root / "test" / "c").rmdir()
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(root / "train" / "c" / "x.png")
    with pytest.raises(DatasetError, match="missing in test: \\['c'\\]"):
        load_dataset(DataConfig(dataset=f"folder:{root}"), cache_dir=cache)

    (root / "test" / "c").mkdir()
    (root / "test" / "c" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"broken\.png"):
        load_dataset(DataConfig(dataset=f"folder:{root}"), cache_dir=cache)


# ----------------------------------------------------------------------------------- torchvision


def test_torchvision_offline_gives_helpful_error(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tv_utils

    def _offline(*args, **kwargs):
        raise OSError("<urlopen error [Errno -2] Name or service not known>")

    # make the download fail fast and deterministically, whatever the network does
    monkeypatch.setattr(tv_utils, "_urlretrieve", _offline)
    cfg = DataConfig(dataset="cifar10", data_dir=str(tmp_path / "data"))
    with pytest.raises(DatasetError) as info:
        load_dataset(cfg, cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert "CIFAR-10" in message and "cifar-10-batches-py" in message
    assert "download failed" in message and "folder:PATH" in message
    assert "\n" not in message


def test_torchvision_conversion_and_subset(tmp_path, monkeypatch):
    class FakeMNIST:
        def __init__(self, n: int) -> None:
            self.data = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8)
            self.targets = torch.arange(n) % 10
            self.classes = [f"{i} - digit" for i in range(10)]

    fakes = {True: FakeMNIST(50), False: FakeMNIST(30)}
    monkeypatch.setattr(torchvision_sets, "_open", lambda name, spec, root, train: fakes[train])
    cfg = DataConfig(dataset="mnist", train_size=20, test_size=10, data_dir=str(tmp_path))
    ds = load_dataset(cfg, cache_dir=tmp_path / "cache")
    assert ds.train_images.shape == (20, 3, 32, 32) and ds.test_images.shape == (10, 3, 32, 32)
    assert ds.hflip is False and ds.class_names == [str(i) for i in range(10)]
    assert ds.train_difficulty is None
    # padded 28 -> 32 with zeros, three identical channels
    assert int(ds.train_images[:, :, :2].max()) == 0
    assert torch.equal(ds.train_images[:, 0], ds.train_images[:, 2])
    # the chosen subset is deterministic and matches the source images
    source = fakes[True]
    match = (source.data == ds.train_images[0, 0, 2:30, 2:30]).all(-1).all(-1)
    assert ds.train_labels[0] == source.targets[match][0]
    clear_memory_cache()

    def _must_not_open(*args):
        raise AssertionError("cache not used")

    monkeypatch.setattr(torchvision_sets, "_open", _must_not_open)
    again = load_dataset(cfg, cache_dir=tmp_path / "cache")
    assert torch.equal(again.train_images, ds.train_images)


def test_unknown_dataset_error():
    with pytest.raises(DatasetError, match="allowed"):
        dataset_module._load_uncached(DataConfig.model_construct(dataset="imagenet"), Path("/tmp"))


def test_generation_restores_torch_thread_count():
    torch.set_num_threads(2)
    generate_shapes(10, seed=0)
    assert torch.get_num_threads() == 2

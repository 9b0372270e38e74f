from pathlib import Path

import pytest
import torch

import prunelab
from prunelab.data import load_dataset
from prunelab.runs.progress import Cancelled, Progress
from prunelab.runs.store import RunStore
from prunelab.training.engine import Trainer, run_training
from tests.helpers import tiny_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    config = tiny_config(epochs=4, train_size=2000, test_size=500, batch_size=32, lr=0.1)
    run = RunStore(tmp_path_factory.mktemp("runs")).create(config)
    summary = run_training(config, run)
    return config, run, summary


@pytest.mark.slow
def test_short_training_clearly_learns(trained: tuple) -> None:
    _, run, summary = trained
    assert summary["test_acc"] > 0.35  # 10 classes: chance is 0.10
    rows = run.read_metrics()
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]


@pytest.mark.slow
def test_run_directory_is_complete(trained: tuple) -> None:
    config, run, summary = trained
    assert run.read_status()["state"] == "done"
    assert run.read_status()["fraction"] == 1.0
    for name in ("config.json", "status.json", "metrics.jsonl", "summary.json", "checkpoint.pt", "model.pt",
                 "log.txt"):
        assert run.file(name).is_file(), name
    assert summary["macs_per_image"] > 0 and summary["params"] > 0 and summary["wall_time_s"] > 0
    assert run.read_config() == config


@pytest.mark.slow
def test_load_model_reproduces_the_evaluation(trained: tuple) -> None:
    config, run, summary = trained
    model = prunelab.load_model(run.path)
    trainer = Trainer(config, run)
    assert trainer.evaluate(model).acc == pytest.approx(summary["test_acc"])


@pytest.mark.slow
def test_harder_shapes_are_really_harder(trained: tuple) -> None:
    """Test accuracy on the hardest fifth of `shapes` is clearly below the easiest fifth."""
    config, run, _ = trained
    result = Trainer(config, run).evaluate(prunelab.load_model(run.path))
    difficulty = load_dataset(config.data).test_difficulty
    order = torch.argsort(difficulty)
    fifth = len(order) // 5
    correct = (result.pred == result.labels).float()
    easy, hard = correct[order[:fifth]].mean(), correct[order[-fifth:]].mean()
    assert easy > hard + 0.2, (float(easy), float(hard))


def test_cancel_stops_at_a_batch_boundary(tmp_path: Path) -> None:
    config = tiny_config(epochs=2)
    run = RunStore(tmp_path).create(config)
    progress = Progress(run.run_id)
    progress.add_listener(lambda snap: progress.request_cancel() if snap.get("batch") == 2 else None)
    with pytest.raises(Cancelled):
        run_training(config, run, progress)
    assert run.read_status()["state"] == "cancelled"
    assert progress.snapshot()["batch"] == 2


def test_failure_is_recorded_with_message_and_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tiny_config()
    run = RunStore(tmp_path).create(config)

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom in epoch")

    monkeypatch.setattr(Trainer, "train_one_epoch", explode)
    with pytest.raises(RuntimeError):
        run_training(config, run)
    status = run.read_status()
    assert status["state"] == "failed" and "boom in epoch" in status["error"]
    assert "Traceback" in run.file("traceback.txt").read_text()


def test_cuda_request_without_gpu_is_a_clear_error(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    config = tiny_config()
    config.train.device = "cuda"
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        Trainer(config, RunStore(tmp_path).create(config))


def test_threads_setting_applies_while_training_and_is_restored(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    wanted = 1 if before != 1 else 2
    config = tiny_config(epochs=1)
    config.train.threads = wanted
    seen: list[int] = []
    real_epoch = Trainer.train_one_epoch

    def spy(self: Trainer, *args: object, **kwargs: object) -> object:
        seen.append(torch.get_num_threads())
        return real_epoch(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "train_one_epoch", spy)
    run_training(config, RunStore(tmp_path).create(config))
    assert seen and set(seen) == {wanted}
    assert torch.get_num_threads() == before


@pytest.mark.parametrize(("setting", "expected"), [("auto", False), (True, True), (False, False)])
def test_channels_last_setting_on_cpu(tmp_path: Path, setting: object, expected: bool) -> None:
    """'auto' keeps NCHW on CPU; true asks for channels_last on CPU too, for the model and its batches."""
    config = tiny_config(model="resnet20", width=0.5)
    config = config.model_copy(update={"train": config.train.model_copy(update={"channels_last": setting})})
    trainer = Trainer(config, RunStore(tmp_path).create(config))
    model = trainer.build_fresh_model()
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    x, _, _ = next(iter(trainer.loader("train")))
    layout = torch.channels_last
    assert conv.weight.is_contiguous(memory_format=layout) == expected
    assert x.is_contiguous(memory_format=layout) == expected
    assert trainer.context.channels_last == expected

"""Peer comparison: Torch-Pruning's BNScalePruner against PruneLab's slimming prune, same model.

Both start from the SAME sparsity-trained network (`dense_model.pt` of the benchmark slimming run)
and remove the same fraction of channels with one global ranking of BN scales:

- PruneLab: `select_channels` (global threshold on |gamma|, per-layer guard) + `compact_model`;
- Torch-Pruning: `tp.pruner.BNScalePruner(global_pruning=True, pruning_ratio=r)` with its default
  `BNScaleImportance` (|gamma| normalised by each group's mean), and a second time with
  `normalizer=None` (raw |gamma|, the paper's criterion). The classifier is ignored (its outputs are
  the classes); on a ResNet without `prune_residual` the convolutions that write the residual stream
  are ignored too, so both prune the same layers.

Each pruned network is then fine-tuned with the same schedule (same epochs, learning rate, data
order and seed: `Trainer.train_one_epoch` of a plain run) and evaluated on the test set.

    python benchmarks/bench_peer.py --quick --out /tmp/peer.json
"""

from __future__ import annotations

import copy
import time
from typing import Any

import bench_slimming
import common
import torch
import torch_pruning as tp
from torch import nn

from prunelab.config import RunConfig
from prunelab.methods import Phase
from prunelab.methods.slimming.method import finetune_lr, load_dense_model
from prunelab.methods.slimming.pruning import channel_scores, compact_model, find_prunable_units, select_channels
from prunelab.models import ResNet
from prunelab.training.engine import Trainer, seed_everything
from prunelab.training.flops import count_macs, count_params

# name -> normalizer of Torch-Pruning's BNScaleImportance ("mean" is its default)
TP_VARIANTS = {"torch_pruning": "mean", "torch_pruning_raw_gamma": None}


def prunelab_prune(dense: nn.Module, config: RunConfig, input_shape: tuple[int, ...]) -> nn.Module:
    method = config.method
    units = find_prunable_units(dense, method.prune_residual, input_shape)
    selection = select_channels(channel_scores(dense, units), method.prune_ratio, method.min_channels)
    return compact_model(dense, units, selection.keep, config.model.name)


def ignored_layers(model: nn.Module, prune_residual: bool) -> list[nn.Module]:
    """Layers Torch-Pruning must not prune: the classifier and, like PruneLab, the residual stream."""
    ignored: list[nn.Module] = [model.classifier]
    if isinstance(model, ResNet) and not prune_residual:
        ignored.append(model.conv_stem)
        for block in model.blocks:
            ignored.append(block.conv_b)
            if isinstance(block.shortcut, nn.Sequential):
                ignored.append(block.shortcut[0])
    return ignored


def torch_pruning_prune(dense: nn.Module, config: RunConfig, input_shape: tuple[int, ...],
                        normalizer: str | None) -> nn.Module:
    model = copy.deepcopy(dense).eval()
    ignored = ignored_layers(model, config.method.prune_residual)
    pruner = tp.pruner.BNScalePruner(
        model, torch.zeros((1, *input_shape)),
        importance=tp.importance.BNScaleImportance(normalizer=normalizer), global_pruning=True,
        pruning_ratio=config.method.prune_ratio, ignored_layers=ignored)
    pruner.step()
    return model


def finetune(trainer: Trainer, model: nn.Module, epochs: int, lr: float, seed: int) -> list[float]:
    """The slimming run's fine-tuning schedule on `model`; returns the test accuracy after each epoch."""
    seed_everything(seed)
    phase = Phase("finetune", epochs, lr)
    optimizer, scheduler = trainer._optimizer(model, phase)  # the engine's optimizer and schedule
    accs = []
    for epoch in range(epochs):
        trainer.train_one_epoch(model, optimizer, phase, 0, epoch)
        scheduler.step()
        accs.append(trainer.evaluate(model).acc)
    return accs


def peer_comparison(dataset: str, full: bool, work: common.WorkDir, seed: int = 0) -> dict[str, Any]:
    run = bench_slimming.ensure_slimming_run(work, dataset, full, seed)
    config = run.read_config()
    shape = tuple(int(v) for v in run.load_torch("dense_model.pt").get("input_shape", (3, 32, 32)))
    dense = load_dense_model(run.path)
    plain = RunConfig.model_validate({**config.model_dump(), "method": {"name": "baseline"}})
    trainer = Trainer(plain, work.scratch("peer"), dataset=common.get_dataset(
        config.data.dataset, config.data.train_size, config.data.test_size, config.data.data_seed))
    epochs = config.method.finetune_epochs
    lr = finetune_lr(config)
    rows: dict[str, dict[str, Any]] = {"dense": {
        "macs": count_macs(dense, shape), "params": count_params(dense), "acc": trainer.evaluate(dense).acc}}
    pruned = {"prunelab": prunelab_prune(dense, config, shape)}
    for name, normalizer in TP_VARIANTS.items():
        pruned[name] = torch_pruning_prune(dense, config, shape, normalizer)
    for name, model in pruned.items():
        started = time.perf_counter()
        row: dict[str, Any] = {"macs": count_macs(model, shape), "params": count_params(model),
                               "acc_after_prune": trainer.evaluate(model).acc}
        accs = finetune(trainer, model, epochs, lr, seed)
        row.update({"acc_after_finetune": accs[-1] if accs else row["acc_after_prune"], "acc_per_epoch": accs,
                    "macs_ratio": rows["dense"]["macs"] / count_macs(model, shape),
                    "channels": [int(m.out_channels) for m in model.modules() if isinstance(m, nn.Conv2d)],
                    "seconds": time.perf_counter() - started})
        rows[name] = row
        common.log(f"peer {name}: MACs {row['macs']}, params {row['params']}, acc "
                   f"{row['acc_after_prune']:.3f} -> {row['acc_after_finetune']:.3f} after {epochs} epochs")
    return {"peer": {"rows": rows, "prune_ratio": config.method.prune_ratio, "finetune_epochs": epochs,
                     "finetune_lr": lr, "model": config.model.name, "width": config.model.width,
                     "dataset": dataset, "torch_pruning_version": tp.__version__,
                     "run_acc_after_finetune": run.read_summary().get("acc_after_finetune"),
                     "load_average": common.load_average()}}


def main() -> None:
    common.run_section(__doc__.split("\n")[0], peer_comparison)


if __name__ == "__main__":
    main()

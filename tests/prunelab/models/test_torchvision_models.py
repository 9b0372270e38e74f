"""torchvision models through one DependencyGraph walk (issue 34): names, stems, specs, weights, channel groups,
both methods' pruning and gating, and PruneLab's own models unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torchvision
from pydantic import ValidationError
from torch import nn

from prunelab.analysis.model_support import README_END, README_START, readme_with_table, support_rows
from prunelab.config import ModelConfig
from prunelab.methods.manidp.gates import GateStyle, install_gates, named_gates, records
from prunelab.methods.manidp.macs import active_counts, build_plan, verify_macs
from prunelab.methods.slimming.pruning import (
    channel_scores,
    compact_model,
    find_channel_groups,
    find_prunable_units,
    masked_model,
    select_channels,
    select_units,
    verify_compact,
)
from prunelab.models import build_model, channel_units, model_spec, spec_of
from prunelab.models.catalog import TORCHVISION_NAMES
from prunelab.models.channel_graph import channel_groups, free_units
from prunelab.models.weights import WeightsError, load_weights
from prunelab.training.flops import count_macs

ROOT = Path(__file__).resolve().parents[3]
SHAPE = (3, 32, 32)


def tv(arch: str, classes: int = 10, cifar_stem: bool = True) -> nn.Module:
    return build_model(model_spec(f"torchvision:{arch}", classes, 1.0, cifar_stem)).eval()


def randomise_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.copy_(torch.rand(module.num_features, generator=generator))
                module.running_mean.copy_(torch.rand(module.num_features, generator=generator) - 0.5)
    return model


# --- names, config, stems -----------------------------------------------------------------------
def test_the_catalogue_lists_exactly_torchvisions_classification_models() -> None:
    assert list(TORCHVISION_NAMES) == torchvision.models.list_models(module=torchvision.models)


def test_config_accepts_torchvision_names_at_their_own_width_and_refuses_the_rest() -> None:
    config = ModelConfig(name="torchvision:resnet18")
    assert (config.width, config.cifar_stem, config.weights) == (1.0, True, None)
    assert ModelConfig(name="torchvision:resnet18", cifar_stem=False).cifar_stem is False
    with pytest.raises(ValidationError, match=r"unknown torchvision model 'NO_SUCH_NET'.*resnet18"):
        ModelConfig(name="torchvision:NO_SUCH_NET")
    with pytest.raises(ValidationError, match=r"width must be 1\.0"):
        ModelConfig(name="torchvision:resnet18", width=0.5)
    with pytest.raises(ValidationError, match="torchvision:NAME models only"):
        ModelConfig(name="vgg11", weights="x.pt")
    assert ModelConfig().cifar_stem is None  # PruneLab's own models: no stem option recorded


def test_the_cifar_stem_is_a_3x3_stride_1_convolution_without_max_pool() -> None:
    model = tv("resnet18")
    assert (model.conv1.kernel_size, model.conv1.stride) == ((3, 3), (1, 1))
    assert isinstance(model.maxpool, nn.Identity)
    assert model(torch.zeros(2, *SHAPE)).shape == (2, 10)
    imagenet = tv("resnet18", cifar_stem=False)
    assert (imagenet.conv1.kernel_size, imagenet.conv1.stride) == ((7, 7), (2, 2))
    assert isinstance(imagenet.maxpool, nn.MaxPool2d)
    assert count_macs(model, SHAPE) > 10 * count_macs(imagenet, SHAPE)  # 32x32 all the way to layer1
    mobile = tv("mobilenet_v2")
    assert mobile.features[0][0].stride == (1, 1)
    assert tv("vgg11_bn").prunelab_base["replaced"] == []  # already a 3x3 stride-1 stem


# --- one DependencyGraph walk ---------------------------------------------------------------------
@pytest.mark.parametrize(("name", "width"), [("vgg11", 0.25), ("resnet20", 0.5)])
def test_prunelabs_own_units_are_the_free_groups_of_the_dependency_graph(name: str, width: float) -> None:
    """The units a PruneLab model describes (steps) and the DG's free groups are the same channels."""
    model = build_model(model_spec(name, 10, width))
    units = channel_units(model)
    free = {group.producers[0]: group for group in channel_groups(model, SHAPE) if group.free}
    interior = [unit for unit in units if not unit.residual]
    assert sorted(free) == sorted(unit.conv for unit in interior)
    for unit in interior:
        group = free[unit.conv]
        assert group.bns == (unit.bn,)
        assert set(group.consumers) == set(unit.consumers)
    residual_bns = {unit.bn for unit in units if unit.residual}
    coupled = {bn for group in channel_groups(model, SHAPE) if not group.free for bn in group.bns}
    assert residual_bns <= coupled


# today's results (commit ec907b4, before the walk moved into prunelab.models.channel_graph), fixed seeds
TODAY_SLIMMING = {("vgg11", 0.25, False): ([9, 20, 27, 29, 66, 61, 63, 69], 2576490),
                  ("resnet20", 0.5, False): ([4, 5, 6, 10, 6, 7, 15, 17, 14], 5567808),
                  ("resnet20", 0.5, True): ([6, 4, 5, 5, 10, 10, 6, 7, 15, 15, 15, 14], 3424086)}
TODAY_GATED = {("vgg11", 0.25): (9880832, [6582320, 6586578, 6693818, 6653620]),
               ("resnet20", 0.5): (10314048, [5143296, 5265984, 5274048, 5091456])}


@pytest.mark.parametrize("case", list(TODAY_SLIMMING))
def test_prunelabs_own_models_keep_todays_channels_and_macs(case: tuple[str, float, bool]) -> None:
    name, width, residual = case
    torch.manual_seed(0)
    model = build_model(model_spec(name, 10, width)).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0, 1)
    units = find_prunable_units(model, residual)
    selection = select_channels(channel_scores(model, units), 0.5, 2)
    kept = [int(mask.sum()) for mask in selection.keep]
    assert (kept, count_macs(compact_model(model, units, selection.keep), SHAPE)) == TODAY_SLIMMING[case]


@pytest.mark.parametrize("case", list(TODAY_GATED))
def test_prunelabs_own_gated_models_keep_todays_per_image_macs(case: tuple[str, float]) -> None:
    torch.manual_seed(0)
    model = install_gates(build_model(model_spec(case[0], 10, case[1])), GateStyle()).eval()
    plan = build_plan(model, SHAPE)
    with torch.no_grad():
        model(torch.randn(4, *SHAPE, generator=torch.Generator().manual_seed(1)))
    macs = plan.macs(active_counts([record.mask for record in records(model)]))
    assert (plan.dense_macs(), [int(v) for v in macs]) == TODAY_GATED[case]


def test_free_groups_of_torchvision_models() -> None:
    units, skipped = free_units(tv("resnet18"))
    assert [unit.bn for unit in units] == [f"layer{s}.{b}.bn1" for s in range(1, 5) for b in range(2)]
    assert all(unit.consumers == (unit.conv.replace("conv1", "conv2"),) for unit in units)
    assert "bn1" in skipped and "residual add" in skipped["bn1"]
    units, skipped = free_units(tv("mobilenet_v2"))
    expand = next(unit for unit in units if unit.bn == "features.2.conv.0.1")
    assert expand.conv == "features.2.conv.0.0"
    assert expand.carriers == (("features.2.conv.1.0", "features.2.conv.1.1"),)  # the depthwise pair
    assert expand.consumers == ("features.2.conv.2",)
    assert any("residual add" in reason for reason in skipped.values())
    groups = {group.name: group for group in channel_groups(tv("resnext50_32x4d"), SHAPE)}
    assert groups["layer1.0.bn1"].grouped and not groups["layer1.0.bn1"].prunable


def test_a_model_the_tracer_cannot_follow_or_without_batchnorm_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="cannot trace ShuffleNetV2"):
        channel_groups(tv("shufflenet_v2_x0_5"), SHAPE)
    with pytest.raises(ValueError, match="no BatchNorm2d layer"):
        channel_groups(tv("squeezenet1_1"), SHAPE)


# --- slimming on torchvision models ------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["mobilenet_v2", "resnet18", pytest.param("densenet121", marks=pytest.mark.slow)])
def test_slimming_cuts_a_torchvision_model_and_the_compact_one_computes_the_masked_function(arch: str) -> None:
    model = randomise_bn(tv(arch))
    units = select_units(find_channel_groups(model, SHAPE), True)
    keep = select_channels(channel_scores(model, units), 0.4).keep
    compact = compact_model(model, units, keep)
    result = verify_compact(compact, masked_model(model, units, keep), torch.randn(3, *SHAPE))
    assert result["passed"]
    assert count_macs(compact, SHAPE) < count_macs(model, SHAPE)
    rebuilt = build_model(json.loads(json.dumps(spec_of(compact))))  # the spec a checkpoint stores
    rebuilt.load_state_dict(compact.state_dict())
    images = torch.randn(2, *SHAPE)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(images), compact(images))


@pytest.mark.parametrize(("name", "width"), [("vgg11", 0.25), ("resnet20", 0.5)])
def test_prunelabs_own_conv_bn_pairs_from_the_trace_are_those_its_steps_describe(name: str, width: float) -> None:
    from prunelab.models import ChannelUnit, ResidualBlock, StaticConv, walk
    from prunelab.models.channel_graph import conv_bn_pairs

    model = build_model(model_spec(name, 10, width))
    described = set()
    for step in walk(model):
        if isinstance(step, ChannelUnit | StaticConv):
            described.add((step.conv, step.bn))
        elif isinstance(step, ResidualBlock):
            described.update((unit.conv, unit.bn) for unit in step.units)
            if step.shortcut is not None:
                described.add((step.shortcut.conv, step.shortcut.bn))
    assert set(conv_bn_pairs(model)) == described


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v2", "densenet121"])
def test_every_conv_bn_pair_of_a_torchvision_model_folds_into_one_convolution(arch: str) -> None:
    from prunelab.models.channel_graph import conv_bn_pairs
    from prunelab.speed.bn_folding import fold_bn

    model = randomise_bn(tv(arch))
    pairs = conv_bn_pairs(model)
    bns = [name for name, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
    pre_activation = [name for name in bns if name.endswith(("norm1", "norm5")) or name.endswith("transition1.norm")
                      or ".transition" in name]  # DenseNet's BNs read a concatenation or a block output
    assert sorted(bn for _, bn in pairs) == sorted(set(bns) - set(pre_activation))
    folded = fold_bn(model)
    images = torch.randn(2, *SHAPE)
    with torch.no_grad():
        torch.testing.assert_close(folded(images), model(images), rtol=1e-4, atol=1e-4)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in folded.modules()) == len(bns) - len(pairs)


def test_round_to_keeps_multiples_and_brings_back_the_highest_scores_first() -> None:
    scores = [torch.tensor([0.1, 0.9, 0.5, 0.2, 0.8, 0.3, 0.05, 0.7]), torch.tensor([0.6, 0.01, 0.02])]
    assert [m.int().tolist() for m in select_channels(scores, 0.5, 1, 2).keep] == [[0, 1, 1, 0, 1, 0, 0, 1],
                                                                                   [1, 0, 1]]
    assert select_channels(scores, 0.5, 1, 4).keep[1].all()  # a multiple of 4 above 3 channels: all of them
    model = randomise_bn(tv("mobilenet_v2"))
    units = select_units(find_channel_groups(model, SHAPE), True)
    keep = select_channels(channel_scores(model, units), 0.5, 1, 8).keep
    assert all(int(m.sum()) % 8 == 0 or int(m.sum()) == m.numel() for m in keep)
    assert verify_compact(compact_model(model, units, keep), masked_model(model, units, keep),
                          torch.randn(2, *SHAPE))["passed"]


# --- ManiDP on torchvision models ---------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v2", "regnet_y_400mf"])
def test_gated_torchvision_models_per_image_macs_match_their_sliced_sub_networks(arch: str) -> None:
    """Depthwise carriers (MobileNet), grouped convolutions and squeeze-excitation left ungated (RegNetY)."""
    torch.manual_seed(0)
    model = install_gates(randomise_bn(tv(arch)), GateStyle(small_init=True)).eval()
    gates = named_gates(model)
    assert gates and all(name.startswith("gates.") for name, _ in gates)
    images = torch.randn(3, *SHAPE, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        for _, gate in gates:  # thresholds at each layer's median saliency: about half the channels off
            model(images)
            assert gate.record is not None
            gate.threshold.fill_(float(gate.record.saliency.median()) + 1e-6)  # all equal: one channel left
    with torch.no_grad():
        scale = max(1.0, float(model(images).abs().max()))
    check = verify_macs(model.eval(), images, atol=1e-4 * scale)
    assert check["passed"] and check["output_passed"], check
    plan = build_plan(model, SHAPE)
    with torch.no_grad():
        model(images)
    macs = plan.macs(active_counts([record.mask for record in records(model)]))
    assert (macs < plan.dense_macs()).all()
    assert 0 < plan.reach()["macs_in_reach"] <= plan.dense_macs()


def test_the_unit_trace_names_where_a_torchvision_sub_network_would_depart() -> None:
    from prunelab.methods.manidp.unit_trace import describe_divergence

    model = install_gates(randomise_bn(tv("mobilenet_v2")), GateStyle(small_init=True)).eval()
    message = describe_divergence("the sliced sub-network", model, torch.randn(2, *SHAPE), "sliced", 1e-4)
    assert message.startswith("the sliced sub-network differs from the masked model by")
    assert "no unit's output differs" in message  # they agree: nothing departs


def test_a_gated_torchvision_model_survives_a_deep_copy_and_a_rebuild_from_its_spec() -> None:
    import copy

    from prunelab.methods.manidp.method import ManiDP

    model = install_gates(tv("mobilenet_v2"), GateStyle(small_init=True))
    images = torch.randn(2, *SHAPE)
    with torch.no_grad():
        want = model(images)
        torch.testing.assert_close(copy.deepcopy(model)(images), want)  # the copy's hooks call the copy's gates
        rebuilt = ManiDP.restore_model(build_model(spec_of(model)), {"gate_style": GateStyle(True).as_dict()})
        rebuilt.load_state_dict(model.state_dict())
        torch.testing.assert_close(rebuilt.eval()(images), want)


# --- weights -------------------------------------------------------------------------------------------
def test_weights_load_from_a_run_file_with_a_new_head_and_say_what_happened(tmp_path: Path) -> None:
    source = randomise_bn(tv("resnet18", classes=10))
    gated = install_gates(tv("resnet18", classes=10), GateStyle())
    gated.load_state_dict({**gated.state_dict(), **source.state_dict()})
    path = tmp_path / "model.pt"
    torch.save({"model_spec": spec_of(gated), "model_state": gated.state_dict()}, path)  # as a run writes it
    target = tv("resnet18", classes=5)
    report = load_weights(target, path)
    assert report.reinitialised == ["fc.bias", "fc.weight"]
    assert report.ignored and all(key.startswith("gates.") for key in report.ignored)
    torch.testing.assert_close(target.layer1[0].bn1.weight, source.layer1[0].bn1.weight)
    assert "re-initialised: fc.bias, fc.weight" in report.line()


def test_weights_without_module_versions_still_load_into_mnasnet(tmp_path: Path) -> None:
    """A plain dict has no `_metadata`; MNASNet's loader needs its version, taken from the model itself."""
    source = randomise_bn(tv("mnasnet0_5"))
    torch.save(dict(source.state_dict()), tmp_path / "plain.pt")
    target = tv("mnasnet0_5")
    assert load_weights(target, tmp_path / "plain.pt").reinitialised == []
    torch.testing.assert_close(target.state_dict()["layers.1.weight"], source.state_dict()["layers.1.weight"])


def test_weights_with_other_shapes_or_no_tensors_get_one_line(tmp_path: Path) -> None:
    model = randomise_bn(tv("mobilenet_v2"))
    units = select_units(find_channel_groups(model, SHAPE), True)
    pruned = compact_model(model, units, select_channels(channel_scores(model, units), 0.3).keep)
    path = tmp_path / "pruned.pt"
    torch.save(pruned.state_dict(), path)
    with pytest.raises(WeightsError, match=r"tensors have other shapes than torchvision:mobilenet_v2") as error:
        load_weights(tv("mobilenet_v2"), path)
    assert "\n" not in str(error.value)
    (tmp_path / "junk.pt").write_text("not a tensor file")
    with pytest.raises(WeightsError, match="cannot read weights file"):
        load_weights(tv("mobilenet_v2"), tmp_path / "junk.pt")
    with pytest.raises(WeightsError, match="does not exist"):
        load_weights(tv("mobilenet_v2"), tmp_path / "missing.pt")
    torch.save({"epoch": torch.tensor(3)}, tmp_path / "other.pt")
    with pytest.raises(WeightsError, match="none of its 1 tensors matches"):
        load_weights(tv("mobilenet_v2"), tmp_path / "other.pt")


# --- the support table -----------------------------------------------------------------------------
def test_readme_holds_the_generated_support_table() -> None:
    rows = support_rows()
    assert [row["model"] for row in rows] == list(TORCHVISION_NAMES)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert README_START in readme and README_END in readme
    assert readme_with_table(readme, rows) == readme  # regenerate: python scripts/model_support.py
    by_name = {row["model"]: row for row in rows}
    assert by_name["resnet18"]["slimming"] == by_name["resnet18"]["manidp"] == "yes"
    assert by_name["vit_b_16"]["slimming"] == "no" and "BatchNorm2d" in by_name["vit_b_16"]["reason"]


# --- the command line ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("model", "says"), [("torchvision:NO_SUCH_NET", "allowed after torchvision:: alexnet"),
                                             ("torchvision:squeezenet1_1", "no BatchNorm2d layer"),
                                             ("torchvision:vit_b_16", "does not run on 32x32 images"),
                                             ("torchvision:shufflenet_v2_x1_0", "cannot trace ShuffleNetV2")])
def test_cli_refuses_unknown_and_unprunable_models_with_status_2(model: str, says: str, tmp_path: Path) -> None:
    from tests.helpers import run_cli

    code, _, err = run_cli("run", "slimming", "--model", model, "--runs-dir", str(tmp_path / "runs"))
    assert code == 2, err
    assert says in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_cli_lists_the_models() -> None:
    from tests.helpers import run_cli

    code, out, _ = run_cli("models")
    assert code == 0
    assert "torchvision:mobilenet_v2" in out and "resnet20" in out


@pytest.mark.slow
def test_cli_runs_both_methods_on_torchvision_models_and_weights_carry_over(tmp_path: Path) -> None:
    """`python -m prunelab run` (in this process): slimming on MobileNetV2, then ManiDP from its dense model; its
    compact model, another shape, is refused in one line."""
    from tests.helpers import run_cli

    runs = tmp_path / "runs"
    data = ["--dataset", "shapes", "--train-size", "96", "--test-size", "48", "--batch-size", "32",
            "--runs-dir", str(runs)]
    code, out, err = run_cli("run", "slimming", "--model", "torchvision:mobilenet_v2", "--epochs", "1",
                             "--finetune-epochs", "1", *data)
    assert code == 0, err
    slim_dir = Path(out.strip().splitlines()[-1])
    summary = json.loads((slim_dir / "summary.json").read_text())
    assert summary["macs_after"] < summary["macs_before"]
    pruning = json.loads((slim_dir / "pruning.json").read_text())
    assert pruning["verification"]["passed"]
    code, out, err = run_cli("run", "manidp", "--model", "torchvision:mobilenet_v2", "--epochs", "1",
                             "--weights", str(slim_dir / "dense_model.pt"), *data)
    assert code == 0, err
    run_dir = Path(out.strip().splitlines()[-1])
    assert "tensors loaded" in (run_dir / "log.txt").read_text()
    import pandas as pd

    macs = pd.read_parquet(run_dir / "per_image.parquet")["macs"]
    assert macs.nunique() > 1
    info = json.loads((run_dir / "manidp.json").read_text())
    assert info["macs_verification"]["passed"] and info["macs_verification"]["output_passed"]
    code, _, err = run_cli("run", "slimming", "--model", "torchvision:mobilenet_v2", "--weights",
                           str(slim_dir / "model.pt"), *data)  # the compact network: other shapes
    assert code == 2 and "other shapes" in err
    assert len(err.strip().splitlines()) == 1

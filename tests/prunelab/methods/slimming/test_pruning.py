"""prunelab.methods.slimming.pruning: L1 subgradient, global threshold with ties, per-layer guard, masked vs
compact nets."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from prunelab.methods.slimming.pruning import (
    add_l1_subgradient_,
    apply_min_channels,
    channel_counts,
    channel_scores,
    compact_model,
    find_channel_groups,
    find_prunable_units,
    global_keep_masks,
    l1_penalty,
    masked_model,
    select_channels,
    verify_compact,
)
from prunelab.models import VGG, ResNet, build_model, model_spec, spec_of


def _randomize_bns(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random gammas, betas and running statistics, so that masking and slicing are not trivially equal."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                c = module.num_features
                module.weight.copy_(torch.rand(c, generator=g) * 2 - 1)
                module.bias.copy_(torch.randn(c, generator=g) * 0.1)
                module.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                module.running_var.copy_(torch.rand(c, generator=g) + 0.5)
    return model.eval()


def _reference_keep(scores: list[torch.Tensor], ratio: float) -> list[list[bool]]:
    """Plain-Python reference: sort (score, unit, channel), drop the first round(ratio * N)."""
    items = [(float(s), u, c) for u, unit in enumerate(scores) for c, s in enumerate(unit.tolist())]
    k = int(ratio * len(items) + 0.5)
    dropped = {(u, c) for _, u, c in sorted(items)[:k]}
    return [[(u, c) not in dropped for c in range(len(unit))] for u, unit in enumerate(scores)]


# --- L1 term -----------------------------------------------------------------------------------
def test_l1_subgradient_equals_autograd_of_the_l1_term() -> None:
    torch.manual_seed(0)
    model = _randomize_bns(build_model(model_spec("vgg11", 10, 0.125))).train()
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    lam = 3e-3

    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    add_l1_subgradient_(bns, lam)
    ours = [bn.weight.grad.clone() for bn in bns]

    model.zero_grad()
    penalty = lam * sum(bn.weight.abs().sum() for bn in bns)
    (F.cross_entropy(model(x), y) + penalty).backward()
    for got, bn in zip(ours, bns, strict=True):
        torch.testing.assert_close(got, bn.weight.grad, rtol=1e-5, atol=1e-7)
    assert l1_penalty(bns, lam) == pytest.approx(float(penalty.detach()), rel=1e-5)


def test_l1_subgradient_is_zero_at_zero_and_lambda_zero_is_a_no_op() -> None:
    bn = nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([-0.5, 0.0, 2.0]))
    bn.weight.grad = torch.zeros(3)
    add_l1_subgradient_([bn], 0.1)
    assert bn.weight.grad.tolist() == pytest.approx([-0.1, 0.0, 0.1])
    add_l1_subgradient_([bn], 0.0)
    assert bn.weight.grad.tolist() == pytest.approx([-0.1, 0.0, 0.1])


# --- global threshold and guard -----------------------------------------------------------------
def test_global_threshold_removes_exact_count_and_breaks_ties_by_position() -> None:
    scores = [torch.tensor([0.1, 0.2, 0.2]), torch.tensor([0.2, 0.5])]
    threshold, keep, k = global_keep_masks(scores, 0.4)  # N = 5 -> k = 2
    assert k == 2 and threshold == pytest.approx(0.2)
    assert keep[0].tolist() == [False, False, True] and keep[1].tolist() == [True, True]
    threshold, keep, k = global_keep_masks(scores, 0.7)  # k = round(3.5) = 4: every 0.2 goes
    assert k == 4 and keep[0].tolist() == [False, False, False] and keep[1].tolist() == [False, True]


@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.33, 0.5, 0.7, 0.95])
def test_global_threshold_matches_reference_with_many_ties(ratio: float) -> None:
    g = torch.Generator().manual_seed(1)
    scores = [torch.randint(0, 4, (c,), generator=g).float() / 4 for c in (5, 8, 3, 16)]  # 4 values: ties
    threshold, keep, k = global_keep_masks(scores, ratio)
    assert [m.tolist() for m in keep] == _reference_keep(scores, ratio)
    removed = torch.cat([s[~m] for s, m in zip(scores, keep, strict=True)])
    kept = torch.cat([s[m] for s, m in zip(scores, keep, strict=True)])
    assert removed.numel() == k == int(ratio * 32 + 0.5)
    if k:
        assert float(removed.max()) == threshold <= float(kept.min())
    else:
        assert threshold == 0.0


def test_prune_ratio_zero_removes_nothing_and_bad_ratio_is_rejected() -> None:
    scores = [torch.zeros(4), torch.ones(2)]
    selection = select_channels(scores, 0.0)
    assert selection.channels_removed == 0 and selection.threshold == 0.0
    assert all(bool(m.all()) for m in selection.keep)
    with pytest.raises(ValueError, match="prune_ratio"):
        global_keep_masks(scores, 1.0)


def test_guard_keeps_the_largest_channels_of_a_layer_that_would_be_emptied() -> None:
    scores = [torch.tensor([0.01, 0.03, 0.02, 0.03]), torch.tensor([0.9, 0.8, 0.7, 0.6])]
    _, keep, k = global_keep_masks(scores, 0.5)
    assert not bool(keep[0].any())  # the global threshold empties layer 0
    selection = select_channels(scores, 0.5, min_channels=2)
    assert selection.guard_fired == [True, False]
    assert selection.keep[0].tolist() == [False, True, False, True]  # the two 0.03 (largest) survive
    assert selection.keep[1].tolist() == [True] * 4
    assert selection.removed_target == k == 4 and selection.channels_removed == 2
    masks, fired = apply_min_channels([torch.tensor([0.5, 0.5, 0.5])], [torch.zeros(3, dtype=torch.bool)], 1)
    assert masks[0].tolist() == [True, False, False] and fired == [True]  # ties: lower index first
    masks, fired = apply_min_channels([torch.tensor([0.1, 0.2])], [torch.zeros(2, dtype=torch.bool)], 5)
    assert masks[0].tolist() == [True, True] and fired == [True]  # min_channels above the width keeps all


# --- unit discovery --------------------------------------------------------------------------
def test_prunable_units_of_vgg_and_resnet() -> None:
    vgg = build_model(model_spec("vgg11", 10, 0.125))
    units = find_prunable_units(vgg)
    assert [u.name for u in units] == [n for n, m in vgg.named_modules() if isinstance(m, nn.BatchNorm2d)]
    assert not any(u.residual for u in units)

    resnet = build_model(model_spec("resnet20", 10, 0.25))
    inner = find_prunable_units(resnet, prune_residual=False)
    assert [u.name for u in inner] == [f"blocks.{i}.bn_a" for i in range(9)]
    groups = {u.name: u.bns for u in find_channel_groups(resnet)}
    assert groups["bn_stem"] == ("bn_stem", "blocks.0.bn_b", "blocks.1.bn_b", "blocks.2.bn_b")
    stage1 = ("blocks.3.bn_b", "blocks.3.shortcut.1", "blocks.4.bn_b", "blocks.5.bn_b")
    assert groups["blocks.3.bn_b"] == stage1
    full = find_prunable_units(resnet, prune_residual=True)
    assert len(full) == 9 + 3 and sum(u.residual for u in full) == 3


def test_model_without_batchnorm_is_rejected() -> None:
    with pytest.raises(ValueError, match="no BatchNorm2d"):
        find_prunable_units(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()))


# --- masked vs compact -------------------------------------------------------------------------
CASES = [("vgg11", 0.25, False), ("resnet20", 0.25, False), ("resnet20", 0.25, True)]


@pytest.mark.parametrize(("name", "width", "residual"), CASES)
def test_compact_equals_masked(name: str, width: float, residual: bool) -> None:
    torch.manual_seed(0)
    dense = _randomize_bns(build_model(model_spec(name, 10, width)))
    units = find_prunable_units(dense, residual)
    selection = select_channels(channel_scores(dense, units), 0.5, min_channels=1)
    masked = masked_model(dense, units, selection.keep)
    compact = compact_model(dense, units, selection.keep, name)

    assert type(compact) is type(dense) and isinstance(compact, VGG | ResNet)
    assert sum(p.numel() for p in compact.parameters()) < sum(p.numel() for p in dense.parameters())
    widths = {u.name: int(m.sum()) for u, m in zip(units, selection.keep, strict=True)}
    for unit in units:
        for bn in unit.bns:
            assert compact.get_submodule(bn).num_features == widths[unit.name]
    assert spec_of(build_model(spec_of(compact, name)), name) == spec_of(compact, name)

    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(masked(x), dense(x), atol=1e-3)  # the masking does change the function
        torch.testing.assert_close(compact(x), masked(x), rtol=1e-4, atol=1e-5)
    result = verify_compact(compact, masked, x)
    assert result["passed"] and result["max_abs_diff"] <= result["tolerance"]


def test_emptied_layer_keeps_its_minimum_and_the_network_still_runs() -> None:
    dense = _randomize_bns(build_model(model_spec("resnet20", 10, 0.25)))
    units = find_prunable_units(dense)
    victim = dense.get_submodule(units[4].name)
    with torch.no_grad():
        victim.weight.mul_(1e-4)  # every |gamma| of this layer far below all others
    scores = channel_scores(dense, units)
    _, keep, _ = global_keep_masks(scores, 0.5)
    assert not bool(keep[4].any())
    with pytest.raises(ValueError, match="every channel"):
        compact_model(dense, units, keep)

    selection = select_channels(scores, 0.5, min_channels=1)
    assert selection.guard_fired[4] and int(selection.keep[4].sum()) == 1
    assert int(torch.argmax(scores[4])) == int(torch.nonzero(selection.keep[4]))
    compact = compact_model(dense, units, selection.keep, "resnet20")
    assert compact.blocks[4].conv_a.out_channels == 1
    verify_compact(compact, masked_model(dense, units, selection.keep), torch.randn(4, 3, 32, 32))


def test_verify_compact_raises_naming_the_difference() -> None:
    dense = _randomize_bns(build_model(model_spec("vgg11", 10, 0.125)))
    units = find_prunable_units(dense)
    selection = select_channels(channel_scores(dense, units), 0.3)
    compact = compact_model(dense, units, selection.keep)
    with torch.no_grad():
        compact.classifier.bias.add_(1.0)
    with pytest.raises(RuntimeError, match="max \\|diff\\|"):
        verify_compact(compact, masked_model(dense, units, selection.keep), torch.randn(2, 3, 32, 32))


def test_nothing_removed_gives_an_identical_network() -> None:
    dense = _randomize_bns(build_model(model_spec("resnet20", 10, 0.25)))
    units = find_prunable_units(dense, prune_residual=True)
    selection = select_channels(channel_scores(dense, units), 0.0)
    compact = compact_model(dense, units, selection.keep, "resnet20")
    assert spec_of(compact, "resnet20") == spec_of(dense, "resnet20")
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(compact(x), dense(x))


# --- coupled residual groups (the reference scope) ---------------------------------------------
STEM_GROUP = ("bn_stem", "blocks.0.bn_b", "blocks.1.bn_b", "blocks.2.bn_b")  # resnet20: the first stage's stream


def _gammas_apart_from_the_stem_group(dense: nn.Module) -> None:
    """Every |gamma| in [0.6, 1.0], the stem group's channels 1.5 (far above the threshold of one removal)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, module in dense.named_modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.copy_(1.5 if name in STEM_GROUP else 0.6 + 0.4 * torch.rand(module.num_features,
                                                                                         generator=g))


def test_a_coupled_group_is_scored_by_its_mean_gamma_and_removed_as_a_whole() -> None:
    dense = _randomize_bns(build_model(model_spec("resnet20", 10, 0.5)))
    _gammas_apart_from_the_stem_group(dense)
    with torch.no_grad():  # channel 0: one large gamma among small ones (mean 0.5075, max 2.0); channel 1: 0.55 in all
        for name, value in zip(STEM_GROUP, (2.0, 0.01, 0.01, 0.01), strict=True):
            dense.get_submodule(name).weight[0] = value
            dense.get_submodule(name).weight[1] = 0.55
    units = find_prunable_units(dense, prune_residual=True)
    group = next(i for i, unit in enumerate(units) if unit.bns == STEM_GROUP)
    scores = channel_scores(dense, units)
    assert scores[group][:2].tolist() == pytest.approx([0.5075, 0.55])  # the group's mean |gamma|, not its max
    total = sum(unit.channels for unit in units)

    one = select_channels(scores, 1 / total)  # one channel goes: the lowest group mean (a max would pick channel 1)
    assert one.channels_removed == 1 and torch.nonzero(~one.keep[group]).flatten().tolist() == [0]
    compact = compact_model(dense, units, one.keep, "resnet20")
    for name in STEM_GROUP:  # removed from every BN of the group together, the rest untouched
        assert compact.get_submodule(name).num_features == dense.get_submodule(name).num_features - 1
        torch.testing.assert_close(compact.get_submodule(name).weight, dense.get_submodule(name).weight[1:])
    assert compact.blocks[0].conv_a.in_channels == compact.conv_stem.out_channels == compact.bn_stem.num_features

    two = select_channels(scores, 2 / total)
    assert torch.nonzero(~two.keep[group]).flatten().tolist() == [0, 1]
    x = torch.randn(4, 3, 32, 32)
    compact = compact_model(dense, units, two.keep, "resnet20")
    with torch.no_grad():  # the pruned model computes the masked model's function
        torch.testing.assert_close(compact(x), masked_model(dense, units, two.keep)(x), rtol=1e-4, atol=1e-5)


def test_the_guard_keeps_a_coupled_group_alive_in_every_bn_of_it() -> None:
    dense = _randomize_bns(build_model(model_spec("resnet20", 10, 0.5)))
    units = find_prunable_units(dense, prune_residual=True)
    group = next(i for i, unit in enumerate(units) if unit.bns == STEM_GROUP)
    with torch.no_grad():
        for name in STEM_GROUP:
            dense.get_submodule(name).weight.mul_(1e-4)  # the whole stream far below every other channel
    scores = channel_scores(dense, units)
    assert not bool(global_keep_masks(scores, 0.5)[1][group].any())  # the threshold alone would empty it

    selection = select_channels(scores, 0.5, min_channels=2)
    assert selection.guard_fired[group] and int(selection.keep[group].sum()) == 2
    kept = torch.nonzero(selection.keep[group]).flatten().tolist()
    assert kept == sorted(torch.topk(scores[group], 2).indices.tolist())  # the group's two best mean scores
    compact = compact_model(dense, units, selection.keep, "resnet20")
    assert {compact.get_submodule(name).num_features for name in STEM_GROUP} == {2}
    verify_compact(compact, masked_model(dense, units, selection.keep), torch.randn(4, 3, 32, 32))


def test_channel_counts_name_the_denominators() -> None:
    dense = build_model(model_spec("resnet20", 10, 1.0))
    groups = find_channel_groups(dense)
    interior, every = find_prunable_units(dense, False), find_prunable_units(dense, True)
    assert channel_counts(groups, interior) == {"channels_prunable": 336, "channels_all": 336 + 16 + 32 + 64,
                                                 "bn_channels_all": 16 + 336 + 336 + 32 + 64}
    selection = select_channels(channel_scores(_randomize_bns(dense), every), 0.4)
    counts = channel_counts(groups, every, selection)
    assert counts["channels_prunable"] == counts["channels_all"] == 448
    assert counts["channels_removed"] == round(0.4 * 448) == selection.channels_removed
    removed_per_bn = sum(int((~mask).sum()) * len(unit.bns) for unit, mask in zip(every, selection.keep, strict=True))
    assert counts["bn_channels_removed"] == removed_per_bn

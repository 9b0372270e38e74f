from dataclasses import replace

import pytest
import torch

from prunelab.models import (
    MODELS,
    ChannelUnit,
    ConvUnit,
    Head,
    ResidualBlock,
    StaticConv,
    build_model,
    channel_units,
    list_models,
    model_spec,
    spec_of,
    walk,
)


# resnet110 alone takes seconds on 2 cores: slow
@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.slow) if name == "resnet110" else name
                                  for name in sorted(MODELS)])
def test_forward_shape_and_spec_round_trip(name: str) -> None:
    model = build_model(model_spec(name, num_classes=7, width=0.25)).eval()
    x = torch.randn(2, 3, 32, 32)
    out = model(x)
    assert out.shape == (2, 7)
    rebuilt = build_model(spec_of(model, name)).eval()
    rebuilt.load_state_dict(model.state_dict())
    torch.testing.assert_close(rebuilt(x), out)


def test_unknown_model_lists_allowed_names() -> None:
    with pytest.raises(ValueError, match=r"allowed: .*resnet20"):
        model_spec("alexnet", 10)
    assert "vgg11" in list_models()


def test_resnet_depth_and_projection_shortcuts() -> None:
    model = build_model(model_spec("resnet56", 10, 1.0))
    assert len(model.blocks) == 27  # (56 - 2) / 2 basic blocks
    projections = [b for b in model.blocks if isinstance(b.shortcut, torch.nn.Sequential)]
    assert len(projections) == 2  # first block of stages 2 and 3


def test_width_multiplier_scales_channels() -> None:
    spec = model_spec("vgg11", 10, 0.5)
    assert spec["layers"][0] == 32 and spec["layers"][-1] == 256


def test_units_name_their_convolutions_sources_and_consumers() -> None:
    vgg = build_model(model_spec("vgg11", 10, 0.25))
    units = channel_units(vgg)
    convs = [i for i, module in enumerate(vgg.features) if isinstance(module, ConvUnit)]
    assert [u.name for u in units] == [f"features.{i}.gate" for i in convs]
    assert [u.conv for u in units] == [f"features.{i}.conv" for i in convs]
    assert [u.index for u in units] == list(range(len(convs)))
    assert units[0].source is None and [u.source for u in units[1:]] == list(range(len(convs) - 1))
    assert [u.consumers for u in units] == [(u.conv,) for u in units[1:]] + [("classifier",)]
    assert not any(u.residual for u in units) and all(u.relu for u in units)

    resnet = build_model(model_spec("resnet20", 10, 0.25))
    units = channel_units(resnet)
    assert len(units) == 18  # conv_a and conv_b of 9 blocks; the stem and the shortcuts are not units
    a, b = units[6], units[7]
    assert (a.name, a.block, a.source, a.consumers, a.residual) == ("blocks.3.gate_a", "blocks.3", None,
                                                                    ("blocks.3.conv_b",), False)
    assert (b.name, b.source, b.consumers, b.residual, b.relu) == ("blocks.3.gate_b", 6, (), True, False)
    steps = walk(resnet)
    assert isinstance(steps[0], StaticConv) and isinstance(steps[-1], Head)
    assert [step.shortcut is not None for step in steps[1:-1]] == [i in (3, 6) for i in range(9)]


def test_walk_refuses_a_model_without_steps_and_a_residual_block_on_a_gated_stream() -> None:
    with pytest.raises(TypeError, match="no steps"):
        walk(torch.nn.Linear(2, 2))
    unit = ChannelUnit("u.gate", "u.conv", "u.bn", "u")

    class GatedThenResidual(torch.nn.Module):
        def steps(self) -> list:
            return [unit, ResidualBlock("b", (replace(unit, name="b.gate", residual=True),)), Head("fc")]

    with pytest.raises(ValueError, match="full width"):
        walk(GatedThenResidual())

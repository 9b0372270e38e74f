import pytest
import torch

from prunelab.models import MODELS, build_model, list_models, model_spec, spec_of


@pytest.mark.parametrize("name", sorted(MODELS))
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

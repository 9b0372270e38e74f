import torch
from torch import nn

from prunelab.models import build_model, model_spec
from prunelab.training.flops import count_macs, count_params


def test_one_conv_hand_computed() -> None:
    model = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    # k_h * k_w * H_out * W_out * C_in * C_out multiply-accumulates
    assert count_macs(model, (3, 32, 32)) == 3 * 3 * 32 * 32 * 3 * 8


def test_one_linear_hand_computed() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5))
    assert count_macs(model, (3, 2, 2)) == 12 * 5
    assert count_params(model) == 12 * 5 + 5


def test_resnet20_matches_layer_by_layer_formula() -> None:
    model = build_model(model_spec("resnet20", 10, 1.0))
    expected = 0
    sizes: dict[nn.Module, int] = {}
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.__setitem__(m, o.shape[-1] * o.shape[-2]))
             for m in model.modules() if isinstance(m, nn.Conv2d)]
    model.eval()(torch.zeros(1, 3, 32, 32))
    for hook in hooks:
        hook.remove()
    for conv, hw in sizes.items():
        k_h, k_w = conv.kernel_size
        expected += k_h * k_w * hw * conv.in_channels * conv.out_channels
    expected += model.classifier.in_features * model.classifier.out_features
    assert count_macs(model) == expected
    assert 40e6 < expected < 42e6  # ResNet-20 is ~41 M MACs with projection shortcuts


def test_narrower_model_costs_less() -> None:
    wide = build_model(model_spec("vgg11", 10, 0.5))
    narrow = build_model(model_spec("vgg11", 10, 0.25))
    assert count_macs(narrow) < count_macs(wide) / 3
    assert count_params(narrow) < count_params(wide) / 3

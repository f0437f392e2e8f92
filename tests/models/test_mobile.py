"""MobileNetV2/V3 and EfficientNet: the same function as torchvision's networks, the building
blocks do what their papers say, the small-input variant, and clear errors for bad options.

(Parameter counts at 1000 classes: tests/models/test_reference.py; forward/backward of every
variant: tests/models/test_zoo.py.)
"""

from __future__ import annotations

import copy

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models._utils import _make_divisible

from trainlab.errors import ConfigError
from trainlab.models import create_model
from trainlab.models.efficientnet import efficientnet_spec
from trainlab.models.layers.checkpointing import set_grad_checkpointing
from trainlab.models.layers.mobile_blocks import (
    DepthwiseSeparable,
    InvertedResidual,
    make_divisible,
)
from trainlab.models.layers.squeeze_excite import SqueezeExcite


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    "name", ["mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0"]
)
def test_same_outputs_as_torchvision_with_its_weights(name: str) -> None:
    # Our tensors come in torchvision's order with its shapes, so its (random) weights load by
    # position; the two networks must then compute the same function, not only have equal sizes.
    torch.manual_seed(0)
    ref = getattr(torchvision.models, name)(weights=None).eval()
    ours = create_model(name).eval()
    for m in ref.modules():  # non-trivial normalisation statistics, so that they count
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0.0, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    keys, values = list(ours.state_dict()), list(ref.state_dict().values())
    assert [tuple(ours.state_dict()[k].shape) for k in keys] == [tuple(v.shape) for v in values]
    ours.load_state_dict(dict(zip(keys, values, strict=True)))
    with torch.no_grad():
        x = torch.randn(4, 3, 64, 64)
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("name", "width"),
    [("mobilenet_v2", 0.5), ("mobilenet_v2", 1.4), ("mobilenet_v3_small", 0.75),
     ("mobilenet_v3_large", 0.5)],
)  # fmt: skip
def test_width_multiplier_matches_torchvision(name: str, width: float) -> None:
    with torch.device("meta"):
        ours = create_model(name, width_mult=width)
        ref = getattr(torchvision.models, name)(weights=None, width_mult=width)
    assert _count(ours) == _count(ref)


def test_make_divisible_is_torchvisions_rule() -> None:
    for v in [1, 7.9, 12, 16 * 0.35, 24 * 1.4, 32 * 0.75, 96 * 1.1, 1280 * 1.2, 577.0]:
        assert make_divisible(v) == _make_divisible(v, 8)
    assert make_divisible(27, 8) == 32  # 24 would be more than 10 % below 27
    assert make_divisible(1, 8) == 8  # never below the divisor


def test_depthwise_separable_saves_the_papers_factor() -> None:
    sep = DepthwiseSeparable(64, 128, kernel=3)
    convs = [m for m in sep.modules() if isinstance(m, nn.Conv2d)]
    assert convs[0].groups == 64  # one 3×3 filter per input channel
    weights = sum(c.weight.numel() for c in convs)
    assert weights == 3 * 3 * 64 + 64 * 128  # k²·C_in + C_in·C_out
    assert 3 * 3 * 64 * 128 / weights > 7  # vs one full 3×3 conv
    assert sep(torch.randn(2, 64, 9, 9)).shape == (2, 128, 9, 9)


def test_inverted_residual_skip_and_linear_bottleneck() -> None:
    block = InvertedResidual(16, 16, hidden=96, kernel=3, stride=1).eval()
    assert isinstance(block.separable.pointwise[-1], nn.BatchNorm2d)  # no activation at the end
    assert block.residual
    nn.init.zeros_(block.separable.pointwise[-1].weight)  # branch ≡ 0 → the block is identity
    x = torch.randn(2, 16, 8, 8)
    torch.testing.assert_close(block(x), x)
    down = InvertedResidual(16, 24, hidden=96, kernel=5, stride=2)
    assert not down.residual and down(x).shape == (2, 24, 4, 4)
    plain = InvertedResidual(16, 16, hidden=16)  # no expansion when hidden == c_in
    assert isinstance(plain.expand, nn.Identity)
    with pytest.raises(ValueError, match="stride"):
        InvertedResidual(16, 16, hidden=32, stride=3)


def test_squeeze_excite_gates_each_channel() -> None:
    se = SqueezeExcite(8, 2, act="relu", gate="hardsigmoid")
    nn.init.zeros_(se.fc2.weight)
    with torch.no_grad():
        se.fc2.bias.copy_(torch.tensor([-10.0, 0, 0, 0, 0, 0, 0, 10.0]))
    x = torch.rand(3, 8, 5, 5) + 0.1
    y = se(x)
    assert torch.equal(y[:, 0], torch.zeros_like(y[:, 0]))  # hard sigmoid(-10) = 0
    torch.testing.assert_close(y[:, 1:7], x[:, 1:7] * 0.5)  # hard sigmoid(0) = 1/2
    torch.testing.assert_close(y[:, 7], x[:, 7])  # hard sigmoid(10) = 1
    with pytest.raises(ValueError, match="squeeze"):
        SqueezeExcite(8, 0)


def test_efficientnet_scaling_and_stochastic_depth() -> None:
    b0, b3 = efficientnet_spec(1.0, 1.0, 0.2), efficientnet_spec(1.2, 1.4, 0.2)
    assert len(b0.blocks) == 16 and len(b3.blocks) == 26  # ceil(n·1.4) per stage
    assert (b0.stem, b0.last, b3.stem, b3.last) == (32, 1280, 40, 1536)
    drops = [b.drop_path for b in b0.blocks]
    assert drops[0] == 0.0 and drops == sorted(drops) and drops[-1] == pytest.approx(0.2 * 15 / 16)
    assert all(b.se_squeeze == max(1, b.c_in // 4) for b in b0.blocks)


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0"])
def test_small_input_keeps_resolution_in_the_stem(name: str) -> None:
    kw = {"num_classes": 10, "in_channels": 1, "image_size": 28}
    small, large = create_model(name, small_input=True, **kw), create_model(name, **kw)
    assert _count(small) == _count(large)  # only a stride changes
    x = torch.randn(2, 1, 28, 28)
    shapes = {}
    for label, model in (("small", small), ("large", large)):
        model.last.register_forward_hook(lambda m, i, o, k=label: shapes.__setitem__(k, o.shape))
        assert model(x).shape == (2, 10)
    assert shapes["small"][-2:] == (2, 2) and shapes["large"][-2:] == (1, 1)  # 16× vs 32×


def test_grad_checkpointing_gives_the_same_gradients() -> None:
    torch.manual_seed(0)
    plain = create_model("mobilenet_v2", width_mult=0.25, num_classes=4, small_input=True).train()
    ckpt = copy.deepcopy(plain)
    set_grad_checkpointing(ckpt)
    x = torch.randn(4, 3, 32, 32)
    for model in (plain, ckpt):
        torch.manual_seed(1)  # the same dropout draws
        model(x).square().mean().backward()
    for (n, a), b in zip(plain.named_parameters(), ckpt.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-6, msg=n)
    for (n, a), b in zip(plain.named_buffers(), ckpt.buffers(), strict=True):
        assert torch.equal(a, b), n  # batch-norm statistics updated once


@pytest.mark.parametrize(
    ("name", "opts", "match"),
    [("mobilenet_v2", {"width_mult": 0.0}, "model.width_mult"),
     ("mobilenet_v3_large", {"width_mult": -1.0}, "model.width_mult"),
     ("mobilenet_v3_small", {"bn_momentum": 0.0}, "model.bn_momentum"),
     ("efficientnet_b2", {"stochastic_depth": 1.5}, "model.stochastic_depth")],
)  # fmt: skip
def test_bad_options_are_config_errors(name: str, opts: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        create_model(name, **opts)

"""Convolution + ReLU/GELU fused for CPU evaluation (trainlab.train.conv_act)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainlab.models import create_model
from trainlab.train.conv_act import ConvAct, fusable_pairs, fuse_conv_act
from trainlab.train.folding import fold_batchnorm

needs_op = pytest.mark.skipif(
    not hasattr(torch.ops.mkldnn, "_convolution_pointwise"),
    reason="this PyTorch has no fused oneDNN convolution operator",
)


class Net(nn.Module):
    def __init__(self, act: nn.Module) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.act_a = act
        self.b = nn.Conv2d(8, 8, 3, stride=2, padding=(1, 0), dilation=(1, 2), groups=2)
        self.act_b = nn.GELU(approximate="tanh")
        self.c = nn.Conv2d(8, 4, 1)
        self.keep = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act_b(self.b(self.act_a(self.a(x))))
        z = self.c(y)
        return self.keep(z) + z  # c's output has two uses: not fused


@needs_op
@pytest.mark.parametrize("act", [nn.ReLU(), nn.GELU()])
def test_same_outputs_and_only_the_safe_pairs(act: nn.Module) -> None:
    model = Net(act).eval()
    assert fusable_pairs(model) == [("a", "act_a"), ("b", "act_b")]
    fused = fuse_conv_act(model)
    assert isinstance(fused.a, ConvAct) and isinstance(fused.b, ConvAct)
    assert type(fused.act_a) is nn.Identity and type(fused.c) is nn.Conv2d
    assert isinstance(model.a, nn.Conv2d)  # the original is untouched
    x = torch.randn(2, 3, 9, 11)
    for fmt in (torch.contiguous_format, torch.channels_last):
        xf = x.contiguous(memory_format=fmt)
        with torch.no_grad():
            torch.testing.assert_close(fused(xf), model(xf), atol=1e-5, rtol=1e-5)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            got, want = fused(xf), model(xf)
        assert got.dtype == want.dtype == torch.bfloat16
        torch.testing.assert_close(got.float(), want.float(), atol=0.05, rtol=0.02)


@needs_op
def test_fused_kernel_only_without_gradients(monkeypatch: pytest.MonkeyPatch) -> None:
    from trainlab.train import conv_act

    calls = []
    real = conv_act._fused_op

    def counting() -> object:
        op = real()
        return lambda *a: calls.append(1) or op(*a)

    monkeypatch.setattr(conv_act, "_fused_op", counting)
    layer = ConvAct(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU()).eval()
    x = torch.randn(1, 2, 5, 5)
    with torch.no_grad():
        layer(x)
    assert calls == [1]
    layer(x.requires_grad_(True)).sum().backward()  # gradients: the plain modules
    assert calls == [1] and layer.conv.weight.grad is not None


@needs_op
def test_the_default_model_fuses_its_second_convolutions() -> None:
    model = create_model("fast_cnn")
    model.train()
    model(torch.randn(16, 1, 28, 28))  # fits the whitening, sets batch-norm statistics
    model.eval()
    folded = fold_batchnorm(model)
    pairs = fusable_pairs(folded)
    assert [p[0] for p in pairs] == ["features.0.4", "features.1.4", "features.2.4"]
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(fuse_conv_act(folded)(x), model(x), atol=1e-4, rtol=1e-4)


def test_training_mode_and_hooks_give_the_model_back() -> None:
    model = Net(nn.ReLU())
    assert fuse_conv_act(model) is model  # training mode
    model.eval()
    model.a.register_forward_hook(lambda m, a, o: None)
    assert fuse_conv_act(model) is model

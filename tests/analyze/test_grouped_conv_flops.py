"""Forward+backward FLOPs of grouped convolutions against a hand count: torch's counter divides
nothing by ``groups`` in the weight gradient; trainlab's formula does."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from trainlab.analyze.flops import count_flops


def _hand(n: int, c_in: int, c_out: int, k: int, side_out: int, groups: int) -> int:
    # 2 FLOPs per multiply-add: each output value takes (c_in / groups) · k² multiply-adds
    return 2 * n * c_out * side_out**2 * (c_in // groups) * k * k


@pytest.mark.parametrize("groups", [1, 4, 8, 64])
def test_grouped_conv_backward_is_twice_its_forward(groups: int) -> None:
    conv = nn.Conv2d(64, 64, 3, padding=1, groups=groups, bias=False)
    x = torch.randn(2, 64, 8, 8, requires_grad=True)  # grad input and grad weight both computed
    r = count_flops(conv, (x,))
    fwd = _hand(2, 64, 64, 3, 8, groups)
    assert r.forward == fwd
    assert r.train == 3 * fwd  # forward + grad input (= forward) + grad weight (= forward)
    assert bool(r.notes) == (groups > 1)


def test_torch_counter_alone_inflates_the_grouped_backward() -> None:
    conv = nn.Conv2d(64, 64, 3, padding=1, groups=8, bias=False)
    x = torch.randn(2, 64, 8, 8, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        conv(x).sum().backward()
    fwd = _hand(2, 64, 64, 3, 8, 8)
    # forward + grad input + 8 × grad weight: the error this module corrects (flag if fixed)
    assert counter.get_total_flops() == 10 * fwd


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("stride", [1, 2])
def test_ungrouped_convs_count_as_torch_does(transposed: bool, stride: int) -> None:
    cls = nn.ConvTranspose2d if transposed else nn.Conv2d
    conv = cls(8, 16, 3, stride=stride, padding=1, bias=False)
    x = torch.randn(2, 8, 9, 9, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        conv(x).sum().backward()
    assert count_flops(conv, (x,)).train == counter.get_total_flops()


def test_grouped_transposed_conv_backward_is_twice_its_forward() -> None:
    conv = nn.ConvTranspose2d(32, 32, 4, stride=2, padding=1, groups=4, bias=False)
    x = torch.randn(2, 32, 6, 6, requires_grad=True)
    r = count_flops(conv, (x,))
    assert r.train == 3 * r.forward

"""Layer table and FLOP counts against closed forms and torchvision's published figures."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainlab.analyze import count_flops, layer_table
from trainlab.analyze.flops import op_category
from trainlab.models import create_model


def _small_net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Sequential(nn.Flatten(), nn.Linear(4 * 6 * 6, 10)),
    )
    net[0].requires_grad_(False)  # a frozen stem: trainable and frozen counts must split
    return net


def test_layer_table_totals_equal_the_parameters() -> None:
    net = _small_net()
    t = layer_table(net, (torch.randn(2, 1, 6, 6),), depth=2)
    n_all = sum(p.numel() for p in net.parameters())
    n_frozen = sum(p.numel() for p in net[0].parameters())
    assert t.total_params == n_all == 4 * 9 + 4 + 8 + 144 * 10 + 10
    assert (t.trainable_params, t.frozen_params) == (n_all - n_frozen, n_frozen)
    assert t.param_bytes == 4 * n_all
    # Rows: the model's children at depth 1, the Flatten/Linear inside the container at depth 2.
    assert [(r.name, r.kind) for r in t.rows] == [
        ("0", "Conv2d"),
        ("1", "BatchNorm2d"),
        ("2", "ReLU"),
        ("3", "Sequential"),
        ("3.0", "Flatten"),
        ("3.1", "Linear"),
    ]
    conv, linear = t.rows[0], t.rows[5]
    assert conv.output_shape == [2, 4, 6, 6] and conv.trainable == 0
    assert linear.mult_adds == 2 * (144 * 10 + 10)  # torchinfo counts the bias add as well
    assert t.rows[3].params == linear.params and t.rows[3].mult_adds == linear.mult_adds
    assert t.mult_adds >= conv.mult_adds + linear.mult_adds
    assert "Total params" in t.text


def test_layer_table_counts_root_parameters_once() -> None:
    class WithPosition(nn.Module):  # a parameter held by the root itself, as in a ViT
        def __init__(self) -> None:
            super().__init__()
            self.pos = nn.Parameter(torch.zeros(1, 4, 8))
            self.proj = nn.Linear(8, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.proj(x + self.pos)

    t = layer_table(WithPosition(), (torch.randn(2, 4, 8),))
    assert t.total_params == 32 + 72 == t.trainable_params


def test_linear_flops_closed_form() -> None:
    n, d_in, d_out = 3, 7, 5
    r = count_flops(nn.Linear(d_in, d_out), (torch.randn(n, d_in),))
    assert r.forward == 2 * n * d_in * d_out  # one multiply and one add per weight per sample
    assert r.macs == n * d_in * d_out
    # Backward: only the weight gradient (the input needs none), another n·d_in·d_out MACs.
    assert r.train == 2 * r.forward
    assert r.forward_by_type["linear"] == r.forward and r.forward_by_type["conv"] == 0


def test_conv2d_flops_closed_form() -> None:
    n, c_in, c_out, k, groups, size = 2, 4, 6, 3, 2, 9
    conv = nn.Conv2d(c_in, c_out, k, stride=2, padding=1, groups=groups)
    r = count_flops(conv, (torch.randn(n, c_in, size, size),))
    out = (size + 2 - k) // 2 + 1  # 5
    assert r.forward == 2 * n * c_out * out * out * (c_in // groups) * k * k
    assert r.forward_by_type == {"conv": r.forward, "linear": 0, "attention/matmul": 0, "other": 0}


def test_attention_is_its_own_type() -> None:
    class SelfAttention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mha = nn.MultiheadAttention(16, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.mha(x, x, x, need_weights=False)[0]

    t, n, e = 5, 2, 16
    r = count_flops(SelfAttention(), (torch.randn(t, n, e),))
    # Projections: q, k, v and output, e×e each per token; attention: QKᵀ and A·V, t·t·e each.
    assert r.forward_by_type["linear"] == 2 * n * t * 4 * e * e
    assert r.forward_by_type["attention/matmul"] == 2 * n * 2 * t * t * e
    assert op_category(torch.ops.aten.bmm) == "attention/matmul"


# torchvision's model tables (weights.meta: num_params and "_ops", its GFLOPS column).
PUBLISHED = {
    "resnet18": (11_689_512, 1.81),
    "resnet50": (25_557_032, 4.09),
    "vgg16": (138_357_544, 15.47),
    "alexnet": (61_100_840, 0.71),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_reference_params_and_flops_match_torchvision(name: str) -> None:
    params, gflops_column = PUBLISHED[name]
    with torch.device("meta"):  # no memory, no arithmetic: shapes only
        model = create_model(name)
        r = count_flops(model, (torch.empty(1, 3, 224, 224),), backward=False)
    assert sum(p.numel() for p in model.parameters()) == params
    # torchvision's "GFLOPS" are multiply-adds: FlopCounterMode counts 2 FLOPs per multiply-add.
    assert r.macs / 1e9 == pytest.approx(gflops_column, rel=0.02)
    assert r.forward / 1e9 == pytest.approx(2 * gflops_column, rel=0.02)


def test_published_figures_are_torchvisions() -> None:
    import torchvision.models as tvm

    weights = {
        "resnet18": tvm.ResNet18_Weights,
        "resnet50": tvm.ResNet50_Weights,
        "vgg16": tvm.VGG16_Weights,
        "alexnet": tvm.AlexNet_Weights,
    }
    for name, (params, gflops) in PUBLISHED.items():
        meta = weights[name].DEFAULT.meta
        assert meta["num_params"] == params
        assert meta["_ops"] == pytest.approx(gflops, abs=0.005)

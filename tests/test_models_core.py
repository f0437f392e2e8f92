"""The foundation's three models: shapes, backward, options."""

from __future__ import annotations

import pytest
import torch

from trainlab import create_model


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("mlp", {"hidden": [32, 16], "norm": "batch", "dropout": 0.1, "act": "gelu"}),
        ("lenet5", {}),
        ("lenet5", {"classic": True, "conv_bn": True, "fc_bn": True, "dropout": 0.2}),
        ("resnet_small", {}),
        ("resnet_small", {"widths": [8, 16, 32, 64], "blocks": [1, 0, 2], "norm": "group"}),
    ],
)
def test_forward_backward(name: str, kwargs: dict) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, **kwargs)
    x = torch.randn(4, 1, 28, 28)
    out = model(x)
    assert out.shape == (4, 10)
    out.sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_resnet_small_checks_blocks_length() -> None:
    with pytest.raises(ValueError, match="blocks needs 2 entries"):
        create_model("resnet_small", widths=[8, 16, 32], blocks=[1])


def test_lenet_classic_uses_sigmoid_and_avgpool() -> None:
    m = create_model("lenet5", classic=True)
    kinds = {type(mod).__name__ for mod in m.modules()}
    assert {"Sigmoid", "AvgPool2d"} <= kinds and "ReLU" not in kinds

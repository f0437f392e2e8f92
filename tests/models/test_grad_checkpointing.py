"""Gradient checkpointing: same gradients and batch-norm statistics, fewer saved activations."""

from __future__ import annotations

import copy

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.models import create_model, example_input
from trainlab.models.layers import set_grad_checkpointing

CASES = {
    "resnet_small": {"widths": [8, 16, 16], "blocks": [1, 1], "dropout": 0.3},
    "resnet": {"width": 8, "layers": [1, 1, 1, 1], "stochastic_depth": 0.3},
    "densenet_small": {},
    "vit_tiny": {"dropout": 0.1},
    "transformer_classifier": {"dropout": 0.1},
    "transformer_lm": {"dropout": 0.1},
}


def _loss(model: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
    out = model(*inputs)
    return out.float().pow(2).mean()


def _saved_bytes(model: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> int:
    """Bytes of the tensors autograd keeps for backward from one forward pass."""
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        _loss(model, inputs).backward()
    return total


@pytest.mark.parametrize("name", list(CASES))
def test_checkpointing_changes_memory_not_gradients(name: str) -> None:
    torch.manual_seed(0)
    plain = create_model(name, **CASES[name]).train()
    ckpt = copy.deepcopy(plain)
    set_grad_checkpointing(ckpt)
    inputs = example_input(plain, 4, name)
    torch.manual_seed(1)  # same dropout / stochastic-depth draws in both forward passes
    _loss(plain, inputs).backward()
    torch.manual_seed(1)
    _loss(ckpt, inputs).backward()
    for (n, a), b in zip(plain.named_parameters(), ckpt.parameters()):
        assert (a.grad is None) == (b.grad is None), n
        if a.grad is not None:
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-6, msg=n)
    # The recomputation in backward must not update batch-norm running statistics again.
    for (n, a), b in zip(plain.named_buffers(), ckpt.buffers()):
        assert torch.equal(a, b), n
    assert _saved_bytes(ckpt, inputs) < 0.7 * _saved_bytes(plain, inputs)


def test_checkpointing_is_off_in_eval_and_inference() -> None:
    model = create_model("vit_tiny")
    set_grad_checkpointing(model)
    x = example_input(model, 2, "vit_tiny")
    with torch.no_grad():
        assert model(*x).shape == (2, 10)  # no recomputation machinery without autograd


def test_a_model_without_support_names_the_ones_with_it() -> None:
    with pytest.raises(ConfigError, match="mlp|MLP") as err:
        set_grad_checkpointing(create_model("mlp", in_features=4, num_classes=2), where="x")
    assert "ResNetSmall" in str(err.value) and "VisionTransformer" in str(err.value)

"""MaxPool2x2: the strided inference path gives max-pooling's exact outputs; gradients, traces
and exports see a plain max-pool."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from trainlab.models.layers.pool import MaxPool2x2, strided_max_pool2x2


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 3),
    c=st.integers(1, 5),
    h=st.integers(2, 9),
    w=st.integers(2, 9),
    dtype=st.sampled_from([torch.float32, torch.bfloat16]),
    channels_last=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_same_outputs_as_max_pool2d(
    n: int, c: int, h: int, w: int, dtype: torch.dtype, channels_last: bool, seed: int
) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(-3, 4, (n, c, h, w), generator=g).to(dtype)  # small integers: many ties
    x[torch.rand(x.shape, generator=g) < 0.05] = float("nan")
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    want = F.max_pool2d(x, 2)
    got = strided_max_pool2x2(x)
    assert got.shape == want.shape and got.dtype == want.dtype
    assert torch.equal(got.isnan(), want.isnan())
    assert torch.equal(got.nan_to_num(), want.nan_to_num())


def test_inference_takes_the_strided_path_and_training_the_plain_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from trainlab.models.layers import pool as module

    calls: list[str] = []
    real = module.strided_max_pool2x2
    monkeypatch.setattr(module, "strided_max_pool2x2", lambda x: calls.append("strided") or real(x))
    layer = MaxPool2x2()
    x = torch.randn(2, 3, 7, 7, requires_grad=True)
    with torch.no_grad():
        layer(x)
    with torch.inference_mode():
        layer(x)
    assert calls == ["strided", "strided"]
    out = layer(x)  # gradients recorded: max_pool2d, whose backward picks one index per window
    out.sum().backward()
    assert calls == ["strided", "strided"]
    x2 = x.detach().clone().requires_grad_(True)
    F.max_pool2d(x2, 2).sum().backward()
    assert torch.equal(x.grad, x2.grad)
    with torch.no_grad():
        traced = torch.jit.trace(torch.nn.Sequential(layer), x.detach())
    graph = str(traced.inlined_graph)
    assert "max_pool2d" in graph and "maximum" not in graph  # what exports and traces see

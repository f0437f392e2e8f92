"""GCN, GraphSAGE and GAT: logits per node, the options that shape them, gradients everywhere."""

from __future__ import annotations

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.models import create_model, example_input

GRAPH_MODELS = ["gcn", "graphsage", "gat"]


@pytest.mark.parametrize("name", GRAPH_MODELS)
def test_logits_per_node_and_gradients(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, in_features=5, num_classes=3, hidden=4, layers=3)
    x, edge_index = example_input(model, batch=7, name=name)
    assert x.shape == (7, 5) and edge_index.shape == (2, 14)
    out = model(x, edge_index)
    assert out.shape == (7, 3) and torch.isfinite(out).all()
    out.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert len(model.convs) == 3


@pytest.mark.parametrize("name", GRAPH_MODELS)
def test_messages_flow_along_edges_only(name: str) -> None:
    """A node's logits change when a neighbour's features change, not when a stranger's do."""
    torch.manual_seed(0)
    model = create_model(name, in_features=4, num_classes=2, layers=1).eval()
    x = torch.randn(4, 4)
    edges = torch.tensor([[0, 1], [1, 0]])  # nodes 0 and 1 linked; 2 and 3 alone
    base = model(x, edges)
    x2 = x.clone()
    x2[1] += 1.0
    changed = model(x2, edges)
    assert not torch.allclose(base[0], changed[0])  # neighbour of node 1
    assert torch.allclose(base[2:], changed[2:])  # no path from node 1


def test_gat_heads_widen_the_hidden_layer() -> None:
    model = create_model("gat", in_features=6, num_classes=3, hidden=5, heads=4)
    first, last = model.convs
    assert (first.heads, first.out_channels, first.concat) == (4, 5, True)
    assert (last.in_channels, last.out_channels, last.concat) == (20, 3, False)


@pytest.mark.parametrize("name", GRAPH_MODELS)
def test_a_plain_batch_is_refused_with_the_task_to_use(name: str) -> None:
    model = create_model(name, in_features=4)
    with pytest.raises(TypeError, match="task.name=node_classification"):
        model(torch.randn(2, 4))


def test_bad_options() -> None:
    with pytest.raises(ConfigError, match="layers, hidden and heads must be ≥ 1"):
        create_model("gcn", layers=0)
    with pytest.raises(ConfigError, match="dropout=1.0"):
        create_model("gat", dropout=1.0)

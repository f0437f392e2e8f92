"""The bundled graph sources (karate_club, sbm_graph): what they hold, stratified seeded masks,
one full-graph batch per split, and no draw from the run's random numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainlab.data.graphs import GraphLoader, NodeBatch
from trainlab.errors import ConfigError
from trainlab.experiment import build_data


def _data(name: str, **options: object):
    data = build_data(name, **options)
    data.setup("cpu")
    return data


def test_karate_club() -> None:
    data = _data("karate_club")
    info = data.describe()
    assert data.num_classes == 4 and data.input_shape == (34,)
    assert info["graph"]["nodes"] == 34 and info["graph"]["directed_edges"] == 156
    assert data.sizes == {"train": 14, "val": 10, "test": 10}
    parts = data.split_indices
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(34))
    # Stratified: every community (13, 12, 4 and 5 members) in every split.
    assert all(min(c) >= 1 for c in info["class_counts"].values())


def test_one_batch_per_epoch_holding_the_whole_graph() -> None:
    data = _data("karate_club")
    loader = data.loader("test")
    assert isinstance(loader, GraphLoader) and len(loader) == 1
    batches = list(loader.iter_epoch(3))
    assert len(batches) == 1 and list(loader.iter_epoch(0, start=1)) == []
    nodes, y = batches[0]
    assert isinstance(nodes, NodeBatch) and nodes.graph.num_nodes == 34
    assert nodes.index.tolist() == data.split_indices["test"].tolist()
    assert torch.equal(y, nodes.graph.y[nodes.index])
    assert nodes.node_features().shape == (10, 34)
    # Slicing the batch's tensors (what the pre-flight check does) keeps the graph whole.
    head = type(nodes)(v[:3] if isinstance(v, torch.Tensor) else v for v in nodes)
    assert head.graph is nodes.graph and head.index.tolist() == nodes.index[:3].tolist()


def test_sbm_graph_is_a_pure_function_of_data_seed() -> None:
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a = _data("sbm_graph", nodes_per_class=30, num_classes=3)
    assert torch.equal(torch.rand(3), before)  # the global RNG is untouched
    b = _data("sbm_graph", nodes_per_class=30, num_classes=3)
    c = _data("sbm_graph", nodes_per_class=30, num_classes=3, data_seed=1)
    assert torch.equal(a.graph.edge_index, b.graph.edge_index)
    assert torch.equal(a.graph.x, b.graph.x)
    assert not torch.equal(a.graph.x, c.graph.x)
    assert a.graph.num_nodes == 90 and a.graph.is_undirected()
    assert np.bincount(a.graph.y.numpy()[a.split_indices["val"]]).tolist() == [6, 6, 6]


def test_sbm_graph_block_structure() -> None:
    data = _data("sbm_graph", nodes_per_class=100, p_in=0.1, p_out=0.0)
    src, dst = data.graph.edge_index
    y = data.graph.y
    assert bool((y[src] == y[dst]).all())  # p_out = 0: no edge leaves its block
    mean_degree = data.graph.edge_index.shape[1] / data.graph.num_nodes
    assert 7.0 < mean_degree < 13.0  # about p_in × 99 neighbours


def test_split_seed_changes_the_masks_only() -> None:
    a = _data("karate_club", split_seed=0)
    b = _data("karate_club", split_seed=1)
    assert not np.array_equal(a.split_indices["test"], b.split_indices["test"])
    assert torch.equal(a.graph.x, b.graph.x)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"p_in": 1.5}, r"data\.p_in: an edge probability"),
        ({"num_classes": 1}, "num_classes ≥ 2"),
        ({"val_fraction": 0.6, "test_fraction": 0.5}, "must be below 1"),
    ],
)
def test_sbm_bad_options(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_data("sbm_graph", **options)

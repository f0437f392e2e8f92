"""``graph_csv``: parsing two CSV files into one graph, masks, and one-line errors naming file
and line for what cannot be used; self-loops, duplicate edges and isolated nodes reported."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from graph_files import write_graph

from trainlab.errors import DataError
from trainlab.experiment import build_data


def _build(nodes: Path, edges: Path, **options: object):
    data = build_data("graph_csv", nodes=str(nodes), edges=str(edges), **options)
    data.setup("cpu")
    return data


def test_parses_nodes_edges_and_labels(tmp_path: Path) -> None:
    nodes, edges = write_graph(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean graph loads without any warning
        data = _build(nodes, edges)
    g = data.graph
    assert data.classes == ["cat", "dog", "fox"] and data.num_classes == 3
    assert data.features == ["f1", "f2"] and data.input_shape == (2,)
    assert g.num_nodes == 30 and g.y.tolist() == [0] * 10 + [1] * 10 + [2] * 10
    # 3 rings of 10 edges + 2 links, undirected: both directions stored, no duplicates.
    assert g.edge_index.shape == (2, 2 * 32) and g.is_undirected()
    info = data.describe()["graph"]
    assert info["isolated_nodes"] == 0 and info["self_loops_dropped"] == 0


def test_masks_are_disjoint_stratified_and_seeded(tmp_path: Path) -> None:
    nodes, edges = write_graph(tmp_path, n_per_class=20)
    data = _build(nodes, edges, val_fraction=0.2, test_fraction=0.2, split_seed=5)
    parts = data.split_indices
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(60))
    y = data.graph.y.numpy()
    for split, n in (("train", 12), ("val", 4), ("test", 4)):  # per class
        assert np.bincount(y[parts[split]]).tolist() == [n, n, n], split
    again = _build(nodes, edges, val_fraction=0.2, test_fraction=0.2, split_seed=5)
    other = _build(nodes, edges, val_fraction=0.2, test_fraction=0.2, split_seed=6)
    assert all(np.array_equal(parts[k], again.split_indices[k]) for k in parts)
    assert not np.array_equal(parts["test"], other.split_indices["test"])


def test_split_column_fixes_the_masks(tmp_path: Path) -> None:
    nodes, edges = write_graph(tmp_path, split=True)
    data = _build(nodes, edges)
    assert data.sizes == {"train": 18, "val": 6, "test": 6}
    assert data.split_indices["train"].tolist()[:6] == [0, 1, 2, 3, 4, 5]
    batch, y = next(data.loader("val").iter_epoch(0))
    assert batch.index.tolist()[:2] == [6, 7] and torch.equal(y, data.graph.y[batch.index])


def test_features_standardised_with_training_nodes_only(tmp_path: Path) -> None:
    nodes, edges = write_graph(tmp_path)
    data = _build(nodes, edges)
    train = data.graph.x[torch.as_tensor(data.split_indices["train"])]
    assert torch.allclose(train.mean(0), torch.zeros(2), atol=1e-5)
    assert torch.allclose(train.std(0, unbiased=False), torch.ones(2), atol=1e-4)
    raw = _build(nodes, edges, normalize=False)
    assert raw.mean is None and float(raw.graph.x[:, 0].max()) > 2.0


def test_self_loops_duplicates_isolated_and_unlabelled_nodes_reported(tmp_path: Path) -> None:
    nodes, edges = write_graph(tmp_path, extra_edges=["n3,n3", "n5,n5", "n0,n1", "n1,n0"])
    nodes.write_text(nodes.read_text() + "lonely,0.1,0.2,cat\nquiet,0.0,0.0,\n")
    with pytest.warns(UserWarning, match="2 self loops dropped") as caught:
        data = _build(nodes, edges)
    msg = str(caught[0].message)
    assert "32 nodes" in msg and "2 isolated nodes" in msg and "1 unlabelled nodes" in msg
    info = data.describe()["graph"]
    assert info["self_loops_dropped"] == 2 and info["isolated_nodes"] == 2
    # n0,n1 is a ring edge already; n1,n0 the same undirected edge again.
    assert info["duplicate_edges_merged"] == 2 and info["unlabelled_nodes"] == 1
    assert not (data.graph.edge_index[0] == data.graph.edge_index[1]).any()
    quiet = 31  # the unlabelled node is in the graph but in no split
    assert all(quiet not in v for v in data.split_indices.values())
    assert sum(data.sizes.values()) == 31


@pytest.mark.parametrize(
    ("where", "edit", "message"),
    [
        (
            "edges",
            lambda t: t + "n4,n99\n",
            r"edges\.csv: line 34, column 'target': 'n99' is not "
            r"a node id of .*nodes\.csv",
        ),
        ("edges", lambda t: t + ",n1\n", r"edges\.csv: line 34, column 'source': is empty"),
        (
            "nodes",
            lambda t: t + "n7,0,0,cat\n",
            r"nodes\.csv: line 32: node id 'n7' appears "
            r"twice \(first on line 9\)",
        ),
        ("nodes", lambda t: t + "n77,abc,0,cat\n", r"line 32, column 'f1': 'abc' is not a number"),
        ("nodes", lambda t: t + "n77,,0,cat\n", r"nodes\.csv: line 32, column 'f1': missing"),
        (
            "nodes",
            lambda t: t.replace(",cat\n", ",dog\n").replace(",fox\n", ",dog\n"),
            r"holds 1 class\(es\); node classification needs two",
        ),
    ],
)
def test_bad_files_name_file_and_line(tmp_path: Path, where: str, edit, message: str) -> None:
    nodes, edges = write_graph(tmp_path)
    path = nodes if where == "nodes" else edges
    path.write_text(edit(path.read_text()))
    with pytest.raises(DataError, match=message):
        _build(nodes, edges)


def test_bad_split_values_are_named(tmp_path: Path) -> None:
    nodes, edges = write_graph(tmp_path, split=True)
    nodes.write_text(nodes.read_text().replace("fox,test", "fox,tset", 1))
    with pytest.raises(DataError, match=r"line 30, column 'split': 'tset' is not a split"):
        _build(nodes, edges)
    nodes, edges = write_graph(tmp_path, split=True)
    nodes.write_text(nodes.read_text().replace(",test", ",val"))
    with pytest.raises(DataError, match="column 'split' puts no labelled node in test"):
        _build(nodes, edges)


def test_missing_column_and_file(tmp_path: Path) -> None:
    nodes, edges = write_graph(tmp_path)
    with pytest.raises(DataError, match=r"no column 'klass'.*columns: id, f1, f2, label"):
        _build(nodes, edges, label="klass")
    with pytest.raises(DataError, match=r"missing\.csv: file not found"):
        _build(nodes, tmp_path / "missing.csv")

"""``graph_csv``: your own graph from two files, for node classification.

``nodes.csv``: one row per node: an ``id`` column, numeric feature columns, a ``label`` column
and, optionally, a ``split`` column (``train``/``val``/``test``) that fixes the masks. A node
whose label is empty is part of the graph (its features and edges count) but of no split.
``edges.csv``: one row per edge, ``source`` and ``target`` node ids; edges are undirected
unless ``directed: true`` (both directions are then added for you).

What loading finds is reported, never silently fixed: an edge naming an unknown node or a
duplicate node id is an error naming file and line; self-loops are dropped (GCN and GAT add
their own), duplicate edges merged, isolated nodes kept; each is counted in ``data.json``
(``graph``) and in one warning.

>>> data = build_data("graph_csv", nodes="nodes.csv", edges="edges.csv")  # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from trainlab.data.base import register_data
from trainlab.data.graphs import SPLITS, GraphDataModule, graph_stats
from trainlab.data.tabular_io import Table, numeric_column, read_table, text_column
from trainlab.errors import DataError

__all__ = ["GraphCsv", "graph_csv", "read_nodes", "read_edges"]


def _labels(table: Table, column: str) -> tuple[np.ndarray, list[str]]:
    """Class ids (N,) int64, -1 where the cell is empty, and the class names (numeric labels
    in numeric order, others alphabetically)."""
    cells = text_column(table, column)
    given = sorted({c for c in cells if c is not None})
    try:
        given.sort(key=float)
    except ValueError:
        pass
    index = {c: i for i, c in enumerate(given)}
    return np.array([-1 if c is None else index[c] for c in cells], dtype=np.int64), given


def _ids(table: Table, column: str) -> dict[str, int]:
    ids: dict[str, int] = {}
    for i, cell in enumerate(text_column(table, column)):
        line = table.lines[i]
        if cell is None:
            raise DataError(f"{table.path}: line {line}, column '{column}': the node id is empty")
        if cell in ids:
            first = table.lines[ids[cell]]
            raise DataError(
                f"{table.path}: line {line}: node id '{cell}' appears twice (first on line {first})"
            )
        ids[cell] = i
    return ids


def _split_column(table: Table, column: str, y: np.ndarray) -> dict[str, np.ndarray]:
    cells = text_column(table, column)
    parts: dict[str, list[int]] = {s: [] for s in SPLITS}
    for i, cell in enumerate(cells):
        if cell is None or y[i] < 0:
            continue  # unlabelled, or labelled but kept out of the splits
        key = cell.lower()
        if key not in parts:
            raise DataError(
                f"{table.path}: line {table.lines[i]}, column '{column}': {cell!r} is not a "
                "split; valid: train, val, test (or empty)"
            )
        parts[key].append(i)
    for split, idx in parts.items():
        if not idx:
            raise DataError(f"{table.path}: column '{column}' puts no labelled node in {split}")
    return {k: np.array(v, dtype=np.int64) for k, v in parts.items()}


def read_nodes(path: str, o: dict[str, Any]) -> dict[str, Any]:
    """Node ids, features (N, F) float32, labels (N,) (-1: none), class names and the split
    given by the file (empty when it has no split column)."""
    table = read_table(path, o["delimiter"])
    ids = _ids(table, o["id_column"])
    y, classes = _labels(table, o["label"])
    has_split = o["split_column"] in table.header
    own = {o["id_column"], o["label"]} | ({o["split_column"]} if has_split else set())
    features = o["features"] or [c for c in table.header if c not in own]
    if not features:
        raise DataError(f"{table.path}: no feature columns besides {', '.join(sorted(own))}")
    x = np.stack([numeric_column(table, c) for c in features], axis=1)  # (N, F)
    miss = np.argwhere(np.isnan(x))
    if len(miss):
        r, c = miss[0]
        raise DataError(f"{table.path}: line {table.lines[r]}, column '{features[c]}': missing")
    if len(classes) < 2:
        raise DataError(f"{table.path}: column '{o['label']}' holds {len(classes)} class(es); "
                        "node classification needs two or more")  # fmt: skip
    split = _split_column(table, o["split_column"], y) if has_split else {}
    return {"ids": ids, "x": x.astype(np.float32), "y": y, "classes": classes,
            "features": features, "split": split}  # fmt: skip


def read_edges(path: str, ids: dict[str, int], o: dict[str, Any]) -> torch.Tensor:
    """(2, E) int64 node indices in file order; an unknown node id names file and line."""
    table = read_table(path, o["delimiter"])
    ends = []
    for column in (o["source"], o["target"]):
        cells = text_column(table, column)
        idx = np.empty(len(cells), dtype=np.int64)
        for i, cell in enumerate(cells):
            if cell is None or cell not in ids:
                what = "is empty" if cell is None else f"'{cell}' is not a node id of {o['nodes']}"
                raise DataError(f"{table.path}: line {table.lines[i]}, column '{column}': {what}")
            idx[i] = ids[cell]
        ends.append(idx)
    return torch.from_numpy(np.stack(ends))


def clean_edges(
    edge_index: torch.Tensor, num_nodes: int, directed: bool
) -> tuple[torch.Tensor, dict[str, int]]:
    """Drop self-loops, make undirected (unless ``directed``), merge duplicates; returns the
    edges and the counts of what was changed (undirected: ``a,b`` and ``b,a`` are one edge)."""
    from torch_geometric.utils import coalesce, remove_self_loops, to_undirected

    loops = int((edge_index[0] == edge_index[1]).sum())
    edge_index, _ = remove_self_loops(edge_index)
    given = edge_index.shape[1]
    pairs = edge_index if directed else edge_index.sort(dim=0).values  # (min, max) per edge
    unique = coalesce(pairs, num_nodes=num_nodes).shape[1]
    if not directed:
        edge_index = to_undirected(edge_index, num_nodes=num_nodes)
    else:
        edge_index = coalesce(edge_index, num_nodes=num_nodes)
    return edge_index, {"self_loops_dropped": loops, "duplicate_edges_merged": given - unique}


class GraphCsv(GraphDataModule):
    """A graph read from ``nodes.csv`` and ``edges.csv`` (see the module docstring)."""

    def __init__(self, opts: dict[str, Any], **kw: Any) -> None:
        super().__init__(**kw)
        self.opts = opts
        self.features: list[str] = []

    def load(self) -> None:
        from torch_geometric.data import Data

        o = self.opts
        nodes = read_nodes(o["nodes"], o)
        n = len(nodes["y"])
        edge_index, notes = clean_edges(read_edges(o["edges"], nodes["ids"], o), n, o["directed"])
        isolated = graph_stats(edge_index, n)["isolated_nodes"]
        y = nodes["y"]
        labelled = np.flatnonzero(y >= 0)
        self.notes = {**notes, "isolated_nodes": isolated, "unlabelled_nodes": n - len(labelled)}
        self.classes, self.features = nodes["classes"], nodes["features"]
        self.graph = Data(x=torch.from_numpy(nodes["x"]), edge_index=edge_index,
                          y=torch.from_numpy(y))  # fmt: skip
        if nodes["split"]:
            self.split_indices = nodes["split"]
        else:  # stratified, seeded holdout over the labelled nodes
            from trainlab.data.splits import holdout_split

            parts = holdout_split(
                y[labelled], val_fraction=self.val_fraction, test_fraction=self.test_fraction,
                seed=self.split_seed, where=o["nodes"], class_names=self.classes,
            )  # fmt: skip
            self.split_indices = {k: labelled[v] for k, v in parts.items()}
        self._warn(n)

    def _warn(self, n: int) -> None:
        found = [f"{v} {k.replace('_', ' ')}" for k, v in self.notes.items() if v]
        if found:
            warnings.warn(f"{self.opts['edges']}: {n} nodes; " + ", ".join(found), stacklevel=2)

    def describe(self) -> dict[str, Any]:
        return super().describe() | {"features": self.features}


@register_data("graph_csv")
def graph_csv(
    *,
    nodes: str,
    edges: str,
    id_column: str = "id",
    label: str = "label",
    features: list[str] | None = None,
    split_column: str = "split",
    source: str = "source",
    target: str = "target",
    directed: bool = False,
    normalize: bool = True,
    delimiter: str | None = None,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    seed: int = 0,
) -> GraphCsv:
    """Your own graph: ``nodes`` (CSV: ``id_column``, numeric ``features`` — default every other
    column —, ``label``, optional ``split_column``) and ``edges`` (CSV: ``source``, ``target``
    node ids). Without a split column the labelled nodes are split stratified and seeded
    (``split_seed``); ``normalize`` standardises each feature with the training nodes' mean
    and standard deviation."""
    opts = dict(
        nodes=nodes, edges=edges, id_column=id_column, label=label, features=features,
        split_column=split_column, source=source, target=target, directed=directed,
        delimiter=delimiter,
    )  # fmt: skip
    return GraphCsv(
        opts, val_fraction=val_fraction, test_fraction=test_fraction, split_seed=split_seed,
        normalize=normalize, seed=seed, where=nodes,
    )  # fmt: skip

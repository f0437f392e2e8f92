"""Graphs for node classification (PyTorch Geometric): one graph, train/val/test node masks.

=============  ====================================  ===========================================
key            graph                                 nodes, features, classes
=============  ====================================  ===========================================
karate_club    Zachary's karate club (PyG, bundled)  34 nodes, one-hot identity (34), 4 classes
sbm_graph      stochastic block model (generated)    ``nodes_per_class`` × K, Gaussian features
graph_csv      your own: ``nodes.csv`` + ``edges.csv`` one row per node / edge (see graph_csv.py)
=============  ====================================  ===========================================

Training is full-batch (transductive): every epoch is **one** batch holding the whole graph, and
each split's loader yields ``(NodeBatch(graph, index), y[index])``: the model sees every node and
edge, the loss and the metrics only the split's nodes. ``len(y)`` is the split's node count, so
per-sample figures (samples/s, the evaluation's mean loss) count labelled nodes.

>>> data = build_data("karate_club")                        # doctest: +SKIP
>>> data.setup("cpu")                                       # doctest: +SKIP
>>> nodes, y = next(data.loader("train").iter_epoch(0))     # doctest: +SKIP
>>> nodes.graph.x.shape, nodes.index.shape, y.shape         # doctest: +SKIP
(torch.Size([34, 34]), torch.Size([14]), torch.Size([14]))
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from trainlab.data.base import register_data
from trainlab.data.splits import check_fractions, holdout_split
from trainlab.errors import ConfigError, DataError

if TYPE_CHECKING:  # torch_geometric takes ~2 s to import: loaded when a graph is built
    from torch_geometric.data import Data

__all__ = [
    "NodeBatch", "GraphLoader", "GraphDataModule", "require_pyg", "graph_stats",
    "karate_club", "sbm_graph",
]  # fmt: skip

SPLITS = ("train", "val", "test")


def require_pyg(what: str) -> None:
    """Raise a one-line :class:`ConfigError` when PyTorch Geometric is not installed."""
    try:
        with warnings.catch_warnings():  # PyG's import calls torch.jit.script (deprecated)
            warnings.simplefilter("ignore", FutureWarning)
            import torch_geometric  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"{what} needs PyTorch Geometric, which is not installed: "
            "pip install 'trainlab[graphs]' (or pip install torch-geometric)"
        ) from None


class NodeBatch(tuple):  # type: ignore[type-arg]
    """The input of one node-classification batch: ``(graph, index)``.

    ``graph``: a ``torch_geometric.data.Data`` with ``x`` (N, F) and ``edge_index`` (2, E);
    ``index``: (n,) int64 ids of the nodes whose labels this batch scores. A tuple, so that code
    slicing a batch's tensors (the pre-flight check keeps the first samples) slices the node
    index and keeps the graph whole; slicing the batch itself (``batch[:64]``, as code taking
    the first samples of a batch does) slices its nodes the same way.

    >>> b = NodeBatch((None, torch.arange(5)))
    >>> NodeBatch(v[:2] if isinstance(v, torch.Tensor) else v for v in b).index
    tensor([0, 1])
    >>> b[1:3].index
    tensor([1, 2])
    """

    def __new__(cls, parts: Iterable[Any]) -> NodeBatch:
        graph, index = tuple(parts)
        return super().__new__(cls, (graph, index))

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):  # the first nodes, in the same graph
            return NodeBatch((self[0], self[1][key]))
        return super().__getitem__(key)

    @property
    def graph(self) -> Data:
        return self[0]

    @property
    def index(self) -> torch.Tensor:
        return self[1]

    def node_features(self) -> torch.Tensor:
        """(n, F) features of the batch's nodes."""
        return self.graph.x[self.index]


class GraphLoader:
    """One batch per epoch: the whole graph with one split's node ids and labels.

    ``sharded``: under several processes every rank holds the whole graph and computes the same
    full-batch gradient (DDP's average leaves it unchanged), so the batch is not sliced.
    """

    sharded = True

    def __init__(self, graph: Data, index: torch.Tensor, y: torch.Tensor) -> None:
        self.graph, self.index, self.y = graph, index, y

    def __len__(self) -> int:
        return 1

    def iter_epoch(self, epoch: int, start: int = 0) -> Iterator[tuple[NodeBatch, torch.Tensor]]:
        if start < 1:
            yield NodeBatch((self.graph, self.index)), self.y


def graph_stats(edge_index: torch.Tensor, num_nodes: int) -> dict[str, int]:
    """Edges (undirected pairs counted once when both directions exist), self-loops and nodes
    without any edge.

    >>> graph_stats(torch.tensor([[0, 1, 2], [1, 0, 2]]), 4)
    {'nodes': 4, 'directed_edges': 3, 'self_loops': 1, 'isolated_nodes': 2}
    """
    loops = int((edge_index[0] == edge_index[1]).sum())
    touched = torch.zeros(num_nodes, dtype=torch.bool)
    touched[edge_index[:, edge_index[0] != edge_index[1]].flatten().cpu()] = True
    return {
        "nodes": num_nodes,
        "directed_edges": int(edge_index.shape[1]),
        "self_loops": loops,
        "isolated_nodes": int((~touched).sum()),
    }


class GraphDataModule:
    """A node-classification data module over one graph; subclasses build it in ``load()``
    (``self.graph`` with integer labels ``y``, ``self.classes``) and may fix the split in
    ``self.split_indices`` (otherwise a stratified, seeded holdout over the labels)."""

    def __init__(
        self,
        *,
        val_fraction: float,
        test_fraction: float,
        split_seed: int,
        normalize: bool,
        seed: int,
        where: str,
    ) -> None:
        check_fractions(val_fraction, test_fraction)
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.split_seed, self.normalize, self.seed, self.where = split_seed, normalize, seed, where
        self.graph: Data | None = None
        self.classes: list[str] = []
        self.split_indices: dict[str, np.ndarray] = {}
        self.num_classes: int | None = None
        self.input_shape: tuple[int, ...] = ()
        self.sizes: dict[str, int] = {}
        self.mean: list[float] | None = None
        self.std: list[float] | None = None
        self.notes: dict[str, Any] = {}  # what loading found (self-loops dropped, …)
        self._index: dict[str, torch.Tensor] = {}

    def load(self) -> None:
        raise NotImplementedError

    def setup(self, device: torch.device | str = "cpu") -> None:
        if self.graph is None:
            require_pyg(f"data '{self.where}'")
            self.load()
            assert self.graph is not None
            y = self.graph.y.numpy()
            self.num_classes = len(self.classes)
            if not self.split_indices:
                self.split_indices = holdout_split(
                    y, val_fraction=self.val_fraction, test_fraction=self.test_fraction,
                    seed=self.split_seed, where=self.where, class_names=self.classes,
                )  # fmt: skip
            if self.normalize:
                self._standardise(self.split_indices["train"])
        self.graph = self.graph.to(device)
        self._index = {
            k: torch.as_tensor(v, dtype=torch.long, device=self.graph.y.device)
            for k, v in self.split_indices.items()
        }
        self.input_shape = (int(self.graph.x.shape[1]),)
        self.sizes = {k: len(v) for k, v in self.split_indices.items()}

    def _standardise(self, train: np.ndarray) -> None:
        # Per-feature statistics of the training nodes only (like the tabular sources).
        x = self.graph.x  # type: ignore[union-attr]
        rows = x[torch.as_tensor(train, dtype=torch.long)]
        mean, std = rows.mean(0), rows.std(0, unbiased=False)
        std = torch.where(std > 0, std, torch.ones_like(std))
        self.graph.x = (x - mean) / std  # type: ignore[union-attr]
        self.mean, self.std = mean.tolist(), std.tolist()

    def loader(self, split: str) -> GraphLoader:
        """The split's one batch per epoch: ``(NodeBatch(graph, index), labels)``."""
        if split not in self._index:
            raise DataError(f"data '{self.where}': no split '{split}' (run setup() first)")
        index = self._index[split]
        return GraphLoader(self.graph, index, self.graph.y[index])  # type: ignore[union-attr]

    def describe(self) -> dict[str, Any]:
        g = self.graph
        stats = graph_stats(g.edge_index, int(g.num_nodes)) if g is not None else {}
        counts = {}
        if g is not None:
            y = g.y.cpu()
            counts = {
                k: torch.bincount(y[torch.as_tensor(v, dtype=torch.long)],
                                  minlength=self.num_classes or 0).tolist()
                for k, v in self.split_indices.items()
            }  # fmt: skip
        return {
            "num_classes": self.num_classes,
            "classes": self.classes,
            "input_shape": list(self.input_shape),
            "sizes": self.sizes,
            "class_counts": counts,
            "graph": {**stats, **self.notes},
            "mean": self.mean,
            "std": self.std,
        }


class KarateClub(GraphDataModule):
    """Zachary's karate club as PyG ships it (no download): 34 members, 78 friendships
    (156 directed edges), 4 communities as labels, one-hot identity features."""

    def load(self) -> None:
        from torch_geometric.datasets import KarateClub as PygKarate

        data = PygKarate()[0]
        del data.train_mask  # PyG's 4 labelled nodes; trainlab splits all 34 (stratified)
        self.graph = data
        self.classes = [f"community {i}" for i in range(int(data.y.max()) + 1)]


class StochasticBlockModel(GraphDataModule):
    """A stochastic-block-model graph with one block per class (generated, no files)."""

    def __init__(self, opts: dict[str, Any], **kw: Any) -> None:
        super().__init__(**kw)
        self.opts = opts

    def load(self) -> None:
        from torch_geometric.data import Data
        from torch_geometric.utils import stochastic_blockmodel_graph

        o = self.opts
        k, n = o["num_classes"], o["nodes_per_class"]
        probs = torch.full((k, k), o["p_out"])
        probs.fill_diagonal_(o["p_in"])
        # PyG draws the edges from torch's global RNG: forked, so the run's RNG is untouched
        # and the graph depends on data_seed only.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(o["data_seed"])
            edge_index = stochastic_blockmodel_graph([n] * k, probs, directed=False)
            y = torch.arange(k).repeat_interleave(n)
            protos = torch.randn(k, o["num_features"])
            x = protos[y] + o["feature_noise"] * torch.randn(k * n, o["num_features"])
        self.graph = Data(x=x, edge_index=edge_index, y=y)
        self.classes = [f"block {i}" for i in range(k)]
        stats = graph_stats(edge_index, k * n)
        self.notes = {"isolated_nodes": stats["isolated_nodes"]}


@register_data("karate_club")
def karate_club(
    *,
    val_fraction: float = 0.3,
    test_fraction: float = 0.3,
    split_seed: int = 0,
    seed: int = 0,
) -> KarateClub:
    """Zachary's karate club (PyG's bundled copy): 34 nodes, 4 classes; node classification
    with a stratified, seeded split of the nodes (``split_seed``)."""
    return KarateClub(
        val_fraction=val_fraction, test_fraction=test_fraction, split_seed=split_seed,
        normalize=False, seed=seed, where="karate_club",
    )  # fmt: skip


@register_data("sbm_graph")
def sbm_graph(
    *,
    num_classes: int = 4,
    nodes_per_class: int = 100,
    p_in: float = 0.05,
    p_out: float = 0.01,
    num_features: int = 16,
    feature_noise: float = 2.0,
    data_seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    seed: int = 0,
) -> StochasticBlockModel:
    """A stochastic block model: one block of ``nodes_per_class`` nodes per class, an edge
    inside a block with probability ``p_in``, across blocks ``p_out``; each node's features
    are its class prototype (standard normal) plus ``feature_noise`` × N(0, 1) noise."""
    if num_classes < 2 or nodes_per_class < 3 or num_features < 1:
        raise ConfigError(
            "data: sbm_graph needs num_classes ≥ 2, nodes_per_class ≥ 3 and num_features ≥ 1 "
            f"(got {num_classes}, {nodes_per_class}, {num_features})"
        )
    for key, p in (("p_in", p_in), ("p_out", p_out)):
        if not 0.0 <= p <= 1.0:
            raise ConfigError(f"data.{key}: an edge probability, between 0 and 1 (got {p})")
    opts = dict(
        num_classes=num_classes, nodes_per_class=nodes_per_class, p_in=p_in, p_out=p_out,
        num_features=num_features, feature_noise=feature_noise, data_seed=data_seed,
    )  # fmt: skip
    return StochasticBlockModel(
        opts, val_fraction=val_fraction, test_fraction=test_fraction, split_seed=split_seed,
        normalize=False, seed=seed, where="sbm_graph",
    )  # fmt: skip

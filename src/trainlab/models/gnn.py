"""Graph neural networks for node classification, on PyTorch Geometric's layers.

``gcn`` (Kipf & Welling 2017: ``GCNConv``, symmetric normalisation with self-loops),
``graphsage`` (Hamilton et al. 2017: ``SAGEConv``, mean of the neighbours beside the node's
own features) and ``gat`` (Veličković et al. 2018: ``GATConv``, ``heads`` attention heads
concatenated in the hidden layers, averaged in the output layer).

Every model maps node features ``x`` (N, F) and ``edge_index`` (2, E) to logits (N, K) for all
N nodes; the ``node_classification`` task scores the nodes of one split. PyTorch Geometric is
imported when a model is built (``pip install 'trainlab[graphs]'``).

>>> model = create_model("gcn", in_features=34, num_classes=4)  # doctest: +SKIP
>>> model(*model.example_input(5)).shape                        # doctest: +SKIP
torch.Size([5, 4])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.errors import ConfigError
from trainlab.models.registry import register_model

__all__ = ["GNN", "gcn", "graphsage", "gat"]

KINDS = ("gcn", "graphsage", "gat")


def _conv(kind: str, d_in: int, d_out: int, heads: int, concat: bool, dropout: float) -> nn.Module:
    from trainlab.data.graphs import require_pyg

    require_pyg(f"model '{kind}'")
    from torch_geometric.nn import GATConv, GCNConv, SAGEConv

    if kind == "gcn":
        return GCNConv(d_in, d_out)
    if kind == "graphsage":
        return SAGEConv(d_in, d_out, aggr="mean")
    # GAT: attention coefficients dropped out like the features (the paper's setting).
    return GATConv(d_in, d_out, heads=heads, concat=concat, dropout=dropout)


class GNN(nn.Module):
    """``layers`` message-passing layers: ``hidden`` units (× ``heads`` for GAT) with ELU/ReLU
    and dropout between them, the last one giving ``num_classes`` logits per node."""

    def __init__(
        self,
        kind: str,
        in_features: int,
        num_classes: int,
        hidden: int,
        layers: int,
        dropout: float,
        heads: int = 1,
    ) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ConfigError(f"GNN kind '{kind}' unknown; valid: {', '.join(KINDS)}")
        if layers < 1 or hidden < 1 or heads < 1 or not 0.0 <= dropout < 1.0:
            raise ConfigError(
                f"model '{kind}': layers, hidden and heads must be ≥ 1 and 0 ≤ dropout < 1 "
                f"(got layers={layers}, hidden={hidden}, heads={heads}, dropout={dropout})"
            )
        self.kind, self.in_features, self.dropout = kind, in_features, dropout
        width = hidden * heads if kind == "gat" else hidden  # concatenated heads
        dims = [in_features] + [width] * (layers - 1)
        convs = [_conv(kind, d, hidden, heads, True, dropout) for d in dims[:-1]]
        convs.append(_conv(kind, dims[-1], num_classes, heads if kind == "gat" else 1, False,
                           dropout))  # fmt: skip
        self.convs = nn.ModuleList(convs)
        # GAT's paper uses ELU, GCN's and GraphSAGE's ReLU.
        self.act: nn.Module = nn.ELU() if kind == "gat" else nn.ReLU()

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` (N, F) node features, ``edge_index`` (2, E) → logits (N, num_classes)."""
        if edge_index is None or not isinstance(x, torch.Tensor):
            raise TypeError(
                f"model '{self.kind}' takes (x, edge_index): node features and the graph's edges; "
                "graph data trains with task.name=node_classification"
            )
        for i, conv in enumerate(self.convs):
            if i or self.kind == "gat":  # GAT drops input features too (the paper's setting)
                x = F.dropout(x, self.dropout, self.training)
            x = conv(x, edge_index)
            if i < len(self.convs) - 1:
                x = self.act(x)
        return x

    def example_input(self, batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
        """``batch`` nodes with random features on a ring (each node linked to the next)."""
        nodes = torch.arange(batch)
        ring = torch.stack([nodes, (nodes + 1) % batch])
        return torch.randn(batch, self.in_features), torch.cat([ring, ring.flip(0)], dim=1)


@register_model("gcn")
def gcn(
    *,
    in_features: int = 16,
    num_classes: int = 4,
    hidden: int = 16,
    layers: int = 2,
    dropout: float = 0.5,
) -> GNN:
    """Graph convolutional network (Kipf & Welling): node classification on graph data."""
    return GNN("gcn", in_features, num_classes, hidden, layers, dropout)


@register_model("graphsage")
def graphsage(
    *,
    in_features: int = 16,
    num_classes: int = 4,
    hidden: int = 64,
    layers: int = 2,
    dropout: float = 0.5,
) -> GNN:
    """GraphSAGE with mean aggregation (Hamilton et al.): node classification on graph data."""
    return GNN("graphsage", in_features, num_classes, hidden, layers, dropout)


@register_model("gat")
def gat(
    *,
    in_features: int = 16,
    num_classes: int = 4,
    hidden: int = 8,
    heads: int = 8,
    layers: int = 2,
    dropout: float = 0.6,
) -> GNN:
    """Graph attention network (Veličković et al.): ``heads`` heads of ``hidden`` units."""
    return GNN("gat", in_features, num_classes, hidden, layers, dropout, heads)

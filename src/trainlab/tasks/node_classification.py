"""Node classification on one graph: the loss and the metrics on the nodes of a split.

A batch is ``(NodeBatch(graph, index), y)`` (see :mod:`trainlab.data.graphs`): the model runs
over the whole graph — a graph model as ``model(x, edge_index)``, a model that takes one tensor
(an ``mlp``: the graph-free baseline) as ``model(x)`` on the node features — and the logits of
the split's nodes, ``logits[index]`` (n, K), are scored against ``y`` (n,). Metrics and the
test evaluation are the classification task's (accuracy, macro F1, confusion matrix, AUROC…).

>>> task = NodeClassificationTask()                      # doctest: +SKIP
>>> out = task.train_step(model, next(loader.iter_epoch(0)))  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.tasks.base import StepOutput, register_task
from trainlab.tasks.classification import ClassificationTask
from trainlab.tasks.common import bare_model
from trainlab.tasks.losses import get_loss

if TYPE_CHECKING:
    from torchmetrics import MetricCollection

    from trainlab.data.base import DataModule
    from trainlab.data.graphs import NodeBatch

__all__ = ["NodeClassificationTask", "node_classification", "takes_edges"]


def takes_edges(model: nn.Module) -> bool:
    """Whether ``model``'s forward takes a second positional input (the edge index).

    >>> takes_edges(nn.Linear(2, 2))
    False
    """
    params = inspect.signature(bare_model(model).forward).parameters.values()
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(p.kind in positional for p in params) >= 2 or any(
        p.kind is inspect.Parameter.VAR_POSITIONAL for p in params
    )


class NodeClassificationTask:
    """Cross-entropy (optionally label-smoothed) over the nodes of the batch's split."""

    def __init__(
        self,
        loss: str = "cross_entropy",
        label_smoothing: float = 0.0,
        loss_options: dict[str, Any] | None = None,
        metrics: list[str] | None = None,
    ) -> None:
        self.loss_fn = get_loss(loss, options=loss_options, kind="classification")
        if label_smoothing and not getattr(self.loss_fn, "smooths", False):
            raise ConfigError(
                f"task.label_smoothing: loss '{loss}' takes no label_smoothing parameter"
            )
        self.label_smoothing = label_smoothing
        self.num_classes: int | None = None  # the data's, from check_data
        # The metrics (and test metrics) are exactly the classification task's.
        self._scores = ClassificationTask(loss, metrics=metrics, loss_options=loss_options)

    def check_data(self, data: DataModule) -> None:
        """Graph data only: a data module whose loaders yield node batches."""
        from trainlab.data.graphs import GraphDataModule

        if not isinstance(data, GraphDataModule):
            raise ConfigError(
                f"task.name: 'node_classification' needs graph data (data.name: karate_club, "
                f"sbm_graph or graph_csv); {type(data).__name__} gives samples of shape "
                f"{tuple(getattr(data, 'input_shape', ()))}: use task.name=classification"
            )
        self.num_classes = data.num_classes

    def logits(self, model: nn.Module, nodes: NodeBatch) -> torch.Tensor:
        """Logits (n, K) of the batch's nodes from one forward pass over the whole graph."""
        g = nodes.graph
        if takes_edges(model):
            return model(g.x, g.edge_index)[nodes.index]
        try:  # a feature model (mlp): the baseline that ignores the edges
            return model(g.x)[nodes.index]
        except (RuntimeError, TypeError, ValueError, IndexError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
            raise ConfigError(
                f"{type(bare_model(model)).__name__} takes one input and fails on the node "
                f"features {list(g.x.shape)} ({first}); graph data needs a graph model "
                "(gcn, graphsage, gat) or a feature model (mlp)"
            ) from None

    def _checked(self, model: nn.Module, nodes: NodeBatch) -> torch.Tensor:
        logits = self.logits(model, nodes)  # (n, K)
        k = self.num_classes
        if k is not None and (logits.dim() != 2 or logits.shape[1] != k):
            raise ConfigError(
                f"the model gives outputs of shape {list(logits.shape[1:])} per node but the "
                f"data has {k} classes: set model.num_classes={k} (or leave it out: trainlab "
                "takes it from the data)"
            )
        return logits

    def train_step(self, model: nn.Module, batch: tuple[NodeBatch, torch.Tensor]) -> StepOutput:
        nodes, y = batch
        logits = self._checked(model, nodes)  # (n, K)
        return StepOutput(self.loss_fn(logits, y, self.label_smoothing), logits.detach(), y)

    def eval_step(self, model: nn.Module, batch: tuple[NodeBatch, torch.Tensor]) -> StepOutput:
        nodes, y = batch
        logits = self._checked(model, nodes).float()
        return StepOutput(self.loss_fn(logits, y, 0.0), logits, y)

    def metrics(self, num_classes: int | None) -> MetricCollection:
        return self._scores.metrics(num_classes)

    def test_metrics(self, num_classes: int | None) -> MetricCollection:
        return self._scores.test_metrics(num_classes)


@register_task("node_classification")
def node_classification(
    *,
    loss: str = "cross_entropy",
    label_smoothing: float = 0.0,
    loss_options: dict[str, Any] = {},  # noqa: B006 - never mutated
    metrics: list[str] = [],  # noqa: B006 - never mutated
) -> NodeClassificationTask:
    """Node classification on graph data (karate_club, sbm_graph, graph_csv): one forward pass
    over the whole graph per step, cross-entropy and the classification metrics on the nodes
    of the split; ``loss``/``loss_options``/``metrics`` as for ``classification``."""
    return NodeClassificationTask(loss, label_smoothing, loss_options, metrics)

"""What the reinforcement-learning tasks (``dqn``, ``reinforce``) share: binding to the ``gym``
data source, greedy evaluation over fixed-seed episodes, the return metric.

Evaluation (``eval_step``) receives a batch of episode starts from the data (``x`` the first
observations, ``y`` the seeds, (E, 1)), plays every episode to its end with the greedy policy
``argmax_a model(obs)`` and reports ``<split>/return``, the mean return over the episodes, and
``<split>/loss`` = −mean return (so that loss-reading tools see lower as better).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from trainlab.data.environments import Policy, play_episodes
from trainlab.errors import ConfigError
from trainlab.tasks.base import StepOutput
from trainlab.tasks.common import bare_model

if TYPE_CHECKING:
    from torchmetrics import MetricCollection

__all__ = ["EnvironmentTask", "episode_return", "greedy_policy", "policy_outputs"]

Batch = tuple[torch.Tensor, torch.Tensor]


def episode_return() -> Any:
    """A metric: the mean of the episode returns passed as ``preds`` (``target`` is ignored:
    the trainer's evaluation passes both). torchmetrics is imported here, not at start-up.

    >>> m = episode_return()
    >>> m.update(torch.tensor([10.0, 20.0]), torch.tensor([10.0, 20.0]))
    >>> m.compute()
    tensor(15.)
    """
    from torchmetrics import MeanMetric

    class EpisodeReturn(MeanMetric):
        def update(self, preds: torch.Tensor, target: Any = None) -> None:  # type: ignore[override]
            super().update(preds)

    return EpisodeReturn()


def policy_outputs(net: nn.Module, obs: torch.Tensor, num_actions: int) -> torch.Tensor:
    """``net(obs)`` as float (N, num_actions); a model with another output width is a
    :class:`ConfigError` naming the fix."""
    out = net(obs).float()
    if out.dim() != 2 or out.shape[1] != num_actions:
        raise ConfigError(
            f"the model gives outputs {list(out.shape)} for {len(obs)} observations but the "
            f"environment has {num_actions} actions: set model.num_classes={num_actions} (or "
            "leave it out: trainlab takes it from the data)"
        )
    return out


def greedy_policy(net: nn.Module, num_actions: int, device: torch.device) -> Policy:
    """``obs (N, obs_dim) → argmax_a net(obs) (N,)`` on the CPU, without gradients.

    >>> pol = greedy_policy(nn.Linear(4, 2), 2, torch.device("cpu"))
    >>> pol(torch.zeros(3, 4)).shape
    torch.Size([3])
    """

    @torch.no_grad()
    def act(obs: torch.Tensor) -> torch.Tensor:
        return policy_outputs(net, obs.to(device), num_actions).argmax(dim=1).cpu()

    return act


class EnvironmentTask:
    """Small base of the RL tasks: ``check_data`` binds the task as the data's agent; greedy
    evaluation; the ``return`` metric. Subclasses set ``collect`` and implement ``act`` and
    ``train_step``."""

    collect = "replay"
    data: Any = None
    num_actions = 0
    loss_may_rise = True  # a TD or policy loss grows with the returns and value estimates

    def check_data(self, data: Any) -> None:
        """Bind to a ``gym`` data source (its training loader then acts with this task)."""
        if not callable(getattr(data, "bind", None)) or not hasattr(data, "make_env"):
            raise ConfigError(
                f"task {type(self).__name__}: needs an environment (data.name: gym), got data "
                f"{type(data).__name__}"
            )
        self.data, self.num_actions = data, int(data.num_classes)
        data.bind(self)

    def _need_data(self) -> None:
        if self.data is None:
            raise RuntimeError("call task.check_data(data) with a gym data source first")

    def eval_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        """Play the episodes seeded by ``batch[1]`` greedily; ``preds`` are their returns."""
        self._need_data()
        x, seeds = batch
        net = bare_model(model)
        was_training = net.training
        net.eval()  # single observations through batch norm, no dropout
        try:
            policy = greedy_policy(net, self.num_actions, x.device)
            returns, _ = play_episodes(self.data.make_env, seeds.flatten().tolist(), policy)
        finally:
            net.train(was_training)
        r = torch.tensor(returns, dtype=torch.float32, device=x.device)  # (E,)
        return StepOutput(-r.mean(), r, r)

    def recent_return(self, device: torch.device) -> torch.Tensor:
        """Mean return of the last (up to 20) training episodes, as played (0 before the first
        episode ends)."""
        recent = list(self.data.recent_returns) if self.data is not None else []
        return torch.tensor(sum(recent) / len(recent) if recent else 0.0, device=device)

    def metrics(self, num_classes: int | None) -> MetricCollection:
        from torchmetrics import MetricCollection

        return MetricCollection({"return": episode_return()})

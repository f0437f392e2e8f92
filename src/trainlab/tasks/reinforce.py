"""REINFORCE (Williams, 1992) with a baseline, as a task: a policy-gradient method.

The model maps observations (N, obs_dim) to action logits (N, A): the policy
``π(a|s) = softmax(model(s))``. With data ``gym``, each training batch is
``data.episodes_per_batch`` whole episodes played with actions sampled from π (on-policy;
:meth:`ReinforceTask.act`). One training step, over the T steps of the batch:

1. returns-to-go ``G_t = r_t + γ·r_{t+1} + …`` to the end of each episode (:func:`returns_to_go`);
2. advantages ``A_t = G_t − b(s_t)`` with the baseline ``b``: ``value`` (a small value network
   ``V(s)`` trained by this task's own Adam to regress ``G_t``, ``value_lr``), ``mean`` (the
   batch's mean return-to-go) or ``none``; with ``normalize``, A is scaled to zero mean and
   unit variance over the batch (steadier step sizes);
3. the loss ``−mean_t log π(a_t|s_t)·A_t − entropy·H(π(·|s_t))``, returned to the trainer (whose
   optimizer updates the policy).

Logged per step: ``train/loss``, ``train/episode_return`` (mean return of the batch's episodes,
sampled actions), ``train/value_loss`` (value baseline). Evaluation: greedy episodes
(:mod:`trainlab.tasks.rl_common`). The value network and its optimizer are saved with the task.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trainlab.data.environments import unpack
from trainlab.errors import ConfigError
from trainlab.tasks.base import StepOutput, register_task
from trainlab.tasks.common import bare_model
from trainlab.tasks.rl_common import EnvironmentTask, policy_outputs
from trainlab.tasks.side_optimizer import SideOptimizer

__all__ = ["ReinforceTask", "reinforce", "returns_to_go"]

Batch = tuple[torch.Tensor, torch.Tensor]


def returns_to_go(reward: torch.Tensor, episode_end: torch.Tensor, gamma: float) -> torch.Tensor:
    """Discounted reward-to-go per step, restarting after every ``episode_end`` (T,) → (T,).

    >>> returns_to_go(torch.tensor([1.0, 1.0, 1.0, 2.0]), torch.tensor([0.0, 0, 1, 1]), 0.5)
    tensor([1.7500, 1.5000, 1.0000, 2.0000])
    """
    r = reward.detach().double().cpu().numpy()
    end = episode_end.detach().cpu().numpy() > 0.5
    out = np.empty_like(r)
    g = 0.0
    for i in range(len(r) - 1, -1, -1):  # backwards: G_t = r_t + γ·G_{t+1}
        g = r[i] + (0.0 if end[i] else gamma * g)
        out[i] = g
    return torch.from_numpy(out).to(reward.device, torch.float32)


class ReinforceTask(EnvironmentTask):
    """REINFORCE with a learned value baseline (or the batch mean, or none).

    >>> from trainlab.data.environments import gym
    >>> data = gym(episodes_per_batch=2, batches_per_epoch=1, eval_episodes=2)
    >>> data.setup(torch.device("cpu"))
    >>> task, model = ReinforceTask(), nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    >>> task.check_data(data); task.setup(model, torch.device("cpu"))
    >>> out = task.train_step(model, next(data.loader("train").iter_epoch(0)))
    >>> sorted(out.extras)
    ['episode_return', 'value_loss']
    """

    collect = "episodes"

    def __init__(
        self,
        gamma: float = 0.99,
        baseline: str = "value",
        value_lr: float = 0.01,
        value_hidden: int = 64,
        normalize: bool = True,
        entropy: float = 0.0,
    ) -> None:
        if baseline not in ("value", "mean", "none"):
            raise ConfigError(f"task.baseline: '{baseline}'; valid: value, mean, none")
        if not 0.0 <= gamma <= 1.0 or value_lr <= 0 or value_hidden < 1 or entropy < 0:
            raise ConfigError(
                "task reinforce: need 0 ≤ gamma ≤ 1, value_lr > 0, value_hidden ≥ 1, entropy ≥ 0"
            )
        self.gamma, self.baseline, self.normalize = gamma, baseline, normalize
        self.entropy, self.value_hidden = entropy, value_hidden
        self.value: nn.Module | None = None
        self.value_side = SideOptimizer(value_lr, (0.9, 0.999))
        self.online: nn.Module | None = None
        self._pending: dict[str, Any] | None = None

    # -- hooks the trainer calls -------------------------------------------------------------------
    def setup(self, model: nn.Module, device: torch.device) -> None:
        """Remember the policy; build the value network ``obs_dim → value_hidden → 1``."""
        self.online = bare_model(model)
        if self.baseline != "value" or self.value is not None:
            return
        obs_dim = int(self.data.input_shape[0]) if self.data is not None else _in_features(model)
        h = self.value_hidden
        self.value = nn.Sequential(nn.Linear(obs_dim, h), nn.Tanh(), nn.Linear(h, 1)).to(device)
        if self._pending is not None:
            self.value.load_state_dict(self._pending)
            self._pending = None
        self.value_side.build(self.value)

    def state_dict(self) -> dict[str, Any]:
        value = self.value.state_dict() if self.value is not None else self._pending
        return {"value": value, "value_optimizer": self.value_side.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.value is not None and state.get("value") is not None:
            self.value.load_state_dict(state["value"])
        else:
            self._pending = state.get("value")
        self.value_side.load_state_dict(state.get("value_optimizer"))

    # -- acting ---------------------------------------------------------------------------------
    def act(self, obs: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Actions (N,) sampled from π(·|obs) with ``gen`` (the data's generator)."""
        if self.online is None:  # no model yet (a tool peeking at a batch): uniform actions
            return torch.randint(0, self.num_actions, (len(obs),), generator=gen)
        net = self.online
        was_training = net.training
        net.eval()
        with torch.no_grad():
            probs = F.softmax(policy_outputs(net, obs, self.num_actions), dim=1).cpu()
        net.train(was_training)
        return torch.multinomial(probs, 1, generator=gen).squeeze(1)

    # -- steps ----------------------------------------------------------------------------------
    def _advantage(self, x: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        extras: dict[str, Any] = {}
        if self.baseline == "value":
            assert self.value is not None, "setup() builds the value network"
            v = self.value(x).float().squeeze(1)  # (T,)
            value_loss = F.mse_loss(v, g)
            self.value_side.step(value_loss)  # the baseline's own update, before the policy's
            extras["value_loss"] = value_loss.detach()
            adv = g - v.detach()
        elif self.baseline == "mean":
            adv = g - g.mean()
        else:
            adv = g
        if self.normalize and len(adv) > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        return adv, extras

    def train_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        x, y = batch  # x: (T, obs_dim) states of the batch's episodes; y: (T, 4 + obs_dim)
        if self.online is None:
            self.setup(model, x.device)
        t = unpack(y)
        g = returns_to_go(t.reward, t.episode_end, self.gamma)  # (T,)
        logits = policy_outputs(model, x, self.num_actions) if self.num_actions else model(x)
        log_p = F.log_softmax(logits.float(), dim=1)  # (T, A)
        log_pa = log_p.gather(1, t.action[:, None]).squeeze(1)  # (T,)
        adv, extras = self._advantage(x, g)
        loss = -(log_pa * adv).mean()
        if self.entropy:
            entropy = -(log_p.exp() * log_p).sum(dim=1).mean()
            loss = loss - self.entropy * entropy
            extras["entropy"] = entropy.detach()
        episodes = t.episode_end.sum().clamp(min=1.0)
        extras["episode_return"] = t.reward.sum() / episodes
        return StepOutput(loss, extras=extras)


def _in_features(model: nn.Module) -> int:
    first = next(m for m in bare_model(model).modules() if isinstance(m, nn.Linear))
    return int(first.in_features)


@register_task("reinforce")
def reinforce(
    *,
    gamma: float = 0.99,
    baseline: str = "value",
    value_lr: float = 0.01,
    value_hidden: int = 64,
    normalize: bool = True,
    entropy: float = 0.0,
) -> ReinforceTask:
    """REINFORCE on a ``gym`` environment: whole sampled episodes per batch, returns-to-go with
    discount ``gamma``, baseline ``value`` (own value network, Adam ``value_lr``), ``mean`` or
    ``none``, optional advantage normalisation and entropy bonus."""
    return ReinforceTask(gamma, baseline, value_lr, value_hidden, normalize, entropy)

"""Deep Q-learning (DQN; Mnih et al. 2015) as a task, with the Double-DQN target (van Hasselt et
al. 2016) as an option.

The model maps an observation (N, obs_dim) to one Q-value per action (N, A). With data
``gym``, the trainer's batches are replay-buffer minibatches of transitions
``(s, a, r, terminated, s')`` collected by this task's ε-greedy policy
(:meth:`DQNTask.act`). One training step:

1. ``Q(s, a)`` from the online network;
2. the target, without gradients, from the *target network* ``Q⁻`` (a copy of the online one,
   refreshed every ``target_every`` steps: ``Q⁻ ← tau·Q + (1 − tau)·Q⁻``, a hard copy for
   ``tau = 1``, Polyak averaging for small ``tau``):
   ``y = r + γ·(1 − terminated)·Q⁻(s', a*)`` with ``a* = argmax_a Q⁻(s', a)`` (DQN) or
   ``a* = argmax_a Q(s', a)`` (``double: true``: the online network picks, the target network
   scores, which removes most of DQN's overestimation);
3. the Huber loss (``loss: huber``, δ = 1; or ``mse``) between them, returned to the trainer.

ε (the chance of a uniformly random action) falls linearly from ``eps_start`` to ``eps_end``
over the first ``eps_steps`` environment steps the task acts in (:func:`epsilon_at`). Logged per
step: ``train/loss``, ``train/q`` (mean Q(s, a)), ``train/epsilon``, ``train/episode_return``
(mean of the last 20 training episodes, exploration included). Evaluation: greedy episodes
(:mod:`trainlab.tasks.rl_common`). The target network and the step counts are saved with the
task's checkpoint state.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.data.environments import unpack
from trainlab.errors import ConfigError
from trainlab.tasks.base import StepOutput, register_task
from trainlab.tasks.common import bare_model
from trainlab.tasks.rl_common import EnvironmentTask, policy_outputs

__all__ = ["DQNTask", "dqn", "epsilon_at", "td_targets"]

Batch = tuple[torch.Tensor, torch.Tensor]


def epsilon_at(step: int, start: float, end: float, steps: int) -> float:
    """ε after ``step`` environment steps: linear from ``start`` to ``end`` over ``steps``,
    then constant.

    >>> [epsilon_at(s, 1.0, 0.1, 10) for s in (0, 5, 10, 50)]
    [1.0, 0.55, 0.1, 0.1]
    """
    if step >= steps:
        return end
    return start + step / steps * (end - start)


@torch.no_grad()
def td_targets(
    online: nn.Module,
    target: nn.Module,
    next_obs: torch.Tensor,
    reward: torch.Tensor,
    terminated: torch.Tensor,
    gamma: float,
    double: bool,
) -> torch.Tensor:
    """The bootstrapped targets ``r + γ·(1 − terminated)·Q⁻(s', a*)`` (N,), where ``a*`` is
    ``argmax Q⁻(s')`` (DQN) or ``argmax Q(s')`` (Double DQN).

    >>> q = nn.Linear(1, 2, bias=False)
    >>> _ = q.weight.data.copy_(torch.tensor([[1.0], [2.0]]))
    >>> td_targets(q, q, torch.ones(1, 1), torch.ones(1), torch.zeros(1), 0.5, False)
    tensor([2.])
    """
    q_next = target(next_obs).float()  # (N, A)
    if double:
        pick = online(next_obs).float().argmax(dim=1, keepdim=True)  # (N, 1): online chooses
        v_next = q_next.gather(1, pick).squeeze(1)
    else:
        v_next = q_next.max(dim=1).values
    return reward.float() + gamma * (1.0 - terminated.float()) * v_next


class DQNTask(EnvironmentTask):
    """DQN / Double DQN with a target network and an ε-greedy behaviour policy.

    >>> from trainlab.data.environments import gym
    >>> data = gym(batches_per_epoch=2, warmup_steps=32, eval_episodes=2)
    >>> data.setup(torch.device("cpu"))
    >>> task, model = DQNTask(), nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    >>> task.check_data(data); task.setup(model, torch.device("cpu"))
    >>> batch = next(data.loader("train").iter_epoch(0))
    >>> out = task.train_step(model, batch)
    >>> out.loss.shape, sorted(out.extras)
    (torch.Size([]), ['episode_return', 'epsilon', 'q'])
    """

    collect = "replay"

    def __init__(
        self,
        gamma: float = 0.99,
        double: bool = True,
        loss: str = "huber",
        target_every: int = 500,
        tau: float = 1.0,
        eps_start: float = 1.0,
        eps_end: float = 0.05,
        eps_steps: int = 10_000,
    ) -> None:
        if loss not in ("huber", "mse"):
            raise ConfigError(f"task.loss: '{loss}'; valid: huber, mse")
        if not 0.0 < tau <= 1.0 or target_every < 1 or not 0.0 <= gamma <= 1.0:
            raise ConfigError(
                f"task dqn: need 0 < tau ≤ 1, target_every ≥ 1 and 0 ≤ gamma ≤ 1 (got tau={tau}"
                f", target_every={target_every}, gamma={gamma})"
            )
        for key, eps in (("eps_start", eps_start), ("eps_end", eps_end)):
            if not 0.0 <= eps <= 1.0:
                raise ConfigError(f"task.{key} must be in [0, 1], got {eps}")
        self.gamma, self.double, self.loss = gamma, double, loss
        self.target_every, self.tau = target_every, tau
        self.eps_start, self.eps_end, self.eps_steps = eps_start, eps_end, eps_steps
        self.online: nn.Module | None = None
        self.target: nn.Module | None = None
        self.updates = 0  # training steps taken (target refreshes count these)
        self.env_steps = 0  # environment steps this task acted in (ε counts these)
        self._pending: dict[str, Any] | None = None

    @property
    def epsilon(self) -> float:
        return epsilon_at(self.env_steps, self.eps_start, self.eps_end, self.eps_steps)

    # -- hooks the trainer calls -------------------------------------------------------------------
    def setup(self, model: nn.Module, device: torch.device) -> None:
        """Make the target network (a frozen copy of ``model``, already on ``device``)."""
        online = bare_model(model)
        if self.online is online and self.target is not None:
            return  # set up again (resume, rollback): keep the target network
        self.online = online
        self.target = copy.deepcopy(online).requires_grad_(False).eval()
        if self._pending is not None:
            self.target.load_state_dict(self._pending)
            self._pending = None

    def state_dict(self) -> dict[str, Any]:
        target = self.target.state_dict() if self.target is not None else self._pending
        return {"target": target, "updates": self.updates, "env_steps": self.env_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates, self.env_steps = int(state["updates"]), int(state["env_steps"])
        if self.target is not None and state.get("target") is not None:
            self.target.load_state_dict(state["target"])
        else:
            self._pending = state.get("target")

    # -- acting ---------------------------------------------------------------------------------
    def act(self, obs: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """ε-greedy actions (N,) on the CPU for observations (N, obs_dim); random draws come
        from ``gen`` (the data's generator), so a seeded run repeats itself."""
        if self.online is None:  # no model yet (a tool peeking at a batch): uniform actions
            return torch.randint(0, self.num_actions, (len(obs),), generator=gen)
        n, eps = len(obs), self.epsilon
        self.env_steps += n
        explore = torch.rand(n, generator=gen) < eps
        random = torch.randint(0, self.num_actions, (n,), generator=gen)
        if bool(explore.all()):
            return random  # no forward pass needed (most of the early steps)
        net = self.online
        was_training = net.training
        net.eval()
        with torch.no_grad():
            greedy = policy_outputs(net, obs, self.num_actions).argmax(dim=1).cpu()
        net.train(was_training)
        return torch.where(explore, random, greedy)

    # -- steps ----------------------------------------------------------------------------------
    def train_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        x, y = batch  # x: (N, obs_dim) states s; y: (N, 4 + obs_dim) packed transitions
        if self.target is None:  # a hand-written loop need not call setup() first
            self.setup(model, x.device)
        assert self.target is not None
        t = unpack(y)
        # (N, A); the width is checked against the environment's actions once data is bound
        q = policy_outputs(model, x, self.num_actions) if self.num_actions else model(x).float()
        q_sa = q.gather(1, t.action[:, None]).squeeze(1)  # (N,)
        target = td_targets(bare_model(model), self.target, t.next_obs, t.reward,
                            t.terminated, self.gamma, self.double)  # fmt: skip
        loss_fn = F.smooth_l1_loss if self.loss == "huber" else F.mse_loss
        loss = loss_fn(q_sa, target)
        self.updates += 1
        if self.updates % self.target_every == 0:
            self.update_target()
        extras = {
            "q": q_sa.detach().mean(),
            "epsilon": torch.tensor(self.epsilon, device=x.device),
            "episode_return": self.recent_return(x.device),
        }
        return StepOutput(loss, extras=extras)

    @torch.no_grad()
    def update_target(self) -> None:
        """``Q⁻ ← tau·Q + (1 − tau)·Q⁻`` over parameters and buffers (a copy for tau = 1)."""
        assert self.online is not None and self.target is not None
        if self.tau >= 1.0:
            self.target.load_state_dict(self.online.state_dict())
            return
        for t, s in zip(self.target.parameters(), self.online.parameters()):
            t.lerp_(s, self.tau)
        for t, s in zip(self.target.buffers(), self.online.buffers()):
            t.copy_(s)


@register_task("dqn")
def dqn(
    *,
    gamma: float = 0.99,
    double: bool = True,
    loss: str = "huber",
    target_every: int = 500,
    tau: float = 1.0,
    eps_start: float = 1.0,
    eps_end: float = 0.05,
    eps_steps: int = 10_000,
) -> DQNTask:
    """DQN on a ``gym`` environment: replay minibatches, target network refreshed every
    ``target_every`` steps (``tau`` < 1: Polyak), ε-greedy over ``eps_steps`` environment steps,
    Double-DQN targets with ``double: true``, Huber or MSE loss."""
    return DQNTask(gamma, double, loss, target_every, tau, eps_start, eps_end, eps_steps)

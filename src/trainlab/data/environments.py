"""Gymnasium environments as a data source: batches come from playing the environment.

Reinforcement learning runs through the same :class:`~trainlab.train.Trainer` as supervised
learning. The ``gym`` source holds the environment; the task (``dqn``, ``reinforce``) is the
*agent* that picks the actions. ``task.check_data(data)`` binds the agent, and from then on the
training loader steps the environment with the agent's current policy:

- ``collect = "replay"`` (DQN): each batch is ``train_every`` environment steps (ε-greedy actions,
  transitions stored in a :class:`ReplayBuffer`) followed by a uniform minibatch of
  ``batch_size`` transitions from the buffer. Before the first batch, ``warmup_steps`` steps with
  uniformly random actions fill the buffer.
- ``collect = "episodes"`` (REINFORCE): each batch is ``episodes_per_batch`` whole episodes played
  with actions sampled from the policy (on-policy, nothing replayed).

An epoch is ``batches_per_epoch`` batches, i.e. optimizer steps. A batch is ``(x, y)``:
``x`` (N, obs_dim) float32 observations and ``y`` (N, 4 + obs_dim) float32 rows
``[action, reward, terminated, episode_end, next_obs…]`` (:func:`unpack` names the columns).
``terminated`` marks a true end (pole fell: no bootstrapping from the next state); a time-limit
truncation ends the episode (``episode_end``) but is not ``terminated``.

The ``val`` and ``test`` splits are ``eval_episodes`` episode starts with fixed seeds
(``eval_seed + i`` and ``test_seed + i``): ``x`` the first observations, ``y`` the seeds (E, 1);
the task plays them greedily and reports the mean return (:func:`evaluate_policy`).

Not exactly resumable: the replay buffer and the environment's position are not checkpointed (a
resumed run refills the buffer with ``warmup_steps`` random steps; the agent's step count, hence
ε, is restored with the task).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from trainlab.data.base import Batch, register_data
from trainlab.errors import ConfigError
from trainlab.registry import did_you_mean

__all__ = [
    "Agent", "GymData", "ReplayBuffer", "Transitions", "evaluate_policy", "gym", "make_env",
    "pack", "play_episodes", "unpack",
]  # fmt: skip

Policy = Callable[[torch.Tensor], torch.Tensor]  # (N, obs_dim) float32 → (N,) int64 actions


def make_env(env_id: str, max_episode_steps: int | None = None) -> Any:
    """A Gymnasium environment with discrete actions and a flat (1-D) observation vector; a
    name that is not registered, or a missing Gymnasium, is a one-line :class:`ConfigError`.

    >>> env = make_env("CartPole-v1")
    >>> int(env.action_space.n), env.observation_space.shape
    (2, (4,))
    """
    try:
        import gymnasium
    except ImportError:
        raise ConfigError(
            "data 'gym' needs Gymnasium, which is not installed: pip install 'trainlab[rl]'"
        ) from None
    names = sorted(gymnasium.envs.registry)
    if env_id not in gymnasium.envs.registry:
        raise ConfigError(f"data.env: '{env_id}' is not a Gymnasium environment"
                          f"{did_you_mean(env_id, names)}")  # fmt: skip
    try:
        env = gymnasium.make(env_id, max_episode_steps=max_episode_steps,
                             disable_env_checker=True)  # fmt: skip
    except (gymnasium.error.Error, ImportError) as e:  # e.g. Box2D or MuJoCo not installed
        msg = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ConfigError(f"data.env: cannot create '{env_id}': {msg}") from None
    obs_space, act_space = env.observation_space, env.action_space
    if not isinstance(act_space, gymnasium.spaces.Discrete) or len(obs_space.shape or ()) != 1:
        env.close()
        raise ConfigError(
            f"data.env: '{env_id}' has actions {act_space} and observations {obs_space}; the "
            "gym source needs discrete actions and a 1-D observation vector (e.g. CartPole-v1)"
        )
    return env


# -- transitions ------------------------------------------------------------------------------


@dataclass
class Transitions:
    """Named columns of a packed transition batch ``y`` (see :func:`unpack`)."""

    action: torch.Tensor  # (N,) int64
    reward: torch.Tensor  # (N,) float32
    terminated: torch.Tensor  # (N,) float32, 1.0 where the episode truly ended
    episode_end: torch.Tensor  # (N,) float32, 1.0 at the last step (terminated or truncated)
    next_obs: torch.Tensor  # (N, obs_dim) float32


def pack(action: Any, reward: Any, terminated: Any, end: Any, next_obs: Any) -> torch.Tensor:
    """One row (or rows) ``[action, reward, terminated, episode_end, next_obs…]``, float32.

    >>> pack(1, 1.0, False, False, [0.1, 0.2]).tolist()
    [1.0, 1.0, 0.0, 0.0, 0.10000000149011612, 0.20000000298023224]
    """
    head = torch.tensor([action, reward, terminated, end], dtype=torch.float32)
    return torch.cat([head, torch.as_tensor(np.asarray(next_obs), dtype=torch.float32)])


def unpack(y: torch.Tensor) -> Transitions:
    """The columns of a packed transition batch ``y`` (N, 4 + obs_dim).

    >>> unpack(pack(1, 1.0, True, True, [0.5])[None]).action
    tensor([1])
    """
    return Transitions(y[:, 0].long(), y[:, 1], y[:, 2], y[:, 3], y[:, 4:])


class ReplayBuffer:
    """A ring buffer of the last ``capacity`` transitions, sampled uniformly (with replacement)
    from a generator seeded with ``seed``.

    >>> buf = ReplayBuffer(capacity=3, obs_dim=2, seed=0)
    >>> for i in range(5):
    ...     buf.add([i, i], 0, 1.0, [i + 1, i + 1], False, False)
    >>> len(buf), sorted(buf.obs[:, 0].tolist())   # the oldest two were overwritten
    (3, [2.0, 3.0, 4.0])
    >>> x, y = buf.sample(4)
    >>> x.shape, y.shape
    (torch.Size([4, 2]), torch.Size([4, 6]))
    """

    def __init__(self, capacity: int, obs_dim: int, seed: int = 0) -> None:
        if capacity < 1:
            raise ConfigError(f"data.buffer_size must be ≥ 1, got {capacity}")
        self.capacity = capacity
        self.obs = torch.zeros(capacity, obs_dim)
        self.rows = torch.zeros(capacity, 4 + obs_dim)  # packed [a, r, term, end, next_obs]
        self.pos, self.size = 0, 0  # next slot to write; transitions held
        self.gen = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.size

    def add(
        self, obs: Any, action: int, reward: float, next_obs: Any, terminated: bool, end: bool
    ) -> None:
        """Store one transition, overwriting the oldest once the buffer is full."""
        self.obs[self.pos] = torch.as_tensor(np.asarray(obs), dtype=torch.float32)
        self.rows[self.pos] = pack(action, reward, terminated, end, next_obs)
        self.pos = (self.pos + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, n: int) -> Batch:
        """``n`` transitions drawn uniformly with replacement: ``(obs, packed rows)``."""
        if self.size == 0:
            raise RuntimeError("sample() from an empty replay buffer")
        idx = torch.randint(0, self.size, (n,), generator=self.gen)
        return self.obs[idx], self.rows[idx]


# -- playing episodes --------------------------------------------------------------------------


def play_episodes(
    make: Callable[[], Any], seeds: Sequence[int], policy: Policy, record: bool = False
) -> tuple[list[float], Batch | None]:
    """Play one episode per seed, all environments in lockstep (one batched policy call per
    step), until each ends. Returns the episodes' returns and, with ``record``, their
    transitions concatenated in seed order as ``(obs, packed rows)``.

    >>> rets, _ = play_episodes(lambda: make_env("CartPole-v1"), [0, 1],
    ...                         lambda obs: torch.zeros(len(obs), dtype=torch.long))
    >>> rets
    [11.0, 10.0]
    """
    envs = [make() for _ in seeds]
    obs = np.stack([env.reset(seed=int(s))[0] for env, s in zip(envs, seeds)]).astype(np.float32)
    returns = [0.0] * len(seeds)
    traces: list[list[torch.Tensor]] = [[] for _ in seeds]
    starts: list[list[np.ndarray]] = [[] for _ in seeds]
    active = list(range(len(seeds)))
    while active:
        actions = policy(torch.from_numpy(obs[active])).tolist()
        still = []
        for i, a in zip(active, actions):
            nxt, r, term, trunc, _ = envs[i].step(int(a))
            returns[i] += float(r)
            if record:
                starts[i].append(obs[i].copy())
                traces[i].append(pack(a, r, term, term or trunc, nxt))
            obs[i] = nxt
            if not (term or trunc):
                still.append(i)
        active = still
    for env in envs:
        env.close()
    if not record:
        return returns, None
    x = torch.from_numpy(np.stack([o for s in starts for o in s]))
    return returns, (x, torch.stack([row for t in traces for row in t]))


def evaluate_policy(
    env_id: str, policy: Policy, episodes: int = 100, seed: int = 0,
    max_episode_steps: int | None = None,
) -> float:
    """Mean return of ``policy`` over ``episodes`` episodes seeded ``seed, seed+1, …``.

    >>> evaluate_policy("CartPole-v1", lambda o: (3 * o[:, 2] + o[:, 3] > 0).long(), episodes=10)
    500.0
    """  # fmt: skip
    returns, _ = play_episodes(lambda: make_env(env_id, max_episode_steps),
                               range(seed, seed + episodes), policy)  # fmt: skip
    return float(np.mean(returns))


# -- the data source -------------------------------------------------------------------------------


class Agent(Protocol):
    """What the training loader needs from the task that acts: ``collect`` ("replay" or
    "episodes") and ``act`` (exploring actions for a batch of observations)."""

    collect: str

    def act(self, obs: torch.Tensor, gen: torch.Generator) -> torch.Tensor: ...


class GymData:
    """The ``gym`` data source (see the module docstring). ``num_classes`` is the number of
    actions (the model's outputs), ``input_shape`` the observation's."""

    batch_kind = "rl"  # batches are transitions or episode starts, not (sample, label) pairs

    def __init__(self, env: str, max_episode_steps: int | None, batch_size: int,
                 buffer_size: int, warmup_steps: int, train_every: int, batches_per_epoch: int,
                 episodes_per_batch: int, eval_episodes: int, eval_seed: int, test_seed: int,
                 seed: int) -> None:  # fmt: skip
        for key, value in (("batch_size", batch_size), ("train_every", train_every),
                           ("batches_per_epoch", batches_per_epoch),
                           ("episodes_per_batch", episodes_per_batch),
                           ("eval_episodes", eval_episodes)):  # fmt: skip
            if value < 1:
                raise ConfigError(f"data.{key} must be ≥ 1, got {value}")
        if not 0 <= warmup_steps <= buffer_size:
            raise ConfigError(f"data.warmup_steps must be in [0, data.buffer_size={buffer_size}]"
                              f", got {warmup_steps}")  # fmt: skip
        probe = make_env(env, max_episode_steps)
        self.env_id, self.max_episode_steps = env, max_episode_steps
        self.num_classes: int | None = int(probe.action_space.n)
        self.input_shape: tuple[int, ...] = tuple(probe.observation_space.shape)
        self.reward_threshold = probe.spec.reward_threshold if probe.spec else None
        probe.close()
        self.batch_size, self.buffer_size, self.warmup_steps = batch_size, buffer_size, warmup_steps
        self.train_every, self.batches_per_epoch = train_every, batches_per_epoch
        self.episodes_per_batch, self.eval_episodes = episodes_per_batch, eval_episodes
        self.eval_seed, self.test_seed, self.seed = eval_seed, test_seed, seed
        self.sizes = {"train": batches_per_epoch * batch_size, "val": eval_episodes,
                      "test": eval_episodes}  # fmt: skip
        self.agent: Agent | None = None
        self.device = torch.device("cpu")
        self.recent_returns: deque[float] = deque(maxlen=20)  # training episodes, as played
        self.env_steps = 0  # environment steps taken for training (warm-up included)

    def make_env(self) -> Any:
        return make_env(self.env_id, self.max_episode_steps)

    def bind(self, agent: Agent) -> None:
        """Let ``agent`` choose the training actions (and the collection kind)."""
        if agent.collect not in ("replay", "episodes"):
            raise ValueError(f"agent.collect must be 'replay' or 'episodes', got {agent.collect}")
        self.agent = agent

    def setup(self, device: torch.device) -> None:
        self.device = device
        self.gen = torch.Generator().manual_seed(self.seed)  # actions and episode seeds
        self.buffer = ReplayBuffer(self.buffer_size, self.input_shape[0], self.seed)
        self.env = self.make_env()
        self.obs, _ = self.env.reset(seed=self.seed)
        self.episode_return = 0.0

    def loader(self, split: str) -> _TrainLoader | _StartsLoader:
        if split == "train":
            return _TrainLoader(self)
        if split in ("val", "test"):
            return _StartsLoader(self, self.eval_seed if split == "val" else self.test_seed)
        raise KeyError(split)

    def describe(self) -> dict[str, Any]:
        return {
            "env": self.env_id, "actions": self.num_classes, "observation": list(self.input_shape),
            "reward_threshold": self.reward_threshold,
            "collect": self.agent.collect if self.agent else "replay",
            "eval_episodes": self.eval_episodes, "eval_seed": self.eval_seed,
            "test_seed": self.test_seed,
        }  # fmt: skip

    # -- collection ----------------------------------------------------------------------------
    def _random_policy(self) -> Policy:
        n = self.num_classes or 1
        return lambda obs: torch.randint(0, n, (len(obs),), generator=self.gen)

    def _agent_policy(self) -> Policy:
        agent = self.agent
        if agent is None:  # nothing bound (a data check, a preview): uniform random actions
            return self._random_policy()
        return lambda obs: agent.act(obs.to(self.device), self.gen).cpu()

    def step(self, policy: Policy) -> None:
        """One environment step with ``policy``, stored in the replay buffer."""
        obs = np.asarray(self.obs, dtype=np.float32)
        action = int(policy(torch.from_numpy(obs)[None])[0])
        nxt, r, term, trunc, _ = self.env.step(action)
        self.buffer.add(obs, action, float(r), nxt, bool(term), bool(term or trunc))
        self.env_steps += 1
        self.episode_return += float(r)
        if term or trunc:
            self.recent_returns.append(self.episode_return)
            self.episode_return = 0.0
            nxt, _ = self.env.reset()  # the environment's own RNG, seeded at setup
        self.obs = nxt

    def replay_batch(self) -> Batch:
        """Warm up once, take ``train_every`` steps with the agent, sample a minibatch."""
        if len(self.buffer) < max(self.warmup_steps, 1):
            uniform = self._random_policy()
            while len(self.buffer) < max(self.warmup_steps, 1):
                self.step(uniform)
        policy = self._agent_policy()
        for _ in range(self.train_every):
            self.step(policy)
        x, y = self.buffer.sample(self.batch_size)
        return x.to(self.device), y.to(self.device)

    def episode_batch(self) -> Batch:
        """``episodes_per_batch`` whole episodes with the agent's sampled actions."""
        seeds = torch.randint(0, 2**31 - 1, (self.episodes_per_batch,), generator=self.gen)
        returns, rec = play_episodes(self.make_env, seeds.tolist(), self._agent_policy(), True)
        assert rec is not None
        self.recent_returns.extend(returns)
        self.env_steps += len(rec[0])
        return rec[0].to(self.device), rec[1].to(self.device)


class _TrainLoader:
    """``batches_per_epoch`` batches collected with the bound agent's current policy."""

    def __init__(self, data: GymData) -> None:
        self.data = data

    def __len__(self) -> int:
        return self.data.batches_per_epoch

    def iter_epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        episodes = self.data.agent is not None and self.data.agent.collect == "episodes"
        for _ in range(start, len(self)):
            yield self.data.episode_batch() if episodes else self.data.replay_batch()


class _StartsLoader:
    """One batch: the first observations of ``eval_episodes`` episodes and their seeds."""

    def __init__(self, data: GymData, seed: int) -> None:
        self.data, self.seed = data, seed

    def __len__(self) -> int:
        return 1

    def iter_epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        if start > 0:
            return
        seeds = list(range(self.seed, self.seed + self.data.eval_episodes))
        env = self.data.make_env()
        x = np.stack([env.reset(seed=s)[0] for s in seeds]).astype(np.float32)
        env.close()
        dev = self.data.device
        # Seeds as a column (E, 1): not class labels, which tools read from 1-D integer targets.
        yield torch.from_numpy(x).to(dev), torch.tensor(seeds, device=dev).reshape(-1, 1)


@register_data("gym")
def gym(
    *,
    env: str = "CartPole-v1",
    max_episode_steps: int | None = None,
    batch_size: int = 64,
    buffer_size: int = 50_000,
    warmup_steps: int = 1000,
    train_every: int = 1,
    batches_per_epoch: int = 1000,
    episodes_per_batch: int = 8,
    eval_episodes: int = 100,
    eval_seed: int = 10_000,
    test_seed: int = 20_000,
    seed: int = 0,
) -> GymData:
    """A Gymnasium environment played by the task's agent (``dqn``, ``reinforce``); needs
    ``pip install 'trainlab[rl]'``. Evaluation: mean greedy return over ``eval_episodes``
    episodes seeded from ``eval_seed`` (val) and ``test_seed`` (test).

    >>> data = gym(warmup_steps=100, eval_episodes=3)
    >>> data.setup(torch.device("cpu"))
    >>> x, y = next(data.loader("train").iter_epoch(0))   # no agent bound: random actions
    >>> x.shape, y.shape, data.num_classes
    (torch.Size([64, 4]), torch.Size([64, 8]), 2)
    >>> next(data.loader("val").iter_epoch(0))[1].flatten().tolist()
    [10000, 10001, 10002]
    """
    return GymData(env, max_episode_steps, batch_size, buffer_size, warmup_steps, train_every,
                   batches_per_epoch, episodes_per_batch, eval_episodes, eval_seed, test_seed,
                   seed)  # fmt: skip

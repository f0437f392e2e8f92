"""Reinforcement learning (data gym, tasks dqn and reinforce): the pieces against hand
computations, and short runs through the real Trainer and CLI. CartPole-v1 only; no network."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

gymnasium = pytest.importorskip(
    "gymnasium", reason="Gymnasium is not installed (pip install 'trainlab[rl]')"
)

from trainlab.cli.main import main  # noqa: E402
from trainlab.data.environments import (  # noqa: E402
    ReplayBuffer,
    evaluate_policy,
    gym,
    make_env,
    pack,
    play_episodes,
    unpack,
)
from trainlab.errors import ConfigError  # noqa: E402
from trainlab.tasks.dqn import DQNTask, epsilon_at, td_targets  # noqa: E402
from trainlab.tasks.reinforce import ReinforceTask, returns_to_go  # noqa: E402
from trainlab.tracking.run_health import loss_warnings  # noqa: E402
from trainlab.train.trainer import Trainer  # noqa: E402

CPU = torch.device("cpu")


def q_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))


def small_data(**kw: object):
    opts = {"batch_size": 16, "warmup_steps": 32, "batches_per_epoch": 4, "eval_episodes": 3,
            "episodes_per_batch": 2, **kw}  # fmt: skip
    data = gym(**opts)  # type: ignore[arg-type]
    data.setup(CPU)
    return data


# -- replay buffer -------------------------------------------------------------------------------


def test_replay_buffer_keeps_the_last_capacity_transitions() -> None:
    buf = ReplayBuffer(capacity=4, obs_dim=1, seed=0)
    for i in range(7):
        buf.add([float(i)], i % 2, float(i), [i + 1.0], i == 6, i == 6)
    assert len(buf) == 4
    held = sorted(buf.obs[:, 0].tolist())
    assert held == [3.0, 4.0, 5.0, 6.0]  # 0, 1, 2 overwritten, oldest first
    x, y = buf.sample(64)
    t = unpack(y)
    assert torch.equal(t.reward, x[:, 0])  # each row stays with its own observation
    assert torch.equal(t.next_obs[:, 0], x[:, 0] + 1)
    assert torch.equal(t.action, (x[:, 0].long() % 2))
    assert torch.equal(t.terminated, (x[:, 0] == 6).float())


def test_replay_sampling_is_uniform_and_seeded() -> None:
    from scipy.stats import chisquare

    def filled(seed: int) -> ReplayBuffer:
        buf = ReplayBuffer(capacity=10, obs_dim=1, seed=seed)
        for i in range(10):
            buf.add([float(i)], 0, 0.0, [0.0], False, False)
        return buf

    x, _ = filled(0).sample(20_000)
    counts = torch.bincount(x[:, 0].long(), minlength=10)
    assert chisquare(counts.numpy()).pvalue > 1e-3  # no slot favoured
    assert torch.equal(filled(0).sample(50)[0], filled(0).sample(50)[0])
    assert not torch.equal(filled(0).sample(50)[0], filled(1).sample(50)[0])


def test_pack_unpack_round_trip() -> None:
    row = pack(1, 0.5, True, True, [0.25, -1.0])
    t = unpack(row[None])
    assert t.action.tolist() == [1] and t.reward.tolist() == [0.5]
    assert t.terminated.tolist() == [1.0] and t.next_obs.tolist() == [[0.25, -1.0]]


# -- DQN pieces ------------------------------------------------------------------------------------


def test_epsilon_schedule_values() -> None:
    values = [epsilon_at(s, 1.0, 0.05, 1000) for s in (0, 250, 500, 1000, 5000)]
    assert values == pytest.approx([1.0, 0.7625, 0.525, 0.05, 0.05])
    assert epsilon_at(0, 0.5, 0.1, 0) == 0.1  # no decay: the final value at once


def _linear(weight: list[list[float]], bias: list[float]) -> nn.Linear:
    layer = nn.Linear(len(weight[0]), len(weight))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        layer.bias.copy_(torch.tensor(bias))
    return layer


def test_double_dqn_target_matches_a_hand_computation() -> None:
    online = _linear([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], [0.0, 0.0, 0.0])
    target = _linear([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]], [0.0, 0.0, 1.0])
    next_obs = torch.tensor([[1.0, 2.0], [3.0, 1.0]])
    reward, terminated = torch.tensor([1.0, -1.0]), torch.tensor([0.0, 0.0])
    # online Q(s') = [1, 2, 1.5], [3, 1, 2]: a* = 1, 0. target Q(s') = [2, 6, 4], [6, 3, 5].
    double = td_targets(online, target, next_obs, reward, terminated, 0.9, double=True)
    assert double.tolist() == pytest.approx([1 + 0.9 * 6, -1 + 0.9 * 6])
    # Plain DQN: max of the target's own values: 6 and 6 here too; make them differ.
    next_obs2 = torch.tensor([[1.0, 2.0], [1.0, 0.0]])
    # online: [1, 2, 1.5], [1, 0, 0.5] → a* = 1, 0; target: [2, 6, 4], [2, 0, 2]
    plain = td_targets(online, target, next_obs2, reward, terminated, 0.9, double=False)
    dbl = td_targets(online, target, next_obs2, reward, terminated, 0.9, double=True)
    assert plain.tolist() == pytest.approx([1 + 0.9 * 6, -1 + 0.9 * 2])
    assert dbl.tolist() == pytest.approx([1 + 0.9 * 6, -1 + 0.9 * 2])
    # A third case where the online argmax is not the target's: online picks 2, target max is 0.
    online3 = _linear([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0]], [0.0, 0.0, 0.0])
    target3 = _linear([[1.0, 0.0], [0.0, 0.0], [0.5, 0.0]], [0.0, 0.0, 0.0])
    s = torch.tensor([[4.0, 0.0]])
    assert td_targets(online3, target3, s, torch.zeros(1), torch.zeros(1), 0.5, True).item() == 1.0
    assert td_targets(online3, target3, s, torch.zeros(1), torch.zeros(1), 0.5, False).item() == 2.0
    # Terminated transitions do not bootstrap.
    done = td_targets(online, target, next_obs, reward, torch.ones(2), 0.9, double=True)
    assert done.tolist() == [1.0, -1.0]


def test_one_trainer_step_changes_the_weights_not_the_target() -> None:
    data = small_data(batches_per_epoch=1)
    model = q_net()
    task = DQNTask(target_every=1000)
    task.check_data(data)
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    state = Trainer(epochs=1, progress=False, log_every=1).fit(model, task, data, opt)
    after = list(model.parameters())
    assert state.step == 1 and data.env_steps == 32 + 1  # warm-up + one step with the agent
    assert any(not torch.equal(a, b) for a, b in zip(after, before))
    assert task.target is not None
    assert all(torch.equal(t, b) for t, b in zip(task.target.parameters(), before))
    assert "val/return" in state.metrics and state.metrics["val/loss"] < 0
    assert {"train/q", "train/epsilon", "train/episode_return"} <= set(state.metrics)


def test_target_network_hard_copy_and_polyak_update() -> None:
    data = small_data()
    model = q_net()
    hard = DQNTask(target_every=3)
    hard.check_data(data)
    hard.setup(model, CPU)
    batch = next(data.loader("train").iter_epoch(0))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for i in range(3):
        assert hard.target is not None
        stale = not all(torch.equal(t, p) for t, p in zip(hard.target.parameters(),
                                                           model.parameters()))  # fmt: skip
        assert stale == (i > 0)
        hard.train_step(model, batch).loss.backward()
        opt.step()
        opt.zero_grad()
    # the 3rd step copied the weights before its optimizer step; one more step makes them differ
    with torch.no_grad():
        model[0].weight.add_(1.0)
    hard.update_target()
    assert torch.equal(hard.target[0].weight, model[0].weight)

    soft = DQNTask(target_every=1, tau=0.25)
    model2 = q_net(1)
    soft.check_data(data)
    soft.setup(model2, CPU)
    assert soft.target is not None
    old = soft.target[0].weight.detach().clone()
    with torch.no_grad():
        model2[0].weight.add_(4.0)
    soft.train_step(model2, batch)  # target_every=1: a Polyak update per step
    want = 0.25 * model2[0].weight + 0.75 * old
    assert torch.allclose(soft.target[0].weight, want)


def test_task_state_round_trip_restores_target_and_epsilon() -> None:
    data = small_data()
    task = DQNTask(target_every=2, eps_steps=100)
    task.check_data(data)
    task.setup(q_net(), CPU)
    for x, y in data.loader("train").iter_epoch(0):
        task.train_step(task.online, (x, y))  # type: ignore[arg-type]
    state = task.state_dict()
    fresh = DQNTask(target_every=2, eps_steps=100)
    fresh.load_state_dict(state)  # before setup, as a resumed run does
    fresh.check_data(data)
    fresh.setup(q_net(5), CPU)
    assert fresh.updates == 4 and fresh.env_steps == task.env_steps == 4
    assert fresh.epsilon == task.epsilon < 1.0
    assert fresh.target is not None and task.target is not None
    assert all(torch.equal(a, b) for a, b in zip(fresh.target.parameters(),
                                                 task.target.parameters()))  # fmt: skip


def test_training_is_repeatable_with_a_seed() -> None:
    def run() -> list[torch.Tensor]:
        data = small_data(batches_per_epoch=6)
        model = q_net()
        task = DQNTask(eps_steps=20)
        task.check_data(data)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        Trainer(epochs=2, progress=False).fit(model, task, data, opt)
        return [p.detach().clone() for p in model.parameters()]

    a, b = run(), run()
    assert all(torch.equal(x, y) for x, y in zip(a, b))


# -- evaluation ------------------------------------------------------------------------------------


def _by_hand(policy, seeds: list[int]) -> list[float]:
    out = []
    for s in seeds:
        env = gymnasium.make("CartPole-v1")
        obs, _ = env.reset(seed=s)
        total, done = 0.0, False
        while not done:
            a = int(policy(torch.as_tensor(obs, dtype=torch.float32)[None])[0])
            obs, r, term, trunc, _ = env.step(a)
            total += float(r)
            done = term or trunc
        out.append(total)
    return out


def test_evaluation_return_of_fixed_policies_matches_a_hand_loop() -> None:
    left = lambda obs: torch.zeros(len(obs), dtype=torch.long)  # noqa: E731
    lean = lambda obs: (obs[:, 2] > 0).long()  # noqa: E731 - push towards the pole's lean
    seeds = list(range(7, 12))
    for policy in (left, lean):
        returns, _ = play_episodes(lambda: make_env("CartPole-v1"), seeds, policy)
        assert returns == _by_hand(policy, seeds)  # lockstep play = one episode at a time
        assert evaluate_policy("CartPole-v1", policy, episodes=5, seed=7) == pytest.approx(
            sum(returns) / 5
        )
    assert evaluate_policy("CartPole-v1", left, episodes=5) < 20  # falls within ~10 steps


def test_eval_step_plays_greedy_episodes_and_reports_the_mean_return() -> None:
    data = small_data(eval_episodes=4)
    # A linear "Q-network" whose greedy action is the hand policy 3·angle + angular velocity > 0
    net = _linear([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 3.0, 1.0]], [0.0, 0.0])
    task = DQNTask()
    task.check_data(data)
    metrics = task.metrics(2)
    result = Trainer(progress=False).evaluate(net, task, data.loader("val"), "val", metrics)
    want = _by_hand(lambda o: (3 * o[:, 2] + o[:, 3] > 0).long(), list(range(10_000, 10_004)))
    assert result["val/return"] == pytest.approx(sum(want) / 4)
    assert result["val/loss"] == pytest.approx(-result["val/return"])


def test_recorded_episodes_pack_their_transitions() -> None:
    returns, rec = play_episodes(lambda: make_env("CartPole-v1"), [0, 1],
                                 lambda o: torch.ones(len(o), dtype=torch.long), record=True)
    assert rec is not None
    x, y = rec
    t = unpack(y)
    assert len(x) == sum(returns) and t.episode_end.sum() == 2 and t.terminated.sum() == 2
    first = int(returns[0])
    assert torch.equal(t.next_obs[: first - 1], x[1:first])  # s' of step i is s of step i+1


# -- REINFORCE -------------------------------------------------------------------------------------


def test_returns_to_go_restart_at_episode_ends() -> None:
    g = returns_to_go(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]),
                      torch.tensor([0.0, 1.0, 0.0, 0.0, 1.0]), 0.5)  # fmt: skip
    assert g.tolist() == pytest.approx([2.0, 2.0, 3 + 0.5 * (4 + 0.5 * 5), 4 + 2.5, 5.0])


@pytest.mark.parametrize("baseline", ["value", "mean", "none"])
def test_reinforce_step_moves_the_policy_towards_good_actions(baseline: str) -> None:
    # Two one-step "episodes" from the same state: action 1 earned 1, action 0 earned 0.
    x = torch.ones(2, 4)
    y = torch.stack([pack(1, 1.0, True, True, [0.0] * 4), pack(0, 0.0, True, True, [0.0] * 4)])
    data = small_data()
    model = q_net()
    task = ReinforceTask(baseline=baseline, normalize=baseline != "none")
    task.check_data(data)
    task.setup(model, CPU)
    p_before = torch.softmax(model(x[:1]), 1)[0, 1].item()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    value_before = [p.clone() for p in task.value.parameters()] if task.value else []
    task.train_step(model, (x, y)).loss.backward()
    opt.step()
    assert torch.softmax(model(x[:1]), 1)[0, 1].item() > p_before
    if baseline == "value":  # the baseline learned from the same batch, with its own optimizer
        assert task.value is not None
        assert any(not torch.equal(a, b) for a, b in zip(task.value.parameters(), value_before))


def test_reinforce_batches_are_whole_sampled_episodes() -> None:
    data = small_data(episodes_per_batch=3)
    task = ReinforceTask()
    task.check_data(data)
    task.setup(q_net(), CPU)
    x, y = next(data.loader("train").iter_epoch(0))
    t = unpack(y)
    assert t.episode_end.sum() == 3 and bool(t.episode_end[-1])
    assert len(data.recent_returns) == 3 and sum(data.recent_returns) == len(x)
    out = task.train_step(task.online, (x, y))  # type: ignore[arg-type]
    assert out.extras is not None
    assert out.extras["episode_return"].item() == pytest.approx(len(x) / 3)


def test_negative_policy_gradient_loss_is_no_explosion_warning() -> None:
    history = [{"epoch": 1, "train/loss_epoch": -0.01}, {"epoch": 2, "train/loss_epoch": -0.001}]
    assert loss_warnings(history, 2) == []


# -- mistakes ------------------------------------------------------------------------------------


def test_unknown_or_unsuitable_environment_is_a_config_error(monkeypatch) -> None:
    with pytest.raises(ConfigError, match="did you mean 'CartPole-v1'"):
        make_env("CartPol-v1")
    with pytest.raises(ConfigError, match="discrete actions"):
        make_env("Pendulum-v1")  # continuous actions
    monkeypatch.setitem(__import__("sys").modules, "gymnasium", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"trainlab\[rl\]"):
        make_env("CartPole-v1")


def test_rl_task_on_other_data_or_wrong_width_is_a_config_error() -> None:
    from trainlab.data.synthetic import synthetic

    with pytest.raises(ConfigError, match="data.name: gym"):
        DQNTask().check_data(synthetic())
    data = small_data()
    task = DQNTask(eps_start=0.0, eps_end=0.0)
    task.check_data(data)
    task.setup(nn.Linear(4, 3), CPU)
    with pytest.raises(ConfigError, match="model.num_classes=2"):
        task.act(torch.zeros(1, 4), torch.Generator())


RECIPE = """
name: rl
data: {{name: gym, env: {env}, batches_per_epoch: 3, warmup_steps: 16, eval_episodes: 2}}
model: {{name: mlp, hidden: [8]}}
task: {{name: dqn}}
optim: {{name: adam, lr: 0.001}}
train: {{epochs: 1, device: cpu, precision: fp32, threads: 1, monitor: val/return,
        report: false, tensorboard: false}}
"""


def test_cli_trains_and_a_missing_environment_is_one_line_exit_2(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text(RECIPE.format(env="CartPool-v9"))
    capsys.readouterr()
    assert main(["train", "bad.yaml", "--run-dir", "runs/bad", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "CartPool-v9" in err and "Traceback" not in err
    assert not (tmp_path / "runs" / "bad" / "checkpoints").exists()
    (tmp_path / "ok.yaml").write_text(RECIPE.format(env="CartPole-v1"))
    assert main(["train", "ok.yaml", "--run-dir", "runs/ok", "--no-progress"]) == 0
    import json

    summary = json.loads((tmp_path / "runs" / "ok" / "summary.json").read_text())
    assert summary["test"]["test/return"] >= 8 and math.isfinite(summary["final"]["val/return"])

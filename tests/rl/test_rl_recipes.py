"""The reinforcement-learning recipes, trained end to end as written (slow tier): each reaches
CartPole-v1's "solved" return, 475, as the mean greedy return over the 100 test episodes of its
best checkpoint (chosen on 100 other, validation, episodes)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("gymnasium", reason="Gymnasium is not installed (pip install 'trainlab[rl]')")

from trainlab.run import train_run  # noqa: E402

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
QUIET = ["train.tensorboard=false", "train.report=false"]
SOLVED = 475.0  # gymnasium's CartPole-v1 spec.reward_threshold


@pytest.mark.slow
@pytest.mark.parametrize("stem", ["dqn_cartpole", "reinforce_cartpole"])
def test_rl_recipe_solves_cartpole(stem: str, tmp_path: Path) -> None:
    summary = train_run(RECIPES / f"{stem}.yaml", QUIET, run_dir=tmp_path / stem, progress=False)
    assert summary["best"]["value"] >= SOLVED  # val/return of the best epoch
    assert summary["test"]["test/return"] >= SOLVED  # the same weights, 100 unseen seeds

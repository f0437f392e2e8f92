"""``trainlab ensemble``: members' and ensemble's test metrics; incompatible members refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from after_training_support import DIGITS_CNN, train_tiny
from trainlab.cli.main import main
from trainlab.compress.ensemble import EnsembleError, combine, ensemble_runs
from trainlab.deploy import dir_digest


@pytest.fixture(scope="module")
def second_digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    text = DIGITS_CNN.replace("seed: 0", "seed: 5")  # another init, same data and splits
    return train_tiny(tmp_path_factory.mktemp("runs"), "digits_cnn_seed5", text)


def test_vote_majority_and_mean_probabilities() -> None:
    a = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    b = torch.tensor([[0.4, 0.6], [0.3, 0.7]])
    c = torch.tensor([[0.45, 0.55], [0.6, 0.4]])
    assert combine([a, b, c], "vote").argmax(-1).tolist() == [1, 1]  # 2 of 3 votes
    assert combine([a, b, c], "mean").argmax(-1).tolist() == [0, 1]  # 0.583 for class 0
    assert torch.allclose(combine([a, b, c], "mean").sum(-1), torch.ones(2))
    tie = combine([a, b], "vote")  # 1 vote each: the larger mean probability (0.65) wins
    assert tie.argmax(-1).tolist()[0] == 0


def test_ensemble_cli_reports_members_and_ensemble(digits_run: Path, second_digits_run: Path,
                                                   tmp_path: Path, capsys) -> None:  # fmt: skip
    before = dir_digest(digits_run)
    out = tmp_path / "e"
    runs = [str(digits_run), str(second_digits_run)]
    assert main(["ensemble", *runs, "--method", "mean", "--out", str(out)]) == 0
    report = json.loads((out / "ensemble.json").read_text())
    assert [m["run"] for m in report["members"]] == runs
    members = json.loads((digits_run / "summary.json").read_text())
    # a member's accuracy here is its own test accuracy (the run measured it with its task)
    assert report["members"][0]["acc"] == pytest.approx(members["test"]["test/acc"], abs=1e-6)
    assert 0.0 < report["ensemble"]["acc"] <= 1.0 and report["ensemble"]["nll"] > 0
    assert "ensemble" in capsys.readouterr().out
    vote = ensemble_runs(runs, "vote", tmp_path / "v")
    assert vote["ensemble"]["nll"] is None and vote["n_test"] == report["n_test"]
    assert dir_digest(digits_run) == before


def test_members_on_other_data_are_refused(digits_run: Path, text_run: Path, tmp_path: Path,
                                           capsys) -> None:  # fmt: skip
    assert main(["ensemble", str(digits_run), str(text_run), "--out", str(tmp_path / "x")]) == 2
    assert "data section differs" in capsys.readouterr().err
    with pytest.raises(EnsembleError, match="at least two"):
        ensemble_runs([digits_run])

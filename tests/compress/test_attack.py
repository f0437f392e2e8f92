"""``trainlab attack``: FGSM/PGD robust accuracy and the sanity checks of the evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from trainlab.cli.main import main
from trainlab.compress.attack import LARGE_EPS, Box, _sanity, fgsm, pgd
from trainlab.deploy import dir_digest


def test_digits_attack_passes_its_sanity_checks(digits_run: Path, tmp_path: Path,
                                                capsys) -> None:  # fmt: skip
    before = dir_digest(digits_run)
    out = tmp_path / "a"
    assert main(["attack", str(digits_run), "--eps", "0.05", "0.2", "--steps", "5",
                 "-n", "200", "--out", str(out)]) == 0  # fmt: skip
    report = json.loads((out / "attack.json").read_text())
    assert report["range"] == [0.0, 16.0]  # digits' stored values
    eps = [r["eps"] for r in report["rows"]]
    assert eps == [0.05, 0.2, LARGE_EPS]
    r05, r20, large = report["rows"]
    assert r05["pgd"] <= r05["fgsm"] + 0.01 and r20["pgd"] < r05["pgd"] < r05["clean"]
    assert large["pgd"] <= 0.05 and report["checks"]["ok"]
    assert "PGD ≥ FGSM ok" in capsys.readouterr().out
    assert dir_digest(digits_run) == before


def test_projection_keeps_the_ball_and_the_range() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    box = Box(torch.tensor(0.5).view(1, 1), torch.tensor(0.25).view(1, 1), 0.0, 1.0)
    raw = torch.rand(16, 4)
    y = torch.randint(0, 3, (16,))
    for adv in (fgsm(model, box, raw, y, 0.1),
                pgd(model, box, raw, y, 0.1, 4, torch.Generator().manual_seed(0))):  # fmt: skip
        assert (adv - raw).abs().max() <= 0.1 + 1e-6
        assert adv.min() >= 0.0 and adv.max() <= 1.0
    # FGSM on a linear model moves every input along the loss gradient: the loss grows.
    ce = nn.functional.cross_entropy
    assert ce(model(box.norm(fgsm(model, box, raw, y, 0.1))), y) > ce(model(box.norm(raw)), y)


def test_sanity_flags_a_masked_gradient() -> None:
    # What gradient masking looks like: attacks barely beat noise, and a huge ε does nothing.
    rows = [{"eps": 0.03, "clean": 0.9, "random": 0.89, "fgsm": 0.88, "pgd": 0.87},
            {"eps": LARGE_EPS, "clean": 0.9, "random": 0.5, "fgsm": 0.6, "pgd": 0.55}]
    checks = _sanity(rows, 0.9, 10)
    assert not checks["large_eps_collapses"] and not checks["ok"]
    rows[0]["pgd"] = 0.95  # PGD weaker than FGSM: a broken attack
    assert not _sanity(rows, 0.9, 10)["pgd_at_least_fgsm"]


@pytest.mark.parametrize("args,message", [
    (["--eps", "0"], "must lie in (0, 1]"),
    (["--eps", "8"], "must lie in (0, 1]"),
    (["--steps", "0"], "--steps 0"),
])  # fmt: skip
def test_bad_eps_is_one_line_exit_2(digits_run: Path, tmp_path: Path, capsys, args: list[str],
                                    message: str) -> None:  # fmt: skip
    assert main(["attack", str(digits_run), *args, "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_token_inputs_are_refused(text_run: Path, tmp_path: Path, capsys) -> None:
    assert main(["attack", str(text_run), "--out", str(tmp_path / "a")]) == 2
    assert "token ids" in capsys.readouterr().err

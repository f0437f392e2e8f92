"""`trainlab doctor` through the real entry point; --apply; the findings' ranking and fixes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from doctor_support import CASES, healthy

from trainlab.cli.main import main
from trainlab.config.load import load_config
from trainlab.doctor.findings import Diagnosis, Finding, valid_fixes

PLUGIN = ["--import", str(CASES / "faults.py")]


def _f(cause: str, severity: str, score: float, fix: list[str]) -> Finding:
    return Finding(f"rule.{cause}", cause, severity, score, "s", {}, "e", fix)  # type: ignore[arg-type]


def test_ranking_is_severity_then_score_and_fixes_keep_the_first_value() -> None:
    diag = Diagnosis("x", "recipe", [
        _f("a", "warning", 0.5, ["optim.lr=0.1"]), _f("b", "error", 0.1, ["train.grad_clip=1.0"]),
        _f("c", "warning", 0.9, ["optim.lr=0.01"]), _f("d", "info", 1.0, ["train.epochs=3"]),
    ])  # fmt: skip
    assert [f.cause for f in diag.findings] == ["b", "c", "a", "d"]
    assert diag.fixes == ["train.grad_clip=1.0", "optim.lr=0.01"]  # info fixes are not applied


def test_fixes_that_do_not_fit_the_recipe_are_dropped() -> None:
    raw = yaml.safe_load((CASES / "threads.yaml").read_text())
    kept, dropped = valid_fixes(raw, ["optim.lr=0.01", "model.nonexistent=3", "train.l2=1e-4"])
    assert kept == ["optim.lr=0.01", "train.l2=1e-4"] and dropped == ["model.nonexistent=3"]


def test_cli_preflight_apply_writes_a_fixed_recipe_that_validates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fixed.yaml"
    code = main(["doctor", str(CASES / "threads.yaml"), *PLUGIN, "--skip", "lr", "--skip",
                 "overfit", "--apply", str(out), "--json"])  # fmt: skip
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["findings"][0]["cause"] == "thread_oversubscription"
    assert data["fixes"][0].startswith("train.threads=")
    fixed = load_config(out)
    assert fixed.train.threads is not None and fixed.train.threads <= 64
    assert fixed.train.threads == int(data["fixes"][0].split("=")[1])


def test_cli_run_dir_apply_fixes_the_run_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = healthy(tmp_path / "r", step_loss=[2.3, 2.0, 1.8, 30.0, 90.0, 200.0])
    out = tmp_path / "fixed.yaml"
    assert main(["doctor", str(run), "--apply", str(out)]) == 0
    text = capsys.readouterr().out
    assert "lr_too_high" in text and "optim.lr=0.005" in text
    assert load_config(out).optim.options()["lr"] == 0.005
    assert not (run / "fixed.yaml").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["doctor", "no/such/place"], "neither a recipe file nor a run directory"),
        (["doctor", str(CASES / "threads.yaml"), "model.name=mlq", *PLUGIN], "unknown model"),
        (["doctor", str(CASES / "threads.yaml"), "model.in_features=7", *PLUGIN, "--skip", "lr"],
         "forward fails"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_run_dir_without_records_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "summary.json").write_text("{}")
    assert main(["doctor", str(tmp_path / "run")]) == 2
    assert "no training records" in capsys.readouterr().err

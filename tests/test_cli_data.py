"""``trainlab data RECIPE`` through the CLI entry point."""

from __future__ import annotations

import json

from core_support import SYNTH
from trainlab.cli.main import main


def test_data_command_summarises_and_draws(recipe, tmp_path, capsys) -> None:
    out = tmp_path / "inspect"
    assert main(["data", str(recipe(SYNTH)), "data.n_train=96", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "train" in printed and "leakage" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["splits"]["train"]["n"] == 96
    assert sum(summary["splits"]["train"]["class_counts"]) == 96
    assert (out / "samples.png").read_bytes()[:4] == b"\x89PNG"


def test_data_command_bad_key_is_one_line(recipe, capsys) -> None:
    assert main(["data", str(recipe(SYNTH)), "data.n_trian=5"]) == 2
    err = capsys.readouterr().err
    assert "data.n_trian: unknown option for data 'synthetic' (did you mean 'n_train'?)" in err

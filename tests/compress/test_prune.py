"""``trainlab prune``: global magnitude and structured pruning, fine-tuned as ordinary runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from trainlab.cli.main import main
from trainlab.compress.prune import PruneError, prune_run, sparsity
from trainlab.deploy import dir_digest, load_run

try:
    import torch_pruning  # noqa: F401

    HAVE_TP = True
except ImportError:
    HAVE_TP = False


def test_unstructured_prune_and_finetune_keep_the_zeros(digits_run: Path, tmp_path: Path) -> None:
    before = dir_digest(digits_run)
    out = tmp_path / "p"
    report = prune_run(digits_run, 0.6, finetune_epochs=1, out=out, reps=3)
    step = report["steps"][0]
    assert step["sparsity"] == pytest.approx(0.6, abs=0.01)  # global: 60 % of all weights
    assert [r["name"] for r in report["rows"]] == ["original", "pruned 60%", "pruned 60% + 1 ep"]
    tuned = load_run(step["finetune_run"])  # an ordinary run directory, loadable as any
    assert sparsity(tuned.model) >= 0.6 - 1e-3  # zeros stayed zeros through training
    cfg = yaml.safe_load((Path(step["finetune_run"]) / "config.yaml").read_text())
    assert cfg["model"]["init_from"].endswith("step-1/pruned.safetensors")
    assert cfg["train"]["epochs"] == 1
    assert {"name": "keep_zeros"} in cfg["callbacks"]  # in the recipe: a resume keeps it too
    init = json.loads((Path(step["finetune_run"]) / "init_from.json").read_text())
    assert init["new"] == [] and len(init["loaded"]) > 10
    assert (out / "prune.png").stat().st_size > 1000 and (out / "prune.json").is_file()
    assert dir_digest(digits_run) == before


@pytest.mark.skipif(not HAVE_TP, reason="torch-pruning not installable here (extra 'compress')")
def test_structured_prune_removes_channels_and_reloads(digits_run: Path, tmp_path: Path) -> None:
    before = dir_digest(digits_run)
    report = prune_run(digits_run, 0.5, structured=True, iterations=2, out=tmp_path / "s", reps=3)
    first, second = report["steps"]
    assert report["original_params"] > first["params"] > second["params"]
    assert second["params"] < 0.45 * report["original_params"]  # channels in and out go
    # The saved weights carry their layer sizes: a fresh model rebuilt from the recipe with
    # model.init_from takes the pruned shapes (what the fine-tuning runs rely on).
    from trainlab.compress.init_from import init_from
    from trainlab.experiment import build_experiment

    exp = build_experiment(load_run(digits_run).cfg)
    rep = init_from(exp.model, second["weights"])
    assert rep["resized"] > 0 and rep["new"] == []
    assert sum(p.numel() for p in exp.model.parameters()) == second["params"]
    x = torch.zeros(2, 1, 8, 8)
    assert exp.model.eval()(x).shape == (2, 10)
    assert dir_digest(digits_run) == before


def test_bad_amount_is_one_line_exit_2(digits_run: Path, tmp_path: Path, capsys) -> None:
    assert main(["prune", str(digits_run), "--amount", "1.5", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--amount 1.5" in err[0]
    with pytest.raises(PruneError, match="never modified"):
        prune_run(digits_run, 0.5, out=digits_run / "pruned")

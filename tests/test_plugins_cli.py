"""A model, a data source, a loss and a metric from a file outside the repository, trained with
the real ``trainlab`` console script; later commands on the run need no ``--import``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plugin_files import REPO, run_trainlab, write_plugin


@pytest.fixture(autouse=True)
def _no_inherited_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRAINLAB_PLUGINS", raising=False)  # see test_plugins.py


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(run dir, plug-in file)``: ``trainlab train recipe --import my_code.py`` in a folder
    outside the repository."""
    home = tmp_path_factory.mktemp("user_project")
    assert REPO not in home.parents
    plugin, recipe = write_plugin(home, "cli")
    rdir = home / "runs" / "plug"
    res = run_trainlab(
        ["train", recipe.name, "--import", plugin.name, "--run-dir", str(rdir), "--no-progress"],
        cwd=home,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().endswith(f"run: {rdir}")
    return rdir, plugin


def test_train_through_import_records_the_plugin(trained: tuple[Path, Path]) -> None:
    rdir, plugin = trained
    summary = json.loads((rdir / "summary.json").read_text())
    # the plug-in's metric and a torchmetrics one by name, on the plug-in's data and model
    assert 0.0 <= summary["test"]["test/error_rate_cli"] <= 1.0
    assert "test/cohen_kappa" in summary["test"]
    assert summary["test"]["test/acc"] == pytest.approx(1 - summary["test"]["test/error_rate_cli"])
    record = json.loads((rdir / "plugins.json").read_text())["plugins"]
    assert [(p["source"], p["path"]) for p in record] == [("file", str(plugin.resolve()))]
    assert len(record[0]["sha256"]) == 64
    assert set(record[0]["registered"]) == {
        "models/tiny_net_cli", "data/blobs_cli", "losses/focal_cli", "metrics/error_rate_cli",
    }  # fmt: skip
    config = (rdir / "config.yaml").read_text()
    assert "my_code" not in config  # the recipe stays data: registry names, no import paths


def test_eval_report_and_resume_remember_the_plugin(trained: tuple[Path, Path], capsys) -> None:
    """In this process the plug-in was never imported: the run directory brings it back."""
    from trainlab.cli.main import main
    from trainlab.models.registry import MODELS

    rdir, _ = trained
    assert "tiny_net_cli" not in MODELS  # the training ran in another process
    # export (like predict, ensemble, quantize, prune: deploy.source) re-imports it first
    out = rdir.parent / "plug.ts.pt"
    assert main(["export", str(rdir), "--format", "torchscript", "--out", str(out)]) == 0
    assert out.is_file() and "tiny_net_cli" in MODELS
    assert main(["eval", str(rdir), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    summary = json.loads((rdir / "summary.json").read_text())
    assert result["test/error_rate_cli"] == pytest.approx(summary["test"]["test/error_rate_cli"])
    assert main(["report", str(rdir)]) == 0
    assert (rdir / "report.html").is_file()
    assert main(["train", "--resume", str(rdir), "train.epochs=3", "--no-progress"]) == 0
    assert json.loads((rdir / "summary.json").read_text())["epochs"] == 3


@pytest.mark.slow
def test_eval_in_a_fresh_process_needs_no_import(trained: tuple[Path, Path]) -> None:
    rdir, _ = trained
    res = run_trainlab(["eval", str(rdir), "--json"], cwd=rdir.parents[1])
    assert res.returncode == 0, res.stderr
    assert "test/error_rate_cli" in json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_module_plugin_is_found_from_another_folder(tmp_path: Path) -> None:
    """``--import my_code_mod`` (a module name, from the current folder); ``eval`` run elsewhere
    finds it again by its recorded path."""
    project = tmp_path / "project"
    plugin, recipe = write_plugin(project, "mod")
    rdir = tmp_path / "runs" / "mod"
    res = run_trainlab(["train", recipe.name, "--import", plugin.stem, "--run-dir", str(rdir),
                        "--no-progress", "train.epochs=1"], cwd=project)  # fmt: skip
    assert res.returncode == 0, res.stderr
    record = json.loads((rdir / "plugins.json").read_text())["plugins"]
    assert [(p["source"], p["module"]) for p in record] == [("module", "my_code_mod")]
    res = run_trainlab(["eval", str(rdir)], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "test/error_rate_mod" in res.stdout


def test_processes_started_by_a_command_load_its_plugins(tmp_path: Path) -> None:
    """What a sweep, tune or cv worker (a fresh interpreter) sees when it imports trainlab."""
    import os
    import subprocess
    import sys

    plugin, _ = write_plugin(tmp_path, "inh")
    code = "import trainlab.models.registry as r; print('tiny_net_inh' in r.MODELS)"
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "TRAINLAB_PLUGINS": json.dumps({"imports": [str(plugin)], "entry_points": True}),
    }
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert out.stdout.strip() == "True", out.stderr  # without the variable: False (above)


@pytest.mark.slow
def test_a_sweep_with_worker_processes_uses_the_plugin(tmp_path: Path) -> None:
    plugin, recipe = write_plugin(tmp_path, "swp")
    res = run_trainlab(["sweep", recipe.name, "--grid", "optim.lr=0.1,0.2", "--workers", "2",
                        "--import", plugin.name, "--out", "sw", "train.epochs=1"],
                       cwd=tmp_path)  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    summaries = list((tmp_path / "sw").rglob("summary.json"))
    assert len(summaries) == 2
    assert all("test/error_rate_swp" in json.loads(p.read_text())["test"] for p in summaries)

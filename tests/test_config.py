"""Recipes, overrides and every user mistake through the real CLI entry point."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core_support import SYNTH
from trainlab import ConfigError, load_config
from trainlab.cli.main import main
from trainlab.config.load import apply_overrides


def test_overrides_are_typed_yaml_scalars(recipe) -> None:
    path = recipe(SYNTH)
    cfg = load_config(
        path,
        [
            "optim.lr=0.5",
            "train.epochs=7",
            "train.grad_clip=null",
            "model.hidden=[8, 4]",
            "sched.name=cosine",
        ],
    )
    assert cfg.optim.options()["lr"] == 0.5
    assert cfg.train.epochs == 7 and cfg.train.grad_clip is None
    assert cfg.model.options()["hidden"] == [8, 4]
    assert cfg.sched is not None and cfg.sched.name == "cosine"


def test_override_list_index_and_bad_forms() -> None:
    raw = {"callbacks": [{"name": "early_stopping", "patience": 3}]}
    assert apply_overrides(raw, ["callbacks.0.patience=9"])["callbacks"][0]["patience"] == 9
    assert raw["callbacks"][0]["patience"] == 3  # input untouched
    with pytest.raises(ConfigError, match="expected dotted.key=value"):
        apply_overrides(raw, ["optim.lr"])
    with pytest.raises(ConfigError, match="not an index"):
        apply_overrides(raw, ["callbacks.5.patience=1"])


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "text,overrides,expected",
    [
        (SYNTH, ["train.epochz=3"], "train.epochz: unknown key"),
        (SYNTH, ["train.epochs=three"], "train.epochs: Input should be a valid integer"),
        (
            SYNTH,
            ["model.name=resnet_smal"],
            "model.name: unknown model 'resnet_smal' (did you mean 'resnet_small'?)",
        ),
        (SYNTH, ["optim.name=sgdd"], "optim.name: unknown optimizer 'sgdd' (did you mean 'sgd'?)"),
        (SYNTH, ["optim.lrr=0.1"], "optim.lrr: unknown option for optimizer 'sgd'"),
        (
            SYNTH,
            ["sched.name=cosine", "sched.eta=1"],
            "sched.eta: unknown option for scheduler 'cosine'",
        ),
        (SYNTH, ["data.batch_size=-"], "data.batch_size: Input should be a valid integer"),
        (SYNTH, ["topping=1"], "topping: unknown key"),
        ("- just\n- a list\n", [], "a recipe must be a YAML mapping (got list)"),
        ("seed: !!python/object/apply:os.system ['true']\n", [], "invalid YAML"),
        ("seed: [unclosed\n", [], "invalid YAML"),
        (
            SYNTH + "callbacks: [{name: early_stoping}]\n",
            [],
            "callbacks.0.name: unknown callback 'early_stoping'",
        ),
    ],
)
def test_user_errors_are_one_line_exit_2(
    recipe, tmp_path, capsys, text, overrides, expected
) -> None:
    path = recipe(text)
    runs = tmp_path / "runs"
    code, err = run_cli(["train", str(path), *overrides, "--runs-root", str(runs)], capsys)
    assert code == 2
    assert expected in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not runs.exists()  # nothing created for a bad recipe


def test_missing_recipe_and_resume_without_checkpoint(tmp_path, capsys) -> None:
    code, err = run_cli(["train", str(tmp_path / "nope.yaml")], capsys)
    assert code == 2 and "nope.yaml: recipe file not found" in err
    empty = tmp_path / "run"
    empty.mkdir()
    (empty / "keep.txt").write_text("precious")
    code, err = run_cli(["train", "--resume", str(empty)], capsys)
    assert code == 2 and "no valid checkpoint" in err
    assert (empty / "keep.txt").read_text() == "precious" and len(list(empty.iterdir())) == 1


def test_missing_and_truncated_dataset(recipe, tmp_path, capsys) -> None:
    root = tmp_path / "fm"
    root.mkdir()
    text = SYNTH.replace("data: {name: synthetic", f"data: {{name: fashion_mnist, root: '{root}'")
    text = text.replace(
        "num_classes: 3, shape: [1, 6, 6], n_train: 192, n_val: 48, n_test: 48,", ""
    )
    text = text.replace("noise: 2.0", "download: false")
    path = recipe(text)
    code, err = run_cli(["train", str(path), "--runs-root", str(tmp_path / "runs")], capsys)
    assert code == 2 and "missing train-images-idx3-ubyte.gz" in err
    assert "dataset-fashion-mnist" in err  # says how to get the files
    for name in (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ):
        (root / name).write_bytes(b"\x1f\x8b\x08\x00truncated")
    code, err = run_cli(["train", str(path), "--runs-root", str(tmp_path / "runs")], capsys)
    assert code == 2 and "train-images-idx3-ubyte.gz: cannot read" in err
    assert not (tmp_path / "runs").exists()


def test_existing_run_dir_is_never_overwritten(recipe, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text("{}")
    code, err = run_cli(["train", str(recipe(SYNTH)), "--run-dir", str(run)], capsys)
    assert code == 2 and "already exists and is not empty" in err
    assert (run / "summary.json").read_text() == "{}"


def test_console_script_help() -> None:
    exe = Path(sys.executable).with_name("trainlab")
    out = subprocess.run([str(exe), "train", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--resume" in out.stdout


def test_console_script_error_is_one_line() -> None:
    exe = Path(sys.executable).with_name("trainlab")
    bad = subprocess.run([str(exe), "train", "missing.yaml"], capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "trainlab: error: missing.yaml: recipe file not found"


def test_mnist_missing_says_how_to_get_it(recipe, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # an empty cache
    text = SYNTH.replace(
        "data: {name: synthetic, num_classes: 3, shape: [1, 6, 6], n_train: 192, n_val: 48, "
        "n_test: 48,\n       batch_size: 32, noise: 2.0}",
        "data: {name: mnist}",
    )
    assert "name: mnist" in text
    code, err = run_cli(["train", str(recipe(text)), "--runs-root", str(tmp_path / "r")], capsys)
    assert code == 2 and "MNIST not found in" in err and "allow the network once" in err

"""Through the real entry point: a tiny diffusion run trains with the one Trainer, writes sample
grids shown in its report, samples with DDPM and DDIM, and is scored by ``trainlab gen-score``
with a digits classifier; bad configurations are one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainlab.cli.main import main

DIGITS = "data: {name: digits, batch_size: 64, val_fraction: 0.15, test_fraction: 0.15}\n"
TRAIN = "train: {epochs: EPOCHS, precision: fp32, threads: 1, tensorboard: false, log_every: 5}\n"
CLASSIFIER = (
    "name: cls\nseed: 0\n" + DIGITS + "model: {name: mlp, hidden: [32]}\n"
    "task: {name: classification}\noptim: {name: adam, lr: 0.01}\n"
    + TRAIN.replace("EPOCHS", "4").replace("}", ", report: false}")
)
DIFFUSION = (
    "name: diff\nseed: 0\n"
    + DIGITS
    + "model: {name: ddpm_unet, image_size: 8, base: 8, mults: [1, 2], dropout: 0.0}\n"
    "task: {name: diffusion, schedule: linear, timesteps: 20, grid_steps: 5}\n"
    "optim: {name: adam, lr: 0.002}\n"
    + TRAIN.replace("EPOCHS", "2").replace(
        "}", ", ema_decay: 0.9, monitor: val/loss, monitor_mode: min}"
    )
    + "callbacks: [{name: sample_grid, every: 1, n: 16}]\n"
)


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gen")
    out = {}
    for name, text in (("cls", CLASSIFIER), ("diff", DIFFUSION)):
        (root / f"{name}.yaml").write_text(text)
        code = main(["train", str(root / f"{name}.yaml"), "--run-dir", str(root / name),
                     "--no-progress"])  # fmt: skip
        assert code == 0
        out[name] = root / name
    return out


def test_diffusion_run_learns_and_shows_its_grids(runs: dict[str, Path]) -> None:
    run = runs["diff"]
    summary = json.loads((run / "summary.json").read_text())
    first, last = summary["history"][0], summary["history"][-1]
    assert last["val/loss"] < 1.0  # ε̂ = 0 at initialisation scores ≈ 1
    assert last["val/loss"] <= first["val/loss"] + 0.05
    grids = sorted((run / "samples").glob("epoch-*.png"))
    assert [p.name for p in grids] == ["epoch-0001.png", "epoch-0002.png"]
    html = (run / "report.html").read_text()
    assert "<h2>Samples</h2>" in html and "epoch 2: samples" in html


def test_sample_writes_grids_with_either_sampler(runs: dict[str, Path], capsys) -> None:
    run = runs["diff"]
    code, out, _ = _cli(["sample", str(run), "--sampler", "ddim", "--steps", "4", "--n", "9"],
                        capsys)  # fmt: skip
    assert code == 0 and (run / "samples" / "sample-ddim-4.png").is_file(), out
    target = run.parent / "ddpm.png"
    code, out, _ = _cli(["sample", str(run), "--sampler", "ddpm", "--n", "4", "--out",
                         str(target)], capsys)  # fmt: skip
    assert code == 0 and target.is_file() and "4 samples" in out
    code, _, err = _cli(["sample", str(run), "--sampler", "ddpm", "--steps", "5"], capsys)
    assert code == 2 and "use --sampler ddim" in err and len(err.strip().splitlines()) == 1


def test_gen_score_ranks_noise_last(runs: dict[str, Path], capsys) -> None:
    target = runs["diff"].parent / "scores.json"
    code, out, err = _cli(["gen-score", str(runs["diff"]), "--classifier", str(runs["cls"]),
                           "--n", "60", "--sampler", "ddpm", "ddim", "--steps", "3", "20",
                           "--json", str(target)], capsys)  # fmt: skip
    assert code == 0, err
    rows = json.loads(target.read_text())["rows"]
    assert [(r["run"].split("/")[-1], r["sampler"], r["steps"]) for r in rows] == [
        ("real (train)", "", ""),
        ("noise", "", ""),
        ("diff", "ddpm", 20),
        ("diff", "ddim", 3),
        ("diff", "ddim", 20),
    ]
    real, noise = rows[0], rows[1]
    assert real["fd"] < noise["fd"]
    assert all(r["n"] == 60 and 0 < r["confidence"] <= 1 for r in rows)
    assert "| noise |" in out and "Fréchet distance" in out


def test_gen_score_refuses_a_classifier_that_is_not_one(runs: dict[str, Path], capsys) -> None:
    code, _, err = _cli(["gen-score", str(runs["diff"]), "--classifier", str(runs["diff"]),
                         "--n", "10"], capsys)  # fmt: skip
    assert code == 2 and "is a 'diffusion' run" in err and len(err.strip().splitlines()) == 1
    code, _, err = _cli(["gen-score", str(runs["cls"]), "--classifier", str(runs["cls"]),
                         "--n", "10"], capsys)  # fmt: skip
    assert code == 2 and "does not generate images" in err


@pytest.mark.parametrize(
    ("model", "data", "expected"),
    [
        ("{name: mlp, hidden: [8]}", DIGITS, "not a noise predictor; use model.name=ddpm_unet"),
        (
            "{name: lenet5}",
            "data: {name: synthetic, shape: [1, 28, 28], n_train: 32, n_val: 16, "
            "n_test: 16, batch_size: 16}\n",
            "not a noise predictor",
        ),
        ("{name: ddpm_unet}", "data: {name: iris}\n", "needs image data"),
    ],
)
def test_bad_configurations_are_one_line(tmp_path: Path, capsys, model: str, data: str,
                                         expected: str) -> None:  # fmt: skip
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(f"name: bad\n{data}model: {model}\ntask: {{name: diffusion}}\n"
                      "train: {epochs: 1, threads: 1}\n")  # fmt: skip
    code, _, err = _cli(["train", str(recipe), "--run-dir", str(tmp_path / "r")], capsys)
    assert code == 2, err
    assert expected in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err

"""Slow tier: recipes/ddpm_fashion_mnist.yaml learns on real Fashion-MNIST at a small scale.

The loss falls, and DDIM samples of the trained run sit far closer (Fréchet distance in the
features of a LeNet trained here) to real test images than uniform noise and than the samples
of the same network before training. 378 s on this project's 2-core CPU with other jobs running
(load 3–7).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from trainlab.errors import DataError
from trainlab.metrics.generative import GenerativeScorer
from trainlab.run import train_run
from trainlab.tasks.generate import Generator, generate_images, load_generator

RECIPES = Path(__file__).resolve().parents[2] / "recipes"

pytestmark = pytest.mark.slow


def _have_fashion_mnist() -> bool:
    from trainlab.data.fashion_mnist import find_files

    try:
        find_files(None, download=False)
    except DataError:
        return False
    return True


@pytest.mark.skipif(not _have_fashion_mnist(), reason="Fashion-MNIST files not installed")
def test_ddpm_recipe_learns_to_generate_garments(tmp_path: Path) -> None:
    torch.set_num_threads(2)
    cls = train_run(RECIPES / "lenet5_fashion_mnist.yaml",
                    ["data.subset=10000", "train.epochs=3", "task.label_smoothing=0",
                     "train.report=false", "train.tensorboard=false"],
                    run_dir=tmp_path / "lenet", progress=False)  # fmt: skip
    assert cls["test"]["test/acc"] > 0.75
    # ~530 optimizer steps: fewer (180 of batch 64) left samples farther from the data than noise.
    ddpm_overrides = ["data.subset=6000", "data.batch_size=32", "train.epochs=3",
                      "data.test_subset=200", "task.grid_steps=10", "train.ema_decay=0.99",
                      "train.tensorboard=false"]  # fmt: skip
    summary = train_run(RECIPES / "ddpm_fashion_mnist.yaml", ddpm_overrides,
                        run_dir=tmp_path / "ddpm", progress=False)  # fmt: skip
    losses = [h["val/loss"] for h in summary["history"]]
    assert losses[-1] < losses[0] < 1.0, losses
    assert (tmp_path / "ddpm" / "samples" / "epoch-0003.png").is_file()

    scorer = GenerativeScorer.from_run(str(tmp_path / "lenet"), n=200)
    trained = scorer.score(generate_images(tmp_path / "ddpm", 200, sampler="ddim", steps=20))
    noise = scorer.score(torch.rand(200, 1, 28, 28, generator=torch.Generator().manual_seed(0)))
    fresh = load_generator(tmp_path / "ddpm")
    torch.manual_seed(0)
    fresh = Generator(type(fresh.model)(**_unet_options(tmp_path / "ddpm")).eval(), fresh.cfg)
    untrained = scorer.score(generate_images(fresh, 200, sampler="ddim", steps=20))
    figures = {"trained": trained, "noise": noise, "untrained": untrained}
    (tmp_path / "figures.json").write_text(json.dumps(figures))
    assert trained["fd"] < 0.5 * noise["fd"], figures
    assert trained["fd"] < 0.5 * untrained["fd"], figures


def _unet_options(run_dir: Path) -> dict:
    import yaml

    model = yaml.safe_load((run_dir / "config.yaml").read_text())["model"]
    keys = ("in_channels", "image_size", "base", "mults", "blocks", "attention", "dropout")
    return {k: model[k] for k in keys if k in model}

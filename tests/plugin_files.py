"""Plug-in sources the plug-in tests write OUTSIDE the repository (into tmp_path): a model, a
data source, a loss and a metric, named with a tag so that several can live in one process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRAINLAB = Path(sys.executable).parent / "trainlab"  # the console script of this venv

PLUGIN = '''\
"""A user's own code: a model, a data source, a loss and a metric."""
import torch
from torch import nn
from torchmetrics import Metric

import trainlab
from trainlab.data import TensorDataModule


@trainlab.register_model("tiny_net_{tag}")
class TinyNet(nn.Module):
    """Two-layer perceptron (options are positional __init__ parameters)."""

    def __init__(self, in_features: int, num_classes: int, hidden: int = 16):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
        )

    def forward(self, x):
        return self.net(x.flatten(1))


class Blobs(TensorDataModule):
    num_classes = 3

    def __init__(self, n: int, spread: float, **kw):
        super().__init__(**kw)
        self.n, self.spread = n, spread

    def load(self):
        g = torch.Generator().manual_seed(0)
        centres = torch.randn(3, 8, generator=g) * self.spread
        for split, size in (("train", self.n), ("val", self.n // 4), ("test", self.n // 4)):
            y = torch.randint(0, 3, (size,), generator=g)
            self.splits[split] = (centres[y] + torch.randn(size, 8, generator=g), y)


@trainlab.register_data("blobs_{tag}")
def blobs(*, n: int = 240, spread: float = 1.0, batch_size: int = 32, seed: int = 0) -> Blobs:
    """Three Gaussian blobs in 8 dimensions."""
    return Blobs(n, spread, batch_size=batch_size, eval_batch_size=256, seed=seed)


@trainlab.register_loss("focal_{tag}")
def focal(logits, target, *, gamma: float = 2.0):
    """Focal loss (Lin et al., 2017)."""
    logp = torch.log_softmax(logits, -1).gather(1, target[:, None]).squeeze(1)
    return (-((1 - logp.exp()) ** gamma) * logp).mean()


@trainlab.register_metric("error_rate_{tag}")
class ErrorRate(Metric):
    """Share of wrong predictions."""

    def __init__(self):
        super().__init__()
        self.add_state("wrong", default=torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, preds, target):
        self.wrong += (preds.argmax(-1) != target).sum()
        self.total += target.numel()

    def compute(self):
        return self.wrong.float() / self.total
'''

RECIPE = """\
name: plug_{tag}
seed: 0
data: {{name: blobs_{tag}, n: 240}}
model: {{name: tiny_net_{tag}, hidden: 16}}
task: {{name: classification, loss: focal_{tag}, loss_options: {{gamma: 1.5}},
        metrics: [error_rate_{tag}, cohen_kappa]}}
optim: {{name: sgd, lr: 0.2}}
train: {{epochs: 2, device: cpu, precision: fp32, threads: 1, tensorboard: false,
         report: false, norms: false}}
"""


def write_plugin(folder: Path, tag: str) -> tuple[Path, Path]:
    """``(plugin file, recipe)`` in ``folder`` (made if needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    plugin = folder / f"my_code_{tag}.py"
    plugin.write_text(PLUGIN.format(tag=tag))
    recipe = folder / f"recipe_{tag}.yaml"
    recipe.write_text(RECIPE.format(tag=tag))
    return plugin, recipe


def run_trainlab(
    args: list[str], cwd: Path, extra_path: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The real ``trainlab`` console script in a fresh process, one thread."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "COLUMNS": "200"}
    env.pop("TRAINLAB_PLUGINS", None)  # a fresh process, not a worker of this one
    if extra_path is not None:
        env["PYTHONPATH"] = str(extra_path)
    return subprocess.run(
        [str(TRAINLAB), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )

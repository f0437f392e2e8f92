"""How good are a network's frozen features? A linear probe and k-NN, against random weights.

The standard read-out of self-supervised learning (SimCLR, MoCo, DINO papers): freeze the
encoder, compute one feature vector per image, then

- **linear probe**: logistic regression (scikit-learn, on standardised features) fitted on the
  training features, accuracy on the test features;
- **k-NN**: each test image takes the majority label of its ``k`` nearest training features
  by cosine similarity (scikit-learn's ``KNeighborsClassifier``, distance-weighted).

Features: the run's task's ``features(model, x)`` when it defines one (``simclr``: the
representation before the projection head; ``denoising_autoencoder``: the code of the [0, 1]
image), else ``model.encode(x)`` when it returns (N, F), else the input of the model's last
``nn.Linear`` (a classifier's penultimate features), caught with a forward hook. Every run is
probed twice: with its best weights (``trained``) and with the weights it started from
(``random``: the same architecture and seed, freshly initialised), so the figure the training
adds is visible. Every run is probed on the *same* images: the data of the first run given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trainlab.errors import CheckpointError, ConfigError

__all__ = [
    "ProbeRow",
    "feature_fn",
    "extract_features",
    "linear_probe",
    "knn_accuracy",
    "probe_runs",
]

Features = tuple[np.ndarray, np.ndarray]  # (N, F) float32 features, (N,) labels


@dataclass
class ProbeRow:
    """One line of the probe table: a run with its trained or its initial (random) weights."""

    run: str
    model: str
    weights: str  # "trained" | "random"
    feature_dim: int
    probe_acc: float
    knn_acc: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def feature_fn(model: nn.Module, task: Any = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function images (N, …) → features (N, F) for ``model``: the run's task's
    ``features(model, x)`` when it has one (it knows what the model was trained on), else
    ``model.encode`` when that gives (N, F), else the flattened input of the last ``nn.Linear``.

    >>> from trainlab.models import create_model
    >>> f = feature_fn(create_model("lenet5"))
    >>> f(torch.zeros(3, 1, 28, 28)).shape
    torch.Size([3, 84])
    """
    own = getattr(task, "features", None)
    if callable(own):
        return lambda x: own(model, x)
    encode = getattr(model, "encode", None)
    if callable(encode):

        def by_encode(x: torch.Tensor) -> torch.Tensor:
            h = encode(x)
            if isinstance(h, torch.Tensor) and h.dim() == 2:
                return h
            return _penultimate(model, x)

        return by_encode
    return lambda x: _penultimate(model, x)


def _penultimate(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ConfigError(f"probe: {type(model).__name__} has no encode() and no nn.Linear head")
    caught: list[torch.Tensor] = []
    hook = linears[-1].register_forward_hook(lambda _m, inp, _out: caught.append(inp[0]))
    try:
        model(x)
    finally:
        hook.remove()
    return caught[-1].flatten(1)


@torch.no_grad()
def extract_features(
    model: nn.Module, batches: Iterator[tuple[torch.Tensor, torch.Tensor]], task: Any = None
) -> Features:
    """Features (:func:`feature_fn`) and labels of every batch, in eval mode, fp32, as NumPy
    arrays."""
    was_training = model.training
    model.eval()
    f = feature_fn(model, task)
    feats, labels = [], []
    try:
        for x, y in batches:
            feats.append(f(x).float().cpu())
            labels.append(y.cpu())
    finally:
        model.train(was_training)
    return torch.cat(feats).numpy(), torch.cat(labels).numpy()


def linear_probe(train: Features, test: Features, *, max_iter: int = 1000) -> float:
    """Test accuracy of a logistic regression fitted on standardised training features.

    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(200, 5)); y = (x[:, 0] > 0).astype(int)
    >>> linear_probe((x[:100], y[:100]), (x[100:], y[100:])) > 0.9
    True
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))
    clf.fit(*train)
    return float(clf.score(*test))


def knn_accuracy(train: Features, test: Features, k: int = 20) -> float:
    """Test accuracy of distance-weighted k-NN with cosine distance on the training features.

    >>> x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]]); y = np.array([0, 0, 1, 1])
    >>> knn_accuracy((x, y), (np.array([[1.0, 0.2], [0.2, 1.0]]), np.array([0, 1])), k=1)
    1.0
    """
    from sklearn.neighbors import KNeighborsClassifier

    if k < 1:
        raise ConfigError(f"probe: --knn must be at least 1 (got {k})")
    knn = KNeighborsClassifier(n_neighbors=min(k, len(train[1])), metric="cosine",
                               weights="distance")  # fmt: skip
    knn.fit(*train)
    return float(knn.score(*test))


def _load(run_dir: Path, which: str) -> tuple[Any, dict[str, torch.Tensor], Path]:
    """The run rebuilt from its config (initial weights kept aside) and its checkpoint path."""
    from trainlab.config.load import load_config
    from trainlab.experiment import build_experiment
    from trainlab.plugins import use_run_plugins
    from trainlab.preflight import building
    from trainlab.train.checkpoint import resolve_checkpoint

    if not (run_dir / "config.yaml").is_file():
        raise CheckpointError(f"{run_dir}: not a run directory (no config.yaml)")
    ckpt = resolve_checkpoint(run_dir, which)
    use_run_plugins(run_dir)
    cfg = load_config(run_dir / "config.yaml")
    with building(cfg):
        exp = build_experiment(cfg)  # seeded: the very weights the run started from
    initial = {k: v.detach().clone() for k, v in exp.model.state_dict().items()}
    return exp, initial, ckpt


def _batches(data: Any, split: str, limit: int | None, seed: int) -> Iterator[Any]:
    """Unaugmented, normalised batches of ``split``: ``limit`` samples drawn with ``seed``."""
    splits = getattr(data, "splits", None)
    if not isinstance(splits, dict) or split not in splits:
        raise ConfigError(f"probe: the data has no in-memory '{split}' split to probe on")
    from trainlab.data.fast import FastTensorLoader

    x, y = splits[split]
    if limit is not None and limit < len(x):
        idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:limit]
        x, y = x[idx.to(x.device)], y[idx.to(y.device)]
    loader = FastTensorLoader(x, y, batch_size=getattr(data, "eval_batch_size", 1000),
                              mean=data.mean, std=data.std)  # fmt: skip
    return loader.iter_epoch(0)


def probe_runs(
    run_dirs: list[str | Path],
    *,
    k: int = 20,
    train_samples: int | None = 10_000,
    test_samples: int | None = None,
    which: str = "best",
    seed: int = 0,
) -> list[ProbeRow]:
    """Linear-probe and k-NN test accuracy of each run's features, trained and random.

    Fitted on ``train_samples`` training images (None: all) and scored on ``test_samples``
    test images (None: all) of the first run's data.

    >>> rows = probe_runs(["runs/simclr", "runs/supervised"], k=20)   # doctest: +SKIP
    >>> [(r.weights, round(r.probe_acc, 3)) for r in rows]            # doctest: +SKIP
    [('trained', 0.85), ('random', 0.78), ('trained', 0.89), ('random', 0.78)]
    """
    if not run_dirs:
        raise ConfigError("probe: name at least one run directory")
    rows: list[ProbeRow] = []
    data = None
    for run_dir in map(Path, run_dirs):
        exp, initial, ckpt = _load(run_dir, which)
        data = data or exp.data  # every run is probed on the first run's images
        if data.num_classes is None:
            raise ConfigError(f"probe: {run_dir}'s data has no labels to probe with")
        from trainlab.train.checkpoint import load_checkpoint

        device = exp.trainer.device
        for weights in ("trained", "random"):
            if weights == "trained":
                load_checkpoint(ckpt, exp.model, prefer_ema=True)
            else:
                exp.model.load_state_dict(initial)
            rows.append(_probe_one(exp, data, device, weights, run_dir, (train_samples,
                                   test_samples, seed, k)))  # fmt: skip
    return rows


def _probe_one(
    exp: Any, data: Any, device: torch.device, weights: str, run_dir: Path,
    opts: tuple[int | None, int | None, int, int],
) -> ProbeRow:  # fmt: skip
    n_train, n_test, seed, k = opts
    model = exp.model.to(device)
    try:
        train = extract_features(model, _to(device, _batches(data, "train", n_train, seed)),
                                 exp.task)  # fmt: skip
        test = extract_features(model, _to(device, _batches(data, "test", n_test, seed)), exp.task)
    except (RuntimeError, ValueError) as e:
        raise ConfigError(f"probe: {run_dir} cannot take the first run's images: {e}") from None
    return ProbeRow(
        run=str(run_dir), model=exp.cfg.model.name, weights=weights,
        feature_dim=int(train[0].shape[1]),
        probe_acc=linear_probe(train, test), knn_acc=knn_accuracy(train, test, k),
    )  # fmt: skip


def _to(device: torch.device, batches: Iterator[Any]) -> Iterator[Any]:
    for x, y in batches:
        yield x.to(device), y

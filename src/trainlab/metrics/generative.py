"""How good are generated images? Fréchet distance and classifier confidence, with the features
of a trained trainlab classifier run.

FID (Heusel et al., 2017) compares Inception-v3 features of generated and real images; on
28×28 grey-scale data a classifier trained on that data is the natural feature extractor
(the same idea as "FID with a domain network", e.g. LeNet features for MNIST). Here:

- **features**: the input of the classifier's *last* ``nn.Linear`` layer (its penultimate
  activations; 84 numbers for ``lenet5``, the pooled channels for ``resnet_small``), caught by a
  forward hook, in float64;
- **Fréchet distance** between Gaussians fitted to two feature sets:
  ``‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁ Σ₂)^{1/2})``, the trace of the matrix square root from
  the eigenvalues of Σ₁Σ₂ (as torchmetrics computes it; ``scipy.linalg.sqrtm`` gives the same
  where it converges, and warns on the singular covariances a dead ReLU feature causes);
- **confidence**: the mean over images of the classifier's largest softmax probability (a
  sharp, recognisable garment scores near the classifier's confidence on real test images);
- **inception score**: ``exp(E_x KL(p(y|x) ‖ p(y)))`` with the classifier's softmax (Salimans
  et al., 2016): high when each image is confidently one class *and* the classes are varied
  (at most the number of classes).

Both sets must be of the same size for Fréchet distances to be compared: the estimate is biased
upwards for small sets (:func:`frechet_distance` on two real sets of the same size gives the
floor).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> a = rng.normal(size=(50_000, 2)); b = rng.normal(size=(50_000, 2)) + [1, 0]
>>> round(frechet_distance(a, b), 1)  # ‖μ₁ − μ₂‖² = 1, equal covariances
1.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from trainlab.errors import ConfigError

__all__ = [
    "gaussian_stats",
    "frechet_from_stats",
    "frechet_distance",
    "classifier_confidence",
    "inception_score",
    "FeatureExtractor",
    "GenerativeScorer",
]

Array = np.ndarray | torch.Tensor


def _np(x: Array) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def gaussian_stats(features: Array) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) of features (N, D), N ≥ 2, in float64."""
    f = _np(features)
    if f.ndim != 2 or len(f) < 2:
        raise ConfigError(f"Fréchet distance: need features (N ≥ 2, D), got shape {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False)


def frechet_from_stats(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Fréchet (2-Wasserstein) distance between N(μ₁, Σ₁) and N(μ₂, Σ₂).

    >>> i = np.eye(2)
    >>> round(frechet_from_stats(np.zeros(2), i, np.zeros(2), 4 * i), 6)  # (2 − 1)² per dim
    2.0
    """
    diff = mu1 - mu2
    # tr((Σ₁Σ₂)^{1/2}) = Σ √λ_i over the eigenvalues of Σ₁Σ₂ (real and ≥ 0 for covariances;
    # round-off is clipped): torchmetrics' way, stable where a dead feature makes Σ singular.
    eig = np.linalg.eigvals(sigma1 @ sigma2)
    tr_covmean = np.sqrt(np.clip(eig.real, 0, None)).sum()
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean
    return float(max(value, 0.0))


def frechet_distance(a: Array, b: Array) -> float:
    """Fréchet distance between Gaussians fitted to feature sets ``a`` (N, D) and ``b`` (M, D)."""
    return frechet_from_stats(*gaussian_stats(a), *gaussian_stats(b))


def classifier_confidence(logits: Array) -> float:
    """Mean over samples of the largest softmax probability of ``logits`` (N, K).

    >>> classifier_confidence(torch.tensor([[10.0, 0.0], [0.0, 0.0]]))  # ≈ (1 + 0.5) / 2
    0.7499773010...
    """
    p = torch.as_tensor(_np(logits)).softmax(-1)
    return float(p.max(-1).values.mean())


def inception_score(logits: Array) -> float:
    """``exp(mean_x KL(p(y|x) ‖ p(y)))`` from logits (N, K); between 1 and K.

    >>> round(inception_score(torch.eye(4) * 50), 3)  # confident and uniform over 4 classes
    4.0
    """
    logp = torch.as_tensor(_np(logits)).log_softmax(-1)  # (N, K)
    p = logp.exp()
    log_marginal = torch.logsumexp(logp, 0) - np.log(len(logp))  # log p(y), (K,)
    kl = (p * (logp - log_marginal)).sum(-1)
    return float(kl.mean().exp())


class FeatureExtractor:
    """Penultimate features and logits of a classifier: the input and output of its last
    ``nn.Linear``.

    ``prepare`` maps images in [0, 1] onto what the classifier takes (its normalisation).

    >>> from trainlab.models import create_model
    >>> fx = FeatureExtractor(create_model("lenet5").eval())
    >>> feats, logits = fx(torch.rand(3, 1, 28, 28))
    >>> feats.shape, logits.shape
    (torch.Size([3, 84]), torch.Size([3, 10]))
    """

    def __init__(self, classifier: nn.Module, prepare: nn.Module | None = None,
                 batch: int = 500) -> None:  # fmt: skip
        linears = [m for m in classifier.modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise ConfigError(
                f"gen-score: classifier {type(classifier).__name__} has no nn.Linear layer "
                "whose input could serve as features; use a classification run (lenet5, "
                "resnet_small, …)"
            )
        self.classifier, self.last = classifier.eval(), linears[-1]
        self.prepare = prepare or nn.Identity()
        self.batch = batch

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats: list[torch.Tensor] = []
        logits: list[torch.Tensor] = []
        hook = self.last.register_forward_hook(
            lambda _m, inp, _out: feats.append(inp[0].detach().flatten(1).double().cpu())
        )
        try:
            for chunk in images.split(self.batch):
                logits.append(self.classifier(self.prepare(chunk.float())).double().cpu())
        finally:
            hook.remove()
        return torch.cat(feats), torch.cat(logits)


@dataclass
class GenerativeScorer:
    """Scores image sets in [0, 1] against a fixed set of real images.

    ``extractor``: a :class:`FeatureExtractor`; ``reference``: real images (N, C, H, W) in
    [0, 1]. :meth:`score` returns ``{"fd", "confidence", "inception_score", "n"}``.

    >>> scorer = GenerativeScorer.from_run("runs/lenet5", n=2000)   # doctest: +SKIP
    >>> scorer.score(images)                                        # doctest: +SKIP
    {'fd': 4.1, 'confidence': 0.87, 'inception_score': 7.2, 'n': 2000}
    """

    extractor: FeatureExtractor
    reference: torch.Tensor

    def __post_init__(self) -> None:
        self.data: Any = None  # the classifier's data module, when built by from_run
        feats, _ = self.extractor(self.reference)
        self.ref_stats = gaussian_stats(feats)

    def score(self, images: torch.Tensor) -> dict[str, Any]:
        """Fréchet distance to the reference, mean confidence and inception score."""
        if tuple(images.shape[1:]) != tuple(self.reference.shape[1:]):
            raise ConfigError(
                f"gen-score: generated images are {tuple(images.shape[1:])} but the classifier's "
                f"data is {tuple(self.reference.shape[1:])}; train the generator on the same data"
            )
        feats, logits = self.extractor(images)
        return {
            "fd": frechet_from_stats(*gaussian_stats(feats), *self.ref_stats),
            "confidence": classifier_confidence(logits),
            "inception_score": inception_score(logits),
            "n": len(images),
        }

    @staticmethod
    def from_run(run_dir: str, n: int = 2000, split: str = "test", seed: int = 0
                 ) -> GenerativeScorer:  # fmt: skip
        """The classifier of ``run_dir`` (best checkpoint) and ``n`` real images of its data's
        ``split`` (a seeded random choice); the data module is kept as ``scorer.data``."""
        from trainlab.metrics.generative_data import load_classifier, real_images

        extractor, data = load_classifier(run_dir)
        scorer = GenerativeScorer(extractor, real_images(data, n, split, seed))
        scorer.data = data
        return scorer

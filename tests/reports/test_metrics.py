"""Ranking metrics against scikit-learn on the same predictions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import metrics as skm
from sklearn.preprocessing import label_binarize

from trainlab.metrics import (
    auroc,
    average_precision,
    curve_metrics,
    pr_curve,
    roc_curve,
    topk_accuracy,
)

K, N = 5, 300


@pytest.fixture(scope="module")
def multiclass() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits that are informative but imperfect, their softmax, and labels."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, K, (N,), generator=g)
    logits = torch.randn(N, K, generator=g) + 1.5 * torch.nn.functional.one_hot(y, K)
    return logits, logits.softmax(dim=1), y


@pytest.fixture(scope="module")
def binary() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, 2, (N,), generator=g)
    return torch.randn(N, generator=g) + y, y  # logits


@pytest.mark.parametrize("k", [1, 2, 3])
def test_topk_accuracy(multiclass, k: int) -> None:
    _, probs, y = multiclass
    want = skm.top_k_accuracy_score(y.numpy(), probs.numpy(), k=k, labels=list(range(K)))
    assert topk_accuracy(probs, y, k) == pytest.approx(want, abs=1e-6)
    with pytest.raises(ValueError, match="1 <= k <= K"):
        topk_accuracy(probs, y, K + 1)


def test_binary_auroc_ap_and_curves(binary) -> None:
    logits, y = binary
    p, yn = logits.sigmoid(), y.numpy()
    assert float(auroc(p, y)) == pytest.approx(skm.roc_auc_score(yn, p.numpy()), abs=1e-6)
    assert float(auroc(logits, y, logits=True)) == pytest.approx(float(auroc(p, y)), abs=1e-6)
    ap = skm.average_precision_score(yn, p.numpy())
    assert float(average_precision(p, y)) == pytest.approx(ap, abs=1e-6)
    fpr, tpr, _ = skm.roc_curve(yn, p.numpy(), drop_intermediate=False)
    roc = roc_curve(p, y)
    np.testing.assert_allclose(roc.x.numpy(), fpr, atol=1e-6)
    np.testing.assert_allclose(roc.y.numpy(), tpr, atol=1e-6)
    precision, recall, thr = skm.precision_recall_curve(yn, p.numpy())
    pr = pr_curve(p, y)
    np.testing.assert_allclose(pr.x.numpy(), recall, atol=1e-6)
    np.testing.assert_allclose(pr.y.numpy(), precision, atol=1e-6)
    np.testing.assert_allclose(pr.thresholds.numpy(), thr, atol=1e-6)


@pytest.mark.parametrize("average", ["macro", "weighted"])
def test_one_vs_rest_auroc_and_ap(multiclass, average: str) -> None:
    logits, probs, y = multiclass
    yn, pn = y.numpy(), probs.numpy()
    want = skm.roc_auc_score(yn, pn, multi_class="ovr", average=average)
    assert float(auroc(probs, y, average=average)) == pytest.approx(want, abs=1e-6)
    assert float(auroc(logits, y, average=average, logits=True)) == pytest.approx(want, abs=1e-6)
    onehot = label_binarize(yn, classes=list(range(K)))
    want_ap = skm.average_precision_score(onehot, pn, average=average)
    assert float(average_precision(probs, y, average=average)) == pytest.approx(want_ap, abs=1e-6)


def test_one_vs_rest_curves(multiclass) -> None:
    _, probs, y = multiclass
    rocs, prs = roc_curve(probs, y), pr_curve(probs, y)
    assert len(rocs) == len(prs) == K
    for c in range(K):
        yc, pc = (y == c).numpy().astype(int), probs[:, c].numpy()
        fpr, tpr, _ = skm.roc_curve(yc, pc, drop_intermediate=False)
        np.testing.assert_allclose(rocs[c].x.numpy(), fpr, atol=1e-6)
        np.testing.assert_allclose(rocs[c].y.numpy(), tpr, atol=1e-6)
        precision, recall, _ = skm.precision_recall_curve(yc, pc)
        np.testing.assert_allclose(prs[c].x.numpy(), recall, atol=1e-6)
        np.testing.assert_allclose(prs[c].y.numpy(), precision, atol=1e-6)


def test_streaming_metrics_match_sklearn(multiclass) -> None:
    # Fed logits in batches, binned at 200 thresholds: close to the exact figures.
    from torchmetrics import MetricCollection

    logits, probs, y = multiclass
    m = MetricCollection(curve_metrics(K, thresholds=200, top_k=2))
    for i in range(0, N, 64):
        m.update(logits[i : i + 64], y[i : i + 64])
    out = m.compute()
    yn, pn = y.numpy(), probs.numpy()
    assert float(out["auroc"]) == pytest.approx(
        skm.roc_auc_score(yn, pn, multi_class="ovr"), abs=0.01
    )
    onehot = label_binarize(yn, classes=list(range(K)))
    assert float(out["ap"]) == pytest.approx(skm.average_precision_score(onehot, pn), abs=0.02)
    assert float(out["acc_top2"]) == pytest.approx(skm.top_k_accuracy_score(yn, pn, k=2), abs=1e-6)
    assert out["roc"].shape == out["pr"].shape == (2, K, 200)
    # At threshold 0.5 (bin 100 of 0..1): the curve point equals sklearn's confusion counts.
    t = 100 / 199
    for c in range(K):
        pred, true = pn[:, c] >= t, yn == c
        tpr = (pred & true).sum() / true.sum()
        assert float(out["roc"][1, c, 100]) == pytest.approx(tpr, abs=1e-6)
        assert float(out["pr"][0, c, 100]) == pytest.approx(tpr, abs=1e-6)  # recall = tpr


def test_bad_shapes_are_reported() -> None:
    with pytest.raises(ValueError, match=r"\(N,\) or \(N, K\)"):
        auroc(torch.rand(4, 2, 2), torch.zeros(4, dtype=torch.long))

"""fast_cnn: the default recipe's model: whitening stem, identity init, folding through pools."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trainlab.models.fast_cnn import PatchWhitening, fast_cnn
from trainlab.models.registry import create_model
from trainlab.train.folding import fold_batchnorm, foldable_pairs


def test_shapes_and_registry() -> None:
    model = create_model("fast_cnn", num_classes=7, in_channels=3, widths=[8, 16, 24])
    assert model(torch.randn(2, 3, 28, 28)).shape == (2, 7)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 7)  # global pooling: any size ≥ 16


def test_whitening_is_fitted_on_the_first_training_batch_and_whitens_it() -> None:
    torch.manual_seed(0)
    stem = PatchWhitening(1, kernel=2, eps=1e-6)
    x = torch.randn(32, 1, 12, 12).cumsum(-1)  # strongly correlated neighbouring pixels
    stem.eval()
    stem(x)
    assert not stem.fitted  # evaluation never fits
    stem.train()
    stem(x)
    assert stem.fitted and stem.weight.abs().sum() > 0
    out = F.conv2d(x, stem.weight[:4]).permute(1, 0, 2, 3).reshape(4, -1)
    cov = out @ out.T / out.shape[1]
    torch.testing.assert_close(cov, torch.eye(4), atol=1e-3, rtol=0)
    before = stem.weight.clone()
    stem(torch.randn(8, 1, 12, 12))
    torch.testing.assert_close(stem.weight, before)  # fitted once, then fixed


def test_whitening_filters_travel_in_the_state_dict_and_are_not_trained() -> None:
    torch.manual_seed(0)
    model = fast_cnn(widths=[8, 8, 8])
    model.train()
    model(torch.randn(16, 1, 28, 28))
    state = model.state_dict()
    assert state["whiten.0.fitted"] and state["whiten.0.weight"].abs().sum() > 0
    fresh = fast_cnn(widths=[8, 8, 8])
    fresh.load_state_dict(state)
    assert fresh.whiten[0].fitted  # a loaded model does not refit on its next batch
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "whiten.0.bias" in trainable and "whiten.0.weight" not in trainable
    assert not any(n.endswith(".2.weight") for n in trainable)  # BN without a learned scale


def test_dirac_initialisation_passes_the_first_channels_through() -> None:
    model = fast_cnn(widths=[8, 16, 16])
    conv = model.features[1][0]  # 8 → 16 channels
    x = torch.randn(1, 8, 5, 5)
    torch.testing.assert_close(conv(x)[:, :8], x)


def _trained_eval(**kw: object) -> torch.nn.Module:
    torch.manual_seed(0)
    model = fast_cnn(widths=[8, 16, 16], **kw)  # type: ignore[arg-type]
    model.train()
    for _ in range(3):
        model(torch.randn(32, 1, 28, 28))  # running statistics away from 0/1
    return model.eval()


def test_batch_norm_after_max_pool_folds_into_the_convolution() -> None:
    model = _trained_eval()
    assert len(foldable_pairs(model)) == 6  # both convs of all three blocks
    x = torch.randn(8, 1, 28, 28)
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    torch.testing.assert_close(folded(x), model(x), atol=1e-5, rtol=1e-4)


def test_a_negative_batch_norm_scale_is_not_folded_through_a_max_pool() -> None:
    model = _trained_eval(bn_scale=True)
    with torch.no_grad():
        model.features[0][2].weight[0] = -1.0  # max(−v) ≠ −max(v): folding would be wrong
    assert ("features.0.0", "features.0.2") not in foldable_pairs(model)
    x = torch.randn(8, 1, 28, 28)
    torch.testing.assert_close(fold_batchnorm(model)(x), model(x), atol=1e-5, rtol=1e-4)


def _fit_shard(rank: int, world: int, store: str, x: torch.Tensor, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        stem = PatchWhitening(1)
        stem.train()
        stem(x.chunk(world)[rank])  # this rank's shard of the first batch
        torch.save(stem.weight, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def test_data_parallel_ranks_fit_the_whitening_of_the_whole_batch(tmp_path) -> None:
    """Two gloo processes, each with half of the first batch, fit the filters one process fits
    on the whole batch (the patch statistics are summed across ranks)."""
    import torch.multiprocessing as mp

    torch.manual_seed(0)
    x = torch.rand(64, 1, 12, 12).cumsum(-1)
    out = str(tmp_path / "weight")
    mp.spawn(_fit_shard, args=(2, str(tmp_path / "store"), x, out), nprocs=2)
    one = PatchWhitening(1)
    one.train()
    one(x)
    w0, w1 = torch.load(f"{out}.0"), torch.load(f"{out}.1")
    assert torch.equal(w0, w1)  # the same filters on every rank
    # float32 sums in another order; the small eigenvalues amplify it a little
    torch.testing.assert_close(w0, one.weight, rtol=2e-3, atol=1e-3)

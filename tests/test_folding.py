"""Batch norm folded into the convolution before it, for evaluation (trainlab.train.folding)."""

from __future__ import annotations

import pytest
import torch
import yaml
from torch import nn

from core_support import SYNTH
from trainlab.config.load import parse_config
from trainlab.experiment import build_experiment
from trainlab.models import create_model, example_input, list_models
from trainlab.train import folding
from trainlab.train.folding import fold_batchnorm, foldable_pairs

BN = nn.modules.batchnorm._BatchNorm


def _with_stats(model: nn.Module) -> nn.Module:
    """``model`` in eval mode with non-trivial BN statistics and affine parameters, so a wrong
    fold shows in the outputs."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, BN) and m.running_mean is not None:
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            if m.affine:
                m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.data.copy_(torch.rand(m.num_features, generator=g) - 0.5)
    return model.eval()


def _bns(model: nn.Module) -> int:
    return sum(isinstance(m, BN) for m in model.modules())


def _assert_same_outputs(name: str) -> nn.Module:
    model = _with_stats(create_model(name))
    x = example_input(model, batch=3, name=name)
    folded = fold_batchnorm(model)
    with torch.no_grad():
        a, b = model(*x), folded(*x)
    a, b = (a, b) if isinstance(a, torch.Tensor) else (a[0], b[0])
    torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5 * float(a.abs().max()))
    return folded


@pytest.mark.parametrize(
    "name",
    ["resnet_small", "vgg_small", "googlenet_small", "regnet", "nin_small", "siamese", "fast_cnn"],
)
def test_folding_removes_every_conv_bn_pair_and_keeps_the_outputs(name: str) -> None:
    model = _with_stats(create_model(name))
    before = _bns(model)
    folded = _assert_same_outputs(name)
    assert before > 0 and _bns(folded) == 0
    assert type(folded) is type(model)  # its class, forward and methods are kept
    assert _bns(model) == before  # the original is untouched


def test_bn_after_something_else_than_a_conv_is_kept() -> None:
    # DenseNet and pre-activation ResNets normalise the concatenation / the block input: those
    # BNs do not follow a convolution and must stay.
    for name in ("densenet_small", "preact_resnet18"):
        folded = _assert_same_outputs(name)
        assert 0 < _bns(folded) < _bns(create_model(name))


class SharedConv(nn.Module):
    """One conv whose output feeds a BN and a skip connection: folding would change the skip."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(2, 2, 3, padding=1), nn.BatchNorm2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.bn(y) + y


class Branchy(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(2, 2, 3), nn.BatchNorm2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x)) if x.sum() > 0 else x


def test_unsafe_or_impossible_folds_give_back_the_model_itself() -> None:
    shared = _with_stats(SharedConv())
    assert foldable_pairs(shared) == [] and fold_batchnorm(shared) is shared
    branchy = _with_stats(Branchy())
    assert fold_batchnorm(branchy) is branchy
    training = create_model("resnet_small").train()
    assert fold_batchnorm(training) is training  # batch statistics: nothing fixed to fold
    hooked = _with_stats(create_model("resnet_small"))
    hooked.register_forward_hook(lambda m, a, o: None)
    assert fold_batchnorm(hooked) is hooked  # the copy would not call the hook as before
    adapting = _with_stats(create_model("resnet_small"))
    adapting.features[0][1].train()  # batch statistics at test time (test-time adaptation)
    assert ("features.0.0", "features.0.1") in foldable_pairs(adapting.eval())
    adapting.features[0][1].train()
    assert ("features.0.0", "features.0.1") not in foldable_pairs(adapting)
    assert len(foldable_pairs(adapting)) == _bns(adapting) - 1
    seq = _with_stats(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)))
    nn.utils.parametrizations.weight_norm(seq[0])
    assert fold_batchnorm(seq) is seq  # its weight is computed: not overwritten


def test_evaluation_folds_and_scores_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    text = SYNTH.replace("shape: [1, 6, 6]", "shape: [1, 8, 8]").replace(
        "model: {name: mlp, hidden: [32]}",
        "model: {name: resnet_small, widths: [4, 8, 8], blocks: [1, 1]}",
    )
    calls = []
    real = folding.fold_batchnorm

    def counting(model: nn.Module) -> nn.Module:
        out = real(model)
        calls.append(out is not model)
        return out

    monkeypatch.setattr("trainlab.train.trainer.fold_batchnorm", counting)
    results = {}
    for fold in (True, False):
        exp = build_experiment(parse_config(yaml.safe_load(text)))
        exp.trainer.fold_batchnorm = fold
        state = exp.trainer.fit(exp.model, exp.task, exp.data, exp.optimizer, exp.schedule)
        metrics = exp.task.metrics(exp.data.num_classes)
        results[fold] = exp.trainer.evaluate(
            state.model, exp.task, exp.data.loader("test"), "test", metrics
        )
    assert calls and all(calls)  # every evaluation of the run ran a folded copy
    assert results[True]["test/acc"] == results[False]["test/acc"]
    assert results[True]["test/loss"] == pytest.approx(results[False]["test/loss"], rel=1e-5)


@pytest.mark.slow
def test_every_registered_model_with_batch_norm_folds_to_the_same_outputs() -> None:
    names = [n for n in list_models() if _bns(create_model(n)) > 0]
    assert len(names) > 40
    for name in names:
        _assert_same_outputs(name)

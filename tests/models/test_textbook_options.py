"""The model options the textbook's modern-CNN exercises need: batch-norm variants and their
placement, per-part switches, NiN's 1×1 convs and head, input resolution that changes the model,
GoogLeNet with BN, pre-activation ResNet, RegNet block types and AnyNet design-space samples."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.models import create_model
from trainlab.models.anynet_space import SPACES, sample_anynet, violated_principles
from trainlab.models.layers import LiteBatchNorm, make_norm1d, make_norm2d, norm_act
from trainlab.models.regnet import BasicBlock, BottleneckBlock, stages_w_m
from trainlab.train.folding import fold_batchnorm


def _params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _trainable(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


# -- the batch-norm variants ----------------------------------------------------------------------
def test_mean_only_centres_each_channel_and_keeps_its_variance() -> None:
    torch.manual_seed(0)
    x = torch.randn(16, 3, 5, 5) * torch.tensor([1.0, 3.0, 0.5]).view(1, 3, 1, 1) + 4.0
    y = make_norm2d("mean_only", 3).train()(x)
    dims = (0, 2, 3)
    assert y.mean(dim=dims).abs().max() < 1e-5
    torch.testing.assert_close(y.var(dim=dims), x.var(dim=dims))


def test_var_only_scales_to_unit_variance_without_centring() -> None:
    torch.manual_seed(0)
    x = torch.randn(16, 3, 5, 5) * 3.0 + 4.0
    y = make_norm2d("var_only", 3).train()(x)
    dims = (0, 2, 3)
    torch.testing.assert_close(y.var(dim=dims, unbiased=False), torch.ones(3), rtol=1e-4, atol=1e-4)
    # not centred: the mean is divided by the std, not removed (≈ 4 / 3 here)
    assert (y.mean(dim=dims) > 1.0).all()
    torch.testing.assert_close(y.mean(dim=dims) * x.std(dim=dims, unbiased=False), x.mean(dim=dims))


def test_lite_batch_norm_uses_running_statistics_in_eval() -> None:
    torch.manual_seed(0)
    bn = LiteBatchNorm(2, "mean_only", momentum=1.0)  # running mean = last batch's mean
    x = torch.randn(32, 2) + torch.tensor([5.0, -2.0])
    bn.train()(x)
    torch.testing.assert_close(bn.running_mean, x.mean(dim=0))
    torch.testing.assert_close(bn.running_var, x.var(dim=0))  # unbiased, as nn.BatchNorm
    single = torch.tensor([[5.0, -2.0]])
    torch.testing.assert_close(bn.eval()(single), single - x.mean(dim=0))


def test_frozen_affine_has_no_trainable_scale_or_shift() -> None:
    for norm in (make_norm2d("frozen_affine", 6), make_norm1d("frozen_affine", 6)):
        assert _params(norm) == 0 and norm.weight is None and norm.bias is None
    model = create_model("lenet5", conv_bn=True, fc_bn=True, norm="frozen_affine")
    plain = create_model("lenet5")
    assert _params(model) == _params(plain)  # γ, β absent; batch statistics still used
    x = torch.randn(8, 1, 28, 28) * 5
    y = model.features[:2].train()(x)  # conv → frozen BN
    assert y.mean(dim=(0, 2, 3)).abs().max() < 1e-4


def test_full_batch_norm_variants_have_two_parameters_per_channel() -> None:
    for name in ("batch", "mean_only", "var_only"):
        norm = make_norm2d(name, 6)
        assert _trainable(norm) == 12, name
        grads = torch.autograd.grad(norm.train()(torch.randn(4, 6, 3, 3)).pow(2).sum(),
                                    list(norm.parameters()))  # fmt: skip
        assert all(g.abs().sum() > 0 for g in grads), name


def test_unknown_norm_and_position_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="mean_only"):
        make_norm2d("mean_onyl", 4)
    with pytest.raises(ConfigError, match="before_act"):
        create_model("lenet5", conv_bn=True, norm_position="after")


def test_norm_position_orders_norm_and_activation() -> None:
    before = norm_act("batch", 4, "sigmoid", "before_act")
    after = norm_act("batch", 4, "sigmoid", "after_act")
    assert [type(m) for m in before] == [nn.BatchNorm2d, nn.Sigmoid]
    assert [type(m) for m in after] == [nn.Sigmoid, nn.BatchNorm2d]
    # after the activation the sigmoid's (0, 1) output is normalised: negative values appear
    x = torch.randn(8, 4, 3, 3)
    assert (nn.Sequential(*after).train()(x) < 0).any()
    assert (nn.Sequential(*before).train()(x) > 0).all()


# -- LeNet ----------------------------------------------------------------------------------------
def test_lenet_defaults_keep_their_structure_and_checkpoint_keys() -> None:
    m = create_model("lenet5")
    assert _params(m) == 61706
    keys = list(m.state_dict())
    assert keys[:2] == ["features.0.weight", "features.0.bias"] and "features.4.weight" in keys
    # BN switched on fills the same slots, so a model with and without BN has the same indices
    bn = create_model("lenet5", conv_bn=True, fc_bn=True)
    assert "features.1.running_mean" in bn.state_dict() and "features.4.weight" in bn.state_dict()
    assert "classifier.2.running_mean" in bn.state_dict()


@pytest.mark.parametrize("norm", ["batch", "mean_only", "var_only", "frozen_affine"])
@pytest.mark.parametrize("position", ["before_act", "after_act"])
def test_lenet_norm_variants_train_one_step(norm: str, position: str) -> None:
    torch.manual_seed(0)
    m = create_model("lenet5", classic=True, conv_bn=True, fc_bn=True, norm=norm,
                     norm_position=position)  # fmt: skip
    kinds = {type(x) for x in m.modules()}
    assert (LiteBatchNorm in kinds) == (norm in ("mean_only", "var_only"))
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    loss = nn.functional.cross_entropy(m(x), y)
    loss.backward()
    assert torch.isfinite(loss) and m.features[0].weight.grad.abs().sum() > 0
    m.eval()
    assert torch.isfinite(m(x)).all()


def test_lenet_per_part_switches() -> None:
    conv_only = create_model("lenet5", conv_bn=True)
    fc_only = create_model("lenet5", fc_bn=True)
    n_bn = lambda m, t: sum(isinstance(x, t) for x in m.modules())  # noqa: E731
    assert (n_bn(conv_only, nn.BatchNorm2d), n_bn(conv_only, nn.BatchNorm1d)) == (2, 0)
    assert (n_bn(fc_only, nn.BatchNorm2d), n_bn(fc_only, nn.BatchNorm1d)) == (0, 2)


# -- NiN ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 2, 3])
def test_nin_number_of_one_by_one_convs(k: int) -> None:
    m = create_model("nin_small", mlp_convs=k)
    one = [c for c in m.modules() if isinstance(c, nn.Conv2d) and c.kernel_size == (1, 1)]
    assert len(one) == 4 * k  # three blocks and the classifier block
    assert m(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_nin_fc_head_replaces_global_pooling() -> None:
    gap, fc = create_model("nin_small"), create_model("nin_small", head="fc")
    assert not any(isinstance(x, nn.Linear) for x in gap.modules())
    assert any(isinstance(x, nn.AdaptiveAvgPool2d) for x in gap.modules())
    lin = [x for x in fc.modules() if isinstance(x, nn.Linear)]
    assert len(lin) == 1 and lin[0].in_features == 10 * 2 * 2  # 28 → 13 → 6 → 2
    assert not any(isinstance(x, nn.AdaptiveAvgPool2d) for x in fc.modules())
    assert _params(fc) - _params(gap) == 40 * 10 + 10
    assert fc(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    big = create_model("nin", head="fc")  # 224 → 5×5 maps
    assert [x for x in big.modules() if isinstance(x, nn.Linear)][0].in_features == 250
    with pytest.raises(ConfigError, match="gap"):
        create_model("nin_small", head="mlp")


# -- input resolution -----------------------------------------------------------------------------
def test_vgg_image_size_sets_the_classifier_width() -> None:
    sizes = {}
    for side in (224, 96, 56):
        m = create_model("vgg", image_size=side, hidden=64)
        sizes[side] = m.classifier[1].in_features
        if side < 224:  # (224 is slow to run on a CPU; its width is what matters)
            assert m(torch.randn(1, 1, side, side)).shape == (1, 10)
    assert sizes == {224: 512 * 49, 96: 512 * 9, 56: 512}
    # fixing the pool keeps torchvision's layout at any resolution
    assert create_model("vgg", image_size=56, pool=7, hidden=64).classifier[1].in_features == 25088
    with pytest.raises(ConfigError, match="too small"):
        create_model("vgg", image_size=16)


def test_vgg_default_matches_its_former_parameter_count() -> None:
    with torch.device("meta"):
        assert _params(create_model("vgg")) == 128_806_154  # pool 7 at 224, as before


def test_alexnet_pool_none_sizes_the_head_for_the_input() -> None:
    with torch.device("meta"):
        assert _params(create_model("alexnet")) == 61_100_840  # torchvision's, unchanged
        fixed = create_model("alexnet", image_size=96)
        own = create_model("alexnet", image_size=96, pool=None)
    assert fixed.classifier[2].in_features == 256 * 36
    assert own.classifier[2].in_features == 256 * 4
    small = create_model("alexnet_small", image_size=56, hidden=32)
    assert small.classifier[2].in_features == 256 * 49
    assert small(torch.randn(1, 1, 56, 56)).shape == (1, 10)


# -- GoogLeNet, ResNet ----------------------------------------------------------------------------
def test_googlenet_with_and_without_batch_norm() -> None:
    bn = create_model("googlenet_small", width=0.25)
    plain = create_model("googlenet_small", width=0.25, batch_norm=False)
    count = lambda m: sum(isinstance(x, nn.BatchNorm2d) for x in m.modules())  # noqa: E731
    assert count(bn) > 50 and count(plain) == 0
    for m in (bn, plain):
        assert m(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_resnet_preactivation_units() -> None:
    post = create_model("resnet", width=8, layers=[1, 1, 1, 1])
    pre = create_model("resnet", width=8, layers=[1, 1, 1, 1], preact=True)
    first_post = post.stages[0][0].body
    first_pre = pre.stages[0][0]
    assert isinstance(first_post[0], nn.Conv2d) and isinstance(first_post[1], nn.BatchNorm2d)
    assert isinstance(first_pre.pre[0], nn.BatchNorm2d) and isinstance(first_pre.body[0], nn.Conv2d)
    assert isinstance(first_pre.act, nn.Identity)  # nothing after the addition
    assert isinstance(pre.head[0], nn.BatchNorm2d)  # the final BN → ReLU
    for m in (post, pre):
        assert m(torch.randn(2, 1, 28, 28)).shape == (2, 10)


# -- RegNet / AnyNet ------------------------------------------------------------------------------
def test_regnet_block_types() -> None:
    x = create_model("regnet")
    r = create_model("regnet", block="resnet")
    assert {type(b) for s in x.stages for b in s} == {BottleneckBlock}
    assert {type(b) for s in r.stages for b in s} == {BasicBlock}
    assert len(x.stages) == len(r.stages) == 4  # the default point has four stages
    assert not any(c.groups > 1 for c in r.modules() if isinstance(c, nn.Conv2d))
    assert any(c.groups > 1 for c in x.modules() if isinstance(c, nn.Conv2d))
    assert r(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ConfigError, match="resnext"):
        create_model("regnet", block="vgg")


def test_anynet_stage_count_and_per_stage_bottleneck() -> None:
    m = create_model("anynet", depths=[1, 1, 1, 1], widths=[16, 32, 64, 128],
                     group_widths=[8, 8, 8, 8], bottleneck=[1.0, 0.5, 0.5, 0.25])  # fmt: skip
    assert len(m.stages) == 4
    assert m.stages[3][0].f[0][0].out_channels == 32  # 128 · 0.25
    assert m(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ConfigError, match="one entry per stage"):
        create_model("anynet", depths=[1, 1], widths=[16, 32, 64], group_widths=[8, 8, 8])
    with pytest.raises(ConfigError, match="multiple of its group width"):
        create_model("anynet", widths=[24, 64, 128], group_widths=[16, 8, 8])


def test_anynet_sampler_is_seeded_and_keeps_its_space_principles() -> None:
    assert sample_anynet(5, 4, "A") == sample_anynet(5, 4, "A")
    assert sample_anynet(5, 4, "A") != sample_anynet(6, 4, "A")
    broken = {p for s in range(20) for p in violated_principles(sample_anynet(s, 4, "A"))}
    assert len(broken) == 4  # space A breaks every principle somewhere
    allowed = {"A": 4, "B": 3, "C": 2, "D": 1, "E": 0}
    for space in SPACES:
        for seed in range(20):
            cfg = sample_anynet(seed, 4, space, max_width=128)
            assert len(violated_principles(cfg)) <= allowed[space], (space, cfg)
            assert all(len(v) == 4 for v in cfg.values())
            assert max(cfg["widths"]) <= 128 and all(w % 8 == 0 for w in cfg["widths"])
            inner = [int(w * b) for w, b in zip(cfg["widths"], cfg["bottleneck"], strict=True)]
            assert all(i % g == 0 for i, g in zip(inner, cfg["group_widths"], strict=True))


def test_anynet_sample_model_builds_from_its_seed() -> None:
    torch.manual_seed(0)
    a = create_model("anynet_sample", seed=2, space="A", stages=3)
    b = create_model("anynet_sample", seed=2, space="A", stages=3)
    assert str(a) == str(b) and len(a.stages) == 3
    assert a(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ConfigError, match="space"):
        create_model("anynet_sample", space="F")


def test_regnet_stages_option_sets_the_stage_count() -> None:
    default = create_model("regnet")
    for n in (2, 3, 4, 5):
        m = create_model("regnet", stages=n)
        assert len(m.stages) == n
        assert m(torch.randn(2, 1, 28, 28)).shape == (2, 10)
        widths = [s[0].proj[0].out_channels if s[0].proj else None for s in m.stages]
        assert widths[-1] == 464  # the top level: the last linear width 461.3, to a multiple of 8
    # w_m chosen for four levels gives four stages, as the paper's 2.49 does, at other widths
    assert str(create_model("regnet", stages=4)) != str(default)
    assert stages_w_m(13, 24, 36.44, 2) == pytest.approx((24 + 36.44 * 12) / 24)
    with pytest.raises(ConfigError, match="gives 5 stages, not 6"):
        create_model("regnet", stages=6)  # 13 blocks cannot fill six geometric levels
    with pytest.raises(ConfigError, match="stages"):
        create_model("regnet", stages=1)


# -- per-part batch norm in VGG; DenseNet's transition pooling -----------------------------------
def test_vgg_fc_bn_normalises_the_hidden_fc_layers_only() -> None:
    plain = create_model("vgg_small")
    both = create_model("vgg_small", fc_bn=True)
    fc_only = create_model("vgg_small", batch_norm=False, fc_bn=True, norm_position="after_act")
    assert list(create_model("vgg_small", fc_bn=False).state_dict()) == list(plain.state_dict())
    assert [type(m) for m in plain.classifier if isinstance(m, nn.BatchNorm1d)] == []
    assert sum(isinstance(m, nn.BatchNorm1d) for m in both.classifier) == 2
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fc_only.features)
    kinds = [type(m).__name__ for m in fc_only.classifier][1:4]
    assert kinds == ["Linear", "ReLU", "BatchNorm1d"]  # after the activation
    assert _params(both) == _params(plain) + 2 * 2 * 256  # γ and β of two 256-wide layers
    frozen = create_model("vgg", image_size=56, fc_bn=True, norm="frozen_affine", hidden=64)
    assert _params(frozen) == _params(create_model("vgg", image_size=56, hidden=64))
    assert both(torch.randn(4, 1, 28, 28)).shape == (4, 10)


def test_densenet_transition_pool_avg_or_max() -> None:
    avg = create_model("densenet_small", block_config=[2, 2])
    mx = create_model("densenet_small", block_config=[2, 2], transition_pool="max")
    assert any(isinstance(m, nn.AvgPool2d) for m in avg.features)
    assert any(isinstance(m, nn.MaxPool2d) for m in mx.features)
    assert not any(isinstance(m, nn.AvgPool2d) for m in mx.features)
    assert list(avg.state_dict()) == list(mx.state_dict())  # pooling has no parameters
    torch.manual_seed(0)
    x = torch.randn(2, 1, 28, 28)
    assert mx(x).shape == (2, 10)
    with pytest.raises(ConfigError, match="transition_pool"):
        create_model("densenet", transition_pool="median")


# -- evaluation folds the variants correctly ------------------------------------------------------
@pytest.mark.parametrize("norm", ["frozen_affine", "mean_only"])
def test_folded_evaluation_matches_for_variants(norm: str) -> None:
    torch.manual_seed(0)
    m = create_model("vgg_small", norm=norm)
    m.train()(torch.randn(16, 1, 28, 28))  # running statistics away from their start
    m.eval()
    x = torch.randn(4, 1, 28, 28)
    torch.testing.assert_close(fold_batchnorm(m)(x), m(x), atol=1e-4, rtol=1e-4)


def test_resnet_small_norm_variants_and_position() -> None:
    default = create_model("resnet_small")
    assert [type(m) for m in default.features[0]] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    after = create_model("resnet_small", norm="mean_only", norm_position="after_act")
    first = after.features[0]
    assert [type(m) for m in first] == [nn.Conv2d, nn.ReLU, LiteBatchNorm]
    assert first[0].bias is not None  # no norm right after the conv: it keeps its bias
    assert after(torch.randn(2, 1, 28, 28)).shape == (2, 10)

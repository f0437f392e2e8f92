"""Parameter counts and output shapes at the ImageNet configuration equal torchvision's.

Models are built on the meta device: no memory is allocated and no initialisation runs, so even
ViT-B/16 and VGG-19 cost milliseconds; the forward on a meta tensor checks shapes only.
"""

from __future__ import annotations

import pytest
import torch
import torchvision

from trainlab.models import create_model
from trainlab.models.densenet import DENSENET_CFGS
from trainlab.models.efficientnet import EFFICIENTNET_CFGS
from trainlab.models.regnet import REGNET_CFGS, regnet_stages
from trainlab.models.resnet import RESNET_CFGS

VGGS = [f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")]
MOBILE = ["mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", *EFFICIENTNET_CFGS]
META = ["alexnet", *VGGS, "googlenet", *RESNET_CFGS, *DENSENET_CFGS, "vit_b_16", *MOBILE]
# torchvision's RegNet computes its widths with tensors, so it cannot be built on meta.
REGNET_FAST = ["regnet_x_400mf", "regnet_x_800mf", "regnet_y_400mf", "regnet_y_800mf"]
REGNET_SLOW = [k for k in REGNET_CFGS if k not in REGNET_FAST]


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _torchvision(name: str) -> torch.nn.Module:
    extra = {"aux_logits": False, "init_weights": False} if name == "googlenet" else {}
    return getattr(torchvision.models, name)(weights=None, **extra)


@pytest.mark.parametrize("name", META)
def test_matches_torchvision_on_meta(name: str) -> None:
    with torch.device("meta"):
        ours, ref = create_model(name), _torchvision(name)
        assert _count(ours) == _count(ref)
        x = torch.empty(1, 3, 224, 224)
        assert ours(x).shape == ref.eval()(x).shape == (1, 1000)


@pytest.mark.parametrize(
    "name", REGNET_FAST + [pytest.param(k, marks=pytest.mark.slow) for k in REGNET_SLOW]
)
def test_regnet_matches_torchvision(name: str) -> None:
    ref = _torchvision(name)
    with torch.device("meta"):
        ours = create_model(name)
        assert ours(torch.empty(1, 3, 224, 224)).shape == (1, 1000)
    assert _count(ours) == _count(ref)


def test_regnet_stage_widths_match_torchvision() -> None:
    from torchvision.models.regnet import BlockParams

    ref = BlockParams.from_init_params(depth=22, w_0=24, w_a=24.48, w_m=2.54, group_width=16)
    depths, widths, group_widths = regnet_stages(22, 24, 24.48, 2.54, 16)
    assert (depths, widths, group_widths) == (ref.depths, ref.widths, ref.group_widths)


def test_capsnet_has_the_papers_size() -> None:
    # Sabour et al. report 8.2M parameters with the reconstruction decoder.
    with torch.device("meta"):
        assert _count(create_model("capsnet")) == 8_215_568

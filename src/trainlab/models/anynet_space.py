"""Seeded samples of the AnyNetX design spaces (Radosavovic et al., 2020, section 3).

Each stage i of an AnyNetX network has a depth dᵢ, a width wᵢ, a group width gᵢ and a
bottleneck ratio bᵢ. The paper narrows the space in steps, each a design principle:

====  =====================================================  ===========================
space  constraint added                                       principle name
====  =====================================================  ===========================
A     none: every stage drawn on its own                      —
B     one bottleneck ratio for all stages                     ``shared_bottleneck``
C     one group width for all stages                          ``shared_group_width``
D     widths never decrease from stage to stage               ``increasing_widths``
E     depths never decrease from stage to stage               ``increasing_depths``
====  =====================================================  ===========================

``sample_anynet(seed, space="A")`` draws a network that may break any principle (the
textbook's "design-space samples that violate its principles"); :func:`violated_principles`
names the ones a configuration breaks. Ranges are scaled down from the paper's (d ≤ 16,
w ≤ 1024) so that samples train on a CPU: ``max_depth``, ``max_width`` set them.

>>> cfg = sample_anynet(seed=3, stages=4, space="E")
>>> violated_principles(cfg)
[]
>>> model = create_model("anynet_sample", seed=3)                   # doctest: +SKIP
"""

from __future__ import annotations

import math
import random
from typing import Any

from torch import nn

from trainlab.errors import ConfigError
from trainlab.models.registry import register_model
from trainlab.models.regnet import AnyNet

__all__ = ["SPACES", "PRINCIPLES", "anynet_sample", "sample_anynet", "violated_principles"]

SPACES = ("A", "B", "C", "D", "E")
PRINCIPLES = ("shared_bottleneck", "shared_group_width", "increasing_widths", "increasing_depths")
RATIOS = (1.0, 0.5, 0.25)  # inner width = w · b (the paper's b ∈ {1, 2, 4} as w / b)
GROUP_WIDTHS = (1, 2, 4, 8, 16, 32)


def _width(rng: random.Random, g: int, b: float, max_width: int) -> int:
    # w is a multiple of 8 whose inner width w·b is a multiple of the group width g.
    step = math.lcm(8, int(g / b))
    return step * rng.randint(1, max_width // step)


def _draw_gb(rng: random.Random, max_width: int) -> tuple[int, float]:
    # A (g, b) pair that fits at least one width ≤ max_width.
    fits = [(g, b) for g in GROUP_WIDTHS for b in RATIOS if math.lcm(8, int(g / b)) <= max_width]
    return rng.choice(fits)


def sample_anynet(
    seed: int, stages: int = 4, space: str = "E", max_depth: int = 4, max_width: int = 256
) -> dict[str, list[Any]]:
    """One AnyNetX configuration from ``space`` (A…E), the same for the same arguments.

    Returns ``{"depths", "widths", "group_widths", "bottleneck"}`` with one entry per stage:
    the options of the ``anynet`` model.
    """
    if space not in SPACES:
        raise ConfigError(f"model.space: one of {', '.join(SPACES)}, got {space!r}")
    if stages < 1 or max_depth < 1 or max_width < 8:
        raise ConfigError("model: stages ≥ 1, max_depth ≥ 1 and max_width ≥ 8 are needed")
    rng = random.Random(f"anynet-{space}-{seed}")  # str seeds hash stably across runs
    level = SPACES.index(space)
    shared = _draw_gb(rng, max_width)
    pairs = [shared if level >= 2 else _draw_gb(rng, max_width) for _ in range(stages)]
    if level == 1:  # B: one ratio, group widths still free (within what the ratio allows)
        b = shared[1]
        pairs = [(rng.choice([g for g in GROUP_WIDTHS if math.lcm(8, int(g / b)) <= max_width]), b)
                 for _ in range(stages)]  # fmt: skip
    widths = [_width(rng, g, b, max_width) for g, b in pairs]
    depths = [rng.randint(1, max_depth) for _ in range(stages)]
    if level >= 3:
        widths.sort()  # with C's shared (g, b) every width stays valid in any order
    if level >= 4:
        depths.sort()
    return {
        "depths": depths,
        "widths": widths,
        "group_widths": [g for g, _ in pairs],
        "bottleneck": [b for _, b in pairs],
    }


def violated_principles(cfg: dict[str, list[Any]]) -> list[str]:
    """The names (see ``PRINCIPLES``) of the design principles configuration ``cfg`` breaks.

    >>> violated_principles({"depths": [2, 1], "widths": [64, 32], "group_widths": [8, 8],
    ...                      "bottleneck": [1.0, 1.0]})
    ['increasing_widths', 'increasing_depths']
    """
    out = []
    if len(set(cfg["bottleneck"])) > 1:
        out.append("shared_bottleneck")
    if len(set(cfg["group_widths"])) > 1:
        out.append("shared_group_width")
    for key, name in (("widths", "increasing_widths"), ("depths", "increasing_depths")):
        v = cfg[key]
        if any(b < a for a, b in zip(v, v[1:], strict=False)):
            out.append(name)
    return out


@register_model("anynet_sample")
def anynet_sample(
    *,
    seed: int = 0,
    stages: int = 4,
    space: str = "E",
    max_depth: int = 4,
    max_width: int = 256,
    stem_width: int = 16,
    num_classes: int = 10,
    in_channels: int = 1,
    small_input: bool = True,
    image_size: int = 28,
) -> nn.Module:
    """A seeded sample of AnyNetX design space A…E (``space``); see ``sample_anynet``.

    ``space="A"`` may break every RegNet design principle, ``"E"`` keeps them all. The
    sampled stages: ``sample_anynet(seed, stages, space, max_depth, max_width)`` in
    ``trainlab.models.anynet_space``, and ``violated_principles`` of that.
    """
    cfg = sample_anynet(seed, stages, space, max_depth, max_width)
    return AnyNet(
        cfg["depths"], cfg["widths"], cfg["group_widths"], cfg["bottleneck"], 0.0, stem_width,
        num_classes, in_channels, small_input, image_size,
    )  # fmt: skip

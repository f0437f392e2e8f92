"""Shared building blocks: activation and normalisation factories, regularisers, attention."""

from trainlab.models.layers.act import ACTIVATIONS, make_act
from trainlab.models.layers.attention import (
    MultiHeadAttention,
    SinusoidalPositionalEncoding,
    causal_mask,
    padding_mask,
)
from trainlab.models.layers.checkpointing import (
    checkpointable,
    run_blocks,
    set_grad_checkpointing,
)
from trainlab.models.layers.mobile_blocks import DepthwiseSeparable, InvertedResidual
from trainlab.models.layers.norm import (
    NORM_POSITIONS,
    NORMS,
    LiteBatchNorm,
    make_norm1d,
    make_norm2d,
    norm_act,
)
from trainlab.models.layers.regularize import DropConnectLinear, StochasticDepth, drop_path
from trainlab.models.layers.squeeze_excite import SqueezeExcite

__all__ = [
    "ACTIVATIONS",
    "NORMS",
    "NORM_POSITIONS",
    "LiteBatchNorm",
    "DropConnectLinear",
    "MultiHeadAttention",
    "SinusoidalPositionalEncoding",
    "StochasticDepth",
    "causal_mask",
    "checkpointable",
    "drop_path",
    "make_act",
    "make_norm1d",
    "make_norm2d",
    "norm_act",
    "padding_mask",
    "run_blocks",
    "set_grad_checkpointing",
    "DepthwiseSeparable",
    "InvertedResidual",
    "SqueezeExcite",
]

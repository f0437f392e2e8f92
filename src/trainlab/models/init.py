"""Weight initialisation schemes, chosen per recipe with ``model.init``.

Applied to the weights of convolutions and linear layers (any parameter named ``weight`` with
two or more dimensions); their biases are zeroed; normalisation layers keep scale 1, shift 0.
``default`` leaves PyTorch's own initialisation (Kaiming-uniform with a=√5) untouched.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.registry import did_you_mean

__all__ = ["INITS", "init_weights"]

Init = Callable[[torch.Tensor, float], object]
INITS: dict[str, Init | None] = {
    "default": None,
    "xavier_uniform": lambda w, std: nn.init.xavier_uniform_(w),
    "xavier_normal": lambda w, std: nn.init.xavier_normal_(w),
    "kaiming_uniform": lambda w, std: nn.init.kaiming_uniform_(w, nonlinearity="relu"),
    "kaiming_normal": lambda w, std: nn.init.kaiming_normal_(w, nonlinearity="relu"),
    "kaiming_uniform_fan_out": lambda w, std: nn.init.kaiming_uniform_(
        w, mode="fan_out", nonlinearity="relu"
    ),
    "kaiming_normal_fan_out": lambda w, std: nn.init.kaiming_normal_(
        w, mode="fan_out", nonlinearity="relu"
    ),
    "orthogonal": lambda w, std: nn.init.orthogonal_(w),
    "normal": lambda w, std: nn.init.normal_(w, 0.0, std),
}


def init_weights(model: nn.Module, scheme: str, std: float = 0.01) -> nn.Module:
    """Re-initialise ``model`` in place with ``scheme`` (see ``INITS``); returns the model.

    >>> m = init_weights(nn.Linear(4, 2), "xavier_uniform")
    """
    if scheme not in INITS:
        names = sorted(INITS)
        raise ConfigError(
            f"model.init: unknown scheme '{scheme}'{did_you_mean(scheme, names)}; "
            f"valid: {', '.join(names)}"
        )
    fn = INITS[scheme]
    if fn is None:
        return model
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)):
                continue  # scale 1, shift 0 already
            for name, p in module.named_parameters(recurse=False):
                if name.endswith("weight") and p.dim() >= 2:
                    fn(p, std)
                elif name.endswith("bias"):
                    p.zero_()
    return model

"""Every registered model: build small, forward its example input, backward, no NaN, same seed
gives the same weights. A model added to the registry is tested here automatically."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from trainlab.models import MODELS, create_model, example_input, list_models

# Options that keep heavy defaults fast on a 2-core CPU; the architecture is unchanged.
IMAGENET_SMALL = {"num_classes": 10, "image_size": 32}
SMALL: dict[str, dict] = {
    "alexnet": {"num_classes": 10, "image_size": 64, "hidden": 64},
    "vgg": {"hidden": 64, "image_size": 32, "pool": 1},
    "nin": {"image_size": 96},
    "googlenet": {"num_classes": 10, "image_size": 64},
    "densenet": IMAGENET_SMALL,
    "capsnet": {"conv_channels": 16, "primary_maps": 4},
    "vit_b_16": IMAGENET_SMALL,
}
for _name in list_models():
    if _name.startswith(("vgg1", "vgg13", "vgg19")):
        SMALL[_name] = {"hidden": 64, **IMAGENET_SMALL}
    elif "resnet" in _name and _name not in ("resnet", "resnet_small") or "resnext" in _name:
        SMALL[_name] = {"width": 16, **IMAGENET_SMALL}
    elif _name.startswith(("densenet1", "densenet2", "regnet_", "mobilenet_", "efficientnet_")):
        SMALL[_name] = IMAGENET_SMALL

# Too many parameters to build in the fast tier (the same code paths run in smaller siblings).
HEAVY = {"regnet_x_16gf", "regnet_x_32gf", "regnet_y_16gf", "regnet_y_32gf", "vit_b_16"}

# Output shapes of the models that are not (N, num_classes) classifiers; N = 2.
OUT_SHAPES: dict[str, list[tuple[int, ...]]] = {
    "autoencoder": [(2, 1, 28, 28)],
    "conv_autoencoder": [(2, 1, 28, 28)],
    "adversarial_autoencoder": [(2, 1, 28, 28), (2, 8)],
    "vae": [(2, 1, 28, 28), (2, 16), (2, 16)],
    "conv_vae": [(2, 1, 28, 28), (2, 16), (2, 16)],
    "gan": [(2, 1, 28, 28)],
    "dcgan": [(2, 1, 28, 28)],
    "ddpm_unet": [(2, 1, 28, 28)],  # ε̂, the shape of x_t
    "cyclegan": [(2, 1, 28, 28)],
    "siamese": [(2, 64)],
    "simclr": [(2, 64)],
    "rbm": [(2, 128)],
    "transformer_lm": [(2, 16, 256)],
    "transformer": [(2, 5, 1000)],
    "seq2seq": [(2, 5, 1000)],
    "rnn_regressor": [(2, 1)],
    "lstm_regressor": [(2, 1)],
    "gru_regressor": [(2, 1)],
}


def _expected(name: str) -> list[tuple[int, ...]]:
    if name in OUT_SHAPES:
        return OUT_SHAPES[name]
    kwargs = SMALL.get(name, {})
    n_cls = kwargs.get("num_classes", MODELS.options(name)["num_classes"].default)
    return [(2, n_cls)]


# Models of an optional extra: skipped, with the reason, where the extra is not installed.
NEEDS = {n: "torch_geometric" for n in ("gcn", "graphsage", "gat")}


def _param(name: str, slow: bool = False) -> object:
    marks = [pytest.mark.slow] if slow else []
    module = NEEDS.get(name)
    if module is not None and importlib.util.find_spec(module) is None:
        reason = f"{module} not installed (pip install 'trainlab[graphs]')"
        marks.append(pytest.mark.skip(reason=reason))
    return pytest.param(name, marks=marks)


def _params() -> list:
    return [_param(n, slow=n in HEAVY) for n in list_models()]


@pytest.mark.parametrize("name", _params())
def test_forward_backward(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, **SMALL.get(name, {}))
    args = example_input(model, batch=2, name=name)
    out = model(*args)
    outs = out if isinstance(out, tuple) else (out,)
    assert [tuple(o.shape) for o in outs] == _expected(name)
    assert all(torch.isfinite(o).all() for o in outs)
    sum(o.float().square().mean() for o in outs).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads, f"{name}: no parameter received a gradient"
    assert all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", [_param(n) for n in list_models() if n not in HEAVY])
def test_same_seed_same_weights(name: str) -> None:
    kwargs = SMALL.get(name, {})
    torch.manual_seed(1)
    a = create_model(name, **kwargs).state_dict()
    torch.manual_seed(1)
    b = create_model(name, **kwargs).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_every_builder_has_only_typed_keyword_options() -> None:
    import inspect
    import typing

    for name in list_models():
        fn = MODELS.get(name)
        params = inspect.signature(fn).parameters.values()
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params), name
        hints = typing.get_type_hints(fn)
        assert all(p.name in hints and p.default is not inspect.Parameter.empty for p in params)
        assert fn.__doc__, f"{name} has no docstring"

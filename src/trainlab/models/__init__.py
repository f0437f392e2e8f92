"""Models: every architecture registered by name; ``create_model`` builds one.

``example_input(model, batch, name)`` gives the positional arguments of one forward call of any
registered model (see :mod:`trainlab.models.examples`).
"""

from trainlab.models import (  # noqa: F401 - importing a family module registers its models
    alexnet,
    anynet_space,
    autoencoder,
    capsule,
    cyclegan,
    densenet,
    diffusion,
    efficientnet,
    fast_cnn,
    gan,
    gnn,
    googlenet,
    lenet,
    mlp,
    mobilenet,
    nin,
    rbm,
    recurrent,
    regnet,
    resnet,
    resnet_small,
    seq2seq,
    siamese,
    simclr,
    transformer,
    vae,
    vgg,
    vit,
)
from trainlab.models.examples import EXAMPLE_INPUTS, example_input
from trainlab.models.registry import MODELS, create_model, list_models, register_model

__all__ = [
    "EXAMPLE_INPUTS",
    "MODELS",
    "create_model",
    "example_input",
    "list_models",
    "register_model",
]

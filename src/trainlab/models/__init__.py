"""Models: every architecture registered by name; ``create_model`` builds one."""

from trainlab.models import lenet, mlp, resnet_small  # noqa: F401 - registers the models
from trainlab.models.registry import MODELS, create_model, list_models, register_model

__all__ = ["MODELS", "create_model", "list_models", "register_model"]

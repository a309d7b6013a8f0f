"""Meta-learning methods, one module each, sharing the `MetaStep` interface."""
from .base import MetaStep, get_method, method_names, register
from .maml import maml
from .pretrain import pretrain

__all__ = ["MetaStep", "get_method", "method_names", "register", "maml", "pretrain"]

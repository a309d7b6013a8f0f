"""Meta-learning methods, one module each, sharing the `MetaStep` interface."""
from .base import MetaStep, get_method, method_names, register
from .imaml import imaml, proximal_adapt
from .maml import maml
from .pretrain import pretrain
from .reptile import reptile

__all__ = ["MetaStep", "get_method", "method_names", "register", "maml", "pretrain", "reptile", "imaml",
           "proximal_adapt"]

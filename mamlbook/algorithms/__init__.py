"""Meta-learning methods, one module each, sharing the `MetaStep` interface."""
from .base import MetaStep, get_method, method_names, register
from .anil import adapt_head, anil
from .imaml import imaml, proximal_adapt
from .maml import maml
from .maml_plus_plus import LSLRNet, MAMLPlusPlusSchedule, mamlpp, multi_step_weights
from .meta_sgd import MetaSGDNet, meta_sgd
from .pretrain import pretrain
from .protonet import protonet
from .reptile import reptile

__all__ = ["MetaStep", "get_method", "method_names", "register", "maml", "pretrain", "reptile", "imaml",
           "proximal_adapt", "anil", "adapt_head", "meta_sgd", "MetaSGDNet", "mamlpp", "LSLRNet",
           "MAMLPlusPlusSchedule", "multi_step_weights", "protonet"]

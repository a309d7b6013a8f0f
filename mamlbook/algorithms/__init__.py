"""Meta-learning methods, one module each, sharing the `MetaStep` interface.

Each module holds one method's mathematics and registers it by name: `maml` (MAML and
first-order MAML, eqs. 2.2-4.1), `reptile` (eqs. 5.1-5.4), `imaml` (eqs. 6.1-6.8),
`pretrain` (joint training, the baseline), and the wider map of chapter 10: `anil`,
`meta_sgd`, `maml_plus_plus` (registered as ``"mamlpp"``), `protonet`. Use them through
`get_method`::

    step = get_method("maml")(model, params, tasks, inner_lr=0.01, inner_steps=1)

The module names stay modules (``mamlbook.algorithms.maml`` is the file with the
equations; its function is ``mamlbook.algorithms.maml.maml``); the classes that wrap a
network with learned step sizes are re-exported here.
"""

from . import anil, imaml, maml, maml_plus_plus, meta_sgd, pretrain, protonet, reptile  # noqa: F401  (registers them)
from .anil import adapt_head
from .base import MetaStep, get_method, method_names, register
from .maml_plus_plus import LSLRNet, MAMLPlusPlusSchedule, multi_step_weights
from .meta_sgd import MetaSGDNet

__all__ = ["MetaStep", "get_method", "method_names", "register", "adapt_head", "LSLRNet", "MAMLPlusPlusSchedule",
           "multi_step_weights", "MetaSGDNet"]

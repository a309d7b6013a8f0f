"""The interface every meta-learning method shares, and the registry of methods by name.

A method is a function::

    method(model, params, tasks, *, inner_lr, inner_steps, loss_fn, **options) -> MetaStep

that takes the initial parameters ``θ`` (a dict of tensors) and a `TaskBatch`, and
returns the meta-loss, the direction to *descend* (``θ ← θ − β · grads`` or any
optimizer fed with ``grads``), and per-task diagnostics. Swapping methods is swapping
a name: `get_method("maml")`, `get_method("reptile")`, ...
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import torch
from torch import Tensor, nn

from .. import checks
from ..functional import Params
from ..tasks import TaskBatch


@dataclass
class MetaStep:
    """What one meta-step computed.

    Attributes
    ----------
    meta_loss : scalar, mean over tasks of the query loss after adaptation (detached).
    grads : dict like ``θ``: the meta-gradient (for Reptile, the direction ``θ − mean φ``
        whose negative is the Reptile update).
    support_loss : ``(T,)`` support loss of each task before adaptation.
    query_loss : ``(T,)`` query loss of each task after adaptation.
    diagnostics : method-specific extras (e.g. iMAML's conjugate-gradient residual).
    """

    meta_loss: Tensor
    grads: Params
    support_loss: Tensor
    query_loss: Tensor
    diagnostics: dict = field(default_factory=dict)


class Method(Protocol):
    def __call__(self, model: nn.Module, params: Params, tasks: TaskBatch, *, inner_lr: float,
                 inner_steps: int, **options) -> MetaStep: ...


def leaf_parameters(params: Params) -> Params:
    """``params`` themselves if they already require grad, else fresh leaves that do."""
    if not isinstance(params, dict) or not params:
        raise TypeError(f"params must be a non-empty dict of tensors, got {type(params).__name__}")
    out = {}
    for name, value in params.items():
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise TypeError(f"params[{name!r}] must be a floating-point tensor, got {type(value).__name__}")
        out[name] = value if (value.requires_grad and value.is_leaf) else value.detach().requires_grad_()
    return out


def check_inputs(params: Params, tasks: TaskBatch, inner_lr: float, inner_steps: int, min_steps: int = 1) -> None:
    """Validation shared by all methods (names the argument and the allowed range)."""
    if not isinstance(tasks, TaskBatch):
        raise TypeError(f"tasks must be a mamlbook.tasks.TaskBatch, got {type(tasks).__name__}")
    if not isinstance(params, dict) or not params:
        raise TypeError(f"params must be a non-empty dict of tensors, got {type(params).__name__}")
    checks.positive_float("inner_lr", inner_lr)
    checks.int_in_range("inner_steps", inner_steps, min_steps)
    ref = tasks.x_support
    for name, value in params.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"params[{name!r}] must be a tensor, got {type(value).__name__}")
        if value.device != ref.device:
            raise ValueError(f"params[{name!r}] is on {value.device} but the tasks are on {ref.device}; move them to one device")
        if ref.is_floating_point() and value.dtype != ref.dtype:
            raise TypeError(f"params[{name!r}] has dtype {value.dtype} but tasks.x_support has {ref.dtype}; use one dtype")


_REGISTRY: dict[str, Callable[..., MetaStep]] = {}


def register(name: str, **fixed_options):
    """Decorator: make a method available as ``get_method(name)``."""

    def wrap(fn):
        if fixed_options:
            def bound(*args, **kwargs):
                return fn(*args, **fixed_options, **kwargs)
            bound.__doc__, bound.__name__, bound.__wrapped__ = fn.__doc__, name, fn
            _REGISTRY[name] = bound
        else:
            _REGISTRY[name] = fn
        return fn

    return wrap


def method_names() -> list[str]:
    return sorted(_REGISTRY)


def get_method(name: str) -> Callable[..., MetaStep]:
    """The method registered as ``name`` (see `method_names`)."""
    if name not in _REGISTRY:
        raise ValueError(f"method must be one of {method_names()}, got {name!r}")
    return _REGISTRY[name]

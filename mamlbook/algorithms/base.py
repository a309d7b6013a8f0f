"""The interface every meta-learning method shares, and the registry of methods by name.

A method is a function::

    method(model, params, tasks, *, inner_lr, inner_steps, loss_fn, on_divergence,
           <its own options>) -> MetaStep

that takes the initial parameters ``θ`` (a dict of tensors) and a `TaskBatch`, and
returns the meta-loss, the direction to *descend* (``θ ← θ − β · grads`` or any
optimizer fed with ``grads``), and per-task diagnostics; its own options are
keyword-only parameters with defaults (``lam``, ``first_order``, ...). Swapping methods
is swapping a name: `get_method("maml")`, `get_method("reptile")`, ... A method of
one's own is registered with `register` (README, "Adding a method").
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor, nn

from .. import checks
from ..functional import Params, mse_per_task
from ..tasks import TaskBatch


@dataclass
class MetaStep:
    """What one meta-step computed.

    Attributes
    ----------
    meta_loss : scalar, mean over tasks of the query loss after adaptation (eq. 2.3;
        detached; `pretrain`, which does not adapt: its joint loss).
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


def check_inputs(model: nn.Module, params: Params, tasks: TaskBatch, inner_lr: float, inner_steps: int, *,
                 loss_fn=None, on_divergence: str = "raise", min_steps: int = 1, finite_now: bool | None = None):
    """Validation shared by all methods, once per call; returns ``loss_fn`` checked on its first calls.

    Every error names the argument, the expected and the received value or shape:
    ``tasks`` a `TaskBatch` whose inputs have the model's input shape; ``params`` (θ) a
    dict with exactly the model's parameter names and shapes (unbatched), floating,
    finite, on the tasks' device and dtype; ``inner_lr``, ``inner_steps`` in range;
    ``loss_fn`` the per-task contract (`mamlbook.checks.per_task_loss`). ``finite_now``:
    check θ for NaN/inf here (default: only with ``on_divergence="keep"``; a method that
    raises checks θ with its result instead, see below).
    """
    if not isinstance(tasks, TaskBatch):
        raise TypeError(f"tasks must be a mamlbook.tasks.TaskBatch, got {type(tasks).__name__}")
    checks.module("model", model)
    checks.gradients_enabled("a meta-step")  # (the evaluation functions turn gradients on themselves)
    if not isinstance(params, dict) or not params:
        raise TypeError(f"params must be a non-empty dict of tensors, got {type(params).__name__}")
    checks.positive_float("inner_lr", inner_lr, dtype=tasks.x_support.dtype)
    checks.int_in_range("inner_steps", inner_steps, min_steps)
    checks.on_divergence(on_divergence)
    # NaN/inf in θ: checked up front with "keep"; with "raise", in the same one reduction as the
    # step's result (`checks.finite_step(..., params=θ)`), which refuses it the same way.
    checks.params("params", params, model, like=("tasks.x_support", tasks.x_support),
                  finite=on_divergence == "keep" if finite_now is None else finite_now)
    # (a TaskBatch refused NaN/inf when it was built: only shapes are checked here)
    checks.inputs("tasks.x_support", tasks.x_support, model, finite=False)
    checks.inputs("tasks.x_query", tasks.x_query, model, finite=False)
    return checks.per_task_loss(mse_per_task if loss_fn is None else loss_fn,
                                **{"tasks.y_support": tasks.y_support, "tasks.y_query": tasks.y_query})


def divergence_advice(inner_lr: float, inner_steps: int) -> str:
    """The advice a method's `DivergenceError` ends with: what to lower, with the values used."""
    return (f"Use a smaller inner_lr (now {inner_lr}) or fewer inner_steps (now {inner_steps}), and check that the "
            "params (θ) are of a sensible scale")


_REGISTRY: dict[str, Callable[..., MetaStep]] = {}


def register(name: str, **fixed_options):
    """Decorator: make method ``fn`` available as ``get_method(name)`` (and so to
    `mamlbook.meta_train`, `TrainingSettings(method=name)`, the threaded and compiled steps).

    ``fn`` has the signature of the module docstring: ``model, params, tasks`` first,
    then keyword-only ``inner_lr``, ``inner_steps``, ``loss_fn``, ``on_divergence`` and
    its own options, each with a default (what `method_options` lists and
    ``method_options={...}`` may set; a ``**kwargs`` would take options it never reads, so
    it is refused). ``fixed_options`` registers a variant, e.g.
    ``register("fomaml", first_order=True)``. A name already taken by another method, or
    by the same one with other fixed options, is refused; the same function (same module,
    name and fixed options: a module reloaded, a notebook cell run again) replaces itself.
    """
    import functools
    import inspect

    if not isinstance(name, str) or not name.isidentifier():
        raise TypeError(f"name must be a string usable as an identifier (e.g. 'cavia'), got {name!r}")

    def identity(method, fixed) -> tuple:
        # a function by module and name; a partial by its function and arguments; a callable
        # object by its class (so that a module reloaded or a cell run again is the same)
        inner = method.func if isinstance(method, functools.partial) else method
        label = getattr(inner, "__qualname__", None) or type(inner).__qualname__
        bound = repr((method.args, sorted(method.keywords.items()))) if inner is not method else ""
        return getattr(inner, "__module__", None), label + bound, repr(sorted(fixed.items()))

    def wrap(fn):
        label = getattr(fn, "__qualname__", None) or repr(fn)
        signature = inspect.signature(fn)
        keyword_only = {p.name: p for p in signature.parameters.values() if p.kind == p.KEYWORD_ONLY}
        var_keyword = [p.name for p in signature.parameters.values() if p.kind == p.VAR_KEYWORD]
        if var_keyword:
            raise TypeError(f"method {name!r}: {label}(**{var_keyword[0]}) would take options it never reads; "
                            "declare each option as a keyword-only parameter with a default instead")
        required = ("inner_lr", "inner_steps", "loss_fn", "on_divergence")
        if list(signature.parameters)[:3] != ["model", "params", "tasks"] or not set(required) <= set(keyword_only):
            raise TypeError(f"method {name!r}: {label}{signature} must be (model, params, tasks, *, inner_lr, "
                            "inner_steps, loss_fn=..., on_divergence='raise', <options with defaults>)")
        no_default = [n for n, p in keyword_only.items()
                      if n not in ("inner_lr", "inner_steps", *fixed_options) and p.default is p.empty]
        unknown = sorted(set(fixed_options) - set(keyword_only))
        if no_default or unknown:
            what = f"options {no_default} have no default" if no_default else \
                f"fixed options {unknown} are not keyword-only parameters of {label}"
            raise TypeError(f"method {name!r}: {what}")
        taken = _REGISTRY.get(name)
        if taken is not None:
            was = identity(getattr(taken, "__wrapped__", taken), getattr(taken, "fixed_options", {}))
            if was != identity(fn, fixed_options):
                where = ".".join(part for part in was[:2] if part)  # (code run by exec has no module)
                fixed = f" with fixed options {was[2]}" if was[2] != "[]" else ""
                raise ValueError(f"name {name!r} is taken by {where}{fixed}; register {label} under another name "
                                 "(method_names() lists the names taken)")
        if fixed_options:
            def bound(*args, **kwargs):
                clash = sorted(set(kwargs) & set(fixed_options))
                if clash:
                    raise TypeError(f"method {name!r} fixes {', '.join(f'{k}={fixed_options[k]!r}' for k in clash)}; "
                                    f"do not pass {', '.join(clash)} (use {label!r} to choose it)")
                return fn(*args, **fixed_options, **kwargs)
            bound.__doc__, bound.__name__, bound.__wrapped__ = fn.__doc__, name, fn
            bound.fixed_options = dict(fixed_options)
            _REGISTRY[name] = bound
        else:
            _REGISTRY[name] = fn
        return fn

    return wrap


def method_names() -> list[str]:
    """The names `get_method` takes (every registered method), sorted."""
    return sorted(_REGISTRY)


def get_method(name: str) -> Callable[..., MetaStep]:
    """The method registered as ``name`` (see `method_names`): a function
    ``(model, params, tasks, *, inner_lr, inner_steps, loss_fn=..., <options>) -> MetaStep``.

    Its options and equations are in its own docstring (``help(get_method("imaml"))``)
    and module (`mamlbook.algorithms.maml`, ``reptile``, ``imaml``, ...);
    `method_options` lists the option names. An unknown name is a ValueError that
    suggests the closest one.
    """
    if not isinstance(name, str) or name not in _REGISTRY:
        close = difflib.get_close_matches(str(name).lower(), method_names(), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"method must be one of {method_names()}, got {name!r}{hint}")
    return _REGISTRY[name]


def method_options(name: str) -> list[str]:
    """The keyword options method ``name`` accepts besides ``inner_lr`` and ``inner_steps``."""
    import inspect

    fn = get_method(name)
    fixed = getattr(fn, "fixed_options", {})
    signature = inspect.signature(getattr(fn, "__wrapped__", fn))
    return [p.name for p in signature.parameters.values()
            if p.kind == p.KEYWORD_ONLY and p.name not in ("inner_lr", "inner_steps") and p.name not in fixed]


def check_method_options(name: str, options, argument: str = "method_options") -> dict:
    """``options`` (a dict) if method ``name`` takes each of them (`method_options`);
    else TypeError/ValueError naming ``argument``: an option a method does not take would
    be ignored, so it is refused, never dropped."""
    if not isinstance(options, dict):
        raise TypeError(f"{argument} must be a dict of {name}'s keyword options, got {type(options).__name__}")
    allowed = method_options(name)
    for key in options:
        if key not in allowed:
            raise ValueError(f"{argument} has {key!r}, which method {name!r} does not take (it takes {allowed}); "
                             "it would be ignored, so it is refused")
    return options

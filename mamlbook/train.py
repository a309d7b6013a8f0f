"""The meta-training loop: sample a meta-batch, take a meta-step, update ``θ``.

Any registered method (`mamlbook.algorithms.method_names`) plugs in by name; the outer
optimizer is Adam, as in the MAML paper, or plain SGD (Reptile's ``θ ← θ + ε·mean(φ − θ)``
is SGD with learning rate ``ε`` on the direction ``θ − mean φ``).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from . import checks
from .algorithms import get_method
from .algorithms.base import method_options as method_options_of
from .compiled import compile_method
from .functional import parameters_of

#: Methods without an inner loop: ``inner_steps`` must be 0 or left out.
NON_ADAPTIVE = ("pretrain", "protonet")


@dataclass
class History:
    """Meta-loss per iteration (mean query loss after adaptation) and wall time."""

    method: str
    meta_loss: list[float] = field(default_factory=list)
    support_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def smoothed(self, window: int = 100) -> list[float]:
        """Running mean over ``window`` iterations (for plots)."""
        checks.positive_int("window", window)
        out, acc = [], 0.0
        for i, v in enumerate(self.meta_loss):
            acc += v - (self.meta_loss[i - window] if i >= window else 0.0)
            out.append(acc / min(i + 1, window))
        return out


def meta_train(model: nn.Module, family, *, iterations: int, generator: torch.Generator, method: str = "maml",
               meta_batch_size: int = 25, support_shots: int = 10, query_shots: int = 10,
               inner_lr: float = 0.01, inner_steps: int | None = None, outer_lr: float = 1e-3, optimizer: str = "adam",
               method_options: dict | None = None, device=None, progress: bool = True,
               step_fn=None, compile: bool = False, callbacks: Sequence[Callable] = ()) -> History:
    """Meta-train ``model``'s parameters in place; return the `History`.

    Parameters
    ----------
    family : a task family with ``sample(num_tasks, support_shots, query_shots, generator=, device=)``.
    iterations : number of meta-steps (each uses ``meta_batch_size`` fresh tasks).
    method : a registered method name, e.g. ``"maml"``, ``"fomaml"``, ``"reptile"``,
        ``"imaml"``, ``"pretrain"``, ``"anil"``, ``"meta_sgd"`` and ``"mamlpp"`` (their
        ``model`` is a `MetaSGDNet` / `LSLRNet` wrapper, whose parameters include the
        learned step sizes), ``"protonet"``.
    inner_steps : inner SGD steps per meta-step (default 1; ``"pretrain"`` and
        ``"protonet"`` do not adapt, so for them only 0 or nothing is accepted).
    optimizer : ``"adam"`` or ``"sgd"`` for the outer update, learning rate ``outer_lr``.
    method_options : further keyword options of the method (e.g. ``{"lam": 5.0}`` for
        iMAML, ``{"loss_fn": mb.cross_entropy_per_task}``); an option the method does not
        take is refused (ValueError naming it), never dropped.
    step_fn : computes the meta-step instead of ``get_method(method)``, with the same
        signature (`mamlbook.distributed` passes one that shards the meta-batch).
    callbacks : functions called after every meta-step, before the update, as
        ``callback(iteration, params, step, tasks)``: the iteration (from 0), ``θ`` (the
        model's parameters, *not* to be modified), the `MetaStep` computed at that ``θ``
        and the meta-batch it used. For measuring during training, e.g.
        `mamlbook.measure.AgreementProbe`; a callback that only reads leaves training
        unchanged.
    compile : run the meta-step compiled (`mamlbook.compiled.compile_method`): faster
        after a first iteration that compiles; the numbers differ from eager in float
        rounding, so the book's checkpoints are trained eagerly.

    Raises
    ------
    DivergenceError : the meta-loss or the meta-gradient became NaN or inf (the message
        says what to lower). The diverging update is not applied: the model keeps the
        parameters of the last finite iteration.
    """
    method_step = get_method(method)  # also fails early on an unknown name
    checks.module("model", model)
    if not callable(getattr(family, "sample", None)):
        raise TypeError(f"family must be a task family with a sample(num_tasks, support_shots, query_shots, "
                        f"generator=, device=) method, got {type(family).__name__}")
    checks.flag("compile", compile)
    checks.flag("progress", progress)
    if compile and step_fn is not None:
        raise ValueError("compile=True cannot be combined with a step_fn; compile the step_fn yourself")
    if step_fn is not None:
        checks.callable_("step_fn", step_fn)
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"callbacks must be a list or tuple of functions, got {type(callbacks).__name__}")
    for i, callback in enumerate(callbacks):
        checks.callable_(f"callbacks[{i}]", callback)
    checks.positive_int("iterations", iterations)
    checks.positive_int("meta_batch_size", meta_batch_size)
    checks.positive_float("outer_lr", outer_lr)
    checks.positive_float("inner_lr", inner_lr)
    checks.one_of("optimizer", optimizer, {"adam", "sgd"})
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if method_options is not None and not isinstance(method_options, dict):
        raise TypeError(f"method_options must be a dict of the method's keyword options, got "
                        f"{type(method_options).__name__}")
    options = dict(method_options or {})
    allowed = method_options_of(method)
    for key in options:
        if key == "on_divergence":
            raise ValueError("method_options must not hold 'on_divergence': meta_train always stops with a "
                             "DivergenceError when a meta-step is NaN/inf (θ would be ruined by the update)")
        if key in ("inner_lr", "inner_steps"):
            raise ValueError(f"method_options must not hold {key!r}; pass {key}= to meta_train itself")
        if key not in allowed:
            raise ValueError(f"method_options has {key!r}, which method {method!r} does not take (it takes "
                             f"{allowed}); it would be ignored, so it is refused")
    if method in NON_ADAPTIVE:
        if inner_steps not in (None, 0):
            raise ValueError(f"inner_steps must be 0 or left out for method {method!r} (it does not adapt), got "
                             f"{inner_steps!r}")
        inner_steps = 0
    elif inner_steps is None:
        inner_steps = 1
    checks.int_in_range("inner_steps", inner_steps, 0)
    params = parameters_of(model)
    checks.finite_params("model.named_parameters()", params)
    device = device if device is not None else next(iter(params.values())).device
    if compile:
        compiled = compile_method(method, model, inner_lr=inner_lr, inner_steps=inner_steps,
                                  device_type=torch.device(device).type, **options)
        step_fn = lambda model, params, tasks, **_: compiled(params, tasks)  # noqa: E731
    # The method checks its own step (loss, gradients and θ in one reduction) and raises; a
    # step_fn (compiled, or the distributed one that all-reduces shards) hands a non-finite
    # result back and this loop raises, so every process of a distributed run stops at the
    # same iteration and none waits for the others.
    own_check = step_fn is None
    step_fn = step_fn if step_fn is not None else method_step
    if not own_check and _accepts_keyword(step_fn, "on_divergence"):
        options["on_divergence"] = "keep"
    opt_cls = torch.optim.Adam if optimizer == "adam" else torch.optim.SGD
    opt = opt_cls(params.values(), lr=outer_lr)
    history = History(method=method)
    start = time.perf_counter()
    advice = (f"Try a smaller outer_lr (now {outer_lr}) or inner_lr (now {inner_lr}), or fewer inner_steps "
              f"(now {inner_steps}).")
    for it in tqdm(range(iterations), desc=f"meta-train {method}", disable=not progress, mininterval=1.0):
        tasks = family.sample(meta_batch_size, support_shots, query_shots, generator=generator, device=device)
        try:
            step = step_fn(model, params, tasks, inner_lr=inner_lr, inner_steps=inner_steps, **options)
        except checks.DivergenceError as err:
            what = err.diagnosis or str(err)  # (the method's own advice and opt-out are not meta_train's)
            raise checks.DivergenceError(f"training diverged at iteration {it} of {method}: {what}. {advice}") from err
        except checks.NonFiniteError as err:
            if it == 0:
                raise
            raise checks.DivergenceError(f"training diverged at iteration {it} of {method}: the update of iteration "
                                         f"{it - 1} made θ non-finite ({err}). {advice}") from err
        loss = float(step.meta_loss)
        if not math.isfinite(loss):
            raise checks.DivergenceError(
                f"meta-loss is {loss} at iteration {it} of {method}: training diverged. {advice}")
        if not own_check:
            checks.finite_step(f"training at iteration {it} of {method}", step.meta_loss, step.grads, "raise", advice,
                               mention_opt_out=False)
        for callback in callbacks:
            callback(it, params, step, tasks)
        for name, p in params.items():
            p.grad = step.grads[name]
        opt.step()
        history.meta_loss.append(loss)
        # a step computed in shards reports the whole meta-batch's mean in its diagnostics
        history.support_loss.append(float(step.diagnostics.get("support_loss_mean", step.support_loss.mean())))
    history.seconds = time.perf_counter() - start
    return history


def _accepts_keyword(fn, name: str) -> bool:
    """Whether ``fn`` takes the keyword ``name`` (by name or through ``**kwargs``)."""
    import inspect

    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind == p.VAR_KEYWORD for p in parameters)

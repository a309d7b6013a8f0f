"""Parameters as dictionaries, batched over tasks, and the inner SGD loop.

Everything in the package builds on three ideas:

* ``Params``: a ``dict[str, Tensor]`` named as in ``model.named_parameters()``; the
  model object only supplies the architecture (``torch.func.functional_call``).
* Task-batched parameters: each tensor gets a leading dimension of size ``T`` (one
  copy per task), so a whole meta-batch adapts in one pass. Tasks never interact, so
  the gradient of the *sum* of per-task losses with respect to task ``t``'s copy is
  exactly task ``t``'s own gradient.
* The inner loop (book eq. 2.2), ``φ_{i} = φ_{i-1} − α ∇L_support(φ_{i-1})`` with
  ``φ_0 = θ``, differentiable (second order) or not (first order).
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from . import checks

Params = dict[str, Tensor]
LossFn = Callable[
    [Tensor, Tensor], Tensor
]  # (predictions, targets), both (T, N, ...) -> (T,)
"""The ``loss_fn`` contract, everywhere in the package:
``loss_fn(predictions, targets)`` gets the task-batched predictions ``(T, N, *out)`` and
targets ``(T, N, ...)`` and returns the *per-task* losses, a floating tensor of shape
``(T,)``. Not a scalar: the inner loop differentiates the sum over tasks, so a loss
averaged over the tasks would scale every task's inner step by ``1/T``. `mse_per_task`
and `cross_entropy_per_task` follow it; any other function is checked on its first call
at every public entry point (methods, `adapt`, `adaptation_curve`), and refused with an
error naming what it returned."""


def parameters_of(model: nn.Module) -> Params:
    """The model's own parameters as a dict (the same tensors, not copies)."""
    return dict(model.named_parameters())


def detached(params: Params, requires_grad: bool = False) -> Params:
    """Fresh leaf copies of ``params`` (e.g. to differentiate with respect to them)."""
    return {
        k: v.detach().clone().requires_grad_(requires_grad) for k, v in params.items()
    }


def detached_views(params: Params) -> Params:
    """``params`` cut from the autograd graph, without copying (``detach``, not
    ``clone``)."""
    return {k: v.detach() for k, v in params.items()}


def batch_parameters(params: Params, num_tasks: int) -> Params:
    """Give every tensor a leading task dimension: shape ``(num_tasks, *shape)``.

    ``expand`` makes views, so no memory is copied and gradients flow back to ``params``
    summed over tasks.
    """
    checks.positive_int("num_tasks", num_tasks)
    if not isinstance(params, dict) or not all(
        isinstance(v, Tensor) for v in params.values()
    ):
        raise TypeError(
            f"params must be a dict of tensors, got {type(params).__name__}"
        )
    return {k: v.expand(num_tasks, *v.shape) for k, v in params.items()}


def task_forward(model: nn.Module, params: Params, x: Tensor) -> Tensor:
    """Run ``model`` with task-batched ``params`` on task-batched inputs.

    Shapes: every ``params[k]`` is ``(T, *shape_k)``; ``x`` is ``(T, N, *input_shape)``;
    returns ``(T, N, *output_shape)``. Models whose layers broadcast over a leading task
    dimension (``model.task_batched = True``, e.g. `mamlbook.models.SinusoidMLP`) run
    as batched matrix products directly; any other module is mapped over tasks with
    ``torch.func.vmap``. A task-batched model may also define
    ``forward_with(params, x)``, the same computation without swapping ``params`` into
    the module: at the size of the book's networks that bookkeeping costs as much as the
    arithmetic, so this is the meta-step's fast path (see the Performance appendix).
    """
    if getattr(model, "task_batched", False):
        forward_with = getattr(model, "forward_with", None)
        if forward_with is not None:
            return forward_with(params, x)
        return functional_call(model, params, (x,))
    return vmap(lambda p, xt: functional_call(model, p, (xt,)))(params, x)


def mse_per_task(predictions: Tensor, targets: Tensor) -> Tensor:
    """Mean squared error of each task (book eq. 2.1): ``(T, N, ...)`` twice (exactly
    the same shape) -> ``(T,)``.

    Two operations (``mse_loss`` elementwise, one mean), so that the inner gradient's
    graph, which second-order MAML differentiates again, stays small.
    """
    if (
        predictions.shape != targets.shape
    ):  # mse_loss would broadcast them (with only a warning)
        raise ValueError(
            "targets must have the shape of the predictions "
            f"{tuple(predictions.shape)} (no broadcasting), got {tuple(targets.shape)}"
        )
    return nn.functional.mse_loss(predictions, targets, reduction="none").mean(
        dim=tuple(range(1, predictions.ndim))
    )


def cross_entropy_per_task(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy of each task: logits ``(T, N, C)``, labels
    ``(T, N)`` -> ``(T,)``."""
    if logits.ndim != 3 or labels.shape != logits.shape[:2]:
        raise ValueError(
            "logits must be (T, N, C) and labels (T, N), got logits "
            f"{tuple(logits.shape)} and labels {tuple(labels.shape)}"
        )
    t, n, c = logits.shape
    return (
        nn.functional.cross_entropy(
            logits.reshape(t * n, c), labels.reshape(t * n), reduction="none"
        )
        .view(t, n)
        .mean(1)
    )


# The targets each of the package's losses takes, read by `mamlbook.checks` to word its
# errors with the argument's name (so that checks need not import this module).
mse_per_task.targets = "regression"
cross_entropy_per_task.targets = "labels"


def task_losses(
    model: nn.Module,
    params: Params,
    x: Tensor,
    y: Tensor,
    loss_fn: LossFn = mse_per_task,
) -> Tensor:
    """Per-task loss ``(T,)`` of task-batched ``params`` on ``(x, y)``."""
    return loss_fn(task_forward(model, params, x), y)


def sgd_step(
    params: Params, grads: tuple[Tensor, ...] | list[Tensor], inner_lr: float
) -> Params:
    """``φ − α g`` for each tensor (book eq. 2.2).

    One fused operation per tensor (``torch.add`` with ``alpha``), not a product and a
    difference: half the operations for the meta-backward to differentiate, and one
    rounding instead of two.
    """
    return {
        k: torch.add(p, g, alpha=-inner_lr) for (k, p), g in zip(params.items(), grads)
    }


class LoopForm(NamedTuple):
    """The parameter layout an inner loop runs in (see `inner_loop_form`)."""

    to_loop: Callable[[Params], Params]  # standard layout -> loop layout
    from_loop: Callable[[Params], Params]  # loop layout -> standard layout
    forward: Callable[
        [Params, Tensor], Tensor
    ]  # (loop-layout params, x (T, N, ...)) -> (T, N, ...)


def inner_loop_form(model: nn.Module, params: Params) -> LoopForm:
    """The layout in which the inner loop adapts ``params`` for ``model``.

    A task-batched model may offer a layout that suits its products better
    (`mamlbook.models.SinusoidMLP.matmul_layout`: views of the same numbers, ``Wᵀ`` and
    ``b`` as a row); it is used when ``params`` holds all of the model's parameters.
    Otherwise the loop runs on ``params`` as they are, through `task_forward`.
    """
    to_loop = getattr(model, "matmul_layout", None)
    if (
        to_loop is not None
        and getattr(model, "task_batched", False)
        and set(params) == {name for name, _ in model.named_parameters()}
    ):
        return LoopForm(to_loop, model.standard_layout, model.forward_matmul)
    return LoopForm(_same, _same, lambda p, x: task_forward(model, p, x))


def _same(params: Params) -> Params:
    return params


def sgd_steps(
    forward: Callable[[Params, Tensor], Tensor],
    params: Params,
    x_support: Tensor,
    y_support: Tensor,
    *,
    inner_lr: float,
    inner_steps: int,
    loss_fn: LossFn = mse_per_task,
    create_graph: bool = True,
) -> tuple[Params, Tensor]:
    """The inner loop of `adapt` (book eq. 2.2) for any ``forward(params, x)`` and
    layout.

    ``inner_steps ≥ 1``. Returns the adapted parameters in the layout they came in
    (leaves that require grad when ``create_graph`` is False) and the support losses
    ``(T,)`` before the first step.
    """
    first_losses = None
    for _ in range(inner_steps):
        losses = loss_fn(forward(params, x_support), y_support)
        if first_losses is None:
            first_losses = losses.detach()
        grads = torch.autograd.grad(
            losses.sum(), list(params.values()), create_graph=create_graph
        )
        if create_graph:
            params = sgd_step(params, grads, inner_lr)
        else:  # constant-size memory: each step starts a fresh graph at detached leaves
            params = {
                k: v.requires_grad_()
                for k, v in sgd_step(detached_views(params), grads, inner_lr).items()
            }
    return params, first_losses


@checks.with_gradients  # the inner loop takes gradients, even under an outer no_grad
def adapt(
    model: nn.Module,
    params: Params,
    x_support: Tensor,
    y_support: Tensor,
    *,
    inner_lr: float,
    inner_steps: int,
    loss_fn: LossFn = mse_per_task,
    create_graph: bool = True,
    on_divergence: str = "raise",
) -> tuple[Params, Tensor]:
    """Take ``inner_steps`` SGD steps on each task's support set, all tasks at once.

    Implements book eq. (2.2), ``φ_i = φ_{i−1} − α ∇_φ L_support(φ_{i−1})``.

    Parameters
    ----------
    model : the network; ``params`` replace its own parameters (`task_forward`).
    inner_lr, inner_steps : ``α > 0`` and the number of steps ``k ≥ 0``.
    params : task-batched parameters ``(T, ...)`` (see `batch_parameters`); they must
        be part of an autograd graph (``requires_grad``) unless ``inner_steps`` is 0.
    x_support, y_support : ``(T, N_s, ...)``, the ``N_s`` support examples of each task.
    create_graph : keep the graph of each gradient so that the result can be
        differentiated again (second-order MAML); ``False`` cuts the graph after every
        step and returns fresh leaves that require grad (first-order MAML, Reptile,
        evaluation): memory then does not grow with ``inner_steps``.
    loss_fn : per-task loss, ``(predictions, targets) -> (T,)`` (see `LossFn`).
    on_divergence : ``"raise"`` (default): `DivergenceError` if the adapted parameters
        are NaN/inf; ``"keep"``: return them anyway.

    Gradients are on inside, also under an outer ``torch.no_grad()``;
    ``torch.inference_mode()`` is refused (RuntimeError: it cannot be lifted).

    ``params`` must have the model's parameter names and shapes with a leading task
    dimension, ``x_support`` the model's input shape, ``y_support`` the tasks and shots
    of ``x_support``; all finite (else ValueError/TypeError naming the argument).

    Returns
    -------
    (adapted parameters ``(T, ...)``, support losses ``(T,)`` before the first step)
    """
    checks.int_in_range("inner_steps", inner_steps, 0)
    checks.flag("create_graph", create_graph)
    checks.on_divergence(on_divergence)
    checks.module("model", model)
    checks.inputs("x_support", x_support, model)
    checks.positive_float("inner_lr", inner_lr, dtype=x_support.dtype)  # ≤ its max
    checks.params(
        "params", params, model, num_tasks=x_support.shape[0], tasks_from="x_support"
    )
    if inner_steps > 0 and not all(v.requires_grad for v in params.values()):
        raise ValueError(
            "params must require grad to be adapted (inner_steps > 0); pass "
            "mamlbook.detached(mamlbook.batch_parameters(theta, T), requires_grad=True)"
        )
    checks.targets("y_support", y_support, "x_support", x_support)
    loss_fn = checks.per_task_loss(loss_fn, y_support=y_support)
    phi, first_losses = adapt_unchecked(
        model,
        params,
        x_support,
        y_support,
        inner_lr=inner_lr,
        inner_steps=inner_steps,
        loss_fn=loss_fn,
        create_graph=create_graph,
    )
    if (
        on_divergence == "raise"
        and inner_steps > 0
        and not checks.all_finite(phi.values())
    ):
        raise checks.DivergenceError(
            f"adapt diverged: the adapted parameters are NaN/inf after {inner_steps} "
            f"SGD steps with inner_lr={inner_lr}. Use a smaller inner_lr or fewer "
            "inner_steps (pass on_divergence='keep' to get the non-finite parameters "
            "back instead)"
        )
    return phi, first_losses


def adapt_unchecked(
    model: nn.Module,
    params: Params,
    x_support: Tensor,
    y_support: Tensor,
    *,
    inner_lr: float,
    inner_steps: int,
    loss_fn: LossFn = mse_per_task,
    create_graph: bool = True,
) -> tuple[Params, Tensor]:
    """`adapt` without validating its arguments (for callers that validated them once
    already)."""
    if inner_steps == 0:
        with torch.no_grad():
            return params, task_losses(model, params, x_support, y_support, loss_fn)
    form = inner_loop_form(model, params)
    phi, first_losses = sgd_steps(
        form.forward,
        form.to_loop(params),
        x_support,
        y_support,
        inner_lr=inner_lr,
        inner_steps=inner_steps,
        loss_fn=loss_fn,
        create_graph=create_graph,
    )
    phi = form.from_loop(phi)
    if not create_graph:  # leaves, as documented, in the standard layout
        phi = {k: v.detach().requires_grad_() for k, v in phi.items()}
    return phi, first_losses


def proximal_adapt(
    model: nn.Module,
    anchor: Params,
    x_support: Tensor,
    y_support: Tensor,
    *,
    inner_lr: float,
    inner_steps: int,
    lam: float,
    loss_fn: LossFn = mse_per_task,
    inner_tol: float | None = None,
) -> tuple[Params, Tensor, Tensor]:
    """`proximal_adapt_unchecked`, the proximal inner solver (gradient descent on
    ``G(φ) = L_support(φ) + λ/2‖φ − θ‖²``, book eq. 6.1, from ``φ = θ``, all tasks
    batched), with its arguments checked as `adapt`'s are: ``anchor`` the task-batched
    ``θ`` ``(T, ...)``.

    Returns
    ``(φ (T, ...) detached, support loss at θ (T,), accepted steps per task (T,))``.
    """
    checks.int_in_range("inner_steps", inner_steps, 0)
    checks.positive_float("lam", lam)
    if inner_tol is not None:
        checks.positive_float("inner_tol", inner_tol)
    checks.module("model", model)
    checks.inputs("x_support", x_support, model)
    checks.positive_float("inner_lr", inner_lr, dtype=x_support.dtype)  # ≤ its max
    checks.params(
        "anchor", anchor, model, num_tasks=x_support.shape[0], tasks_from="x_support"
    )
    checks.targets("y_support", y_support, "x_support", x_support)
    loss_fn = checks.per_task_loss(loss_fn, y_support=y_support)
    return proximal_adapt_unchecked(
        model,
        anchor,
        x_support,
        y_support,
        inner_lr=inner_lr,
        inner_steps=inner_steps,
        lam=lam,
        loss_fn=loss_fn,
        inner_tol=inner_tol,
    )


@checks.with_gradients
def proximal_adapt_unchecked(
    model: nn.Module,
    anchor: Params,
    x_support: Tensor,
    y_support: Tensor,
    *,
    inner_lr: float,
    inner_steps: int,
    lam: float,
    loss_fn: LossFn = mse_per_task,
    inner_tol: float | None = None,
) -> tuple[Params, Tensor, Tensor]:
    """Gradient descent on ``G(φ) = L_support(φ) + λ/2‖φ − θ‖²`` (book eq. 6.1) from
    ``φ = θ``, all tasks batched.

    ``anchor`` is the task-batched ``θ`` ``(T, ...)``. Each step is
    ``φ ← φ − α_t (∇L_support(φ) + λ(φ − θ))`` on detached tensors, with a per-task
    step size ``α_t`` that starts at ``inner_lr``. The descent is monotone: a step that
    would increase a task's ``G`` is rejected and that task's ``α_t`` halved (plain GD
    with a fixed step diverges once the curvature exceeds ``2/α − λ``, which happens
    as meta-training sharpens the loss). With ``inner_tol``, a task stops as soon as its
    proximal-gradient norm is at most ``inner_tol`` (the others go on), so a batched
    run equals running the tasks one by one.

    Returns
    ``(φ (T, ...) detached, support loss at θ (T,), accepted steps per task (T,))``.
    Its arguments are not checked (`proximal_adapt` checks them).
    """
    t = x_support.shape[0]

    def objective(phi: Params) -> Tensor:  # G(φ) per task, (T,)
        distance = sum(
            (v - anchor[k]).flatten(1).square().sum(1) for k, v in phi.items()
        )
        return (
            task_losses(model, phi, x_support, y_support, loss_fn)
            + 0.5 * lam * distance
        )

    phi = detached(anchor, requires_grad=True)
    steps_taken = torch.zeros(t, dtype=torch.long, device=x_support.device)
    active = torch.ones_like(steps_taken, dtype=torch.bool)
    rate = torch.full(
        (t,), float(inner_lr), dtype=x_support.dtype, device=x_support.device
    )
    support_loss = None
    for _ in range(inner_steps):
        losses = task_losses(model, phi, x_support, y_support, loss_fn)
        if support_loss is None:
            support_loss = losses.detach()
        grads = torch.autograd.grad(losses.sum(), list(phi.values()))
        with torch.no_grad():
            prox = {k: g + lam * (phi[k] - anchor[k]) for k, g in zip(phi, grads)}
            if inner_tol is not None:
                active &= flatten_params(prox, batch_dims=1).norm(dim=1) > inner_tol
                if not bool(active.any()):
                    break
            step = rate * active.to(x_support.dtype)  # 0 for tasks that have converged
            candidate = {
                k: v - step.view(-1, *[1] * (v.ndim - 1)) * prox[k]
                for k, v in phi.items()
            }
            current = losses + 0.5 * lam * sum(
                (v - anchor[k]).flatten(1).square().sum(1) for k, v in phi.items()
            )
            slack = (
                16 * torch.finfo(current.dtype).eps * current.abs()
            )  # round-off near the minimum is not an increase
            accept = (objective(candidate) <= current + slack) & active
            rate = torch.where(accept | ~active, rate, rate / 2)
            keep = accept.to(x_support.dtype)
            phi = {
                k: (
                    keep.view(-1, *[1] * (v.ndim - 1)) * candidate[k]
                    + (1 - keep.view(-1, *[1] * (v.ndim - 1))) * v
                ).requires_grad_()
                for k, v in phi.items()
            }
            steps_taken += accept
    if support_loss is None:
        with torch.no_grad():
            support_loss = task_losses(model, anchor, x_support, y_support, loss_fn)
    return {k: v.detach() for k, v in phi.items()}, support_loss, steps_taken


def flatten_params(params: Params, batch_dims: int = 0) -> Tensor:
    """Concatenate a params dict into one vector per leading index.

    ``batch_dims=0``: ``(P,)``, the parameter vector ``θ`` of the book's formulas.
    ``batch_dims=1`` for task-batched params ``(T, ...)``: ``(T, P)``, one row per task.
    The order is the dict's order; `unflatten_params` inverts it.
    """
    checks.int_in_range("batch_dims", batch_dims, 0)
    shapes = [tuple(v.shape) for v in params.values()]
    if not shapes:
        raise ValueError("params must hold at least one tensor, got an empty dict")
    if min(map(len, shapes)) < batch_dims or len({s[:batch_dims] for s in shapes}) != 1:
        raise ValueError(
            f"params must each have the same first batch_dims={batch_dims} dimensions, "
            f"got shapes {shapes}"
        )
    # the size spelled out, not -1: a batch of zero tasks has no size to infer it from
    return torch.cat(
        [
            v.reshape(*s[:batch_dims], math.prod(s[batch_dims:]))
            for v, s in zip(params.values(), shapes, strict=True)
        ],
        dim=-1,
    )


def unflatten_params(vector: Tensor, like: Params) -> Params:
    """Inverse of `flatten_params`: ``vector (*batch, P)`` -> dict of
    ``(*batch, *like[k].shape)``.

    ``like`` holds *unbatched* shapes (e.g. ``θ``); the results are views of ``vector``.
    """
    total = sum(v.numel() for v in like.values())
    if vector.shape[-1:] != (total,):
        raise ValueError(
            f"vector must end in a dimension of size {total} (the number of "
            f"parameters), got shape {tuple(vector.shape)}"
        )
    out, i, batch = {}, 0, vector.shape[:-1]
    for k, v in like.items():
        out[k] = vector[..., i : i + v.numel()].reshape(*batch, *v.shape)
        i += v.numel()
    return out

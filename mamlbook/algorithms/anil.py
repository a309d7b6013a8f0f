"""ANIL, "almost no inner loop" (Raghu, Raghu, Bengio, Vinyals 2020, arXiv
1909.09157).

Split ``θ`` into a body ``θ_b`` (every layer but the last) and a head ``θ_h`` (the last,
linear layer). ANIL adapts the head only (book eq. 10.1)::

    ψ_{t,0} = θ_h,   ψ_{t,i} = ψ_{t,i−1} − α ∇_ψ L_support,t(ψ_{t,i−1}; θ_b),
    L_meta(θ) = 1/T Σ_t L_query,t(ψ_{t,k}; θ_b).

The body is shared by all tasks and never adapted: it gets only the outer gradient
(through the query loss directly, and, second order, through the features the head
was adapted on). Because the body does not change in the inner loop, its features are
computed once per task and set; the inner loop is a few steps of a linear (logistic or
least-squares) model on them, whatever the depth of the network.

The model declares where its head is: ``model.head_names`` (the weight and bias of a
final linear layer) and ``model.features_with(params, x) -> (T, N, F)``, the body
task-batched (`mamlbook.SinusoidMLP`, `mamlbook.ConvNet`); the model's output is
``features Wᵀ + b``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .. import checks
from ..functional import LossFn, Params, batch_parameters, mse_per_task, sgd_step
from ..models import task_linear
from ..tasks import TaskBatch
from .base import MetaStep, check_inputs, divergence_advice, leaf_parameters, register


def head_names(model: nn.Module) -> tuple[str, str]:
    """``(weight name, bias name)`` of ``model``'s head; TypeError naming ``model``
    if it declares none."""
    names = getattr(model, "head_names", None)
    if (
        not isinstance(names, tuple)
        or len(names) != 2
        or not callable(getattr(model, "features_with", None))
    ):
        raise TypeError(
            "model must declare its head (head_names, a (weight, bias) pair of "
            "parameter names of a final linear layer) and its body (features_with("
            "params, x)), as mamlbook.SinusoidMLP and mamlbook.ConvNet do; got "
            f"{type(model).__name__}"
        )
    own = dict(model.named_parameters())
    if (
        not all(n in own for n in names)
        or own[names[0]].ndim != 2
        or own[names[1]].ndim != 1
    ):
        raise TypeError(
            f"model.head_names {names} must name a linear layer's weight (out, in) "
            "and bias (out,)"
        )
    return names


def head_forward(head: Params, features: Tensor, names: tuple[str, str]) -> Tensor:
    """``features Wᵀ + b``: features ``(T, N, F)``, task-batched head
    ``(T, out, F)``, ``(T, out)`` -> ``(T, N, out)``."""
    return task_linear(features, head[names[0]], head[names[1]])


def adapt_head(
    model: nn.Module,
    params: Params,
    x_support: Tensor,
    y_support: Tensor,
    *,
    inner_lr: float,
    inner_steps: int,
    loss_fn: LossFn = mse_per_task,
    create_graph: bool = True,
    features: Tensor | None = None,
) -> tuple[Params, Tensor, Tensor]:
    """The ANIL inner loop (eq. 10.1): ``inner_steps`` SGD steps on the head only,
    all tasks batched.

    ``params``: task-batched ``(T, ...)``, all of the model's parameters (the body's are
    used to compute the support features, unless ``features (T, N_s, F)`` are given).
    Returns ``(adapted head {weight, bias} (T, ...), support features (T, N_s, F),
    support losses (T,) before the first step)``. With ``create_graph=False`` each
    inner gradient is a constant (first order): the head's Jacobian is the identity
    and the features get no gradient through the inner loop. Arguments are checked by
    the callers (`anil`, `mamlbook.protocol.adapted_accuracy`).
    """
    names = head_names(model)
    if features is None:
        features = model.features_with(params, x_support)
    # (a head that does not require grad, e.g. detached θ at evaluation: fresh leaves)
    head = {
        k: params[k] if params[k].requires_grad else params[k].detach().requires_grad_()
        for k in names
    }
    first = None
    for _ in range(inner_steps):
        losses = loss_fn(head_forward(head, features, names), y_support)
        if first is None:
            first = losses.detach()
        grads = torch.autograd.grad(
            losses.sum(), list(head.values()), create_graph=create_graph
        )
        head = sgd_step(head, grads, inner_lr)
    if first is None:
        with torch.no_grad():
            first = loss_fn(head_forward(head, features, names), y_support)
    return head, features, first


@register("anil")
def anil(
    model: nn.Module,
    params: Params,
    tasks: TaskBatch,
    *,
    inner_lr: float,
    inner_steps: int = 1,
    loss_fn: LossFn = mse_per_task,
    first_order: bool = False,
    on_divergence: str = "raise",
) -> MetaStep:
    """One ANIL meta-gradient over a meta-batch (eq. 10.1), all tasks batched.

    Parameters
    ----------
    model : declares ``head_names`` and ``features_with`` (see the module docstring).
    params : ``θ``, a dict shaped like the model's parameters (body and head).
    tasks : `TaskBatch` with ``T`` tasks; features ``(T, N_s, F)`` and ``(T, N_q, F)``
        (``N_s``, ``N_q``: the support and query examples, all classes).
    inner_lr : ``α > 0``, the inner SGD step size.
    inner_steps : ``k ≥ 1`` SGD steps on the head.
    first_order : ``True`` treats the inner gradients as constants (as first-order MAML,
        eq. 4.1): the head's gradient is ``Σ_t ∇_ψ L_query,t / T`` and the body's comes
        from the query features only. ``False`` (default): exact.
    loss_fn : per-task loss ``(predictions, targets) -> (T,)``.
    on_divergence : ``"raise"`` (default) or ``"keep"``, as for `maml`.

    Returns
    -------
    `MetaStep` with ``grads`` for every parameter: ``∇_θ L_meta`` (body and head).

    Example
    -------
    >>> step = anil(model, parameters_of(model), tasks, inner_lr=0.01, inner_steps=5)
    """
    loss_fn = check_inputs(
        model,
        params,
        tasks,
        inner_lr,
        inner_steps,
        loss_fn=loss_fn,
        on_divergence=on_divergence,
    )
    checks.flag("first_order", first_order)
    names = head_names(model)
    theta = leaf_parameters(params)
    batched = batch_parameters(theta, tasks.num_tasks)
    head, _, support_loss = adapt_head(
        model,
        batched,
        tasks.x_support,
        tasks.y_support,
        inner_lr=inner_lr,
        inner_steps=inner_steps,
        loss_fn=loss_fn,
        create_graph=not first_order,
    )
    query_loss = loss_fn(
        head_forward(head, model.features_with(batched, tasks.x_query), names),
        tasks.y_query,
    )
    meta_loss = query_loss.mean()
    grads = dict(zip(theta, torch.autograd.grad(meta_loss, list(theta.values()))))
    checks.finite_step(
        "anil",
        meta_loss,
        grads,
        on_divergence,
        divergence_advice(inner_lr, inner_steps),
        params=params,
    )
    return MetaStep(meta_loss.detach(), grads, support_loss, query_loss.detach())

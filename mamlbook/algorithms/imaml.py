"""Implicit MAML (Rajeswaran, Finn, Kakade, Levine 2019, arXiv 1909.04630).

Each task adapts by solving a *proximal* inner problem,

    φ_t*(θ) = argmin_φ  L_support,t(φ) + λ/2 ‖φ − θ‖²,

here by ``inner_steps`` plain gradient-descent steps from ``φ = θ`` with step size
``inner_lr`` (no graph is kept, so memory does not grow with the number of steps).
At a stationary point ``∇L_support(φ*) + λ(φ* − θ) = 0``; differentiating that identity
in ``θ`` (the implicit function theorem) gives ``dφ*/dθ = (I + ∇²L_support(φ*)/λ)⁻¹``,
whatever path the solver took. The meta-gradient of ``L_query,t(φ_t*(θ))`` is therefore

    v_t = (I + ∇²L_support,t(φ_t*)/λ)⁻¹ ∇L_query,t(φ_t*),

the *query* gradient (the source article writes D^train here; it means D^test). The
matrix is never formed: `mamlbook.solvers.conjugate_gradient` solves for ``v_t`` with
``cg_steps`` Hessian-vector products, all tasks at once (one CG system per task, with
per-task dot products). A Hessian-vector product is a double backward through the
support gradient at ``φ*``, so iMAML's memory is that of one support-gradient graph.

The formula holds at the exact minimiser; how close ``φ*`` is, and how well CG solved
its system, are reported per task in ``MetaStep.diagnostics``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .. import checks
from ..functional import (
    LossFn,
    Params,
    batch_parameters,
    detached,
    flatten_params,
    mse_per_task,
    task_losses,
    unflatten_params,
)
from ..solvers import conjugate_gradient
from ..tasks import TaskBatch
from .base import MetaStep, check_inputs, divergence_advice, leaf_parameters, register


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
    """Gradient descent on ``G(φ) = L_support(φ) + λ/2‖φ − θ‖²`` from ``φ = θ``, all
    tasks batched.

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


@register("imaml")
def imaml(
    model: nn.Module,
    params: Params,
    tasks: TaskBatch,
    *,
    inner_lr: float,
    inner_steps: int = 16,
    loss_fn: LossFn = mse_per_task,
    lam: float = 2.0,
    cg_steps: int = 5,
    cg_damping: float = 0.0,
    inner_tol: float | None = None,
    on_divergence: str = "raise",
) -> MetaStep:
    """One iMAML meta-gradient over a meta-batch, all tasks batched.

    Parameters
    ----------
    model : supplies the architecture; its own parameter values are not used.
    params : ``θ``, a dict of tensors shaped like the model's parameters.
    tasks : `TaskBatch` with ``T`` tasks.
    inner_lr : ``α > 0``, gradient-descent step on the proximal inner problem (it
        converges for ``α < 2/(λ + largest eigenvalue of ∇²L_support)``).
    inner_steps : ``≥ 1``, the most inner steps (default 16; the paper uses 16-25).
    lam : ``λ > 0``, strength of the pull back to ``θ`` (default 2.0, as in the paper).
    cg_steps : ``≥ 1`` conjugate-gradient iterations (default 5, as in the paper).
    cg_damping : ``≥ 0``; CG solves
        ``((1 + cg_damping) I + ∇²L_support/λ) v = ∇L_query``, positive definite as
        long as every eigenvalue of ``∇²L_support`` exceeds ``−λ(1 + cg_damping)`` (a
        network's Hessian can have negative ones).
    inner_tol : ``None`` (run all ``inner_steps``) or ``> 0``: a task stops once the
        norm of its proximal gradient ``∇L_support(φ) + λ(φ − θ)`` is at most this.
    on_divergence : ``"raise"`` (default): `DivergenceError` if the meta-loss or the
        meta-gradient is NaN/inf; ``"keep"``: return that step.

    Returns
    -------
    `MetaStep` with ``grads = mean_t v_t`` and ``diagnostics``: ``prox_grad_norm (T,)``,
    the proximal-gradient norm at the returned ``φ*`` (0 at the exact minimiser);
    ``inner_steps_taken (T,)``; ``cg_relative_residual (T,)``, ``‖b − A v‖/‖b‖`` of each
    task's CG system; ``cg_min_curvature (T,)``, the smallest ``pᵀAp / pᵀp`` over the
    directions CG explored: if it is ``≤ 0``, ``A = (1 + cg_damping) I + ∇²L_support/λ``
    is not positive definite for that task (the network's Hessian has an eigenvalue
    below ``−λ(1 + cg_damping)``), CG's answer is not the implicit gradient, and ``lam``
    or ``cg_damping`` should be raised.

    Example
    -------
    >>> step = imaml(
    ...     model, parameters_of(model), tasks, inner_lr=0.05, inner_steps=16, lam=2.0
    ... )
    >>> step.diagnostics["cg_relative_residual"]    # how well each system was solved
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
    lam = checks.positive_float("lam", lam)
    checks.int_in_range("cg_steps", cg_steps, 1)
    cg_damping = checks.nonnegative_float("cg_damping", cg_damping)
    if inner_tol is not None:
        checks.positive_float("inner_tol", inner_tol)
    theta = {k: v.detach() for k, v in leaf_parameters(params).items()}
    anchor = batch_parameters(theta, tasks.num_tasks)
    phi, support_loss, steps_taken = proximal_adapt(
        model,
        anchor,
        tasks.x_support,
        tasks.y_support,
        inner_lr=inner_lr,
        inner_steps=inner_steps,
        lam=lam,
        loss_fn=loss_fn,
        inner_tol=inner_tol,
    )

    phi = {k: v.requires_grad_() for k, v in phi.items()}
    leaves = list(phi.values())
    support_grads = torch.autograd.grad(
        task_losses(model, phi, tasks.x_support, tasks.y_support, loss_fn).sum(),
        leaves,
        create_graph=True,
    )  # kept: CG differentiates it again
    query_loss = task_losses(model, phi, tasks.x_query, tasks.y_query, loss_fn)
    query_grads = torch.autograd.grad(
        query_loss.sum(), leaves
    )  # row t: ∇L_query,t(φ_t*)

    min_curvature = torch.full(
        (tasks.num_tasks,),
        float("inf"),
        dtype=support_loss.dtype,
        device=support_loss.device,
    )

    def matvec(v: Tensor) -> Tensor:
        """``(T, P) -> (T, P)``: ``(1 + damping) v + ∇²L_support(φ*) v / λ`` for every
        task."""
        nonlocal min_curvature
        hv = torch.autograd.grad(
            support_grads,
            leaves,
            grad_outputs=list(unflatten_params(v, theta).values()),
            retain_graph=True,
            materialize_grads=True,
        )
        av = (1.0 + cg_damping) * v + flatten_params(
            dict(zip(phi, hv)), batch_dims=1
        ) / lam
        with (
            torch.no_grad()
        ):  # vᵀAv / vᵀv along CG's directions: ≤ 0 means A is not positive definite
            vv = (v * v).sum(1)
            quotient = torch.where(vv > 0, (v * av).sum(1) / vv, float("inf"))
            min_curvature = torch.minimum(min_curvature, quotient)
        return av

    b = flatten_params(dict(zip(phi, query_grads)), batch_dims=1)
    v, residual = conjugate_gradient(matvec, b, cg_steps)
    with torch.no_grad():
        b_norm = b.norm(dim=1)
        relative_residual = torch.where(b_norm > 0, residual.norm(dim=1) / b_norm, 0.0)
        prox = {k: g + lam * (phi[k] - anchor[k]) for k, g in zip(phi, support_grads)}
        prox_norm = flatten_params(prox, batch_dims=1).norm(dim=1)
    grads = unflatten_params(v.detach().mean(0), theta)
    checks.finite_step(
        "imaml",
        query_loss.mean(),
        grads,
        on_divergence,
        divergence_advice(inner_lr, inner_steps)
        + f"; a larger lam (now {lam}) or cg_damping "
        f"(now {cg_damping}) keeps the conjugate-gradient system positive definite",
        params=params,
    )
    diagnostics = {
        "prox_grad_norm": prox_norm,
        "inner_steps_taken": steps_taken,
        "cg_relative_residual": relative_residual,
        "cg_min_curvature": min_curvature,
    }
    return MetaStep(
        query_loss.mean().detach(),
        grads,
        support_loss,
        query_loss.detach(),
        diagnostics,
    )

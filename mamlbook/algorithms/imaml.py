"""Implicit MAML (Rajeswaran, Finn, Kakade, Levine 2019, arXiv 1909.04630).

Each task adapts by solving a *proximal* inner problem (book eq. 6.1),

    φ_t*(θ) = argmin_φ  G_t(φ; θ),   G_t(φ; θ) = L_support,t(φ) + λ/2 ‖φ − θ‖²,

here by up to ``inner_steps`` gradient-descent steps on ``G`` from ``φ = θ`` with step
size ``inner_lr``; a step that would raise a task's ``G`` is not taken and that task's
step size is halved (`mamlbook.functional.proximal_adapt`). No graph is kept, so memory
does not grow with the number of steps. At a stationary point
``∇L_support(φ*) + λ(φ* − θ) = 0`` (eq. 6.3); differentiating that identity in ``θ``
(the implicit function theorem) gives ``dφ*/dθ = (I + ∇²L_support(φ*)/λ)⁻¹`` (eq. 6.4),
whatever path the solver took. The meta-gradient of ``L_query,t(φ_t*(θ))``, the
meta-objective's term (eq. 6.2), is therefore (eq. 6.5)

    v_t = (I + ∇²L_support,t(φ_t*)/λ)⁻¹ ∇L_query,t(φ_t*),

the *query* gradient (the source article writes D^train here; it means D^test). The
matrix is never formed: `mamlbook.solvers.conjugate_gradient` solves ``A v_t = b``
(eq. 6.7) for ``v_t`` with
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
    proximal_adapt_unchecked,
    task_losses,
    unflatten_params,
)
from ..solvers import conjugate_gradient
from ..tasks import TaskBatch
from .base import MetaStep, check_inputs, divergence_advice, leaf_parameters, register

#: λ when none is given: the iMAML paper's Omniglot value.
DEFAULT_LAM = 2.0


@register("imaml")
def imaml(
    model: nn.Module,
    params: Params,
    tasks: TaskBatch,
    *,
    inner_lr: float,
    inner_steps: int = 16,
    loss_fn: LossFn = mse_per_task,
    lam: float = DEFAULT_LAM,
    cg_steps: int = 5,
    cg_damping: float = 0.0,
    inner_tol: float | None = None,
    first_order: bool = False,
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
    first_order : ``True``: no linear solve, ``v_t = ∇L_query,t(φ_t*)`` (the implicit
        gradient with the support Hessian dropped, as first-order MAML's eq. 4.1
        drops it); a measurement of how much the solve changes the direction (chapter
        08), not the paper's method. ``cg_steps`` and ``cg_damping`` are then unused.
    on_divergence : ``"raise"`` (default): `DivergenceError` if the meta-loss or the
        meta-gradient is NaN/inf; ``"keep"``: return that step.

    Returns
    -------
    `MetaStep` with ``grads = mean_t v_t`` (the gradient of eq. 6.2) and
    ``diagnostics``: ``prox_grad_norm (T,)``, the proximal-gradient norm at the returned
    ``φ*`` (0 at the exact minimiser); ``inner_steps_taken (T,)``;
    ``cg_relative_residual (T,)``, ``‖b − A v‖/‖b‖`` of each task's CG system (with
    ``first_order``: 0, and ``cg_min_curvature`` inf); ``cg_min_curvature (T,)``, the
    smallest ``pᵀAp / pᵀp`` over the directions CG explored: if it is ``≤ 0``,
    ``A = (1 + cg_damping) I + ∇²L_support/λ`` is not positive definite for that task
    (the network's Hessian has an eigenvalue below ``−λ(1 + cg_damping)``), CG's answer
    is not the implicit gradient, and ``lam`` or ``cg_damping`` should be raised.

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
    checks.flag("first_order", first_order)
    if inner_tol is not None:
        checks.positive_float("inner_tol", inner_tol)
    theta = {k: v.detach() for k, v in leaf_parameters(params).items()}
    anchor = batch_parameters(theta, tasks.num_tasks)
    phi, support_loss, steps_taken = proximal_adapt_unchecked(
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
        create_graph=not first_order,
    )  # kept (unless first_order): CG differentiates it again
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
    if first_order:
        v, residual = b, torch.zeros_like(b)
    else:
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

"""MAML (Finn, Abbeel, Levine 2017) with exact second-order meta-gradients, and FOMAML.

The meta-objective (book eq. 2.3) for a meta-batch of ``T`` tasks is

    L_meta(θ) = 1/T Σ_t L_query,t(φ_t(θ)),   φ_t = U_t^(k)(θ),

where ``U^(k)`` is ``k`` inner SGD steps on the support set (eq. 2.2). Its gradient
(eq. 3.4) is ``1/T Σ_t (I − α H_{t,0}) (I − α H_{t,1}) ··· (I − α H_{t,k−1}) ∇L_query,t(φ_t)``,
``H_{t,i} = ∇²L_support,t(φ_{t,i})`` (eq. 3.3's product, transposed: the first step on the left):
autograd computes it exactly by differentiating through the inner steps
(``create_graph=True``). First-order MAML (eq. 4.1) replaces every Jacobian factor
by ``I``: the meta-gradient becomes ``1/T Σ_t ∇L_query,t(φ_t)``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..functional import (
    LossFn,
    Params,
    batch_parameters,
    inner_loop_form,
    mse_per_task,
    sgd_steps,
)
from ..tasks import TaskBatch
from .. import checks
from .base import MetaStep, check_inputs, divergence_advice, leaf_parameters, register


@register("maml")
def maml(
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
    """One MAML meta-gradient over a meta-batch, all tasks batched.

    Parameters
    ----------
    model : supplies the architecture; its own parameter values are not used.
    params : ``θ``, a dict of tensors shaped like the model's parameters.
    tasks : `TaskBatch` with ``T`` tasks.
    inner_lr : ``α > 0``, the inner SGD step size (eq. 2.2).
    inner_steps : ``k ≥ 1``, the number of inner SGD steps.
    first_order : drop the second-order terms (FOMAML, eq. 4.1); ``True`` or ``False``.
    loss_fn : per-task loss ``(predictions, targets) -> (T,)``
        (`mamlbook.functional.LossFn`).
    on_divergence : ``"raise"`` (default): `DivergenceError` if the meta-loss or a
        gradient is NaN/inf; ``"keep"``: return that step (to show divergence).

    Returns
    -------
    `MetaStep` whose ``grads`` is ``∇_θ L_meta`` (exact, eq. 3.4, unless
    ``first_order``).

    Example
    -------
    >>> step = maml(model, parameters_of(model), tasks, inner_lr=0.01, inner_steps=1)
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
    theta = leaf_parameters(params)
    # The inner loop and the query loss run in the model's loop layout (views of the
    # same numbers; see mamlbook.functional.inner_loop_form): φ is never needed outside.
    form = inner_loop_form(model, theta)
    phi, support_loss = sgd_steps(
        form.forward,
        form.to_loop(batch_parameters(theta, tasks.num_tasks)),
        tasks.x_support,
        tasks.y_support,
        inner_lr=inner_lr,
        inner_steps=inner_steps,
        loss_fn=loss_fn,
        create_graph=not first_order,
    )
    query_loss = loss_fn(form.forward(phi, tasks.x_query), tasks.y_query)
    meta_loss = query_loss.mean()
    if first_order:
        # phi are fresh leaves: d meta_loss / d phi_t = ∇L_query,t(phi_t) / T;
        # sum over tasks.
        per_task = form.from_loop(
            dict(zip(phi, torch.autograd.grad(meta_loss, list(phi.values()))))
        )
        grads = [per_task[k].sum(0) for k in theta]
    else:
        grads = torch.autograd.grad(meta_loss, list(theta.values()))
    grads = dict(zip(theta, grads))
    checks.finite_step(
        "fomaml" if first_order else "maml",
        meta_loss,
        grads,
        on_divergence,
        divergence_advice(inner_lr, inner_steps),
        params=params,
    )
    return MetaStep(meta_loss.detach(), grads, support_loss, query_loss.detach())


register("fomaml", first_order=True)(maml)

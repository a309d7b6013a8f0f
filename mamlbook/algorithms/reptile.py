"""Reptile (Nichol, Achiam, Schulman 2018, arXiv 1803.02999).

For each task, run ``k`` plain SGD steps from ``θ`` to get ``φ_t`` (book eq. 2.2, with
nothing differentiated), then move ``θ`` towards the adapted parameters:

    θ ← θ + ε · 1/T Σ_t (φ_t − θ).

In the shared interface a method returns a direction to *descend*, so Reptile returns
``grads = θ − 1/T Σ_t φ_t``: an SGD outer step with learning rate ``ε``
(``meta_train(..., optimizer="sgd", outer_lr=ε)``) is exactly the Reptile update, and
Adam fed with this direction is the variant the paper also uses. No second
derivatives and no graph across steps: memory does not grow with ``k``.

With one inner step, ``θ − φ_t = α ∇L_t(θ)``, so Reptile is SGD on the joint training
loss; with more steps the paper shows the expected update is that gradient minus
``α`` times a term that rewards agreement between gradients within a task.

Which data the inner loop uses. By default the inner SGD runs on the support set only,
and ``meta_loss`` is the query loss after adaptation, the same held-out quantity that
MAML and iMAML report, measured the same way adaptation happens at test time (on the
support set). The paper's Reptile trains on all the data of a task; set
``inner_data="support+query"`` for that (the query loss is then no longer held out,
so do not compare it with the other methods' meta-losses).
"""

from __future__ import annotations

import torch
from torch import nn

from .. import checks
from ..functional import (
    LossFn,
    Params,
    adapt,
    batch_parameters,
    detached,
    mse_per_task,
    task_losses,
)
from ..tasks import TaskBatch
from .base import MetaStep, check_inputs, leaf_parameters, register

INNER_DATA = ("support", "support+query")


@register("reptile")
def reptile(
    model: nn.Module,
    params: Params,
    tasks: TaskBatch,
    *,
    inner_lr: float,
    inner_steps: int = 3,
    loss_fn: LossFn = mse_per_task,
    inner_data: str = "support",
) -> MetaStep:
    """One Reptile update direction over a meta-batch, all tasks batched.

    Parameters
    ----------
    model : supplies the architecture; its own parameter values are not used.
    params : ``θ``, a dict of tensors shaped like the model's parameters.
    tasks : `TaskBatch` with ``T`` tasks.
    inner_lr : ``α > 0``, the inner SGD step size.
    inner_steps : ``k ≥ 1`` (default 3, as in the source article's in-browser code).
    inner_data : ``"support"`` (default) or ``"support+query"`` (concatenated along the
        shot dimension), the data the inner SGD steps on; see the module docstring.

    Returns
    -------
    `MetaStep` with ``grads = θ − mean_t φ_t`` (descend it: ``θ ← θ − ε·grads``),
    ``meta_loss`` the mean query loss at ``φ_t``, and ``diagnostics["step_norm"]``
    ``(T,)``, the distance ``‖φ_t − θ‖`` each task moved.

    Example
    -------
    >>> step = reptile(model, parameters_of(model), tasks, inner_lr=0.01, inner_steps=5)
    >>> with torch.no_grad():
    ...     for k, p in parameters_of(model).items():
    ...         p -= 0.1 * step.grads[k]          # θ ← θ + 0.1 · mean(φ − θ)
    """
    check_inputs(params, tasks, inner_lr, inner_steps)
    checks.one_of("inner_data", inner_data, set(INNER_DATA))
    x, y = tasks.x_support, tasks.y_support
    if inner_data == "support+query":
        if tasks.y_support.shape[2:] != tasks.y_query.shape[2:]:
            raise ValueError(
                "inner_data='support+query' needs y_support and y_query with the "
                "same target shape, "
                f"got {tuple(tasks.y_support.shape[2:])} and "
                f"{tuple(tasks.y_query.shape[2:])}"
            )
        x, y = (
            torch.cat([tasks.x_support, tasks.x_query], 1),
            torch.cat([tasks.y_support, tasks.y_query], 1),
        )
    theta = {k: v.detach() for k, v in leaf_parameters(params).items()}
    phi = detached(batch_parameters(theta, tasks.num_tasks), requires_grad=True)
    phi, support_loss = adapt(
        model,
        phi,
        x,
        y,
        inner_lr=inner_lr,
        inner_steps=inner_steps,
        loss_fn=loss_fn,
        create_graph=False,
    )
    with torch.no_grad():
        batched_theta = batch_parameters(theta, tasks.num_tasks)
        if inner_data != "support":  # adapt reported the loss on support ∪ query
            support_loss = task_losses(
                model, batched_theta, tasks.x_support, tasks.y_support, loss_fn
            )
        query_loss = task_losses(model, phi, tasks.x_query, tasks.y_query, loss_fn)
        grads = {k: theta[k] - phi[k].mean(0) for k in theta}
        step_norm = (
            torch.stack(
                [(phi[k] - batched_theta[k]).flatten(1).square().sum(1) for k in theta]
            )
            .sum(0)
            .sqrt()
        )
    return MetaStep(
        query_loss.mean(), grads, support_loss, query_loss, {"step_norm": step_norm}
    )

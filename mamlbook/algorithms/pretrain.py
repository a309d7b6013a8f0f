"""The baseline MAML is compared against: one model trained on all tasks jointly.

"Pretrained" in the MAML paper (Finn et al. 2017, Appendix C) means ordinary
regression on data pooled from every task, then fine-tuning by SGD at test time. In
the shared interface it is a method with no inner loop: its loss is the mean over
tasks of the loss of ``θ`` itself, half on the support points, half on the query
points (the pooled loss when the two sets are the same size, as in the sinusoid tasks).
"""
from __future__ import annotations

import torch
from torch import nn

from ..functional import LossFn, Params, batch_parameters, mse_per_task, task_losses
from ..tasks import TaskBatch
from .. import checks
from .base import MetaStep, check_inputs, leaf_parameters, register


@register("pretrain")
def pretrain(model: nn.Module, params: Params, tasks: TaskBatch, *, inner_lr: float = 1.0, inner_steps: int = 0,
             loss_fn: LossFn = mse_per_task, on_divergence: str = "raise") -> MetaStep:
    """Gradient of the joint-training loss ``1/T Σ_t ½ (L_support,t(θ) + L_query,t(θ))``.

    Equal to the loss on support ∪ query pooled when a task's two sets are the same size;
    otherwise each set weighs half, whatever its size. ``meta_loss`` is this loss (there is
    no adaptation), ``support_loss``/``query_loss`` ``(T,)`` its two parts.

    ``inner_lr`` and ``inner_steps`` are accepted for the shared signature and unused
    (``inner_steps`` must be 0).
    """
    loss_fn = check_inputs(model, params, tasks, inner_lr, inner_steps, loss_fn=loss_fn, on_divergence=on_divergence,
                           min_steps=0)
    if inner_steps != 0:
        raise ValueError(f"inner_steps must be 0 for the pretrain method (it does not adapt), got {inner_steps}")
    theta = leaf_parameters(params)
    batched = batch_parameters(theta, tasks.num_tasks)
    support_loss = task_losses(model, batched, tasks.x_support, tasks.y_support, loss_fn)
    query_loss = task_losses(model, batched, tasks.x_query, tasks.y_query, loss_fn)
    loss = 0.5 * (support_loss.mean() + query_loss.mean())
    grads = dict(zip(theta, torch.autograd.grad(loss, list(theta.values()))))
    checks.finite_step("pretrain", loss, grads, on_divergence,
                       "Check that the params (θ) are of a sensible scale, or lower the outer learning rate that produced them",
                       params=params)
    return MetaStep(loss.detach(), grads, support_loss.detach(), query_loss.detach())

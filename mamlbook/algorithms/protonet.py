"""Prototypical Networks (Snell, Swersky, Zemel 2017, arXiv 1703.05175): a metric-based learner.

Embed every image with a network ``f_θ``; a class's *prototype* is the mean embedding of
its support images, and a query image gets the logits of negative squared Euclidean
distances to the prototypes (book eq. 10.6)::

    c_{t,n} = 1/K Σ_{j: y_j = n} f_θ(x_j),   logits_{t,q,n} = −‖f_θ(x_q) − c_{t,n}‖²,

trained with the cross-entropy of those logits on the query set. There is no inner loop:
a new task is "learned" by computing ``N`` means, so ``inner_steps`` must be 0 (as for
``"pretrain"``) and ``inner_lr`` has no effect (it is checked, like every method's, and
unused).

The embedding is the model's body, ``model.features_with`` (the network up to its head,
see `mamlbook.algorithms.anil`); the head is not part of the computation, so its
meta-gradient is zero (reported as zeros, so that every parameter gets a gradient).
For the book's `ConvNet` the body's output is the ``filters`` features after the last
conv block.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .. import checks
from ..functional import LossFn, Params, batch_parameters, cross_entropy_per_task
from ..tasks import TaskBatch
from .anil import head_names
from .base import MetaStep, check_inputs, leaf_parameters, register


def prototypes(support_features: Tensor, y_support: Tensor, ways: int) -> Tensor:
    """Class means ``(T, ways, F)`` of support features ``(T, N_s, F)`` with labels ``(T, N_s)`` in ``[0, ways)``
    (``N_s = ways · K`` support images, ``K`` per class)."""
    onehot = nn.functional.one_hot(y_support, ways).to(
        support_features.dtype
    )  # (T, N_s, ways)
    counts = onehot.sum(1)  # (T, ways)
    return onehot.transpose(1, 2) @ support_features / counts.unsqueeze(-1)


def prototype_logits(query_features: Tensor, centres: Tensor) -> Tensor:
    """``−‖f(x_q) − c_n‖²``: query features ``(T, Q, F)``, prototypes ``(T, N, F)`` -> ``(T, Q, N)``."""
    return -(query_features.unsqueeze(2) - centres.unsqueeze(1)).square().sum(-1)


def check_labels(tasks: TaskBatch) -> int:
    """The number of classes; every task's support set must hold every label ``0..N−1``."""
    y = tasks.y_support
    if y.is_floating_point() or y.ndim != 2:
        raise TypeError(
            f"tasks.y_support must hold integer class labels (T, N·K) for protonet (a classifier), got "
            f"dtype {y.dtype} and shape {tuple(y.shape)}"
        )
    if int(y.min()) < 0:
        raise ValueError(
            f"tasks.y_support must hold labels in [0, N), got {int(y.min())}"
        )
    ways = int(y.max()) + 1
    present = nn.functional.one_hot(y, ways).sum(1) > 0  # (T, ways)
    if not bool(present.all()):
        t, n = (~present).nonzero()[0].tolist()
        raise ValueError(
            f"tasks.y_support must show every class 0..{ways - 1} in every task (a prototype is a mean "
            f"of support images); task {t} has no image of class {n}"
        )
    if tasks.y_query.is_floating_point() or tasks.y_query.ndim != 2:
        raise TypeError(
            f"tasks.y_query must hold integer class labels (T, N·Q) for protonet, got dtype "
            f"{tasks.y_query.dtype} and shape {tuple(tasks.y_query.shape)}"
        )
    if int(tasks.y_query.min()) < 0 or int(tasks.y_query.max()) >= ways:
        raise ValueError(
            f"tasks.y_query must hold labels in [0, {ways - 1}] (the classes of the support set), got "
            f"labels from {int(tasks.y_query.min())} to {int(tasks.y_query.max())}"
        )
    return ways


@register("protonet")
def protonet(
    model: nn.Module,
    params: Params,
    tasks: TaskBatch,
    *,
    inner_lr: float = 1.0,
    inner_steps: int = 0,
    loss_fn: LossFn = cross_entropy_per_task,
    on_divergence: str = "raise",
) -> MetaStep:
    """One Prototypical Networks gradient over a meta-batch (eq. 10.6), all tasks batched.

    Parameters
    ----------
    model : declares ``head_names`` and ``features_with`` (the embedding is the body).
    params : ``θ``, a dict shaped like the model's parameters.
    tasks : `TaskBatch` of ``T`` ``N``-way classification tasks: ``y_support (T, N·K)``
        integer labels showing every class ``0..N−1`` in every task, ``y_query (T, N·Q)``
        in the same range.
    inner_lr : checked (``> 0``) and unused: there is no inner loop.
    inner_steps : must be 0.
    loss_fn : per-task loss of the logits ``(T, Q, N)`` and ``y_query`` (default the
        cross-entropy, as in the paper).
    on_divergence : ``"raise"`` (default) or ``"keep"``.

    Returns
    -------
    `MetaStep` with ``grads`` the gradient of the mean query loss (zeros for the head),
    ``support_loss`` the loss of the support images against their own prototypes and
    ``query_loss`` ``(T,)``.
    """
    loss_fn = check_inputs(
        model,
        params,
        tasks,
        inner_lr,
        inner_steps,
        loss_fn=loss_fn,
        on_divergence=on_divergence,
        min_steps=0,
    )
    if inner_steps != 0:
        raise ValueError(
            f"inner_steps must be 0 for the protonet method (it does not adapt: a task is learned by "
            f"averaging embeddings), got {inner_steps}"
        )
    names = head_names(model)
    ways = check_labels(tasks)
    theta = leaf_parameters(params)
    body = {k: v for k, v in theta.items() if k not in names}
    batched = batch_parameters(body, tasks.num_tasks)
    support = model.features_with(batched, tasks.x_support)
    centres = prototypes(support, tasks.y_support, ways)
    query_loss = loss_fn(
        prototype_logits(model.features_with(batched, tasks.x_query), centres),
        tasks.y_query,
    )
    with torch.no_grad():
        support_loss = loss_fn(prototype_logits(support, centres), tasks.y_support)
    meta_loss = query_loss.mean()
    grads = dict(zip(body, torch.autograd.grad(meta_loss, list(body.values()))))
    grads = {
        k: grads[k] if k in grads else torch.zeros_like(v) for k, v in theta.items()
    }
    checks.finite_step(
        "protonet",
        meta_loss,
        grads,
        on_divergence,
        "Check that the params (θ) are of a sensible scale, or lower the outer learning rate that "
        "produced them",
        params=params,
    )
    return MetaStep(meta_loss.detach(), grads, support_loss, query_loss.detach())

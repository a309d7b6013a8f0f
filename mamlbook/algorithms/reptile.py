"""Reptile (Nichol, Achiam, Schulman 2018, arXiv 1803.02999).

For each task, run ``k`` plain SGD steps from ``θ`` to get ``φ_t`` (book eq. 2.2, with
nothing differentiated), then move ``θ`` towards the adapted parameters:

    θ ← θ + ε · 1/T Σ_t (φ_t − θ)        (book eq. 5.1).

In the shared interface a method returns a direction to *descend*, so Reptile returns
``grads = θ − 1/T Σ_t φ_t`` (eq. 5.2): an SGD outer step with learning rate ``ε``
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
``inner_data="minibatches"`` splits each task's support set into ``k`` equal,
non-overlapping minibatches and takes step ``i`` on minibatch ``i``: the inner loop of
the paper's analysis (book eq. 5.4) and of its §6.2 experiment, and of its Omniglot
runs (10 drawings per class, minibatches of 10 images); for classification each
minibatch holds the same number of drawings of every class.

Which inner gradients the direction combines. Reptile's displacement is the sum of the
inner gradients, ``θ − φ_t = α (g_1 + … + g_k)`` with ``g_i`` the gradient of step
``i`` at ``φ_{i−1}``. ``gradient_weights=(w_1, …, w_k)`` returns ``α Σ_i w_i g_i``
instead (mean over tasks): Nichol et al.'s inner-gradient combinations (§6.2). All ones
is Reptile; ``(1, 0, …)`` keeps ``g_1`` only, the gradient at ``θ`` (joint training,
book eq. 5.3); ``(0, …, 0, 1)`` keeps the last one only, ``α g_k``: with minibatches,
``α`` times the first-order MAML direction (eq. 4.1) after ``k − 1`` inner steps, the
last minibatch as its query set.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .. import checks
from ..functional import (
    LossFn,
    Params,
    adapt_unchecked,
    batch_parameters,
    detached,
    inner_loop_form,
    mse_per_task,
    sgd_step,
    task_losses,
)
from ..tasks import TaskBatch
from .base import MetaStep, check_inputs, divergence_advice, leaf_parameters, register

INNER_DATA = ("support", "support+query", "minibatches")


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
    gradient_weights: Sequence[float] | None = None,
    on_divergence: str = "raise",
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
        shot dimension), the data the inner SGD steps on; or ``"minibatches"``: step
        ``i`` on the ``i``-th of ``k`` equal parts of the support set (the number of
        support shots, per class for classification, must be a multiple of ``k``;
        a classification minibatch holds every class). See the module docstring.
    gradient_weights : ``None`` (default, Reptile) or ``k`` finite numbers ``w_i``:
        return ``α Σ_i w_i g_i`` (mean over tasks), ``g_i`` the inner gradient of step
        ``i`` (Nichol et al. §6.2; all ones is Reptile).
    on_divergence : ``"raise"`` (default): `DivergenceError` if the meta-loss or the
        direction is NaN/inf; ``"keep"``: return that step.

    Returns
    -------
    `MetaStep` with ``grads = θ − mean_t φ_t`` (descend it: ``θ ← θ − ε·grads``),
    ``meta_loss`` the mean query loss at ``φ_t``, and ``diagnostics["step_norm"]``
    ``(T,)``, the distance ``‖φ_t − θ‖`` each task moved. With ``gradient_weights``,
    ``grads = α · mean_t Σ_i w_i g_{t,i}``.

    Example
    -------
    >>> step = reptile(model, parameters_of(model), tasks, inner_lr=0.01, inner_steps=5)
    >>> with torch.no_grad():
    ...     for k, p in parameters_of(model).items():
    ...         p -= 0.1 * step.grads[k]          # θ ← θ + 0.1 · mean(φ − θ)
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
    if not isinstance(inner_data, str):
        raise ValueError(
            f"inner_data must be one of {list(INNER_DATA)}, got {inner_data!r}"
        )
    checks.one_of("inner_data", inner_data, set(INNER_DATA))
    x, y = tasks.x_support, tasks.y_support
    if inner_data == "support+query":
        if tasks.y_support.shape[2:] != tasks.y_query.shape[2:]:
            raise ValueError(
                "inner_data='support+query' needs y_support and y_query with the same "
                f"target shape, got {tuple(tasks.y_support.shape[2:])} and "
                f"{tuple(tasks.y_query.shape[2:])}"
            )
        x, y = (
            torch.cat([tasks.x_support, tasks.x_query], 1),
            torch.cat([tasks.y_support, tasks.y_query], 1),
        )
        loss_fn = checks.per_task_loss(
            loss_fn,
            **{
                "tasks.y_support": tasks.y_support,
                "tasks.y_query": tasks.y_query,
                "tasks.y_support + tasks.y_query": y,
            },
        )
    weights = _gradient_weights(gradient_weights, inner_steps)
    theta = {k: v.detach() for k, v in leaf_parameters(params).items()}
    phi = detached(batch_parameters(theta, tasks.num_tasks), requires_grad=True)
    if inner_data == "minibatches":
        batches = _minibatches(tasks, inner_steps)
        loss_fn = checks.per_task_loss(
            loss_fn,
            **{
                f"minibatch {i + 1} of tasks.y_support": yb
                for i, (_, yb) in enumerate(batches)
            },
            **{"tasks.y_support": tasks.y_support, "tasks.y_query": tasks.y_query},
        )
    else:
        batches = [(x, y)] * inner_steps
    if weights is None and inner_data != "minibatches":
        phi, support_loss = adapt_unchecked(
            model,
            phi,
            x,
            y,
            inner_lr=inner_lr,
            inner_steps=inner_steps,
            loss_fn=loss_fn,
            create_graph=False,
        )
    else:  # step by step, keeping the inner gradients (eq. 5.4)
        phi, combination = _sgd_combining(
            model, phi, batches, inner_lr, loss_fn, weights
        )
    with torch.no_grad():
        batched_theta = batch_parameters(theta, tasks.num_tasks)
        if inner_data != "support" or weights is not None:
            # the loss before adaptation on the whole support set
            support_loss = task_losses(
                model, batched_theta, tasks.x_support, tasks.y_support, loss_fn
            )
        query_loss = task_losses(model, phi, tasks.x_query, tasks.y_query, loss_fn)
        if weights is None:
            grads = {k: theta[k] - phi[k].mean(0) for k in theta}
        else:
            grads = {k: inner_lr * v.mean(0) for k, v in combination.items()}
        step_norm = (
            torch.stack(
                [(phi[k] - batched_theta[k]).flatten(1).square().sum(1) for k in theta]
            )
            .sum(0)
            .sqrt()
        )
    meta_loss = query_loss.mean()
    checks.finite_step(
        "reptile",
        meta_loss,
        grads,
        on_divergence,
        divergence_advice(inner_lr, inner_steps),
        params=params,
    )
    return MetaStep(
        meta_loss, grads, support_loss, query_loss, {"step_norm": step_norm}
    )


def _gradient_weights(gradient_weights, inner_steps: int) -> list[float] | None:
    if gradient_weights is None:
        return None
    if isinstance(gradient_weights, (str, bytes)) or not isinstance(
        gradient_weights, Sequence
    ):
        raise TypeError(
            "gradient_weights must be None or a sequence of inner_steps numbers, got "
            f"{type(gradient_weights).__name__}"
        )
    if len(gradient_weights) != inner_steps:
        raise ValueError(
            f"gradient_weights must hold one weight per inner step ({inner_steps}), "
            f"got {len(gradient_weights)}: {list(gradient_weights)!r}"
        )
    weights = []
    for i, w in enumerate(gradient_weights):
        if isinstance(w, bool) or not isinstance(w, (int, float)):
            raise TypeError(
                f"gradient_weights[{i}] must be a number, got {type(w).__name__}"
            )
        if not torch.isfinite(torch.tensor(float(w))):
            raise ValueError(f"gradient_weights[{i}] must be finite, got {w!r}")
        weights.append(float(w))
    return weights


def _minibatches(tasks: TaskBatch, k: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The support set cut into ``k`` equal, non-overlapping minibatches.

    Regression (floating-point targets): ``k`` consecutive parts. Classification
    (integer labels): every minibatch holds ``K/k`` examples of every class (the next
    ones of each class, in their order), as the paper's minibatches of a shuffled
    task do on average; consecutive parts of a support set laid out class by class
    would give each step one class only.
    """
    shots = tasks.x_support.shape[1]
    if tasks.y_support.is_floating_point():
        if shots % k:
            raise ValueError(
                f"inner_data='minibatches' needs a number of support shots divisible by "
                f"inner_steps = {k}, got {shots} support shots"
            )
        return list(
            zip(tasks.x_support.split(shots // k, 1), tasks.y_support.split(shots // k, 1))
        )
    # each task's examples grouped by class, in their order: (T, N, K)
    order = tasks.y_support.argsort(dim=1, stable=True)
    counts = torch.nn.functional.one_hot(tasks.y_support, int(tasks.y_support.max()) + 1).sum(1)
    per_class = int(counts[0, 0])
    if not bool((counts == per_class).all()):
        raise ValueError(
            "inner_data='minibatches' on classification tasks needs the same number of "
            f"support examples of every class, got counts {counts.tolist()}"
        )
    if per_class % k:
        raise ValueError(
            f"inner_data='minibatches' needs a number of support shots per class divisible "
            f"by inner_steps = {k}, got {per_class} per class"
        )
    t, ways = counts.shape
    rows = torch.arange(t, device=order.device).unsqueeze(1)  # (T, 1)
    batches = []
    for part in order.view(t, ways, per_class).split(per_class // k, 2):
        index = part.reshape(t, -1)  # (T, N·K/k), class by class
        batches.append((tasks.x_support[rows, index], tasks.y_support[rows, index]))
    return batches


def _sgd_combining(model, phi, batches, inner_lr, loss_fn, weights):
    """SGD with step ``i`` on ``batches[i]`` (eq. 5.4); returns ``φ_k`` and, per task,
    ``Σ_i w_i g_i`` (``None`` without weights)."""
    form = inner_loop_form(model, phi)  # the layout `adapt` runs in (same numbers)
    phi, combination = form.to_loop(phi), None
    for i, (xb, yb) in enumerate(batches):
        losses = loss_fn(form.forward(phi, xb), yb)
        grads = torch.autograd.grad(losses.sum(), list(phi.values()))
        with torch.no_grad():
            if weights is not None:
                if combination is None:
                    combination = {k: torch.zeros_like(v) for k, v in phi.items()}
                for c, g in zip(combination.values(), grads):
                    c.add_(g, alpha=weights[i])
            phi = sgd_step(phi, grads, inner_lr)
        phi = {k: v.requires_grad_() for k, v in phi.items()}
    phi = {k: v.detach().requires_grad_() for k, v in form.from_loop(phi).items()}
    if combination is not None:
        combination = form.from_loop(combination)
    return phi, combination

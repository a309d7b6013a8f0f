"""Evaluation: how well do parameters adapt to new tasks in 0..N SGD steps?"""
from __future__ import annotations


import torch
from torch import Tensor, nn

from . import checks
from .functional import (LossFn, Params, adapt_unchecked, batch_parameters, detached, mse_per_task,
                         proximal_adapt_unchecked, task_forward, task_losses)
from .tasks import TaskBatch


@checks.with_gradients  # test-time adaptation takes gradients, even under no_grad
def adaptation_curve(model: nn.Module, params: Params, tasks: TaskBatch, *, inner_lr: float, max_steps: int,
                     loss_fn: LossFn = mse_per_task, on_divergence: str = "raise") -> Tensor:
    """Query loss of every task after 0, 1, ..., ``max_steps`` SGD steps on its support set.

    Returns a ``(T, max_steps + 1)`` tensor; column ``i`` is the loss after ``i`` steps
    of book eq. (2.2) with step size ``inner_lr``. Test-time adaptation is plain SGD
    (first order: nothing is differentiated through it); θ meta-trained by iMAML is
    adapted by its proximal problem instead (`proximal_adaptation_curve`; plain SGD from
    it can diverge).

    If some task's loss becomes NaN/inf (SGD diverged on it), ``on_divergence="raise"``
    (default) raises `DivergenceError` saying how many tasks diverged; ``"keep"``
    returns the curve with those non-finite entries so they can be inspected.
    """
    checks.int_in_range("max_steps", max_steps, 0)
    checks.on_divergence(on_divergence)
    loss_fn = _check_evaluation_inputs(model, params, tasks, loss_fn, inner_lr)
    phi = detached(batch_parameters(params, tasks.num_tasks), requires_grad=True)
    curve = []
    for step in range(max_steps + 1):
        with torch.no_grad():
            curve.append(task_losses(model, phi, tasks.x_query, tasks.y_query, loss_fn))
        if step < max_steps:
            phi, _ = adapt_unchecked(model, phi, tasks.x_support, tasks.y_support, inner_lr=inner_lr, inner_steps=1,
                                     loss_fn=loss_fn, create_graph=False)
    curve = torch.stack(curve, dim=1)
    diverged = ~torch.isfinite(curve).all(dim=1)
    if on_divergence == "raise" and bool(diverged.any()):
        first = int((~torch.isfinite(curve[diverged])).float().argmax(dim=1).min())
        raise checks.DivergenceError(
            f"test-time SGD diverged on {int(diverged.sum())} of {tasks.num_tasks} tasks (loss not finite from step "
            f"{first} on) with inner_lr={inner_lr}. Use a smaller inner_lr or fewer max_steps, or pass "
            f"on_divergence='keep' to inspect those tasks.")
    return curve


def _check_evaluation_inputs(model: nn.Module, params: Params, tasks: TaskBatch, loss_fn, inner_lr: float):
    """The checks of the methods' entry (`mamlbook.algorithms.base.check_inputs`), once per evaluation call
    (``inner_lr`` among them, within the range of the tasks' dtype)."""
    from .algorithms.base import check_inputs  # evaluation sits above the algorithms

    return check_inputs(model, params, tasks, inner_lr, 0, loss_fn=loss_fn, min_steps=0, finite_now=True)


@checks.with_gradients
def proximal_adaptation_curve(model: nn.Module, params: Params, tasks: TaskBatch, *, inner_lr: float,
                              max_steps: int, lam: float, loss_fn: LossFn = mse_per_task) -> Tensor:
    """Like `adaptation_curve`, but adapting as iMAML does: its proximal inner solver.

    Column ``i`` is the query loss after ``i`` steps of
    `mamlbook.functional.proximal_adapt` on ``L_support(φ) + λ/2‖φ − θ‖²``
    (book eq. 6.1) from ``φ = θ``. Returns ``(T, max_steps + 1)``.
    """
    checks.int_in_range("max_steps", max_steps, 0)
    checks.positive_float("lam", lam)
    loss_fn = _check_evaluation_inputs(model, params, tasks, loss_fn, inner_lr)
    anchor = batch_parameters({k: v.detach() for k, v in params.items()}, tasks.num_tasks)
    curve = []
    for steps in range(max_steps + 1):
        phi = anchor if steps == 0 else proximal_adapt_unchecked(model, anchor, tasks.x_support, tasks.y_support,
                                                       inner_lr=inner_lr, inner_steps=steps, lam=lam,
                                                       loss_fn=loss_fn)[0]
        with torch.no_grad():
            curve.append(task_losses(model, phi, tasks.x_query, tasks.y_query, loss_fn))
    return torch.stack(curve, dim=1)


@checks.with_gradients
def adapted_predictions(model: nn.Module, params: Params, tasks: TaskBatch, x: Tensor, *, inner_lr: float,
                        steps: list[int], loss_fn: LossFn = mse_per_task,
                        on_divergence: str = "raise") -> dict[int, Tensor]:
    """The model's outputs on ``x (T, N, *input shape)`` after each number of SGD steps in ``steps``, adapting
    on the tasks' support sets with ``loss_fn`` (for plots; `mamlbook.cross_entropy_per_task` for class labels,
    and the outputs are then logits ``(T, N, ways)``). Returns ``{steps: outputs (T, N, ...)}`` for each number of
    steps asked for.

    If some task's predictions become NaN/inf (SGD diverged on it), ``on_divergence="raise"``
    (default) raises `DivergenceError` saying how many tasks and after how many steps;
    ``"keep"`` returns them as they are, as `adaptation_curve` does.
    """
    checks.on_divergence(on_divergence)
    if not isinstance(steps, (list, tuple)) or not all(isinstance(s, int) and not isinstance(s, bool) for s in steps):
        raise TypeError(f"steps must be a non-empty list of ints in [0, inf), got {steps!r}")
    wanted = sorted(set(steps))
    if not wanted or wanted[0] < 0:
        raise ValueError(f"steps must be a non-empty list of ints in [0, inf), got {steps!r}")
    loss_fn = _check_evaluation_inputs(model, params, tasks, loss_fn, inner_lr)
    checks.inputs("x", x, model, num_tasks=tasks.num_tasks)
    phi = detached(batch_parameters(params, tasks.num_tasks), requires_grad=True)
    out, done = {}, 0
    for target in wanted:
        if target > done:
            phi, _ = adapt_unchecked(model, phi, tasks.x_support, tasks.y_support, inner_lr=inner_lr,
                                     inner_steps=target - done, loss_fn=loss_fn, create_graph=False)
            done = target
        with torch.no_grad():
            out[target] = task_forward(model, phi, x)
        diverged = ~torch.isfinite(out[target].flatten(1)).all(dim=1)
        if on_divergence == "raise" and bool(diverged.any()):
            raise checks.DivergenceError(
                f"test-time SGD diverged on {int(diverged.sum())} of {tasks.num_tasks} tasks: their predictions "
                f"are NaN/inf after {target} steps with inner_lr={inner_lr}. Use a smaller inner_lr (pass "
                "on_divergence='keep' to get the non-finite predictions back instead)")
    return out

"""MAML++ (Antoniou, Edwards, Storkey 2019, "How to train your MAML", arXiv 1810.09502): the pieces
that fit this package.

Three of the paper's changes to MAML are here:

* **Learned per-layer per-step step sizes** (LSLR): step ``i`` updates parameter
  tensor ``l`` with its own learned rate ``α · s_{l,i}`` (book eq. 10.4)::

      φ_{t,i}^l = φ_{t,i−1}^l − α s_{l,i} ∇_l L_support,t(φ_{t,i−1}).

  Meta-SGD (eq. 10.2) learns one rate per *scalar* shared by all steps; LSLR one per
  *tensor* and per step: ``k`` numbers per tensor instead of one per weight. As in
  `mamlbook.algorithms.meta_sgd`, ``α = inner_lr`` is a fixed scale and ``s`` is
  learned (initialised to 1), held by a wrapper module, `LSLRNet`.
* **The multi-step loss** (eq. 10.5): the meta-objective is a weighted sum of the query
  losses after *every* inner step, ``Σ_i w_i · 1/T Σ_t L_query,t(φ_{t,i})``, so early
  in training every step gets a gradient signal directly; the weights are annealed
  towards the last step (`multi_step_weights`, the paper's schedule).
* **Derivative-order annealing**: first-order meta-gradients (eq. 4.1) for the first
  iterations, exact second-order ones after (``first_order``, scheduled by
  `MAMLPlusPlusSchedule`).

Left out. *Per-step batch-norm statistics*: the book's `ConvNet` keeps no running
statistics at all (it normalises every support or query set with its own statistics,
see `mamlbook.models.convnet`), so there is nothing to keep per step. *Per-step batch-norm
weights and biases*: they would need a network whose parameters have a step index,
a second layout of `ConvNet`; not done. *Cosine annealing of the outer learning rate*:
an optimiser schedule, not a change to the meta-gradient (`meta_train` offers a
piecewise-constant one, `TrainingSettings.lr_schedule`, not a cosine).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn

from .. import checks
from ..functional import LossFn, Params, batch_parameters, mse_per_task, task_forward
from ..tasks import TaskBatch
from .base import (
    MetaStep,
    check_inputs,
    divergence_advice,
    get_method,
    leaf_parameters,
    register,
)
from .meta_sgd import StepSizeNet, check_step_size_model, scaled_sgd_steps


class LSLRNet(StepSizeNet):
    """``net`` plus learned step sizes per parameter tensor and per inner step (eq. 10.4).

    ``steps`` is the number of inner steps the model is trained with: every parameter
    tensor gets ``steps`` rates (``step_size.<name>``, the name with ``_`` for ``.``, e.g.
    ``step_size.head_weight``, of shape ``(steps,)``), all
    initialised to ``init``.
    """

    def __init__(self, net: nn.Module, steps: int, init: float = 1.0):
        self.steps = checks.positive_int("steps", steps)
        super().__init__(net, init)

    def step_size_shape(self, p: Tensor) -> tuple[int, ...]:
        return (self.steps,)

    @property
    def architecture(self) -> str:
        inner = getattr(self.net, "architecture", type(self.net).__name__)
        return f"LSLRNet({inner}, steps={self.steps})"


def multi_step_weights(
    iteration: int, inner_steps: int, anneal_iterations: int
) -> tuple[float, ...]:
    """The weights ``w_1..w_k`` of the multi-step loss at ``iteration`` (eq. 10.5; Antoniou et al.'s schedule).

    At iteration 0 every step weighs ``1/k``; each non-final weight then decreases
    linearly by ``1/(k · anneal_iterations)`` per iteration down to ``0.03/k``, and the
    final weight grows by as much as they lose, up to ``1 − 0.03(k−1)/k``. (The paper
    counts epochs; here iterations.) The weights always sum to 1.
    """
    checks.int_in_range("iteration", iteration, 0)
    checks.positive_int("inner_steps", inner_steps)
    checks.positive_int("anneal_iterations", anneal_iterations)
    k = inner_steps
    decay = 1.0 / k / anneal_iterations
    floor = 0.03 / k
    weights = [max(1.0 / k - iteration * decay, floor) for _ in range(k - 1)]
    weights.append(min(1.0 / k + iteration * (k - 1) * decay, 1.0 - (k - 1) * floor))
    return tuple(weights)


def _check_step_weights(step_weights, inner_steps: int) -> tuple[float, ...]:
    if step_weights is None:
        return (0.0,) * (inner_steps - 1) + (1.0,)
    if not isinstance(step_weights, (tuple, list)) or len(step_weights) != inner_steps:
        raise ValueError(
            f"step_weights must be None (the last step only) or a sequence of inner_steps = {inner_steps} "
            f"weights, got {step_weights!r}"
        )
    out = []
    for i, w in enumerate(step_weights):
        out.append(checks.nonnegative_float(f"step_weights[{i}]", w))
    if not math.isclose(sum(out), 1.0, rel_tol=0, abs_tol=1e-6):
        raise ValueError(
            f"step_weights must sum to 1 (a weighted mean of the steps' query losses), got {out} "
            f"(sum {sum(out)})"
        )
    return tuple(out)


@register("mamlpp")
def mamlpp(
    model: nn.Module,
    params: Params,
    tasks: TaskBatch,
    *,
    inner_lr: float,
    inner_steps: int,
    loss_fn: LossFn = mse_per_task,
    step_weights: Sequence[float] | None = None,
    first_order: bool = False,
    on_divergence: str = "raise",
) -> MetaStep:
    """One MAML++ meta-gradient (eqs. 10.4, 10.5): learned per-layer per-step rates, multi-step loss.

    Parameters
    ----------
    model : an `LSLRNet` built for ``inner_steps`` steps.
    params : the model's parameters as a dict: ``net.*`` (``θ``) and ``step_size.*``
        (``s``, ``(k,)`` per tensor).
    tasks : `TaskBatch` with ``T`` tasks.
    inner_lr : ``α > 0``, the scale of the learned rates (step ``i`` of tensor ``l`` is
        ``α·s_{l,i}``).
    inner_steps : ``k``, must equal ``model.steps``.
    step_weights : ``None`` (default: the last step's query loss only, as MAML) or ``k``
        weights ``≥ 0`` summing to 1 (`multi_step_weights` gives the paper's schedule).
    first_order : ``True``: inner gradients are constants (derivative-order annealing
        uses it early in training). Default ``False``: exact.
    loss_fn, on_divergence : as for `maml`.

    Returns
    -------
    `MetaStep`: ``grads`` the gradient of the weighted objective for ``θ`` and ``s``;
    ``meta_loss`` and ``query_loss`` after the *last* step (comparable with the other
    methods); ``diagnostics["objective"]`` the weighted objective that was
    differentiated and ``diagnostics["query_loss_per_step"]`` ``(k, T)``.
    """
    check_step_size_model(model, LSLRNet)
    loss_fn = check_inputs(
        model,
        params,
        tasks,
        inner_lr,
        inner_steps,
        loss_fn=loss_fn,
        on_divergence=on_divergence,
    )
    if inner_steps != model.steps:
        raise ValueError(
            f"inner_steps must equal the number of steps the LSLRNet has step sizes for "
            f"(model.steps = {model.steps}), got {inner_steps}"
        )
    weights = _check_step_weights(step_weights, inner_steps)
    checks.flag("first_order", first_order)
    leaves = leaf_parameters(params)
    theta, sizes = model.split(leaves)
    t = tasks.num_tasks
    rates = [
        {k: s[i].expand(t, *[1] * theta[k].ndim) for k, s in sizes.items()}
        for i in range(inner_steps)
    ]
    trajectory, support_loss = scaled_sgd_steps(
        lambda p, x: task_forward(model.net, p, x),
        batch_parameters(theta, t),
        rates,
        tasks.x_support,
        tasks.y_support,
        inner_lr=inner_lr,
        loss_fn=loss_fn,
        first_order=first_order,
    )
    per_step = [
        loss_fn(task_forward(model.net, phi, tasks.x_query), tasks.y_query)
        if w > 0 or i == inner_steps - 1
        else None
        for i, (phi, w) in enumerate(zip(trajectory, weights))
    ]
    objective = sum(w * q.mean() for w, q in zip(weights, per_step) if w > 0)
    grads = dict(zip(leaves, torch.autograd.grad(objective, list(leaves.values()))))
    query_loss = per_step[-1].detach()
    checks.finite_step(
        "mamlpp",
        objective,
        grads,
        on_divergence,
        divergence_advice(inner_lr, inner_steps)
        + "; or smaller step sizes (step_size.*)",
        params=params,
    )
    nan = torch.full_like(query_loss, float("nan"))
    diagnostics = {
        "objective": objective.detach(),
        "query_loss_per_step": torch.stack(
            [q.detach() if q is not None else nan for q in per_step]
        ),
    }
    return MetaStep(query_loss.mean(), grads, support_loss, query_loss, diagnostics)


class MAMLPlusPlusSchedule:
    """A ``step_fn`` for `mamlbook.meta_train` that schedules MAML++'s options by iteration.

    Call ``n`` (counting from 0) runs `mamlpp` with ``step_weights =
    multi_step_weights(n, k, anneal_iterations)`` (or the last step only if
    ``anneal_iterations`` is None) and ``first_order = n < first_order_iterations``
    (derivative-order annealing). It keeps its call count: use one schedule per run.

    >>> schedule = MAMLPlusPlusSchedule(
    ...     anneal_iterations=500, first_order_iterations=200)
    >>> meta_train(LSLRNet(net, steps=5), family, method="mamlpp", inner_steps=5,
    ...            step_fn=schedule, ...)
    """

    def __init__(
        self, anneal_iterations: int | None = None, first_order_iterations: int = 0
    ):
        if anneal_iterations is not None:
            checks.positive_int("anneal_iterations", anneal_iterations)
        checks.int_in_range("first_order_iterations", first_order_iterations, 0)
        self.anneal_iterations = anneal_iterations
        self.first_order_iterations = first_order_iterations
        self.iteration = 0

    def options(self, iteration: int, inner_steps: int) -> dict:
        """The scheduled ``step_weights`` and ``first_order`` at ``iteration``."""
        weights = (
            None
            if self.anneal_iterations is None
            else multi_step_weights(iteration, inner_steps, self.anneal_iterations)
        )
        return {
            "step_weights": weights,
            "first_order": iteration < self.first_order_iterations,
        }

    def __call__(
        self, model, params, tasks, *, inner_lr, inner_steps, **options
    ) -> MetaStep:
        fixed = sorted(set(options) & {"step_weights", "first_order"})
        if fixed:
            raise TypeError(
                f"MAMLPlusPlusSchedule sets {', '.join(fixed)} itself; do not pass them"
            )
        step = get_method("mamlpp")(
            model,
            params,
            tasks,
            inner_lr=inner_lr,
            inner_steps=inner_steps,
            **self.options(self.iteration, inner_steps),
            **options,
        )
        self.iteration += 1
        return step

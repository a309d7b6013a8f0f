"""Taylor expansions of the methods' updates in the inner step size ``α`` (Reptile
chapter), and the smooth network they need.

* `with_activation`: the same network and weights with a smooth activation in place of
  ReLU. A Taylor expansion in the step size needs a loss that is twice differentiable
  along the inner path; a ReLU network's loss is only piecewise smooth.
* `sgd_on_batches`, `reptile_expansion`: the inner loop of the Reptile paper's analysis
  (one SGD step per minibatch, eq. 5.4) and the expansion of its update to first order
  in ``α`` (Reptile chapter, eqs. 5.5-5.7).
* `first_order_expansions`: the same expansion for MAML's and first-order MAML's
  meta-gradients (Reptile chapter, eq. 5.10).

Nothing here is needed to *train* a model: these functions check the chapter's
formulas against the methods in `mamlbook.algorithms`. The gradients and
Hessian-vector products come from `mamlbook.hessian.gradient_and_hvps` (one double
backward per minibatch, all tasks at once).

Shapes follow `mamlbook.functional`: ``params`` is an unbatched dict ``θ``; data are
task-batched ``(T, N, ...)``; vectors are flat, in the order of
`mamlbook.functional.flatten_params`. The expansions return ``(P,)`` vectors averaged
over the ``T`` tasks.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from . import checks
from .functional import LossFn, Params, adapt, batch_parameters, detached, mse_per_task
from .hessian import gradient_and_hvps
from .tasks import TaskBatch

Batch = tuple[
    Tensor, Tensor
]  # (x (T, N, ...), y (T, N, ...)): one minibatch of every task


def with_activation(
    model: nn.Module, activation: Callable[[], nn.Module] = nn.Tanh
) -> nn.Module:
    """A deep copy of ``model`` with every ``nn.ReLU`` submodule replaced by ``activation()``.

    Parameters (names, shapes, values) are copied unchanged, so a params dict of
    ``model`` works with the copy. Raises ``ValueError`` if ``model`` has no ReLU.
    """
    smooth = copy.deepcopy(model)
    replaced = 0

    def swap(module: nn.Module) -> None:
        nonlocal replaced
        for name, child in module.named_children():
            if isinstance(child, nn.ReLU):
                setattr(module, name, activation())
                replaced += 1
            else:
                swap(child)

    swap(smooth)
    if replaced == 0:
        raise ValueError(
            f"model has no nn.ReLU submodule to replace ({type(model).__name__})"
        )
    return smooth


def _check_batches(batches: Sequence[Batch]) -> list[Batch]:
    batches = list(batches)
    if not batches:
        raise ValueError(
            "batches must be a non-empty sequence of (x, y) pairs, one per inner step"
        )
    for i, pair in enumerate(batches):
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise TypeError(
                f"batches[{i}] must be an (x, y) pair of task-batched tensors"
            )
        x, y = pair
        checks.tensor(f"batches[{i}][0]", x)
        checks.tensor(f"batches[{i}][1]", y)
        if x.ndim < 2 or x.shape[:2] != y.shape[:2]:
            raise ValueError(
                f"batches[{i}]: x and y must be (T, N, ...) with the same T and N, "
                f"got {tuple(x.shape)} and {tuple(y.shape)}"
            )
        if x.shape[0] != batches[0][0].shape[0]:
            raise ValueError(
                f"batches[{i}] has {x.shape[0]} tasks but batches[0] has {batches[0][0].shape[0]}"
            )
    return batches


def sgd_on_batches(
    model: nn.Module,
    params: Params,
    batches: Sequence[Batch],
    *,
    inner_lr: float,
    loss_fn: LossFn = mse_per_task,
) -> Params:
    """``k`` SGD steps from ``θ``, step ``i`` on minibatch ``i``: ``φ_i = φ_{i−1} − α ∇L_i(φ_{i−1})``.

    The inner loop of the Reptile paper's analysis (Reptile chapter, eq. 5.4), in which the
    minibatches ``L_1, ..., L_k`` of a task may differ. With the same batch every step it
    is `mamlbook.adapt` (book eq. 2.2). Returns the task-batched ``φ_k`` ``(T, ...)``, detached.
    """
    checks.positive_float("inner_lr", inner_lr)
    batches = _check_batches(batches)
    phi = detached(batch_parameters(params, batches[0][0].shape[0]), requires_grad=True)
    for x, y in batches:
        phi, _ = adapt(
            model,
            phi,
            x,
            y,
            inner_lr=inner_lr,
            inner_steps=1,
            loss_fn=loss_fn,
            create_graph=False,
        )
    return {k: v.detach() for k, v in phi.items()}


class ReptileExpansion(NamedTuple):
    """Terms of Reptile chapter eq. (5.7), averaged over tasks (each a flat ``(P,)`` vector)."""

    gradient_sum: Tensor  # Σ_i ∇L_i(θ)
    inner_sum: Tensor  # Σ_{i>j} ∇²L_i(θ) ∇L_j(θ)
    prediction: Tensor  # gradient_sum − α · inner_sum ≈ (θ − φ_k)/α, error O(α²)


def reptile_expansion(
    model: nn.Module,
    params: Params,
    batches: Sequence[Batch],
    *,
    inner_lr: float,
    loss_fn: LossFn = mse_per_task,
) -> ReptileExpansion:
    """The first-order-in-``α`` expansion of the Reptile gradient ``(θ − φ_k)/α`` (eq. 5.7).

    With ``ḡ_i = ∇L_i(θ)`` and ``H̄_i = ∇²L_i(θ)`` at the *initial* point,

        (θ − φ_k)/α = Σ_i ḡ_i − α Σ_{i=1..k} H̄_i Σ_{j<i} ḡ_j + O(α²),

    where ``φ_k`` is `sgd_on_batches` on the same ``batches``. For the package's Reptile
    (`mamlbook.get_method("reptile")`, the support set at every step) pass
    ``[(x_support, y_support)] * k``; then the prediction is ``k ḡ − α k(k−1)/2 H̄ ḡ``.
    Costs one gradient and one Hessian-vector product per batch (double backward).
    """
    checks.positive_float("inner_lr", inner_lr)
    batches = _check_batches(batches)
    theta = {k: v.detach() for k, v in params.items()}
    gradient_sum = inner_sum = None
    for x, y in batches:
        if gradient_sum is None:  # i = 1: nothing before it
            g, _ = gradient_and_hvps(model, theta, x, y, [], loss_fn=loss_fn)
            inner_sum = torch.zeros_like(g)
            gradient_sum = g
        else:
            g, (hv,) = gradient_and_hvps(
                model, theta, x, y, [gradient_sum], loss_fn=loss_fn
            )  # H̄_i Σ_{j<i} ḡ_j
            inner_sum = inner_sum + hv
            gradient_sum = gradient_sum + g
    gradient_sum, inner_sum = gradient_sum.mean(0), inner_sum.mean(0)
    return ReptileExpansion(
        gradient_sum, inner_sum, gradient_sum - inner_lr * inner_sum
    )


class FirstOrderExpansions(NamedTuple):
    """Terms and predictions of Reptile chapter eq. (5.10), averaged over tasks (flat ``(P,)``)."""

    grad_support: Tensor  # ḡ_s = ∇L_support(θ)
    grad_query: Tensor  # ḡ_q = ∇L_query(θ)
    hess_query_grad_support: Tensor  # H̄_q ḡ_s
    hess_support_grad_query: Tensor  # H̄_s ḡ_q
    hess_support_grad_support: Tensor  # H̄_s ḡ_s
    fomaml: Tensor  # ḡ_q − αk H̄_q ḡ_s
    maml: Tensor  # ḡ_q − αk (H̄_q ḡ_s + H̄_s ḡ_q)
    reptile: Tensor  # k ḡ_s − α k(k−1)/2 H̄_s ḡ_s  (of (θ − mean φ)/α)


def first_order_expansions(
    model: nn.Module,
    params: Params,
    tasks: TaskBatch,
    *,
    inner_lr: float,
    inner_steps: int,
    loss_fn: LossFn = mse_per_task,
) -> FirstOrderExpansions:
    """Each method's meta-gradient expanded to first order in ``α`` at ``θ`` (eq. 5.10).

    ``k`` inner steps on the support set: ``φ_k = θ − αk ḡ_s + O(α²)``, so

    * first-order MAML, ``∇L_query(φ_k) = ḡ_q − αk H̄_q ḡ_s + O(α²)``;
    * MAML, ``(∏_{i=k}^{1}(I − α∇²L_support(φ_{i−1})))ᵀ ∇L_query(φ_k)`` (eq. 3.4)
      ``= ḡ_q − αk (H̄_q ḡ_s + H̄_s ḡ_q) + O(α²)``;
    * Reptile, ``(θ − φ_k)/α = k ḡ_s − α k(k−1)/2 H̄_s ḡ_s + O(α²)`` (eq. 5.7, one batch).

    Compare with ``get_method(name)(...).grads`` (flattened); for Reptile divide those by ``α``.
    """
    checks.positive_float("inner_lr", inner_lr)
    k = checks.int_in_range("inner_steps", inner_steps, 1)
    theta = {n: v.detach() for n, v in params.items()}
    g_s, _ = gradient_and_hvps(
        model, theta, tasks.x_support, tasks.y_support, [], loss_fn=loss_fn
    )
    g_q, (hq_gs,) = gradient_and_hvps(
        model, theta, tasks.x_query, tasks.y_query, [g_s], loss_fn=loss_fn
    )
    _, (hs_gs, hs_gq) = gradient_and_hvps(
        model, theta, tasks.x_support, tasks.y_support, [g_s, g_q], loss_fn=loss_fn
    )
    g_s, g_q, hq_gs, hs_gs, hs_gq = (v.mean(0) for v in (g_s, g_q, hq_gs, hs_gs, hs_gq))
    a = inner_lr
    return FirstOrderExpansions(
        g_s,
        g_q,
        hq_gs,
        hs_gq,
        hs_gs,
        fomaml=g_q - a * k * hq_gs,
        maml=g_q - a * k * (hq_gs + hs_gq),
        reptile=k * g_s - a * k * (k - 1) / 2 * hs_gs,
    )

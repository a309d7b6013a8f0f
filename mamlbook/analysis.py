"""Measurements for the Reptile and iMAML chapters: Taylor predictions and saved-tensor memory.

Nothing here is needed to *train* a model; these functions check the chapters' formulas
and measure what the algorithms cost.

* `with_activation`: the same network and weights with a smooth activation in place of
  ReLU. A Taylor expansion in the step size needs a loss that is twice differentiable
  along the inner path; a ReLU network's loss is only piecewise smooth.
* `sgd_on_batches`, `reptile_expansion`: the inner loop of the Reptile paper's analysis
  (one SGD step per minibatch) and the expansion of its update to first order in ``α``
  (Reptile chapter, eqs. 5.5-5.7).
* `first_order_expansions`: the same expansion for MAML's and first-order MAML's
  meta-gradients (Reptile chapter, eq. 5.10).
* `hessian_vector_products`, `loss_hessian`: per-task Hessian-vector products for a
  whole meta-batch, and one task's Hessian as an explicit matrix (iMAML chapter, the
  matrix of eq. 6.7 that conjugate gradient never forms).
* `peak_saved_tensor_bytes`: the most memory autograd's graphs keep alive in saved
  tensors while a function runs (iMAML chapter, memory section).

Shapes follow `mamlbook.functional`: ``params`` is an unbatched dict ``θ``; data are
task-batched ``(T, N, ...)``; vectors are flat, in the order of
`mamlbook.functional.flatten_params`. The expansions return ``(P,)`` vectors averaged
over the ``T`` tasks.
"""
from __future__ import annotations

import copy
from typing import Callable, NamedTuple, Sequence

import torch
from torch import Tensor, nn

from . import checks
from .diagnostics import saved_tensor_memory
from .functional import (LossFn, Params, adapt, batch_parameters, detached, flatten_params, mse_per_task,
                         task_losses)
from .tasks import TaskBatch

Batch = tuple[Tensor, Tensor]  # (x (T, N, ...), y (T, N, ...)): one minibatch of every task


def with_activation(model: nn.Module, activation: Callable[[], nn.Module] = nn.Tanh) -> nn.Module:
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
        raise ValueError(f"model has no nn.ReLU submodule to replace ({type(model).__name__})")
    return smooth


def _check_batches(batches: Sequence[Batch]) -> list[Batch]:
    batches = list(batches)
    if not batches:
        raise ValueError("batches must be a non-empty sequence of (x, y) pairs, one per inner step")
    for i, pair in enumerate(batches):
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise TypeError(f"batches[{i}] must be an (x, y) pair of task-batched tensors")
        x, y = pair
        checks.tensor(f"batches[{i}][0]", x)
        checks.tensor(f"batches[{i}][1]", y)
        if x.ndim < 2 or x.shape[:2] != y.shape[:2]:
            raise ValueError(f"batches[{i}]: x and y must be (T, N, ...) with the same T and N, "
                             f"got {tuple(x.shape)} and {tuple(y.shape)}")
        if x.shape[0] != batches[0][0].shape[0]:
            raise ValueError(f"batches[{i}] has {x.shape[0]} tasks but batches[0] has {batches[0][0].shape[0]}")
    return batches


def sgd_on_batches(model: nn.Module, params: Params, batches: Sequence[Batch], *, inner_lr: float,
                   loss_fn: LossFn = mse_per_task) -> Params:
    """``k`` SGD steps from ``θ``, step ``i`` on minibatch ``i``: ``φ_i = φ_{i−1} − α ∇L_i(φ_{i−1})``.

    The inner loop of the Reptile paper's analysis (Reptile chapter, eq. 5.4), in which the
    minibatches ``L_1, ..., L_k`` of a task may differ. With the same batch every step it
    is `mamlbook.adapt` (book eq. 2.2). Returns the task-batched ``φ_k`` ``(T, ...)``, detached.
    """
    checks.positive_float("inner_lr", inner_lr)
    batches = _check_batches(batches)
    phi = detached(batch_parameters(params, batches[0][0].shape[0]), requires_grad=True)
    for x, y in batches:
        phi, _ = adapt(model, phi, x, y, inner_lr=inner_lr, inner_steps=1, loss_fn=loss_fn, create_graph=False)
    return {k: v.detach() for k, v in phi.items()}


def _gradient_and_hvp(model, theta, x, y, loss_fn, vectors):
    """Per-task ``∇L(θ)`` ``(T, P)`` and ``∇²L(θ) v`` for each ``v`` in ``vectors`` (each ``(T, P)``)."""
    t = x.shape[0]
    phi = detached(batch_parameters(theta, t), requires_grad=True)
    leaves = list(phi.values())
    grads = torch.autograd.grad(task_losses(model, phi, x, y, loss_fn).sum(), leaves, create_graph=True)
    flat_grad = flatten_params(dict(zip(phi, grads)), batch_dims=1)
    products = []
    for v in vectors:
        hv = torch.autograd.grad(flat_grad, leaves, grad_outputs=v, retain_graph=True, materialize_grads=True)
        products.append(flatten_params(dict(zip(phi, hv)), batch_dims=1).detach())
    return flat_grad.detach(), products


def hessian_vector_products(model: nn.Module, params: Params, x: Tensor, y: Tensor, vectors: Tensor, *,
                            loss_fn: LossFn = mse_per_task) -> Tensor:
    """``∇²L_t(θ) v_t`` for every task ``t`` at once: ``vectors (T, P)`` -> ``(T, P)``.

    ``L_t`` is task ``t``'s loss on ``x[t]``, ``y[t]`` (``(T, N, ...)``), all at the same
    unbatched ``θ = params``. One batched double backward (tasks never mix, so each row
    is that task's own product). E.g. for power iteration on each task's Hessian.
    """
    checks.tensor("vectors", vectors, ndim=2)
    if vectors.shape[0] != x.shape[0]:
        raise ValueError(f"vectors must be (T, P) with T = {x.shape[0]} tasks, got shape {tuple(vectors.shape)}")
    return _gradient_and_hvp(model, {k: v.detach() for k, v in params.items()}, x, y, loss_fn, [vectors])[1][0]


def loss_hessian(model: nn.Module, params: Params, x: Tensor, y: Tensor, *,
                 loss_fn: LossFn = mse_per_task) -> Tensor:
    """The Hessian of one task's loss at ``θ`` as an explicit ``(P, P)`` matrix.

    ``x (N, ...)``, ``y (N, ...)`` are one task's data. The ``P`` Hessian-vector products
    with the columns of ``I`` run as one vectorised double backward
    (``autograd.grad(..., is_grads_batched=True)``); the result equals
    `mamlbook.full_hessian` of `mamlbook.loss_function` (tested), and is several times
    faster for the sinusoid network (``P = 1761``). Memory grows as ``P²``.
    """
    checks.tensor("x", x)
    checks.tensor("y", y)
    leaves = detached({k: v for k, v in params.items()}, requires_grad=True)
    loss = task_losses(model, batch_parameters(leaves, 1), x.unsqueeze(0), y.unsqueeze(0), loss_fn)[0]
    grads = torch.autograd.grad(loss, list(leaves.values()), create_graph=True)
    flat_grad = flatten_params(dict(zip(leaves, grads)))
    p = flat_grad.numel()
    eye = torch.eye(p, dtype=flat_grad.dtype, device=flat_grad.device)
    columns = torch.autograd.grad(flat_grad, list(leaves.values()), grad_outputs=eye, is_grads_batched=True,
                                  materialize_grads=True)
    return torch.cat([c.reshape(p, -1) for c in columns], dim=1)


class ReptileExpansion(NamedTuple):
    """Terms of Reptile chapter eq. (5.7), averaged over tasks (each a flat ``(P,)`` vector)."""

    gradient_sum: Tensor  # Σ_i ∇L_i(θ)
    inner_sum: Tensor     # Σ_{i>j} ∇²L_i(θ) ∇L_j(θ)
    prediction: Tensor    # gradient_sum − α · inner_sum ≈ (θ − φ_k)/α, error O(α²)


def reptile_expansion(model: nn.Module, params: Params, batches: Sequence[Batch], *, inner_lr: float,
                      loss_fn: LossFn = mse_per_task) -> ReptileExpansion:
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
            g, _ = _gradient_and_hvp(model, theta, x, y, loss_fn, [])
            inner_sum = torch.zeros_like(g)
            gradient_sum = g
        else:
            g, (hv,) = _gradient_and_hvp(model, theta, x, y, loss_fn, [gradient_sum])  # H̄_i Σ_{j<i} ḡ_j
            inner_sum = inner_sum + hv
            gradient_sum = gradient_sum + g
    gradient_sum, inner_sum = gradient_sum.mean(0), inner_sum.mean(0)
    return ReptileExpansion(gradient_sum, inner_sum, gradient_sum - inner_lr * inner_sum)


class FirstOrderExpansions(NamedTuple):
    """Terms and predictions of Reptile chapter eq. (5.10), averaged over tasks (flat ``(P,)``)."""

    grad_support: Tensor        # ḡ_s = ∇L_support(θ)
    grad_query: Tensor          # ḡ_q = ∇L_query(θ)
    hess_query_grad_support: Tensor   # H̄_q ḡ_s
    hess_support_grad_query: Tensor   # H̄_s ḡ_q
    hess_support_grad_support: Tensor  # H̄_s ḡ_s
    fomaml: Tensor              # ḡ_q − αk H̄_q ḡ_s
    maml: Tensor                # ḡ_q − αk (H̄_q ḡ_s + H̄_s ḡ_q)
    reptile: Tensor             # k ḡ_s − α k(k−1)/2 H̄_s ḡ_s  (of (θ − mean φ)/α)


def first_order_expansions(model: nn.Module, params: Params, tasks: TaskBatch, *, inner_lr: float,
                           inner_steps: int, loss_fn: LossFn = mse_per_task) -> FirstOrderExpansions:
    """Each method's meta-gradient expanded to first order in ``α`` at ``θ`` (eq. 5.10).

    ``k`` inner steps on the support set: ``φ_k = θ − αk ḡ_s + O(α²)``, so

    * first-order MAML, ``∇L_query(φ_k) = ḡ_q − αk H̄_q ḡ_s + O(α²)``;
    * MAML, ``(∏(I − α∇²L_support(φ_i)))ᵀ ∇L_query(φ_k) = ḡ_q − αk (H̄_q ḡ_s + H̄_s ḡ_q) + O(α²)``;
    * Reptile, ``(θ − φ_k)/α = k ḡ_s − α k(k−1)/2 H̄_s ḡ_s + O(α²)`` (eq. 5.7, one batch).

    Compare with ``get_method(name)(...).grads`` (flattened); for Reptile divide those by ``α``.
    """
    checks.positive_float("inner_lr", inner_lr)
    k = checks.int_in_range("inner_steps", inner_steps, 1)
    theta = {n: v.detach() for n, v in params.items()}
    g_s, _ = _gradient_and_hvp(model, theta, tasks.x_support, tasks.y_support, loss_fn, [])
    g_q, (hq_gs,) = _gradient_and_hvp(model, theta, tasks.x_query, tasks.y_query, loss_fn, [g_s])
    _, (hs_gs, hs_gq) = _gradient_and_hvp(model, theta, tasks.x_support, tasks.y_support, loss_fn, [g_s, g_q])
    g_s, g_q, hq_gs, hs_gs, hs_gq = (v.mean(0) for v in (g_s, g_q, hq_gs, hs_gs, hs_gq))
    a = inner_lr
    return FirstOrderExpansions(g_s, g_q, hq_gs, hs_gq, hs_gs,
                                fomaml=g_q - a * k * hq_gs,
                                maml=g_q - a * k * (hq_gs + hs_gq),
                                reptile=k * g_s - a * k * (k - 1) / 2 * hs_gs)


class SavedTensorPeak(NamedTuple):
    """What `peak_saved_tensor_bytes` measured."""

    result: object    # what the function returned
    peak_bytes: int   # most bytes of distinct storages held in saved tensors at any one time
    saved_count: int  # how many tensors autograd saved in all (graphs built and freed included)


def peak_saved_tensor_bytes(fn: Callable[[], object]) -> SavedTensorPeak:
    """Run ``fn()`` and measure the memory autograd keeps alive for backward passes.

    Every tensor an operation saves for its backward pass goes through
    ``torch.autograd.graph.saved_tensors_hooks``; it is counted while some graph holds
    it and released when that graph is freed (after ``backward``/``autograd.grad``
    without ``retain_graph``, or when the graph's outputs die). Storages are counted once
    however many saved views share them, so expanded (task-batched) copies of ``θ`` cost
    ``θ``'s size. This is the part of memory that grows with the inner steps of
    second-order MAML (every step's activations and gradients stay in the graph) and
    that stays constant for first-order methods and iMAML. It does not count
    temporaries that are freed before anything saves them, nor tensors the function
    holds outside a graph.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable with no arguments, got {type(fn).__name__}")
    result, stats = saved_tensor_memory(fn)  # the one implementation of the counting hooks
    return SavedTensorPeak(result, stats.peak_bytes, stats.count)

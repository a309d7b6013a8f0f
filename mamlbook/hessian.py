"""Curvature: Hessian-vector products, explicit Hessians, the Gauss-Newton split, the
output Jacobian, and the inner loop's Jacobian as a matrix.

* products with the Hessian of a task's loss: `hessian_vector_product` (one task, a
  loss function ``f``), `hessian_vector_products` (every task of a meta-batch at once,
  with each task's gradient in `gradient_and_hvps`), and `top_eigenvalues` (each
  task's largest absolute eigenvalue by power iteration on those products);
* explicit ``P × P`` matrices, for small networks and for the chapters that check
  their derivations against them: `full_hessian` (the one explicit Hessian),
  `gauss_newton_split` (its Gauss-Newton and residual terms, eq. 3.5) from
  `output_jacobian`, `gauss_newton_top_eigenvalue`;
* the inner loop: `inner_loop` (the trajectory), `inner_step_jacobian`,
  `inner_loop_jacobian` (eq. 3.3), `maml_gradient_by_matrices` (eq. 3.4).

The solvers that use these products (conjugate gradient, power iteration) are in
`mamlbook.solvers`; the Taylor expansions built from them in `mamlbook.taylor`.

The single-task functions work on an *unbatched* params dict ``θ`` (``P`` numbers in
all; `mamlbook.functional.flatten_params` gives the vector); the batched ones take
task-batched data ``x (T, N, ...)``, ``y (T, N, ...)`` (``N`` examples per task) at one
unbatched ``θ`` and return one result per task (``(T, P)``; `top_eigenvalues` ``(T,)``).
The algorithms themselves only ever use products with a vector (double backward in
`mamlbook.algorithms`), never a ``P × P`` matrix.

Conventions. A *loss function* ``f`` maps a params dict to a scalar; build one for a
task with `loss_function`. The inner step is ``U(θ) = θ − α ∇L(θ)`` (book eq. 2.2), so

* one step: ``∂U/∂θ = I − α ∇²L(θ)`` (`inner_step_jacobian`);
* ``k`` steps, ``φ_0 = θ``, ``φ_i = φ_{i−1} − α ∇L(φ_{i−1})``:
  ``∂φ_k/∂θ = (I − α∇²L(φ_{k−1})) ··· (I − α∇²L(φ_0))`` (`inner_loop_jacobian`,
  eq. 3.3);
* MAML's meta-gradient of ``L_query(φ_k)`` is that Jacobian transposed times
  ``∇L_query(φ_k)`` (`maml_gradient_by_matrices`).
"""

from __future__ import annotations

from typing import NamedTuple
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call

from . import checks
from .functional import (
    LossFn,
    Params,
    batch_parameters,
    detached,
    flatten_params,
    mse_per_task,
    task_losses,
    unflatten_params,
)
from .solvers import power_iteration

ParamsFn = Callable[[Params], Tensor]


def loss_function(
    model: nn.Module, x: Tensor, y: Tensor, loss_fn: LossFn = mse_per_task
) -> ParamsFn:
    """``f(params) -> scalar``: the loss of one task's data ``x (N, ...)``,
    ``y (N, ...)``.

    ``loss_fn`` is a per-task loss as in `mamlbook.functional` (it sees a task
    dimension of size 1), so ``f`` is exactly the per-task loss the algorithms use.
    """
    checks.tensor("x", x)
    checks.tensor("y", y)
    checks.callable_("loss_fn", loss_fn)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x has {x.shape[0]} points but y has {y.shape[0]}")
    expected = checks.model_input_shape(model)
    if expected is not None and tuple(x.shape[1:]) != expected:
        raise ValueError(
            f"x must have shape (N, {', '.join(map(str, expected))}) for this model, got {tuple(x.shape)}"
        )

    def f(params: Params) -> Tensor:
        predictions, targets = (
            functional_call(model, params, (x,)).unsqueeze(0),
            y.unsqueeze(0),
        )
        out = loss_fn(predictions, targets)
        if not isinstance(out, Tensor) or out.shape != (
            1,
        ):  # the per-task contract, one task (shapes only)
            checks.check_loss_output(loss_fn, predictions, targets, "y", out)
        return out[0]

    return f


def _flat_function(
    f: ParamsFn, params: Params
) -> tuple[Callable[[Tensor], Tensor], Tensor]:
    like = {k: v.detach() for k, v in params.items()}
    return (lambda w: f(unflatten_params(w, like))), flatten_params(like)


def hessian_vector_product(f: ParamsFn, params: Params, v: Params) -> Params:
    """``∇²f(θ) v`` without forming the Hessian: forward-over-reverse, ``jvp(grad(f))``.

    Costs a fixed multiple of a gradient whatever the number of parameters: three times
    its floating-point operations (the forward and backward passes each carry a
    tangent; counted in the tests). ``v`` is a dict shaped like ``params``.
    """
    primals = {k: t.detach() for k, t in params.items()}
    if not isinstance(v, dict) or set(v) != set(primals):
        got = sorted(v) if isinstance(v, dict) else type(v).__name__
        raise ValueError(f"v must have the keys of params {sorted(primals)}, got {got}")
    for k, t in primals.items():
        if not isinstance(v[k], Tensor) or v[k].shape != t.shape:
            shape = (
                tuple(v[k].shape) if isinstance(v[k], Tensor) else type(v[k]).__name__
            )
            raise ValueError(
                f"v[{k!r}] must have the shape {tuple(t.shape)} of params, got {shape}"
            )
    tangents = {k: v[k].to(primals[k]) for k in primals}
    return torch.func.jvp(torch.func.grad(f), (primals,), (tangents,))[1]


def gradient_and_hvps(
    model: nn.Module,
    params: Params,
    x: Tensor,
    y: Tensor,
    vectors: Sequence[Tensor],
    *,
    loss_fn: LossFn = mse_per_task,
) -> tuple[Tensor, list[Tensor]]:
    """Every task's ``∇L_t(θ)`` ``(T, P)`` and ``∇²L_t(θ) v_t`` for each ``v`` in
    ``vectors`` (each ``(T, P)``), at one unbatched ``θ``, in one graph.

    ``L_t`` is task ``t``'s loss on ``x[t]``, ``y[t]`` (``(T, N, ...)``). One backward
    with ``create_graph=True`` gives the gradients; each product is one more backward
    through them (double backward), kept for the next product. Tasks never mix, so row
    ``t`` is task ``t``'s own. The Taylor expansions (`mamlbook.taylor`) take their
    gradients and products from here; `hessian_vector_products` is the one-product
    case.
    """
    t = x.shape[0]
    phi = detached(batch_parameters(params, t), requires_grad=True)
    leaves = list(phi.values())
    grads = torch.autograd.grad(
        task_losses(model, phi, x, y, loss_fn).sum(), leaves, create_graph=True
    )
    flat_grad = flatten_params(dict(zip(phi, grads)), batch_dims=1)
    products = []
    for v in vectors:
        hv = torch.autograd.grad(
            flat_grad,
            leaves,
            grad_outputs=v,
            retain_graph=True,
            materialize_grads=True,
        )
        products.append(flatten_params(dict(zip(phi, hv)), batch_dims=1).detach())
    return flat_grad.detach(), products


def hessian_vector_products(
    model: nn.Module,
    params: Params,
    x: Tensor,
    y: Tensor,
    vectors: Tensor,
    *,
    loss_fn: LossFn = mse_per_task,
) -> Tensor:
    """``∇²L_t(θ) v_t`` for every task ``t`` at once: ``vectors (T, P)`` -> ``(T, P)``.

    ``L_t`` is task ``t``'s loss on ``x[t]``, ``y[t]`` (``(T, N, ...)``), all at the same
    unbatched ``θ = params``. One batched double backward (tasks never mix, so each row
    is that task's own product). E.g. for power iteration on each task's Hessian
    (`top_eigenvalues`).
    """
    checks.tensor("vectors", vectors, ndim=2)
    if vectors.shape[0] != x.shape[0]:
        raise ValueError(
            f"vectors must be (T, P) with T = {x.shape[0]} tasks, "
            f"got shape {tuple(vectors.shape)}"
        )
    theta = {k: v.detach() for k, v in params.items()}
    return gradient_and_hvps(model, theta, x, y, [vectors], loss_fn=loss_fn)[1][0]


def top_eigenvalues(
    model: nn.Module,
    params: Params,
    x: Tensor,
    y: Tensor,
    *,
    iterations: int,
    generator: torch.Generator | None = None,
    loss_fn: LossFn = mse_per_task,
) -> Tensor:
    """Each task's largest absolute eigenvalue of ``∇²L_t(θ)``: ``x (T, N, ...)`` -> ``(T,)``.

    `mamlbook.solvers.power_iteration` on all ``T`` Hessians at once, each product one
    batched `hessian_vector_products`; the start is ``torch.randn((T, P),
    generator=generator)`` in ``θ``'s dtype (drawn on the CPU when ``generator`` is a
    CPU generator, then moved to ``θ``'s device). Returns ``‖∇²L_t v_t‖`` of the last
    unit iterates: a ReLU network's Hessian is indefinite, so this is the magnitude of
    the eigenvalue of largest magnitude, ``λ_max`` in the book, whatever its sign (chapter
    06 writes eigenvalues ``h``, its ``λ`` being iMAML's regulariser). A step ``α`` above
    ``2/|λ_max|`` makes gradient descent on that task diverge along that direction.
    """
    checks.positive_int("iterations", iterations)
    theta = {k: v.detach() for k, v in params.items()}
    ref = next(iter(theta.values()))
    size = sum(v.numel() for v in theta.values())
    start = torch.randn(x.shape[0], size, generator=generator, dtype=ref.dtype)
    return power_iteration(
        lambda v: hessian_vector_products(model, theta, x, y, v, loss_fn=loss_fn),
        start.to(ref.device),
        iterations,
    ).magnitude


#: The most parameters `full_hessian` takes: a 10,000 × 10,000 float32 matrix is 400 MB.
FULL_HESSIAN_MAX_PARAMS = 10_000


def full_hessian(f: ParamsFn, params: Params) -> Tensor:
    """The full Hessian ``∇²f(θ)`` as a ``(P, P)`` matrix (order of `flatten_params`).

    ``torch.func.hessian`` (forward-over-reverse) on the flat parameter vector: the
    package's one explicit Hessian. For one task's loss pass
    ``f = loss_function(model, x, y)``. Memory and time grow as ``P²``: for small
    networks (the sinusoid network, ``P = 1761``: about half a second on one CPU
    thread, after a first call that sets up the vectorisation).
    """
    g, w = _flat_function(f, params)
    if (
        w.numel() > FULL_HESSIAN_MAX_PARAMS
    ):  # P² numbers: a ConvNet's would need tens of GB
        raise ValueError(
            f"params has P = {w.numel():,} numbers, so its Hessian would have P² = "
            f"{w.numel() ** 2:,.3g} entries; full_hessian takes at most P = "
            f"{FULL_HESSIAN_MAX_PARAMS:,}: use hessian_vector_product (or top_eigenvalues) instead"
        )
    return torch.func.hessian(g)(w)


def gradient(f: ParamsFn, params: Params) -> Tensor:
    """``∇f(θ)`` as a flat ``(P,)`` vector."""
    g, w = _flat_function(f, params)
    return torch.func.grad(g)(w)


def _outputs_function(
    model: nn.Module, params: Params, x: Tensor
) -> tuple[Callable[[Tensor], Tensor], Tensor]:
    """``(w ↦ M(w) flattened to (n,), w = θ flat)``: the model's outputs on ``x`` as a
    function of the flat parameter vector."""
    like = {k: v.detach() for k, v in params.items()}

    def outputs(w: Tensor) -> Tensor:
        return functional_call(model, unflatten_params(w, like), (x,)).reshape(-1)

    return outputs, flatten_params(like)


def output_jacobian(model: nn.Module, params: Params, x: Tensor) -> Tensor:
    """The Jacobian ``J`` of the model's outputs on one task's inputs ``x (N, ...)``
    with respect to ``θ``, as ``(n, P)``: row ``n`` is ``∇M_nᵀ`` (``n = N·outputs``,
    the outputs flattened; columns in the order of `flatten_params`).

    Reverse mode (``torch.func.jacrev``). The Gauss-Newton term of the MSE Hessian is
    ``(2/n) JᵀJ`` (eq. 3.5, `gauss_newton_split`).
    """
    checks.tensor("x", x)
    outputs, w = _outputs_function(model, params, x)
    return torch.func.jacrev(outputs)(w)


class GaussNewtonSplit(NamedTuple):
    """The two terms of the MSE Hessian; ``gauss_newton + residual`` is the Hessian."""

    gauss_newton: Tensor  # (P, P), (2/n) Σ_n ∇M_n ∇M_nᵀ, positive semi-definite
    residual: Tensor  # (P, P), (2/n) Σ_n (M_n − y_n) ∇²M_n


def gauss_newton_split(
    model: nn.Module, params: Params, x: Tensor, y: Tensor
) -> GaussNewtonSplit:
    """Split the Hessian of the mean squared error into its Gauss-Newton and residual
    terms.

    For ``L(θ) = 1/n Σ_n (M_n(θ) − y_n)²``, the mean over all ``n`` output numbers (the
    convention of `mamlbook.functional.mse_per_task`; ``n = N·outputs``),

        ∇²L = 2/n Σ_n ∇M_n ∇M_nᵀ  +  2/n Σ_n (M_n − y_n) ∇²M_n.

    The formula ``∇²L = ∇M ∇Mᵀ − (y − M)ᵀ ∇²M`` quoted in the source article is the
    Hessian of ``½ Σ_n (y_n − M_n)²`` (a sum with a factor ½); ours is ``2/n`` times it,
    term by term. The first term needs only first derivatives of the model and is
    positive semi-definite; the second vanishes when the model fits the data
    (``M = y``) and for models linear in ``θ``.

    Returns
    -------
    `GaussNewtonSplit` of two ``(P, P)`` matrices.
    """
    checks.tensor("x", x)
    checks.tensor("y", y)
    outputs, w = _outputs_function(model, params, x)
    m = outputs(w)
    if m.numel() != y.numel():
        raise ValueError(
            f"y must have one target per model output ({m.numel()} numbers), "
            f"got shape {tuple(y.shape)}"
        )
    residual = (m - y.reshape(-1)).detach()
    scale = 2.0 / m.numel()
    jac = output_jacobian(model, params, x)  # (n, P): row n is ∇M_nᵀ
    gauss_newton = scale * jac.T @ jac
    # Σ_n r_n ∇²M_n is the Hessian of Σ_n r_n M_n(θ) with the residuals r held fixed.
    residual_term = torch.func.hessian(lambda w: scale * (residual * outputs(w)).sum())(
        w
    )
    return GaussNewtonSplit(gauss_newton, residual_term)


def gauss_newton_top_eigenvalue(model: nn.Module, params: Params, x: Tensor) -> float:
    """Largest eigenvalue of the Gauss-Newton term of the mean squared error at
    ``params``.

    For ``L = 1/n Σ_n (M_n − y_n)²`` over the ``n`` outputs of ``model`` on one task's
    inputs ``x (N, ...)``, the Gauss-Newton term is ``G = (2/n) JᵀJ`` with ``J (n, P)``
    the Jacobian of the outputs (`output_jacobian`; `gauss_newton_split`, Hessian
    chapter eq. 3.5). It does not depend on the targets. Its non-zero eigenvalues are
    those of the small ``n × n`` matrix ``(2/n) J Jᵀ``, which is diagonalised here
    exactly (``eigvalsh``, no iteration), so this is cheap even when ``P × P``
    matrices are not. ``α`` times this value above 1 means one inner step of size ``α``
    over-corrects along that direction.
    """
    checks.tensor("x", x)
    jac = output_jacobian(model, params, x)
    return float(torch.linalg.eigvalsh(2.0 / jac.shape[0] * jac @ jac.T)[-1])


def inner_step_jacobian(f: ParamsFn, params: Params, inner_lr: float) -> Tensor:
    """``∂U/∂θ = I − α ∇²f(θ)`` (book eq. 3.2) for one inner step ``U(θ) = θ − α∇f(θ)``
    (eq. 2.2), as ``(P, P)``."""
    checks.positive_float("inner_lr", inner_lr)
    h = full_hessian(f, params)
    checks.positive_float("inner_lr", inner_lr, dtype=h.dtype)  # α·H within its range
    return torch.eye(h.shape[0], dtype=h.dtype, device=h.device) - inner_lr * h


def inner_loop(
    f: ParamsFn, params: Params, inner_lr: float, steps: int
) -> list[Params]:
    """The inner trajectory ``[φ_0 = θ, φ_1, ..., φ_k]`` of plain gradient descent on
    ``f`` (the book's φ_i, eq. 2.2)."""
    checks.positive_float("inner_lr", inner_lr)
    checks.int_in_range("steps", steps, 0)
    grad_f = torch.func.grad(f)
    trajectory = [{k: v.detach() for k, v in params.items()}]
    for _ in range(steps):
        g = grad_f(trajectory[-1])
        trajectory.append({k: v - inner_lr * g[k] for k, v in trajectory[-1].items()})
    return trajectory


def inner_loop_jacobian(
    f: ParamsFn, params: Params, inner_lr: float, steps: int
) -> Tensor:
    """``∂φ_k/∂θ = ∏_{i=k..1} (I − α ∇²f(φ_{i−1}))`` as an explicit ``(P, P)`` matrix.

    The chain rule through ``k`` inner steps (book eq. 3.3): the factor of step ``i``
    multiplies from the left, ``A_{k−1} ··· A_1 A_0`` with ``A_i = I − α∇²f(φ_i)``.
    ``∂φ_0/∂θ = I`` because ``φ_0`` *is* ``θ``. Every factor is symmetric, the product
    in general is not.
    """
    return _jacobian_along(f, inner_loop(f, params, inner_lr, steps), inner_lr)


def _jacobian_along(f: ParamsFn, trajectory: list[Params], inner_lr: float) -> Tensor:
    """Eq. (3.3) along ``trajectory`` ``[φ_0, ..., φ_k]`` (`inner_loop`'s): the
    ``(P, P)`` product ``A_{k−1} ··· A_0``, ``A_i = I − α∇²f(φ_i)`` (``I`` for
    ``k = 0``). `inner_loop_jacobian` and `maml_gradient_by_matrices` share it:
    the second reuses the trajectory it needs for the query gradient too."""
    first = trajectory[0]
    ref = next(iter(first.values()))
    jac = torch.eye(
        sum(v.numel() for v in first.values()), dtype=ref.dtype, device=ref.device
    )
    for phi_i in trajectory[:-1]:
        jac = inner_step_jacobian(f, phi_i, inner_lr) @ jac
    return jac


def maml_gradient_by_matrices(
    f_support: ParamsFn, f_query: ParamsFn, params: Params, inner_lr: float, steps: int
) -> Tensor:
    """MAML's meta-gradient of one task with explicit matrices (for checking, small
    nets).

    ``∇_θ L_query(φ_k) = (∂φ_k/∂θ)ᵀ ∇L_query(φ_k) = A_0 A_1 ··· A_{k−1} ∇L_query(φ_k)``,
    ``A_i = I − α∇²L_support(φ_i)`` (eq. 3.4). For ``k = 1``:
    ``(I − α∇²L_support(θ)) ∇L_query(φ_1)``. Returns a flat ``(P,)`` vector.
    """
    trajectory = inner_loop(f_support, params, inner_lr, steps)
    return _jacobian_along(f_support, trajectory, inner_lr).T @ gradient(
        f_query, trajectory[-1]
    )

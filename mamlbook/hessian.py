"""Second-order tools: Hessian-vector products, explicit Hessians, the Gauss-Newton
split, the inner loop's Jacobian as a matrix, and the conjugate-gradient solver iMAML
uses.

Everything here works on one task and an *unbatched* params dict ``θ`` (``P`` numbers in
all; `mamlbook.functional.flatten_params` gives the vector). Explicit ``P × P``
matrices are for small networks and for the Hessian chapter, which checks its
derivations against them; the algorithms themselves only ever use products with a
vector (`hessian_vector_product`, or double backward in `mamlbook.algorithms.imaml`).

Conventions. A *loss function* ``f`` maps a params dict to a scalar; build one for a
task with `loss_function`. The inner step is ``U(θ) = θ − α ∇L(θ)`` (book eq. 2.2), so

* one step: ``∂U/∂θ = I − α ∇²L(θ)`` (`inner_step_jacobian`);
* ``k`` steps, ``θ_0 = θ``, ``θ_i = θ_{i−1} − α ∇L(θ_{i−1})``:
  ``∂θ_k/∂θ = (I − α∇²L(θ_{k−1})) ··· (I − α∇²L(θ_0))`` (`inner_loop_jacobian`);
* MAML's meta-gradient of ``L_query(θ_k)`` is that Jacobian transposed times
  ``∇L_query(θ_k)`` (`maml_gradient_by_matrices`).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
from torch import Tensor, nn
from torch.func import functional_call

from . import checks
from .functional import LossFn, Params, flatten_params, mse_per_task, unflatten_params

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

    Costs about two gradient evaluations; ``v`` is a dict shaped like ``params``.
    """
    primals = {k: t.detach() for k, t in params.items()}
    if set(v) != set(primals):
        raise ValueError(
            f"v must have the keys of params {sorted(primals)}, got {sorted(v)}"
        )
    tangents = {k: v[k].to(primals[k]) for k in primals}
    return torch.func.jvp(torch.func.grad(f), (primals,), (tangents,))[1]


def full_hessian(f: ParamsFn, params: Params) -> Tensor:
    """The full Hessian ``∇²f(θ)`` as a ``(P, P)`` matrix (order of `flatten_params`).

    ``torch.func.hessian`` (forward-over-reverse) on the flat parameter vector. Memory
    and time grow as ``P²``: for small networks only.
    """
    g, w = _flat_function(f, params)
    return torch.func.hessian(g)(w)


def gradient(f: ParamsFn, params: Params) -> Tensor:
    """``∇f(θ)`` as a flat ``(P,)`` vector."""
    g, w = _flat_function(f, params)
    return torch.func.grad(g)(w)


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
    like = {k: v.detach() for k, v in params.items()}
    w = flatten_params(like)

    def outputs(w: Tensor) -> Tensor:
        return functional_call(model, unflatten_params(w, like), (x,)).reshape(-1)

    m = outputs(w)
    if m.numel() != y.numel():
        raise ValueError(
            f"y must have one target per model output ({m.numel()} numbers), "
            f"got shape {tuple(y.shape)}"
        )
    residual = (m - y.reshape(-1)).detach()
    scale = 2.0 / m.numel()
    jac = torch.func.jacrev(outputs)(w)  # (n, P): row n is ∇M_nᵀ
    gauss_newton = scale * jac.T @ jac
    # Σ_n r_n ∇²M_n is the Hessian of Σ_n r_n M_n(θ) with the residuals r held fixed.
    residual_term = torch.func.hessian(lambda w: scale * (residual * outputs(w)).sum())(
        w
    )
    return GaussNewtonSplit(gauss_newton, residual_term)


def inner_step_jacobian(f: ParamsFn, params: Params, inner_lr: float) -> Tensor:
    """``∂U/∂θ = I − α ∇²f(θ)`` for one inner step ``U(θ) = θ − α∇f(θ)``, as
    ``(P, P)``."""
    checks.positive_float("inner_lr", inner_lr)
    h = full_hessian(f, params)
    return torch.eye(h.shape[0], dtype=h.dtype, device=h.device) - inner_lr * h


def inner_loop(
    f: ParamsFn, params: Params, inner_lr: float, steps: int
) -> list[Params]:
    """The inner trajectory ``[θ_0 = θ, θ_1, ..., θ_k]`` of plain gradient descent on
    ``f``."""
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
    """``∂θ_k/∂θ = ∏_{i=k..1} (I − α ∇²f(θ_{i−1}))`` as an explicit ``(P, P)`` matrix.

    The chain rule through ``k`` inner steps (book eq. 3.3): the factor of step ``i``
    multiplies from the left, ``J = A_{k−1} ··· A_1 A_0`` with ``A_i = I − α∇²f(θ_i)``.
    ``∂θ_0/∂θ = I`` because ``θ_0`` *is* ``θ``. Every factor is symmetric, the product
    in general is not.
    """
    return _jacobian_along(f, inner_loop(f, params, inner_lr, steps), inner_lr)


def _jacobian_along(f: ParamsFn, trajectory: list[Params], inner_lr: float) -> Tensor:
    first = trajectory[0]
    ref = next(iter(first.values()))
    jac = torch.eye(
        sum(v.numel() for v in first.values()), dtype=ref.dtype, device=ref.device
    )
    for theta_i in trajectory[:-1]:
        jac = inner_step_jacobian(f, theta_i, inner_lr) @ jac
    return jac


def maml_gradient_by_matrices(
    f_support: ParamsFn, f_query: ParamsFn, params: Params, inner_lr: float, steps: int
) -> Tensor:
    """MAML's meta-gradient of one task with explicit matrices (for checking, small
    nets).

    ``∇_θ L_query(θ_k) = (∂θ_k/∂θ)ᵀ ∇L_query(θ_k) = A_0 A_1 ··· A_{k−1} ∇L_query(θ_k)``,
    ``A_i = I − α∇²L_support(θ_i)``. For ``k = 1``:
    ``(I − α∇²L_support(θ)) ∇L_query(θ′)``. Returns a flat ``(P,)`` vector.
    """
    trajectory = inner_loop(f_support, params, inner_lr, steps)
    return _jacobian_along(f_support, trajectory, inner_lr).T @ gradient(
        f_query, trajectory[-1]
    )


def _dot(a: Tensor, b: Tensor) -> Tensor:
    """One dot product per system: sum over the last dimension, kept for
    broadcasting."""
    return (a * b).sum(-1, keepdim=True)


def conjugate_gradient(
    matvec: Callable[[Tensor], Tensor], b: Tensor, steps: int, x0: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Solve ``A x = b`` for symmetric positive-definite ``A`` given only ``x ↦ A x``.

    ``b`` is ``(P,)`` for one system or ``(T, P)`` for ``T`` independent systems solved
    together (``matvec`` maps ``(T, P)`` to ``(T, P)``, row by row); every dot product
    is taken per row, so the systems never mix. In exact arithmetic CG reaches the
    solution in at most ``P`` steps; iMAML takes a handful
    (Rajeswaran et al. 2019 use 5).

    Returns ``(x, r)``: the solution after ``steps`` iterations and its residual
    ``r = b − A x`` (kept by the recurrence, not recomputed). If ``A`` is not positive
    definite nothing guarantees progress: check ``r``.
    """
    checks.int_in_range("steps", steps, 0)
    checks.tensor("b", b, finite=False)
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b.clone() if x0 is None else b - matvec(x)
    p = r.clone()
    rr = _dot(r, r)
    for _ in range(steps):
        ap = matvec(p)
        pap = _dot(p, ap)
        alpha = torch.where(
            pap == 0, 0.0, rr / pap
        )  # a solved row (r = p = 0) stays put, no 0/0
        x = x + alpha * p
        r = r - alpha * ap
        rr_new = _dot(r, r)
        beta = torch.where(rr == 0, 0.0, rr_new / rr)
        p = r + beta * p
        rr = rr_new
    return x, r

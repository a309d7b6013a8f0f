"""Linear-algebra solvers that only need a matrix-vector product ``v ↦ A v``.

* `conjugate_gradient`: solve ``A x = b`` for symmetric positive-definite ``A``; one
  system ``(P,)`` or ``T`` independent systems ``(T, P)`` at once. iMAML's implicit
  gradient (book eq. 6.7, `mamlbook.algorithms.imaml`) and the iMAML chapter use it.
* `power_iteration`: the dominant eigenvalue and eigenvector of a symmetric ``A``, one
  matrix ``(P,)`` or ``T`` matrices ``(T, P)`` at once; the one implementation behind
  `top_eigenvalue` (a matrix or a product, e.g. the Gauss-Newton matrix in the Hessian
  chapter) and `mamlbook.hessian.top_eigenvalues` (each task's loss Hessian, by
  Hessian-vector products, in the Reptile and iMAML chapters).

``A`` is never formed here: the caller passes ``matvec``, e.g. a Hessian-vector product
(`mamlbook.hessian`), so the solvers cost a handful of products and no ``P × P``
memory. Nothing here knows about networks or tasks.
"""

from __future__ import annotations

from typing import NamedTuple
from collections.abc import Callable

import torch
from torch import Tensor

from . import checks
from .device import check_device

MatVec = Callable[[Tensor], Tensor]  # v (P,) or (T, P) -> A v, the same shape


def _dot(a: Tensor, b: Tensor) -> Tensor:
    """One dot product per system: sum over the last dimension, kept for
    broadcasting."""
    return (a * b).sum(-1, keepdim=True)


def conjugate_gradient(
    matvec: MatVec, b: Tensor, steps: int, x0: Tensor | None = None
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
    if b.ndim not in (1, 2):
        raise ValueError(f"b must be (P,) or (T, P), got shape {tuple(b.shape)}")
    if x0 is not None and (not isinstance(x0, Tensor) or x0.shape != b.shape):
        raise ValueError(f"x0 must have b's shape {tuple(b.shape)}, got {_shape(x0)}")
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b.clone() if x0 is None else b - matvec(x)
    p = r.clone()
    rr = _dot(r, r)
    for _ in range(steps):
        ap = matvec(p)
        # matvec's contract: a wrong shape would fail later, far from its cause
        if not isinstance(ap, Tensor) or ap.shape != p.shape:
            raise ValueError(
                f"matvec must keep b's shape {tuple(b.shape)}, got {_shape(ap)}"
            )
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


def _shape(value) -> object:
    return tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__


class PowerIteration(NamedTuple):
    """What `power_iteration` found (``()`` for one matrix, ``(T,)`` for ``T``)."""

    eigenvalue: Tensor  # vᵀ A v, v the last iterate: the signed estimate
    magnitude: Tensor  # ‖A v‖: the estimate of the largest absolute eigenvalue
    vector: Tensor  # the next iterate A v / ‖A v‖, (P,) or (T, P)


def power_iteration(matvec: MatVec, start: Tensor, iterations: int) -> PowerIteration:
    """Power iteration ``v ← A v / ‖A v‖`` for one or ``T`` symmetric matrices at once.

    ``start`` is ``(P,)`` or ``(T, P)`` (one row per matrix; ``matvec`` maps rows to
    rows, like `conjugate_gradient`'s), any non-zero scale: the iterates are unit
    vectors from the second on, and ``eigenvalue = vᵀAv`` is a Rayleigh quotient when
    ``start`` is a unit vector or ``iterations ≥ 2``. The iterates turn towards the
    eigenvector of the eigenvalue of largest *magnitude*; ``magnitude = ‖A v‖``
    estimates that magnitude, ``eigenvalue`` its sign too. The error shrinks like
    ``|λ₂/λ₁|`` per iteration: slowly when the two largest magnitudes are close. A row
    whose product is exactly zero stays zero (estimate 0).
    """
    checks.positive_int("iterations", iterations)
    checks.tensor("start", start)
    if start.ndim not in (1, 2):
        raise ValueError(
            f"start must be (P,) or (T, P), got shape {tuple(start.shape)}"
        )
    v = start
    for _ in range(iterations):
        w = matvec(v)
        eigenvalue = v @ w if v.ndim == 1 else (v * w).sum(-1)
        magnitude = w.norm(dim=-1)
        scale = magnitude.unsqueeze(-1)
        v = torch.where(scale == 0, 0.0, w / scale)
    return PowerIteration(eigenvalue, magnitude, v)


def top_eigenvalue(
    matrix: Tensor | MatVec,
    size: int | None = None,
    *,
    iterations: int = 200,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    device=None,
) -> float:
    """Largest eigenvalue of a symmetric positive semi-definite matrix by power
    iteration.

    ``matrix`` is a ``(P, P)`` tensor or a function ``v ↦ A v`` on ``(P,)`` vectors
    (e.g. a Hessian-vector or Gauss-Newton-vector product), then ``size = P`` is
    required. The start is a random unit vector (``torch.randn`` with ``generator``, in
    ``dtype`` on ``device`` for a function; a tensor ``matrix`` uses its own).
    Returns the Rayleigh quotient ``vᵀAv`` of the last unit iterate (`power_iteration`).
    For an indefinite matrix power iteration finds the eigenvalue of largest
    *magnitude*, which may be negative, and converges slowly when the two largest
    magnitudes are close: use ``torch.linalg.eigvalsh`` there.
    """
    checks.positive_int("iterations", iterations)
    if isinstance(matrix, Tensor):
        checks.tensor("matrix", matrix, ndim=2)
        if matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"matrix must be square, got shape {tuple(matrix.shape)}")
        a = matrix
        matvec, size, dtype, device = (lambda v: a @ v), a.shape[0], a.dtype, a.device
    elif callable(matrix):
        checks.positive_int("size", size)
        check_device("device", device)
        matvec = matrix
    else:
        raise TypeError(
            "matrix must be a square tensor or a function v -> A v, "
            f"got {type(matrix).__name__}"
        )
    v = torch.randn(size, generator=generator, dtype=dtype).to(device)
    return float(power_iteration(matvec, v / v.norm(), iterations).eigenvalue)

"""Checks for the chapters' exercises: run the reader's function against the package's.

Each ``check_*`` function calls the reader's ``fn`` on random float64 inputs (fixed
seed), compares with the reference implementation, prints ``correct`` or
``mismatch: ...`` saying what differs, and returns ``True``/``False``. A wrong answer
never raises; an exception inside the reader's own code does, with its traceback.

>>> from mamlbook.exercises import check_inner_step
>>> check_inner_step(lambda params, grads, lr: {k: p - lr * grads[k] for k, p in params.items()})
correct: one inner SGD step matches (max error 0.00e+00, tolerance 1e-10)
True
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

_DTYPE = torch.float64


def _random_params(generator: torch.Generator) -> dict[str, Tensor]:
    shapes = {"0.weight": (4, 1), "0.bias": (4,), "2.weight": (1, 4), "2.bias": (1,)}
    return {k: torch.randn(s, generator=generator, dtype=_DTYPE) for k, s in shapes.items()}


def _compare(what: str, got, expected: dict[str, Tensor] | Tensor, tol: float) -> bool:
    """Print and return whether ``got`` matches ``expected`` (a tensor or a dict of tensors)."""
    if isinstance(expected, Tensor):
        expected, got = {"result": expected}, {"result": got}
        if isinstance(got["result"], (tuple, list)) and got["result"]:
            got = {"result": got["result"][0]}  # e.g. (solution, residual)
    if not isinstance(got, dict):
        print(f"mismatch: {what}: expected a dict of tensors with keys {sorted(expected)}, got {type(got).__name__}")
        return False
    if set(got) != set(expected):
        print(f"mismatch: {what}: expected keys {sorted(expected)}, got {sorted(got)}")
        return False
    worst = 0.0
    for key, want in expected.items():
        have = got[key]
        if not isinstance(have, Tensor):
            print(f"mismatch: {what}: {key} should be a tensor, got {type(have).__name__}")
            return False
        if have.shape != want.shape:
            print(f"mismatch: {what}: {key} has shape {tuple(have.shape)}, expected {tuple(want.shape)}")
            return False
        error = float((have.detach().to(want.dtype) - want).abs().max())
        if not error <= tol:  # also catches NaN
            print(f"mismatch: {what}: max error {error:.3e} in {key} (tolerance {tol:g})")
            return False
        worst = max(worst, error)
    print(f"correct: {what} matches (max error {worst:.2e}, tolerance {tol:g})")
    return True


def check_inner_step(fn: Callable, seed: int = 0) -> bool:
    """``fn(params, grads, inner_lr) -> params``: one SGD step ``φ − α g`` on dicts (book eq. 2.2)."""
    g = torch.Generator().manual_seed(seed)
    params, grads = _random_params(g), _random_params(g)
    inner_lr = 0.1 + float(torch.rand((), generator=g))
    expected = {k: p - inner_lr * grads[k] for k, p in params.items()}
    got = fn({k: v.clone() for k, v in params.items()}, {k: v.clone() for k, v in grads.items()}, inner_lr)
    return _compare("one inner SGD step", got, expected, 1e-10)


def check_reptile_update(fn: Callable, seed: int = 0) -> bool:
    """``fn(theta, adapted, outer_lr) -> theta_new``: ``θ + ε · mean_t(φ_t − θ)``.

    ``adapted`` is a list of dicts, one ``φ_t`` per task.
    """
    g = torch.Generator().manual_seed(seed)
    theta = _random_params(g)
    adapted = [_random_params(g) for _ in range(3)]
    outer_lr = 0.1 + 0.5 * float(torch.rand((), generator=g))
    expected = {k: v + outer_lr * sum(phi[k] - v for phi in adapted) / len(adapted) for k, v in theta.items()}
    got = fn({k: v.clone() for k, v in theta.items()}, [{k: v.clone() for k, v in phi.items()} for phi in adapted],
             outer_lr)
    return _compare("the Reptile update", got, expected, 1e-10)


def check_conjugate_gradient(fn: Callable, seed: int = 0) -> bool:
    """``fn(matvec, b, steps) -> x``: conjugate gradient for ``A x = b``, ``A`` SPD, ``b (P,)``.

    Run with ``steps = P`` on a well-conditioned ``8 × 8`` system, so a correct CG
    solves it to round-off; compared with ``torch.linalg.solve`` (the reference
    `mamlbook.hessian.conjugate_gradient` agrees to ~1e-12). Returning ``(x, residual)``
    is accepted too.
    """
    g = torch.Generator().manual_seed(seed)
    n = 8
    q = torch.randn(n, n, generator=g, dtype=_DTYPE)
    a = q @ q.T / n + torch.eye(n, dtype=_DTYPE)
    b = torch.randn(n, generator=g, dtype=_DTYPE)
    expected = torch.linalg.solve(a, b)
    return _compare("conjugate gradient on an 8x8 SPD system", fn(lambda v: a @ v, b.clone(), n), expected, 1e-6)


def check_maml_one_step_gradient(fn: Callable, seed: int = 0) -> bool:
    """``fn(hessian_support, grad_query, inner_lr) -> meta_gradient``: ``(I − α H) g`` (one inner step).

    ``hessian_support`` is ``∇²L_support(θ)`` ``(P, P)``, ``grad_query`` is ``∇L_query(θ′)``
    ``(P,)``; the result is ``(P,)``.
    """
    g = torch.Generator().manual_seed(seed)
    p = 6
    m = torch.randn(p, p, generator=g, dtype=_DTYPE)
    hess = (m + m.T) / 2
    grad_query = torch.randn(p, generator=g, dtype=_DTYPE)
    inner_lr = 0.05 + 0.1 * float(torch.rand((), generator=g))
    expected = grad_query - inner_lr * hess @ grad_query
    return _compare("the one-step MAML meta-gradient", fn(hess.clone(), grad_query.clone(), inner_lr), expected, 1e-10)


def check_hessian_vector_product(fn: Callable, seed: int = 0) -> bool:
    """``fn(f, x, v) -> H v`` for a scalar function ``f`` of a vector ``x (P,)``, ``H = ∇²f(x)``."""
    g = torch.Generator().manual_seed(seed)
    p = 5
    w = torch.randn(p, p, generator=g, dtype=_DTYPE)
    x = torch.randn(p, generator=g, dtype=_DTYPE)
    v = torch.randn(p, generator=g, dtype=_DTYPE)

    def f(z: Tensor) -> Tensor:
        return torch.tanh(w @ z).square().sum() + (z ** 3).sum() / 3

    expected = torch.func.hessian(f)(x) @ v
    return _compare("the Hessian-vector product", fn(f, x.clone(), v.clone()), expected, 1e-8)

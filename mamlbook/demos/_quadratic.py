"""Quadratic task losses in two dimensions, written as tasks the package's methods accept.

A task loss ``L(w) = ½ (w − c)ᵀ A (w − c)`` (``A`` 2×2 symmetric positive semi-definite)
is exactly the mean squared error of the linear model ``y = xᵀw`` on two points: with
inputs ``X = A^{1/2}`` (rows ``x_1, x_2``) and targets ``y = X c``,

    1/2 Σ_j (x_jᵀ w − y_j)² = ½ ‖X (w − c)‖² = ½ (w − c)ᵀ A (w − c).

So `mamlbook.get_method(name)` run on `Linear2` and `task_batch(As, cs)` computes the
methods' updates on these quadratics, with no special code path; the demos compare
that with the closed forms below. The query set equals the support set (one loss per task).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .. import checks
from ..tasks import TaskBatch

# The demos' two tasks: different curvatures and minima.
A_TASKS = ((( 1.0, 0.0), (0.0, 0.25)), ((0.35, 0.3), (0.3, 1.2)))
C_TASKS = ((1.0, 1.0), (-1.0, 1.5))


class Linear2(nn.Module):
    """``y = xᵀw`` with two parameters ``w (2,)``; accepts task-batched ``w (T, 2)``.

    Input ``(N, 2)`` or ``(T, N, 2)``; output ``(N, 1)`` or ``(T, N, 1)``.
    """

    task_batched = True  # see mamlbook.functional.task_forward

    def __init__(self, w=(0.0, 0.0)):
        super().__init__()
        self.w = nn.Parameter(torch.as_tensor(w, dtype=torch.float64).clone())

    def forward(self, x: Tensor) -> Tensor:
        if self.w.ndim == 2:
            return torch.bmm(x, self.w.unsqueeze(-1))
        return (x @ self.w).unsqueeze(-1)


def tasks() -> tuple[Tensor, Tensor]:
    """The demos' task curvatures ``A (T, 2, 2)`` and minima ``c (T, 2)`` (float64)."""
    return torch.tensor(A_TASKS, dtype=torch.float64), torch.tensor(C_TASKS, dtype=torch.float64)


def task_batch(As: Tensor, cs: Tensor) -> TaskBatch:
    """The `TaskBatch` whose MSE (with `Linear2`) is ``½ (w − c_t)ᵀ A_t (w − c_t)`` for each task."""
    checks.tensor("As", As, ndim=3)
    checks.tensor("cs", cs, ndim=2)
    if As.shape[1:] != (2, 2) or cs.shape != (As.shape[0], 2):
        raise ValueError(f"As must be (T, 2, 2) and cs (T, 2), got {tuple(As.shape)} and {tuple(cs.shape)}")
    evals, evecs = torch.linalg.eigh(As)
    if bool((evals < -1e-12).any()):
        raise ValueError("As must be positive semi-definite (a quadratic task loss bounded below)")
    X = evecs @ torch.diag_embed(evals.clamp_min(0).sqrt()) @ evecs.transpose(1, 2)  # A^{1/2}, (T, 2, 2)
    y = (X @ cs.unsqueeze(-1))  # (T, 2, 1)
    return TaskBatch(X, y, X.clone(), y.clone())


def loss(w: Tensor, A: Tensor, c: Tensor) -> Tensor:
    """``½ (w − c)ᵀ A (w − c)``: ``w (..., 2)``, one task ``A (2, 2)``, ``c (2,)`` → ``(...)``."""
    d = w - c
    return 0.5 * torch.einsum("...i,ij,...j->...", d, A, d)


def grad(w: Tensor, A: Tensor, c: Tensor) -> Tensor:
    """``A (w − c)``, ``(..., 2)``."""
    return (w - c) @ A.T


def sgd_path(theta: Tensor, A: Tensor, c: Tensor, inner_lr: float, inner_steps: int) -> Tensor:
    """``φ_0 = θ``, ``φ_i = φ_{i−1} − α A (φ_{i−1} − c)``; returns ``(inner_steps + 1, 2)``."""
    path = [theta]
    for _ in range(inner_steps):
        path.append(path[-1] - inner_lr * grad(path[-1], A, c))
    return torch.stack(path)


def params(theta) -> dict[str, Tensor]:
    """``θ`` as the params dict of `Linear2`."""
    return {"w": torch.as_tensor(theta, dtype=torch.float64).clone()}

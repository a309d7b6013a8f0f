"""Checks for the chapters' exercises: run the reader's function against the package's.

Each ``check_*`` function calls the reader's ``fn`` on random float64 inputs (fixed
seed), compares with the reference implementation, prints ``correct`` or
``mismatch: ...`` saying what differs, and returns ``True``/``False``. A wrong answer
never raises; an exception inside the reader's own code does, with its traceback.

>>> from mamlbook.exercises import check_inner_step
>>> check_inner_step(
...     lambda params, grads, lr: {k: p - lr * grads[k] for k, p in params.items()}
... )
correct: one inner SGD step matches (max error 0.00e+00, tolerance 1e-10)
True
"""
from __future__ import annotations

import functools
from collections.abc import Callable

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


def _own_code(what: str, fn) -> bool:
    """False, with a message, when ``fn`` is one of the package's own functions: the
    exercise asks for the reader's implementation, and the package's would pass every check."""
    target = getattr(fn, "func", fn)  # a functools.partial of it, too
    module = getattr(target, "__module__", None) or ""
    if module == "mamlbook" or module.startswith("mamlbook."):
        name = getattr(target, "__qualname__", repr(target))
        print(f"mismatch: {what}: {name} is the package's own function ({module}); the exercise asks "
              "for your implementation")
        return False
    return True


def _readers_function(what: str):
    """Decorator of a checker whose first argument is the reader's function: the package's
    own function handed in as the answer is refused (`_own_code`) before the check runs."""
    def decorate(check: Callable) -> Callable:
        @functools.wraps(check)
        def guarded(fn: Callable, *args, **kwargs) -> bool:
            if not callable(fn):  # e.g. None: Otter passes None for a name the notebook never defined
                print(f"mismatch: {what}: expected your function, got {fn!r}; run the cell that defines "
                      "it (the stub's `def`) before the check")
                return False
            return _own_code(what, fn) and check(fn, *args, **kwargs)
        return guarded
    return decorate


@_readers_function("one inner SGD step")
def check_inner_step(fn: Callable, seed: int = 0) -> bool:
    """``fn(params, grads, inner_lr) -> params``: one SGD step ``φ − α g`` on dicts (book eq. 2.2)."""
    g = torch.Generator().manual_seed(seed)
    params, grads = _random_params(g), _random_params(g)
    inner_lr = 0.1 + float(torch.rand((), generator=g))
    expected = {k: p - inner_lr * grads[k] for k, p in params.items()}
    got = fn({k: v.clone() for k, v in params.items()}, {k: v.clone() for k, v in grads.items()}, inner_lr)
    return _compare("one inner SGD step", got, expected, 1e-10)


@_readers_function("the Reptile update")
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


@_readers_function("conjugate gradient")
def check_conjugate_gradient(fn: Callable, seed: int = 0) -> bool:
    """``fn(matvec, b, steps) -> x``: conjugate gradient for ``A x = b``, ``A`` SPD, ``b (P,)``.

    Two ``8 × 8`` systems. With ``steps = P`` on a well-conditioned one, a correct CG
    solves it to round-off: compared with ``torch.linalg.solve``. With ``steps = 3`` on
    one whose eigenvalues spread over 1-100, CG from ``x₀ = 0`` is the minimiser of the
    ``A``-norm error over the Krylov space ``span{b, Ab, A²b}`` (its defining
    property), computed here by a Galerkin solve in an orthonormal basis of that space,
    not by CG: a direct solve, or a method that ignores ``steps``, does not pass.
    Returning ``(x, residual)`` is accepted too.
    """
    g = torch.Generator().manual_seed(seed)
    n = 8
    q = torch.randn(n, n, generator=g, dtype=_DTYPE)
    a = q @ q.T / n + torch.eye(n, dtype=_DTYPE)
    b = torch.randn(n, generator=g, dtype=_DTYPE)
    expected = torch.linalg.solve(a, b)
    if not _compare("conjugate gradient on an 8x8 SPD system, 8 steps",
                    fn(lambda v: a @ v, b.clone(), n), expected, 1e-6):
        return False
    basis, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=_DTYPE))
    a = basis @ torch.diag(torch.logspace(0, 2, n, dtype=_DTYPE)) @ basis.T  # κ = 100
    steps = 3
    krylov, _ = torch.linalg.qr(torch.stack([torch.linalg.matrix_power(a, j) @ b for j in range(steps)], 1))
    expected = krylov @ torch.linalg.solve(krylov.T @ a @ krylov, krylov.T @ b)
    return _compare(f"conjugate gradient after {steps} steps on an 8x8 SPD system with κ = 100",
                    fn(lambda v: a @ v, b.clone(), steps), expected, 1e-6)


@_readers_function("the one-step MAML meta-gradient")
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


@_readers_function("the Hessian-vector product")
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


def _is_number(value) -> bool:
    if isinstance(value, Tensor):
        return value.numel() == 1 and value.is_floating_point()
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_pooled_mse(value, seed: int = 0) -> bool:
    """``value``: the closed-form MSE of the pooled predictor of eq. (1.2) on the book's sinusoids.

    The reference is the exact integral over the book's task distribution (``A ~ U(0.1, 5)``,
    ``φ ~ U(0, π)``, ``x ~ U(−5, 5)``); a numerical average over a fine grid of ``x`` is
    within the tolerance ``1e-3``, a Monte Carlo estimate from the chapter's samples is not.
    """
    import math

    if not _is_number(value):
        print(f"mismatch: the pooled MSE: expected a number, got {type(value).__name__}")
        return False
    low, high = 0.1, 5.0
    ea, ea2 = (low + high) / 2, (high**3 - low**3) / (3 * (high - low))
    expected = ea2 / 2 - (2 * ea / math.pi) ** 2 * (0.5 + math.sin(10.0) / 20)
    error = abs(float(value) - expected)
    if not error <= 1e-3:
        print(f"mismatch: the pooled MSE: {float(value):.4f} is not within 1e-3 of the reference value "
              "(the exercise asks for the closed form: a Monte Carlo estimate from samples is not this precise)")
        return False
    print(f"correct: the pooled MSE matches (error {error:.1e}, tolerance 1e-3)")
    return True


def check_meta_batch_shapes(shapes: dict, seed: int = 0) -> bool:
    """``shapes``: ``{"x_support": ..., "y_support": ..., "x_query": ..., "y_query": ...}`` for a
    sinusoid meta-batch of 8 tasks, 10 support and 15 query points (tuples or ``torch.Size``).

    Compared with what ``mb.SinusoidTasks().sample(8, 10, 15, dtype=torch.float64)`` returns.
    """
    from .tasks import SinusoidTasks

    tasks = SinusoidTasks().sample(8, 10, 15, generator=torch.Generator().manual_seed(seed), dtype=_DTYPE)
    expected = {name: tuple(getattr(tasks, name).shape) for name in ("x_support", "y_support", "x_query", "y_query")}
    if not isinstance(shapes, dict) or set(shapes) != set(expected):
        got = sorted(shapes) if isinstance(shapes, dict) else type(shapes).__name__
        print(f"mismatch: the meta-batch shapes: expected a dict with keys {sorted(expected)}, got {got}")
        return False
    for name, want in expected.items():
        try:
            have = tuple(int(n) for n in shapes[name])
        except TypeError:
            print(f"mismatch: the meta-batch shapes: {name} should be a tuple of ints, got {shapes[name]!r}")
            return False
        if have != want:  # what was given, not the answer (the exercise asks for the shape)
            print(f"mismatch: the meta-batch shapes: {name} is not {have}")
            return False
    print("correct: the four shapes match")
    return True


@_readers_function("the proximal Jacobian")
def check_proximal_jacobian(fn: Callable, seed: int = 0) -> bool:
    """``fn(H, lam) -> (n, n)``: the reader's closed form of ``dφ*/dθ`` for the proximal
    problem of eq. (6.1) on a quadratic task ``L(φ) = ½ (φ − c)ᵀ H (φ − c)`` (``H (n, n)``
    symmetric positive definite, float64; ``lam > 0``).

    Checked on chapter 06's task (``imaml_lambda.task()``, ``λ = 0.5``) and on random SPD
    matrices of 3 and 5 dimensions at ``λ = 0.1`` and ``4``: a function right for one
    matrix only (the chapter's figure's Jacobian handed back) fails. The reference solves
    the stationarity condition ``H(φ − c) + λ(φ − θ) = 0`` with ``torch.linalg.solve``
    and differentiates that solution with autograd (``torch.func.jacrev``), so no formula
    of the chapter is reused.
    """
    from .demos import imaml_lambda

    g = torch.Generator().manual_seed(seed)
    cases = [(imaml_lambda.task()[0].detach().to(_DTYPE), 0.5)]
    for n, lam in ((3, 0.1), (5, 4.0)):
        q = torch.randn(n, n, generator=g, dtype=_DTYPE)
        cases.append((q @ q.T / n + 0.1 * torch.eye(n, dtype=_DTYPE), lam))
    for a, lam in cases:
        n = a.shape[0]
        c = torch.randn(n, generator=g, dtype=_DTYPE)
        theta = torch.randn(n, generator=g, dtype=_DTYPE)

        def solution(t: Tensor, a=a, c=c, lam=lam) -> Tensor:
            return torch.linalg.solve(a + lam * torch.eye(n, dtype=_DTYPE), a @ c + lam * t)

        expected = torch.func.jacrev(solution)(theta)
        what = f"the proximal Jacobian ({n}x{n} task, lambda = {lam:g})"
        if not _compare(what, fn(a.clone(), lam), expected, 1e-8):
            return False
    return True


def underdetermined_design(points: int = 2, inputs: int = 4, seed: int = 0) -> Tensor:
    """The design matrix ``(points, inputs + 1)`` of chapter 06's underdetermined
    regression: standard normal inputs (``torch.Generator().manual_seed(seed)``, float64)
    and a column of ones for the bias, as the chapter's ``design`` builds it."""
    x = torch.randn(points, inputs, generator=torch.Generator().manual_seed(seed), dtype=_DTYPE)
    return torch.cat([x, torch.ones(points, 1, dtype=_DTYPE)], -1)


def check_null_space_projector(projector, design: Tensor | None = None) -> bool:
    """``projector``: the limit of ``(I + H/λ)⁻¹`` as ``λ → 0`` for ``H ∝ Xᵀ X``, ``X = design``
    ``(N, P)`` (the matrix chapter 06's exercise asks for).

    ``design=None``: the exercise's, `underdetermined_design()` (what the grader uses,
    whatever the notebook holds). The reference is built from an SVD of ``X``,
    independently of ``torch.linalg.pinv``.
    """
    if design is None:
        design = underdetermined_design()
    x = design.detach().to(_DTYPE)
    _, s, vh = torch.linalg.svd(x, full_matrices=True)
    rank = int((s > s.max() * 1e-10).sum())
    null = vh[rank:].T
    expected = null @ null.T
    return _compare("the null-space projector", projector, expected, 1e-6)


def check_prototype_accuracy(accuracy, tasks) -> bool:
    """``accuracy (T,)``: per-task accuracy of the pixel-space prototype classifier on ``tasks``.

    Each class is represented by the mean of its support images (flattened pixels); a query
    image gets the label of the prototype with the largest cosine similarity. The reference
    loops over tasks and classes with the labels of ``tasks.y_support`` (no assumption
    about the order of the support images).
    """
    expected = []
    for t in range(tasks.num_tasks):
        xs = tasks.x_support[t].flatten(1).to(_DTYPE)
        ys = tasks.y_support[t]
        xq = tasks.x_query[t].flatten(1).to(_DTYPE)
        classes = torch.unique(ys)
        protos = torch.stack([xs[ys == k].mean(0) for k in classes])
        sim = torch.nn.functional.cosine_similarity(xq[:, None, :], protos[None, :, :], dim=-1)
        predicted = classes[sim.argmax(1)]
        expected.append((predicted == tasks.y_query[t]).to(_DTYPE).mean())
    expected = torch.stack(expected).cpu()
    what = "the prototype classifier's per-task accuracy"
    if not isinstance(accuracy, Tensor) or accuracy.shape != expected.shape:
        got = tuple(accuracy.shape) if isinstance(accuracy, Tensor) else type(accuracy).__name__
        print(f"mismatch: {what}: expected a tensor of shape {tuple(expected.shape)}, got {got}")
        return False
    # float32 and float64 may break a near-tie differently: one query image per task may differ.
    one_image = 1 / tasks.y_query.shape[1]
    error = (accuracy.detach().cpu().to(_DTYPE) - expected).abs()
    if not (error.max() <= one_image + 1e-6 and error.mean() <= 1e-3):
        print(f"mismatch: {what}: mean {float(accuracy.double().mean()):.4f} differs from the reference's "
              f"(largest per-task difference {float(error.max()):.3f})")
        return False
    print(f"correct: {what} matches (mean {float(expected.mean()):.4f}; largest per-task "
          f"difference {float(error.max()):.3f}, one query image is {one_image:.3f})")
    return True


@_readers_function("ANIL's inner loop")
def check_anil_inner_loop(fn: Callable, seed: int = 0) -> bool:
    """``fn(features, labels, weight, bias, inner_lr, steps) -> (weight, bias)``: ANIL's inner loop (eq. 10.1).

    One task: ``features (M, F)`` of its ``M`` support images (the body's output, fixed),
    integer ``labels (M,)``, a linear head ``weight (N, F)``, ``bias (N,)``; ``steps``
    gradient steps of size ``inner_lr`` on the mean cross-entropy of
    ``features @ weight.T + bias``. The reference writes the gradient of the softmax
    cross-entropy out by hand (``(p − onehot)ᵀ features / M``), not with autograd. Two
    settings: 3 steps of 0.5, and one step of a random size (an answer that fixes
    either does not pass).
    """
    g = torch.Generator().manual_seed(seed)
    m, f, n = 10, 6, 5  # support images, features, classes
    features = torch.randn(m, f, generator=g, dtype=_DTYPE)
    labels = torch.arange(m) % n
    weight, bias = 0.3 * torch.randn(n, f, generator=g, dtype=_DTYPE), 0.1 * torch.randn(n, generator=g, dtype=_DTYPE)
    onehot = torch.nn.functional.one_hot(labels, n).to(_DTYPE)
    for inner_lr, steps in ((0.5, 3), (0.2 + 0.5 * float(torch.rand((), generator=g)), 1)):
        w, b = weight.clone(), bias.clone()
        for _ in range(steps):
            residual = (features @ w.T + b).softmax(-1) - onehot  # d(mean CE)/d logits, times M
            w, b = w - inner_lr * residual.T @ features / m, b - inner_lr * residual.mean(0)
        got = fn(features.clone(), labels.clone(), weight.clone(), bias.clone(), inner_lr, steps)
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            print(f"mismatch: ANIL's inner loop: expected a pair (weight, bias), got {type(got).__name__}")
            return False
        if not _compare(f"ANIL's inner loop ({steps} step{'s' * (steps > 1)} of {inner_lr:.3g} on the head)",
                        {"weight": got[0], "bias": got[1]}, {"weight": w, "bias": b}, 1e-10):
            return False
    return True


@_readers_function("the Meta-SGD gradient")
def check_meta_sgd_gradient(fn: Callable, seed: int = 0) -> bool:
    """``fn(hessian, grad_support, grad_query, step_sizes, inner_lr) -> (d_theta, d_s)``: eq. (10.3).

    One task, one inner step ``φ = θ − α s ⊙ g``: ``hessian`` ``∇²L_support(θ)`` ``(P, P)``,
    ``grad_support`` ``g = ∇L_support(θ)`` ``(P,)``, ``grad_query`` ``∇L_query(φ)``
    ``(P,)``, ``step_sizes`` ``s`` ``(P,)``. The reference differentiates
    ``q·(θ − α s ⊙ g(θ))`` with a linear ``g(θ) = g + H(θ − θ₀)`` by autograd, so it
    does not repeat the formula.
    """
    g = torch.Generator().manual_seed(seed)
    p = 6
    m = torch.randn(p, p, generator=g, dtype=_DTYPE)
    hessian = m @ m.T / p
    grad_support, grad_query = torch.randn(p, generator=g, dtype=_DTYPE), torch.randn(p, generator=g, dtype=_DTYPE)
    step_sizes = 0.5 + torch.rand(p, generator=g, dtype=_DTYPE)
    inner_lr = 0.1 + 0.2 * float(torch.rand((), generator=g))
    theta = torch.zeros(p, dtype=_DTYPE, requires_grad=True)
    s = step_sizes.clone().requires_grad_()
    phi = theta - inner_lr * s * (grad_support + hessian @ theta)
    d_theta, d_s = torch.autograd.grad(grad_query @ phi, [theta, s])  # linear query loss: its gradient is q
    got = fn(hessian.clone(), grad_support.clone(), grad_query.clone(), step_sizes.clone(), inner_lr)
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        print(f"mismatch: Meta-SGD's meta-gradient: expected a pair (d_theta, d_s), got {type(got).__name__}")
        return False
    return _compare("Meta-SGD's one-step meta-gradient (eq. 10.3)", {"d_theta": got[0], "d_s": got[1]},
                    {"d_theta": d_theta, "d_s": d_s}, 1e-10)

"""Measurements the chapters make on the algorithms: memory kept for backward, time per
call, and how well two meta-gradients agree (during training, too).

* `saved_tensor_memory`: run a function and count the tensors autograd saves for the
  backward pass (``torch.autograd.graph.saved_tensors_hooks``): how many, how many
  bytes, and the *peak* of the bytes alive at one time. For second-order MAML the peak
  grows linearly with the number of inner steps; for first-order MAML it does not
  (Hessian chapter, eq. 3.4, and first-order chapter, eq. 4.1).
* `time_per_call`: wall time of a call, the minimum (or median) over repeats.
* `top_eigenvalue`: the largest eigenvalue of a positive semi-definite matrix (power
  iteration), e.g. of the Gauss-Newton matrix; `gauss_newton_top_eigenvalue`: that of
  the MSE's Gauss-Newton term of a network on one task, without forming ``P × P``.
* `gradient_agreement`: cosine similarity and norm ratio of two gradients.
* `agreement_during_training`: meta-train with one method and, every few iterations,
  compare its meta-gradient with another method's on the *same* meta-batch.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

import torch
from torch import Tensor, nn

from . import checks
from .algorithms import get_method
from .functional import Params, flatten_params, parameters_of, unflatten_params


# --------------------------------------------------------------------------------------
# Memory: the tensors autograd saves for backward
# --------------------------------------------------------------------------------------


@dataclass
class SavedTensorStats:
    """What autograd saved for backward while a function ran.

    Attributes
    ----------
    count : number of tensors saved (every save counts, also repeated saves of one
        tensor).
    total_bytes : bytes of all saves, each distinct storage counted once per time it
        became alive (what autograd asked to keep over the whole call).
    peak_bytes : the largest number of bytes kept alive *at one time* (distinct storages
        only). This is the memory the autograd graph holds on to; once a backward pass
        has used a part of the graph, its saved tensors are released.
    """

    count: int = 0
    total_bytes: int = 0
    peak_bytes: int = 0
    _live: dict = field(
        default_factory=dict, repr=False
    )  # storage key -> [references, bytes]
    _live_bytes: int = field(default=0, repr=False)

    def _save(self, t: Tensor) -> tuple:
        self.count += 1
        try:
            storage = t.untyped_storage()
            key, nbytes = (str(t.device), storage.data_ptr()), storage.nbytes()
        except (
            RuntimeError,
            NotImplementedError,
        ):  # tensors without a plain storage: count their elements
            key, nbytes = ("id", id(t)), t.numel() * t.element_size()
        entry = self._live.get(key)
        if entry is None:
            self._live[key] = [1, nbytes]
            self._live_bytes += nbytes
            self.total_bytes += nbytes
            self.peak_bytes = max(self.peak_bytes, self._live_bytes)
        else:
            entry[0] += 1
        return key

    def _release(self, key: tuple) -> None:
        entry = self._live.get(key)
        if entry is None:
            return
        entry[0] -= 1
        if entry[0] == 0:
            self._live_bytes -= entry[1]
            del self._live[key]


class _Saved:
    """The packed form of a saved tensor: holds it and tells the stats when autograd
    drops it."""

    __slots__ = ("tensor", "key", "stats")

    def __init__(self, tensor: Tensor, stats: SavedTensorStats):
        self.tensor, self.stats = tensor, stats
        self.key = stats._save(tensor)

    def __del__(self):
        self.stats._release(self.key)


def saved_tensor_memory(
    fn: Callable[..., Any], *args, **kwargs
) -> tuple[Any, SavedTensorStats]:
    """Run ``fn(*args, **kwargs)`` and measure the tensors autograd saves for backward.

    Every tensor an operation saves for its backward pass (in the forward, and in a
    backward run with ``create_graph=True``, which builds the graph of the "gradient of
    a gradient") goes through a pack hook that counts it; when autograd frees that part
    of the graph the count goes down again. The result is unchanged by the measurement
    (the tests check gradients with and without it).

    Returns
    -------
    (fn's result, `SavedTensorStats`). Storage shared by several saves (a weight saved
    by two operations, a view of a parameter) is counted once while it is alive. Model
    parameters and data that happen to be saved count too: they are small next to the
    activations of a meta-batch.

    Example
    -------
    >>> step, stats = saved_tensor_memory(
    ...     get_method("maml"), model, params, tasks, inner_lr=0.01, inner_steps=5
    ... )
    >>> stats.peak_bytes
    """
    stats = SavedTensorStats()
    with torch.autograd.graph.saved_tensors_hooks(
        lambda t: _Saved(t, stats), lambda s: s.tensor
    ):
        result = fn(*args, **kwargs)
    return result, stats


# --------------------------------------------------------------------------------------
# Time
# --------------------------------------------------------------------------------------


def time_per_call(
    fn: Callable[[], Any], repeats: int = 10, warmup: int = 1, statistic: str = "min"
) -> float:
    """Seconds per call of ``fn()``: the minimum (default) or median over ``repeats``
    timed calls.

    ``warmup`` untimed calls come first (caches, lazy initialisation). On a CPU shared
    with other processes, interference only ever *adds* time, so the minimum is the
    most reproducible estimate of a call's own cost; the median describes a typical
    call under the current load. A CUDA device is synchronised before each clock
    reading.
    """
    checks.positive_int("repeats", repeats)
    checks.int_in_range("warmup", warmup, 0)
    checks.one_of("statistic", statistic, {"min", "median"})
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return min(times) if statistic == "min" else statistics.median(times)


# --------------------------------------------------------------------------------------
# Curvature: the top eigenvalue of a positive semi-definite matrix
# --------------------------------------------------------------------------------------


def top_eigenvalue(
    matrix: Tensor | Callable[[Tensor], Tensor],
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
    required.
    Returns the Rayleigh quotient ``vᵀAv`` of the last unit iterate. For an indefinite
    matrix power iteration finds the eigenvalue of largest *magnitude*, which may be
    negative, and converges slowly when the two largest magnitudes are close: use
    ``torch.linalg.eigvalsh`` there.
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
        matvec = matrix
    else:
        raise TypeError(
            "matrix must be a square tensor or a function v -> A v, "
            f"got {type(matrix).__name__}"
        )
    v = torch.randn(size, generator=generator, dtype=dtype).to(device)
    v = v / v.norm()
    value = 0.0
    for _ in range(iterations):
        w = matvec(v)
        value = float(v @ w)
        norm = float(w.norm())
        if norm == 0.0:
            return 0.0
        v = w / norm
    return value


def gauss_newton_top_eigenvalue(model: nn.Module, params: Params, x: Tensor) -> float:
    """Largest eigenvalue of the Gauss-Newton term of the mean squared error at
    ``params``.

    For ``L = 1/n Σ_n (M_n − y_n)²`` over the ``n`` outputs of ``model`` on one task's
    inputs ``x (N, ...)``, the Gauss-Newton term is ``G = (2/n) JᵀJ`` with ``J (n, P)``
    the Jacobian of the outputs (`mamlbook.hessian.gauss_newton_split`, Hessian
    chapter eq. 3.5). It does not depend on the targets. Its non-zero eigenvalues are
    those of the small ``n × n`` matrix ``(2/n) J Jᵀ``, which is what is diagonalised
    here, so this is cheap even when ``P × P`` matrices are not. ``α`` times this value
    above 1 means one inner step of size ``α`` over-corrects along that direction.
    """
    checks.tensor("x", x)
    like = {k: v.detach() for k, v in params.items()}

    def outputs(w: Tensor) -> Tensor:
        return torch.func.functional_call(
            model, unflatten_params(w, like), (x,)
        ).reshape(-1)

    jac = torch.func.jacrev(outputs)(flatten_params(like))
    return float(torch.linalg.eigvalsh(2.0 / jac.shape[0] * jac @ jac.T)[-1])


# --------------------------------------------------------------------------------------
# Agreement of two gradients
# --------------------------------------------------------------------------------------


class GradientAgreement(NamedTuple):
    """``cosine = ⟨a, b⟩ / (‖a‖‖b‖)`` and ``norm_ratio = ‖b‖ / ‖a‖`` (``a`` is the
    reference)."""

    cosine: float
    norm_ratio: float


def _flat(g: Params | Tensor, name: str) -> Tensor:
    if isinstance(g, dict):
        if not g:
            raise ValueError(f"{name} must be a non-empty dict of tensors or a tensor")
        return flatten_params({k: v.detach() for k, v in g.items()})
    checks.tensor(name, g, finite=False)
    return g.detach().reshape(-1)


def gradient_agreement(
    reference: Params | Tensor, other: Params | Tensor
) -> GradientAgreement:
    """How well ``other`` (e.g. the first-order meta-gradient) agrees with
    ``reference`` (exact).

    Both are dicts of tensors with the same keys and shapes (as in `MetaStep.grads`) or
    tensors of one shape. The cosine is 1 for the same direction, 0 for orthogonal
    directions, −1 for opposite ones; the norm ratio is ``‖other‖ / ‖reference‖``.
    Cosine and ratio are ``nan`` if a gradient is exactly zero.
    """
    if (
        isinstance(reference, dict)
        and isinstance(other, dict)
        and set(reference) != set(other)
    ):
        raise ValueError(
            "reference and other must have the same keys, "
            f"got {sorted(reference)} and {sorted(other)}"
        )
    a = _flat(reference, "reference").double()
    b = _flat(other, "other").double()
    if a.shape != b.shape:
        raise ValueError(
            "reference and other must have the same number of entries, "
            f"got {a.numel()} and {b.numel()}"
        )
    na, nb = float(a.norm()), float(b.norm())
    if na == 0.0 or nb == 0.0:
        return GradientAgreement(math.nan, math.nan if na == 0.0 else math.inf)
    return GradientAgreement(float(a @ b) / (na * nb), nb / na)


@dataclass
class AgreementHistory:
    """`agreement_during_training`'s record: one entry per probe (iteration
    ``0, every, 2·every, ...``)."""

    reference: str
    other: str
    iterations: list[int] = field(default_factory=list)
    cosine: list[float] = field(default_factory=list)
    norm_ratio: list[float] = field(default_factory=list)
    meta_loss: list[float] = field(
        default_factory=list
    )  # of the trained method, at every iteration
    seconds: float = 0.0


def agreement_during_training(
    model: nn.Module,
    family,
    *,
    iterations: int,
    every: int,
    generator: torch.Generator,
    train_method: str = "maml",
    reference: str = "maml",
    other: str = "fomaml",
    meta_batch_size: int = 25,
    support_shots: int = 10,
    query_shots: int = 10,
    inner_lr: float = 0.01,
    inner_steps: int = 1,
    outer_lr: float = 1e-3,
    device=None,
) -> AgreementHistory:
    """Meta-train ``model`` in place with ``train_method`` (Adam) and watch two
    meta-gradients.

    At iterations ``0, every, 2·every, …`` both ``reference`` and ``other`` (registered
    method names, e.g. ``"maml"`` and ``"fomaml"``) compute their meta-gradient at the
    current ``θ`` on the meta-batch of that iteration, and `gradient_agreement` compares
    them. The update itself is ``train_method``'s, exactly as in `mamlbook.meta_train`
    (same sampling order, same optimizer), so the run with ``every`` larger than
    ``iterations`` is an ordinary training run.
    """
    checks.positive_int("iterations", iterations)
    checks.positive_int("every", every)
    checks.positive_int("meta_batch_size", meta_batch_size)
    checks.positive_float("outer_lr", outer_lr)
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator, got {type(generator).__name__}"
        )
    train_fn, ref_fn, other_fn = (
        get_method(train_method),
        get_method(reference),
        get_method(other),
    )
    params = parameters_of(model)
    device = device if device is not None else next(iter(params.values())).device
    opt = torch.optim.Adam(params.values(), lr=outer_lr)
    history = AgreementHistory(reference=reference, other=other)
    settings = dict(inner_lr=inner_lr, inner_steps=inner_steps)
    start = time.perf_counter()
    for it in range(iterations):
        tasks = family.sample(
            meta_batch_size,
            support_shots,
            query_shots,
            generator=generator,
            device=device,
        )
        step = train_fn(model, params, tasks, **settings)
        if it % every == 0:
            ref_step = (
                step
                if reference == train_method
                else ref_fn(model, params, tasks, **settings)
            )
            other_step = (
                step
                if other == train_method
                else other_fn(model, params, tasks, **settings)
            )
            agreement = gradient_agreement(ref_step.grads, other_step.grads)
            history.iterations.append(it)
            history.cosine.append(agreement.cosine)
            history.norm_ratio.append(agreement.norm_ratio)
        loss = float(step.meta_loss)
        if not math.isfinite(loss):
            raise checks.DivergenceError(
                f"meta-loss is {loss} at iteration {it} of {train_method}: "
                "training diverged. "
                f"Try a smaller outer_lr (now {outer_lr}) or inner_lr (now {inner_lr})."
            )
        for name, p in params.items():
            p.grad = step.grads[name]
        opt.step()
        history.meta_loss.append(loss)
    history.seconds = time.perf_counter() - start
    return history

"""Measurements the chapters make on the algorithms: memory kept for backward, time per
call, and how well two meta-gradients agree (also during training).

* `saved_tensor_memory`: run a function and count the tensors autograd saves for the
  backward pass (``torch.autograd.graph.saved_tensors_hooks``): how many, how many
  bytes, and the *peak* of the bytes alive at one time (`SavedTensorStats`). For
  second-order MAML the peak grows linearly with the number of inner steps; for
  first-order MAML, Reptile and iMAML it does not (Hessian chapter, eq. 3.4;
  first-order chapter, eq. 4.1; iMAML chapter, memory section).
* `time_per_call`: wall time of a call, the minimum (or median) over repeats.
* `gradient_agreement`: cosine similarity and norm ratio of two gradients.
* `AgreementProbe`: a callback of `mamlbook.meta_train` that, every few iterations,
  compares the meta-gradient being trained with another method's on the *same*
  meta-batch at the same ``θ``.

Curvature (Hessians, the Gauss-Newton top eigenvalue) is in `mamlbook.hessian`, power
iteration and conjugate gradient in `mamlbook.solvers`.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from . import checks
from .algorithms import get_method
from .functional import Params, flatten_params

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

    This is the part of memory that grows with the inner steps of second-order MAML
    (every step's activations and gradients stay in the graph: Hessian chapter,
    eq. 3.4) and stays constant for first-order MAML (eq. 4.1), Reptile and iMAML. It
    does not count temporaries freed before anything saves them, nor tensors the
    function holds outside a graph.

    Returns
    -------
    (fn's result, `SavedTensorStats`). Storage shared by several saves (a weight saved
    by two operations, a view of a parameter) is counted once while it is alive. Model
    parameters and data that happen to be saved count too: they are small next to the
    activations of a meta-batch.

    Example
    -------
    >>> step, stats = saved_tensor_memory(
    ...     mb.get_method("maml"), model, params, tasks, inner_lr=0.01, inner_steps=5
    ... )
    >>> stats.peak_bytes
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__} {fn!r}")
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
    The cosine is ``nan`` if either gradient is exactly zero; the ratio is then 0
    (``other`` zero), ``inf`` (``reference`` zero) or ``nan`` (both zero).
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
    if na == 0.0 or nb == 0.0:  # no direction to compare; the ratio is still ‖other‖ / ‖reference‖
        return GradientAgreement(math.nan, nb / na if na else (math.nan if nb == 0.0 else math.inf))
    return GradientAgreement(float(a @ b) / (na * nb), nb / na)


@dataclass
class AgreementProbe:
    """A `mamlbook.meta_train` callback: every ``every`` iterations, compare two
    meta-gradients at the current ``θ`` on the current meta-batch.

    ``other`` (a registered method name, e.g. ``"fomaml"``) is compared with
    ``reference``: by default (``None``) the meta-step being trained, else another
    method name computed here too. Both see the ``θ`` and the meta-batch of that
    iteration, before the update, with ``inner_lr``, ``inner_steps`` and ``options``
    (pass the values given to `meta_train`). The probe only reads: training is the
    same with and without it (tested). Records one entry per probe (iterations
    ``0, every, 2·every, ...``); `gradient_agreement` gives cosine and norm ratio.

    Example
    -------
    >>> probe = AgreementProbe(model, other="fomaml", every=20, inner_lr=0.01)
    >>> history = mb.meta_train(
    ...     model, family, iterations=1000, generator=g, callbacks=[probe]
    ... )
    >>> probe.iterations[:3], probe.cosine[:3]
    """

    model: nn.Module
    other: str = "fomaml"
    every: int = 1
    reference: str | None = None
    inner_lr: float = 0.01
    inner_steps: int = 1
    options: dict = field(default_factory=dict)
    iterations: list[int] = field(default_factory=list, init=False)
    cosine: list[float] = field(default_factory=list, init=False)
    norm_ratio: list[float] = field(default_factory=list, init=False)

    def __post_init__(self):
        checks.module("model", self.model)
        checks.positive_int("every", self.every)
        self._other = get_method(self.other)  # fails early on an unknown name
        self._reference = None if self.reference is None else get_method(self.reference)

    def __call__(self, iteration: int, params: Params, step, tasks) -> None:
        if iteration % self.every:
            return
        settings = {"inner_lr": self.inner_lr, "inner_steps": self.inner_steps}
        settings.update(self.options)
        reference = (
            step
            if self._reference is None
            else self._reference(self.model, params, tasks, **settings)
        )
        other = self._other(self.model, params, tasks, **settings)
        agreement = gradient_agreement(reference.grads, other.grads)
        self.iterations.append(iteration)
        self.cosine.append(agreement.cosine)
        self.norm_ratio.append(agreement.norm_ratio)

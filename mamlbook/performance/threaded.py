r"""The meta-batch split over threads of one process: the CPU's cores used by tasks, not by ops.

On a CPU the book's conv meta-step is a sequence of small kernels (a task's 5 support
images, its query images), each of which PyTorch spreads over all intra-op threads,
which so little work cannot keep busy. Tasks never interact
and every method's meta-gradient is a mean over tasks, so ``W`` threads can each take
a shard of the meta-batch (`TaskBatch.split`), each run the method on its own ``n_r``
tasks with *one* intra-op thread, and combine

    g = Σ_r (n_r / T) g_r        (``T = Σ_r n_r``),

the meta-gradient of the whole meta-batch (as `mamlbook.performance.distributed` does
across processes). The method's code is unchanged; autograd and the kernels release
the GIL, so the shards run in parallel.

Equal to the one-thread step up to the order of floating-point sums (tests in
tests/test_threaded.py, float64). ``benchmarks/conv_step.py`` measures it: on a
two-core CPU, 1.11× to 1.60× the plain per-task loop, 1.43× to 2.18× with
``ConvNet(channels_last=True)`` (the Performance appendix prints the table).
Models must be thread-safe: `mamlbook.models.ConvNet` and `mamlbook.models.SinusoidMLP`
run task-batched parameters without swapping them into the module
(``forward_with``), so they are; a module run through ``functional_call`` is not.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import nn

from .. import checks
from ..algorithms import MetaStep, get_method
from ..functional import Params
from ..tasks import TaskBatch

_pools: dict[int, ThreadPoolExecutor] = {}
_lock = threading.Lock()


def _pool(workers: int) -> ThreadPoolExecutor:
    """One long-lived pool per size; each of its threads runs ops with one intra-op thread."""
    with _lock:
        if workers not in _pools:
            _pools[workers] = ThreadPoolExecutor(workers, thread_name_prefix="mamlbook-task",
                                                 initializer=torch.set_num_threads, initargs=(1,))
        return _pools[workers]


def combine(steps: list[MetaStep], sizes: list[int]) -> MetaStep:
    """The `MetaStep` of the whole meta-batch from those of its shards (of ``sizes`` tasks).

    ``grads`` and ``meta_loss``: the means weighted by ``n_r / T``; per-task tensors
    (``support_loss``, ``query_loss`` and diagnostics whose last dimension is the
    shard's task count, e.g. MAML++'s ``(steps, T)`` table) are concatenated in task
    order; other diagnostics (scalars such as MAML++'s objective) are the weighted means
    of the shards' values.
    """
    total = sum(sizes)
    weights = [n / total for n in sizes]
    grads = {k: sum(w * s.grads[k] for w, s in zip(weights, steps)) for k in steps[0].grads}
    meta_loss = sum(w * s.meta_loss for w, s in zip(weights, steps))

    def merge(values):
        first = values[0]
        if isinstance(first, torch.Tensor) and first.ndim >= 1 and all(
                v.shape[-1] == n for v, n in zip(values, sizes)):
            return torch.cat(values, dim=-1)  # per task: (T,), or (steps, T) as MAML++'s table
        return sum(w * v for w, v in zip(weights, values))

    diagnostics = {k: merge([s.diagnostics[k] for s in steps]) for k in steps[0].diagnostics}
    return MetaStep(meta_loss, grads, merge([s.support_loss for s in steps]),
                    merge([s.query_loss for s in steps]), diagnostics)


def threaded_meta_step(method: str, model: nn.Module, params: Params, tasks: TaskBatch, *,
                       workers: int = 2, **options) -> MetaStep:
    """The meta-step of ``method`` on ``tasks``, its meta-batch split over ``workers`` threads.

    Same result as ``get_method(method)(model, params, tasks, **options)`` up to float
    rounding. ``workers`` must be in [1, T] (T = tasks in the meta-batch); 1 runs the
    plain step in the calling thread.
    """
    checks.int_in_range("workers", workers, 1, tasks.num_tasks)
    checks.gradients_enabled("a meta-step")  # here: the worker threads would not inherit the caller's mode
    step_fn = get_method(method)
    if workers == 1:
        return step_fn(model, params, tasks, **options)
    shards = tasks.split(workers)
    futures = [_pool(workers).submit(step_fn, model, params, shard, **options) for shard in shards]
    steps = [f.result() for f in futures]  # re-raises a shard's error (e.g. divergence) here
    return combine(steps, [s.num_tasks for s in shards])

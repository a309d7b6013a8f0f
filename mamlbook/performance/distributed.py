r"""Meta-training across processes with ``torch.distributed``: the meta-batch, sharded.

Tasks in a meta-batch never interact, and every method's meta-gradient is a mean over
tasks. So ``W`` processes can each take a shard of the meta-batch (`TaskBatch.split`),
compute the mean over their own ``n_r`` tasks, and combine

    g = Σ_r (n_r / T) g_r        (one all-reduce of a flat buffer; ``T = Σ_r n_r``),

which is the meta-gradient of the whole meta-batch. Every process then takes the same
optimizer step, so the parameters stay identical everywhere without being sent again.
Every process samples the *full* meta-batch from the same seeded generator and keeps
its shard: the data, and so the result, are those of a single-process run (up to the
order of floating-point sums).

Backends: ``gloo`` on CPU, ``nccl`` on CUDA (one GPU per process, ``LOCAL_RANK``).

Launch::

    torchrun --nproc_per_node 2 -m mamlbook train --distributed --method maml \
        --iterations 70000
"""

from __future__ import annotations

import functools
import os

import torch
import torch.distributed as dist
from torch import nn

from .. import checks, train
from ..algorithms import MetaStep, get_method
from ..functional import Params, parameters_of
from ..tasks import TaskBatch
from ..train import History, TrainingSettings, settings_from


def init_from_environment(backend: str | None = None) -> tuple[int, int, torch.device]:
    """Join the process group that ``torchrun`` describes in the environment.

    Returns ``(rank, world_size, device)``: ``nccl`` and ``cuda:LOCAL_RANK`` when CUDA
    is available (or ``backend="nccl"``), else ``gloo`` and the CPU.
    """
    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        if var not in os.environ:
            raise RuntimeError(
                f"environment variable {var} is not set: launch with torchrun, e.g. "
                f"`torchrun --nproc_per_node 2 -m mamlbook train --distributed`"
            )
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    checks.one_of("backend", backend, {"gloo", "nccl"})
    if backend == "nccl":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size(), device


def shard(tasks: TaskBatch, rank: int, world_size: int) -> TaskBatch:
    """Rank ``rank``'s part of the meta-batch (nearly equal, contiguous shards)."""
    checks.int_in_range("world_size", world_size, 1, tasks.num_tasks)
    checks.int_in_range("rank", rank, 0, world_size - 1)
    return tasks.split(world_size)[rank]


def all_reduce_mean(
    step: MetaStep, num_local: int, num_total: int, group=None
) -> MetaStep:
    """Combine every process's `MetaStep` into that of the whole meta-batch.

    ``grads`` and ``meta_loss`` are means over each process's ``num_local`` tasks; they
    are weighted by ``num_local / num_total`` and summed over processes in one
    all-reduce, together with the mean support loss (returned as
    ``diagnostics["support_loss_mean"]``). Per-task ``support_loss``/``query_loss``
    stay local (this shard's).
    """
    names = list(step.grads)
    like = step.grads[names[0]]
    losses = torch.stack([step.meta_loss.reshape(()), step.support_loss.mean()]).to(
        like
    )
    flat = torch.cat([step.grads[k].reshape(-1) for k in names] + [losses]) * (
        num_local / num_total
    )
    dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=group)
    grads, i = {}, 0
    for k in names:
        n = step.grads[k].numel()
        grads[k] = flat[i : i + n].view_as(step.grads[k])
        i += n
    diagnostics = {**step.diagnostics, "support_loss_mean": flat[-1]}
    return MetaStep(flat[-2], grads, step.support_loss, step.query_loss, diagnostics)


def distributed_meta_step(
    method: str,
    model: nn.Module,
    params: Params,
    tasks: TaskBatch,
    *,
    group=None,
    **options,
) -> MetaStep:
    """The meta-step of ``method`` on the whole meta-batch ``tasks``, computed in
    shards.

    Every process passes the same full ``tasks``; each computes its shard's step and
    the results are all-reduced (`all_reduce_mean`). Call it from every process of the
    group.
    """
    rank, world = dist.get_rank(group), dist.get_world_size(group)
    local = shard(tasks, rank, world)
    step = get_method(method)(model, params, local, **options)
    return all_reduce_mean(step, local.num_tasks, tasks.num_tasks, group)


def broadcast_parameters(params: Params, src: int = 0, group=None) -> None:
    """Copy rank ``src``'s parameter values to every process (in place)."""
    with torch.no_grad():
        for p in params.values():
            dist.broadcast(p.data, src=src, group=group)


def meta_train(
    model: nn.Module,
    family,
    settings: TrainingSettings | None = None,
    *,
    generator: torch.Generator,
    device=None,
    progress: bool = True,
    group=None,
    **setting_keywords,
) -> History:
    """`mamlbook.meta_train`, with each meta-batch sharded over the processes of
    ``group``.

    Same settings (a `TrainingSettings`, or its fields as keywords) and result as
    `mamlbook.train.meta_train`; call it from every process with the same settings and
    an identically seeded ``generator``. Rank 0's initial parameters are broadcast
    first; afterwards all processes hold the same parameters. Only rank 0 shows a
    progress bar.
    """
    if not dist.is_initialized():
        raise RuntimeError(
            "torch.distributed is not initialised: call init_from_environment() "
            "(under torchrun) first"
        )
    settings = settings_from(settings, setting_keywords)
    rank, world = dist.get_rank(group), dist.get_world_size(group)
    # every process needs at least one task
    checks.int_in_range("meta_batch_size", settings.meta_batch_size, world)
    broadcast_parameters(parameters_of(model), group=group)
    return train.meta_train(
        model,
        family,
        settings,
        generator=generator,
        device=device,
        progress=progress and rank == 0,
        step_fn=functools.partial(distributed_meta_step, settings.method, group=group),
    )

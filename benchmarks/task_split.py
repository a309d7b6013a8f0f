"""What splitting task-batched weights with ``unbind`` buys the conv meta-step.

    .venv/bin/python benchmarks/task_split.py [--rows WAYS,TASKS ...] [--rounds 5] [--threads 1]

On its per-task path `mamlbook.models.ConvNet` takes each task's weights from the
task-batched ``(T, ...)`` tensors with one ``unbind`` per tensor
(`mamlbook.models.convnet._unbind_tasks`), whose backward stacks the ``T`` tasks'
gradients. Taking ``v[i]`` task by task, as it did before, gives the same numbers, but
the backward of every ``v[i]`` zero-fills a ``(T, ...)`` tensor and the ``T`` of them
are summed: work that grows as ``T²``. This script times the package's second-order
MAML step (`benchmarks/conv_step.py`'s problem: 64 filters, one inner step) both
ways, interleaved in one run, and prints the paired ratio and the largest difference
between the two meta-gradients.
"""

from __future__ import annotations

import argparse
import statistics

import torch
from conv_step import package_step, problem, time_rounds

import mamlbook as mb
from mamlbook.models import convnet


def indexed(params: dict) -> list[dict]:
    """The split as it was: ``v[i]`` for each task and tensor."""
    return [{k: v[i] for k, v in params.items()} for i in range(len(next(iter(params.values()))))]


def split_row(text: str) -> tuple[int, int]:
    """``"WAYS,TASKS"`` -> ``(ways, meta_batch)``, for ``--rows``."""
    try:
        ways, meta_batch = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a row is WAYS,TASKS (two integers), got {text!r}") from None
    if ways < 2 or meta_batch < 1:
        raise argparse.ArgumentTypeError(f"a row needs ways >= 2 and tasks >= 1, got {text!r}")
    return ways, meta_batch


def measure_row(ways: int, tasks_per_batch: int, rounds: int) -> str:
    """Both splits timed on one problem, interleaved (which runs first alternates), as a line."""
    torch.manual_seed(0)
    tasks = problem(ways, tasks_per_batch)
    net = convnet.ConvNet(ways)
    theta = mb.detached(mb.parameters_of(net), requires_grad=True)
    grads, unbound = {}, convnet._unbind_tasks

    def step(name, split):
        convnet._unbind_tasks = split
        try:
            grads[name] = package_step(net, theta, tasks, 1)
        finally:
            convnet._unbind_tasks = unbound

    calls = {"indexed": lambda: step("indexed", indexed), "unbind": lambda: step("unbind", unbound)}
    time_rounds(calls, 1)  # warm-up
    times = {name: [] for name in calls}
    for round_ in range(rounds):
        order = calls if round_ % 2 else dict(reversed(calls.items()))
        for name, seconds in time_rounds(order, 1).items():
            times[name] += seconds
    ratios = [a / b for a, b in zip(times["indexed"], times["unbind"])]
    diff = max(float((a - b).abs().max()) for a, b in zip(grads["indexed"], grads["unbind"]))
    return (f"{ways}-way, {tasks_per_batch} tasks: indexed {statistics.median(times['indexed']) * 1e3:.0f} ms, "
            f"unbind {statistics.median(times['unbind']) * 1e3:.0f} ms, indexed/unbind "
            f"{statistics.median(ratios):.3f} "
            f"(rounds {', '.join(f'{r:.3f}' for r in ratios)}); max |grad difference| {diff:.1e}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", type=split_row, default=[(5, 8), (5, 32)], metavar="WAYS,TASKS")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.threads < 1:
        parser.error(f"--rounds and --threads must be at least 1, got {args.rounds} and {args.threads}")
    torch.set_num_threads(args.threads)
    for ways, tasks_per_batch in args.rows:
        print(measure_row(ways, tasks_per_batch, args.rounds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

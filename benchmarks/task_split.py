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
import time

import torch
from conv_step import package_step, problem

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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", type=split_row, default=[(5, 8), (5, 32)], metavar="WAYS,TASKS")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.threads < 1:
        parser.error(f"--rounds and --threads must be at least 1, got {args.rounds} and {args.threads}")
    torch.set_num_threads(args.threads)
    unbound = convnet._unbind_tasks
    try:
        for ways, tasks_per_batch in args.rows:
            torch.manual_seed(0)
            tasks = problem(ways, tasks_per_batch)
            net = convnet.ConvNet(ways)
            theta = {k: v.detach().clone().requires_grad_() for k, v in net.named_parameters()}
            grads, times = {}, {"unbind": [], "indexed": []}
            for round_ in range(args.rounds + 1):  # the first round warms up
                order = (("indexed", indexed), ("unbind", unbound))
                for name, split in order[:: 1 if round_ % 2 else -1]:  # alternate which runs first
                    convnet._unbind_tasks = split
                    start = time.perf_counter()
                    grads[name] = package_step(net, theta, tasks, 1)
                    if round_:
                        times[name].append(time.perf_counter() - start)
            ratios = [a / b for a, b in zip(times["indexed"], times["unbind"])]
            diff = max(float((a - b).abs().max()) for a, b in zip(grads["indexed"], grads["unbind"]))
            print(f"{ways}-way, {tasks_per_batch} tasks: indexed {statistics.median(times['indexed']) * 1e3:.0f} ms, "
                  f"unbind {statistics.median(times['unbind']) * 1e3:.0f} ms, indexed/unbind "
                  f"{statistics.median(ratios):.3f} (rounds {', '.join(f'{r:.3f}' for r in ratios)}); "
                  f"max |grad difference| {diff:.1e}")
    finally:
        convnet._unbind_tasks = unbound
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

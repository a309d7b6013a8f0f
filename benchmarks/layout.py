"""What the inner loop's matrix layout buys: a MAML meta-step with and without it.

    .venv/bin/python benchmarks/layout.py [--rounds 30] [--calls 20]

`mamlbook.functional.inner_loop_form` lets the inner loop of `maml` and `reptile` keep
each weight as the products use it (``Wᵀ``, and ``b`` as a row: views of the same
numbers). This script times the second-order MAML meta-step on the book's sinusoid
setting (1-40-40-1, meta-batch 25, K = 10) with that layout and with the plain one
(`task_forward` on the standard layout), interleaved in one run, one thread, and prints
the ratio. The two give the same meta-gradient up to float rounding; the shipped
checkpoints were trained with the layout, so removing it would change them in the last
bits (issue 14's note: 1.13x slower without it, measured with this script).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import mamlbook as mb
import mamlbook.algorithms.maml as maml_module
from mamlbook import functional


def plain_form(model, params):
    """The layout-free inner loop: parameters as they are, through `task_forward`."""
    return functional.LoopForm(
        lambda p: p, lambda p: p, lambda p, x: functional.task_forward(model, p, x)
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    generator = mb.seed_everything(0)
    model = mb.SinusoidMLP()
    theta = mb.parameters_of(model)
    tasks = mb.SinusoidTasks().sample(25, 10, 10, generator=generator)
    step = mb.get_method("maml")
    with_layout = functional.inner_loop_form
    try:
        for k in (1, 5):
            grads = {}
            times = {"layout": [], "plain": []}
            for _ in range(args.rounds):
                for name, form in (("layout", with_layout), ("plain", plain_form)):
                    maml_module.inner_loop_form = form
                    start = time.perf_counter()
                    for _ in range(args.calls):
                        grads[name] = step(
                            model, theta, tasks, inner_lr=0.01, inner_steps=k
                        ).grads
                    times[name].append((time.perf_counter() - start) / args.calls * 1e3)
            a, b = statistics.median(times["layout"]), statistics.median(times["plain"])
            diff = max(
                float((grads["layout"][n] - grads["plain"][n]).abs().max())
                for n in theta
            )
            print(
                f"k={k}: with the layout {a:.3f} ms, plain {b:.3f} ms, plain/layout {b / a:.3f}; "
                f"max |grad difference| {diff:.1e}"
            )
    finally:
        maml_module.inner_loop_form = with_layout
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The conv meta-step: second-order MAML on the paper's 64-filter ConvNet, three ways, one run.

The step: `mamlbook.models.ConvNet` (4 blocks of 64 filters, batch norm, max-pool),
N-way 1-shot tasks with 15 query images per class (28×28), ``k`` inner SGD steps
(α = 0.4), the exact meta-gradient. Implementations, timed side by side:

* ``loop``: the plain per-task Python loop (``functional_call``, ``autograd.grad(
  create_graph=True)``, one task after another): the baseline every tutorial writes;
* ``before``: ``mb.get_method("maml")`` with ``ConvNet(meta_batch="vmap")``, the
  package's batched step until issue 13 (``torch.func.vmap`` over tasks: grouped
  convolutions, whose backward is slow on a CPU);
* ``after``: ``mb.get_method("maml")`` with the default ``ConvNet()`` (``"auto"``: the
  per-task path on a CPU, vmap on a GPU; max-pool before ReLU, same numbers);
* ``threaded``: the same step with the meta-batch split over ``--threads`` threads of
  one intra-op thread each (`mamlbook.performance.threaded`, ``meta_train(...,
  task_threads=N)``), the CPU's speed path.

The relative difference of each meta-gradient to the loop's is recorded (float32; it
is ~1e-4 for one inner step and grows with five second-order steps of α = 0.4 from a
random network; agreement in float64 is tested in tests/test_conv_step.py). Rounds interleave the implementations so that a change in machine load hits
all alike; per round, each implementation's call is timed once; the median over
rounds is reported, with tasks per second and the paired ratio (per round, loop time
/ implementation time; median over rounds). Grid: meta-batch 8 and 32; 1 and 5 inner
steps; 5-way and 20-way. Then first-order MAML, Reptile and iMAML (their chapter-08
recipes' inner loops, 5-way, the first meta-batch size): vmap vs default vs threaded
(no hand-written loop for them; their agreement with a per-task loop is tested in
tests/test_conv_step.py).

Run::

    .venv/bin/python benchmarks/conv_step.py [--threads 2] [--rounds 3]
    # writes benchmarks/results/conv_step.json
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch
from torch.func import functional_call

import mamlbook as mb
from mamlbook.models import ConvNet
from mamlbook.performance.threaded import threaded_meta_step
from mamlbook.tasks.classification import ClassificationTasks

from _results import RESULTS, write_json

INNER_LR, QUERY, FILTERS = 0.4, 15, 64
CE = torch.nn.functional.cross_entropy


def problem(ways: int, meta_batch: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    images = (torch.rand(4 * ways, 20, 28, 28, generator=g) > 0.9).to(torch.uint8) * 255
    return ClassificationTasks(images, ways).sample(meta_batch, 1, QUERY, generator=g)


def loop_step(net, theta, tasks, steps):
    total = 0.0
    for t in range(tasks.num_tasks):
        phi = dict(theta)
        for _ in range(steps):
            loss = CE(functional_call(net, phi, (tasks.x_support[t],)), tasks.y_support[t])
            grads = torch.autograd.grad(loss, list(phi.values()), create_graph=True)
            phi = {k: v - INNER_LR * g for (k, v), g in zip(phi.items(), grads)}
        total = total + CE(functional_call(net, phi, (tasks.x_query[t],)), tasks.y_query[t])
    return torch.autograd.grad(total / tasks.num_tasks, list(theta.values()))


def package_step(net, theta, tasks, steps):
    step = mb.get_method("maml")(net, theta, tasks, inner_lr=INNER_LR, inner_steps=steps,
                                 loss_fn=mb.cross_entropy_per_task)
    return list(step.grads.values())


def threaded_step(net, theta, tasks, steps):
    step = threaded_meta_step("maml", net, theta, tasks, workers=min(torch.get_num_threads(), tasks.num_tasks),
                              inner_lr=INNER_LR, inner_steps=steps, loss_fn=mb.cross_entropy_per_task)
    return list(step.grads.values())


IMPLEMENTATIONS = ("before", "after", "threaded")


def time_rounds(calls: dict, rounds: int) -> dict:
    """Seconds per call of each ``calls[name]()``, interleaved round by round."""
    times = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return times


def summarize(times: dict, meta_batch: int, baseline: str) -> dict:
    """Median ms, tasks/s and the paired ratio to ``baseline`` (``x_<baseline>``) per implementation,
    and each one's paired speed-up over ``before`` (``<name>_vs_before``)."""
    out = {}
    for name, ts in times.items():
        ms = 1000 * statistics.median(ts)
        out[name] = {"ms": round(ms, 1), "tasks_per_s": round(meta_batch / (ms / 1000), 2),
                     f"x_{baseline}": round(statistics.median(b / t for b, t in zip(times[baseline], ts)), 3)}
    for name in ("after", "threaded"):
        out[f"{name}_vs_before"] = round(statistics.median(b / t for t, b in zip(times[name], times["before"])), 3)
    return out


def measure(ways: int, meta_batch: int, steps: int, rounds: int) -> dict:
    tasks = problem(ways, meta_batch)
    torch.manual_seed(0)
    nets = {"loop": ConvNet(ways, FILTERS), "before": ConvNet(ways, FILTERS, meta_batch="vmap"),
            "after": ConvNet(ways, FILTERS), "threaded": ConvNet(ways, FILTERS)}
    state = nets["loop"].state_dict()
    for net in nets.values():
        net.load_state_dict(state)
    theta = {name: mb.detached(mb.parameters_of(net), requires_grad=True) for name, net in nets.items()}
    fns = {"loop": loop_step, "before": package_step, "after": package_step, "threaded": threaded_step}
    reference = torch.cat([g.flatten() for g in loop_step(nets["loop"], theta["loop"], tasks, steps)])
    difference = {}
    for name in IMPLEMENTATIONS:  # same meta-gradient (also the warm-up call)
        got = torch.cat([g.flatten() for g in fns[name](nets[name], theta[name], tasks, steps)])
        difference[name] = float((got - reference).norm() / reference.norm())
        if difference[name] > 1e-2:  # recorded, not fatal: float32 chaos of long second-order loops
            print(f"  warning: {name} differs from the loop by {difference[name]:.2e} (relative, float32)", flush=True)
    times = time_rounds({name: (lambda name=name: fns[name](nets[name], theta[name], tasks, steps))
                         for name in nets}, rounds)
    return {"ways": ways, "meta_batch": meta_batch, "inner_steps": steps, "times_s": times,
            "relative_difference_to_loop": difference, "gradient_norm": float(reference.norm()),
            **summarize(times, meta_batch, "loop")}


METHOD_OPTIONS = {  # the chapter's recipes' inner loops (5-way 1-shot)
    "fomaml": {"inner_lr": INNER_LR, "inner_steps": 1},
    "reptile": {"inner_lr": 0.1, "inner_steps": 5, "inner_data": "support+query"},
    "imaml": {"inner_lr": 0.1, "inner_steps": 5, "lam": 2.0, "cg_steps": 5, "cg_damping": 1.0},
}


def measure_method(method: str, meta_batch: int, rounds: int) -> dict:
    """The other methods (5-way, their recipes' inner loops): vmap vs default vs threaded."""
    tasks = problem(5, meta_batch)
    torch.manual_seed(0)
    nets = {name: ConvNet(5, FILTERS, meta_batch="vmap" if name == "before" else "auto")
            for name in IMPLEMENTATIONS}
    for net in nets.values():
        net.load_state_dict(nets["after"].state_dict())
    options = {**METHOD_OPTIONS[method], "loss_fn": mb.cross_entropy_per_task}

    def run(name):
        theta = mb.detached(mb.parameters_of(nets[name]), requires_grad=True)
        if name == "threaded":
            workers = min(torch.get_num_threads(), tasks.num_tasks)
            return threaded_meta_step(method, nets[name], theta, tasks, workers=workers, **options)
        return mb.get_method(method)(nets[name], theta, tasks, **options)

    steps = {name: run(name) for name in IMPLEMENTATIONS}  # warm-up, and the agreement
    reference = torch.cat([g.flatten() for g in steps["after"].grads.values()])
    difference = {name: float((torch.cat([g.flatten() for g in step.grads.values()]) - reference).norm()
                              / reference.norm()) for name, step in steps.items()}
    times = time_rounds({name: (lambda name=name: run(name)) for name in IMPLEMENTATIONS}, rounds)
    return {"method": method, "ways": 5, "meta_batch": meta_batch, "options": METHOD_OPTIONS[method],
            "times_s": times, "relative_difference_to_after": difference, **summarize(times, meta_batch, "after")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--meta-batch", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--inner-steps", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--ways", type=int, nargs="+", default=[5, 20])
    parser.add_argument("--methods", nargs="*", default=list(METHOD_OPTIONS),
                        help="the other methods, timed at 5-way and the first --meta-batch")
    parser.add_argument("--out", default=str(RESULTS / "conv_step.json"))  # mamlbook/results/
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = {"command": "python benchmarks/conv_step.py " + " ".join(sys.argv[1:] if argv is None else argv),
               "environment": {"torch": torch.__version__, "threads": torch.get_num_threads(),
                               "cores": os.cpu_count(), "loadavg_before": os.getloadavg(),
                               "date": time.strftime("%Y-%m-%d %H:%M"), "filters": FILTERS, "query_per_class": QUERY,
                               "shots": 1, "inner_lr": INNER_LR},
               "rows": []}
    print(f"{'ways':>4} {'T':>3} {'k':>2} | {'loop ms':>8} {'before':>8} {'after':>8} {'threaded':>8} | "
          f"{'before':>6} {'after':>6} {'threaded':>8} ×loop | {'threaded ×before':>16}", flush=True)
    for ways in args.ways:
        for meta_batch in args.meta_batch:
            for steps in args.inner_steps:
                row = measure(ways, meta_batch, steps, args.rounds)
                results["rows"].append(row)
                results["environment"]["loadavg_after"] = os.getloadavg()
                write_json(results, args.out)  # after every row: a long run interrupted keeps what it measured
                print(f"{ways:>4} {meta_batch:>3} {steps:>2} | {row['loop']['ms']:>8.0f} {row['before']['ms']:>8.0f} "
                      f"{row['after']['ms']:>8.0f} {row['threaded']['ms']:>8.0f} | {row['before']['x_loop']:>6.2f} "
                      f"{row['after']['x_loop']:>6.2f} {row['threaded']['x_loop']:>8.2f}       | "
                      f"{row['threaded_vs_before']:>16.2f}", flush=True)
    results["methods"] = []
    for method in args.methods:
        row = measure_method(method, args.meta_batch[0], args.rounds)
        results["methods"].append(row)
        write_json(results, args.out)
        print(f"{method:>8} 5-way T={args.meta_batch[0]}: before {row['before']['ms']:.0f} ms, after "
              f"{row['after']['ms']:.0f} ms, threaded {row['threaded']['ms']:.0f} ms; threaded "
              f"×{row['threaded']['x_after']:.2f} after, ×{row['threaded_vs_before']:.2f} before", flush=True)
    results["environment"]["loadavg_after"] = os.getloadavg()
    write_json(results, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

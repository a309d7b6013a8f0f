"""The conv meta-step: second-order MAML on the paper's 64-filter ConvNet, seven ways, side by side.

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
  task_threads=N)``);
* ``channels_last`` and ``threaded_channels_last``: ``after`` and ``threaded`` with
  ``ConvNet(channels_last=True)`` (channels-last activations on the per-task path for
  batches of at least ``ConvNet.channels_last_min_examples`` images: the query sets),
  the CPU's speed path;
* ``channels_last_all``: ``channels_last`` with every batch channels-last, the support
  sets too (the rule the switch does not follow, measured).

Each float32 meta-gradient's relative difference to the loop's is recorded, and each
one's relative error against the loop's meta-gradient in float64 (``float32_error``,
the loop's own included): five second-order steps of α = 0.4 from a random network
amplify float32 rounding, by orders of magnitude in the 20-way rows. Agreement in
float64 is tested in tests/test_conv_step.py.

Rounds interleave the implementations so that a change in machine load hits
all alike; per round, each implementation's call is timed once; the median over
rounds is reported, with tasks per second and the paired ratio (per round, loop time
/ implementation time; median over rounds). Grid: meta-batch 8 and 32; 1 and 5 inner
steps; 5-way and 20-way (or the rows given by ``--rows``), each row in its own Python
process (a fresh heap; a row whose process is killed, e.g. by the out-of-memory
killer, is recorded as not measured). ``--apart before`` times the vmap step in a
process of its own after the rest of its row (its ratios are then ratios of medians):
the 20-way, 32-task rows need it on a 23 GB machine (any implementation but the loop can
be measured apart). Then, in the main process, first-order MAML, Reptile and iMAML (their chapter-08
recipes' inner loops, 5-way, the first row's meta-batch size, ``--method-rounds``
rounds): the same implementations but the hand-written loop (their agreement with a
per-task loop is tested in tests/test_conv_step.py), each one's float32 difference to
the package's step recorded.

Run::

    .venv/bin/python benchmarks/conv_step.py [--threads 2] [--rounds 3] [--rows 5,8,1 20,8,5 ...]
    # writes mamlbook/results/conv_step.json; the shipped file:
    .venv/bin/python benchmarks/conv_step.py --threads 2 --rounds 3 --apart before

Timings depend on the machine's load, and not alike: on a busy two-core machine the
vmap step (a few large multithreaded kernels) ran at about half its idle speed where
the loop barely moved, so compare ratios within one run, on an idle machine.
"""
from __future__ import annotations

import argparse
import copy
import itertools
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.func import functional_call

import mamlbook as mb
from mamlbook.models import ConvNet
from mamlbook.performance import CONV_STEP_LABELS
from mamlbook.performance.threaded import threaded_meta_step
from mamlbook.tasks.classification import ClassificationTasks

from _results import RESULTS, write_json

INNER_LR, QUERY, FILTERS = 0.4, 15, 64
CE = torch.nn.functional.cross_entropy


def problem(ways: int, meta_batch: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    images = (torch.rand(4 * ways, 20, 28, 28, generator=g) > 0.9).to(torch.uint8) * 255
    return ClassificationTasks(images, ways).sample(meta_batch, 1, QUERY, generator=g)


def loop_step(net, theta, tasks, steps, images=lambda x: x):
    """The plain per-task loop's meta-gradient (w.r.t. ``theta``'s tensors); ``images``
    prepares each task's support and query images (e.g. their memory layout)."""
    total = 0.0
    for t in range(tasks.num_tasks):
        support, query = images(tasks.x_support[t]), images(tasks.x_query[t])
        phi = dict(theta)
        for _ in range(steps):
            loss = CE(functional_call(net, phi, (support,)), tasks.y_support[t])
            grads = torch.autograd.grad(loss, list(phi.values()), create_graph=True)
            phi = {k: v - INNER_LR * g for (k, v), g in zip(phi.items(), grads)}
        total = total + CE(functional_call(net, phi, (query,)), tasks.y_query[t])
    return torch.autograd.grad(total / tasks.num_tasks, list(theta.values()))


def package_step(net, theta, tasks, steps):
    step = mb.get_method("maml")(net, theta, tasks, inner_lr=INNER_LR, inner_steps=steps,
                                 loss_fn=mb.cross_entropy_per_task)
    return list(step.grads.values())


def threaded_step(net, theta, tasks, steps):
    step = threaded_meta_step("maml", net, theta, tasks, workers=min(torch.get_num_threads(), tasks.num_tasks),
                              inner_lr=INNER_LR, inner_steps=steps, loss_fn=mb.cross_entropy_per_task)
    return list(step.grads.values())


#: How each implementation runs: its ConvNet's switches, and whether the meta-batch is
#: split over threads (the hand-written ``loop`` runs its network with `loop_step`).
RUNS = {"loop": ({}, False), "before": ({"meta_batch": "vmap"}, False), "after": ({}, False),
        "threaded": ({}, True), "channels_last": ({"channels_last": True}, False),
        "channels_last_all": ({"channels_last": True, "channels_last_min_examples": 1}, False),  # support sets too
        "threaded_channels_last": ({"channels_last": True}, True)}
IMPLEMENTATIONS = tuple(RUNS)[1:]
#: The implementations' short names (console; the Performance appendix reads the same dict).
SHORT = CONV_STEP_LABELS
assert tuple(SHORT) == tuple(RUNS), "name each implementation once in mamlbook.performance.CONV_STEP_LABELS"
FASTER = IMPLEMENTATIONS[1:]  # each gets its paired speed-up over "before"


def time_rounds(calls: dict, rounds: int) -> dict:
    """Seconds per call of each ``calls[name]()``, interleaved round by round."""
    times = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return times


def paired_ratio(baseline: list[float], times: list[float]) -> float:
    """The median over rounds of ``baseline time / time`` (rounded): how many times faster."""
    return round(statistics.median(b / t for b, t in zip(baseline, times)), 3)


def median_ratio(baseline: list[float], times: list[float]) -> float:
    """``median(baseline) / median(times)`` (rounded): the ratio of two implementations
    timed in different processes, whose rounds do not pair."""
    return round(statistics.median(baseline) / statistics.median(times), 3)


def summarize(times: dict, meta_batch: int, baseline: str, apart=()) -> dict:
    """Median ms, tasks/s and the paired ratio to ``baseline`` (``x_<baseline>``) per implementation,
    and each one's paired speed-up over ``before`` (``<name>_vs_before``); a ratio that
    involves an implementation timed ``apart`` (another process) is a ratio of medians."""
    def ratio(base, name):
        return (median_ratio if {base, name} & set(apart) else paired_ratio)(times[base], times[name])
    out = {}
    for name, ts in times.items():
        ms = 1000 * statistics.median(ts)
        out[name] = {"ms": round(ms, 1), "tasks_per_s": round(meta_batch / (ms / 1000), 2),
                     f"x_{baseline}": ratio(baseline, name)}
    for name in FASTER:
        out[f"{name}_vs_before"] = ratio("before", name)
    return out


def networks(ways: int, names) -> dict:
    """{name: the ConvNet the implementation ``name`` runs (`RUNS`)}, all with the same weights."""
    torch.manual_seed(0)
    nets = {name: ConvNet(ways, FILTERS, **RUNS[name][0]) for name in names}
    state = next(iter(nets.values())).state_dict()
    for net in nets.values():
        net.load_state_dict(state)
    return nets


def flat(grads) -> torch.Tensor:
    """A meta-gradient's tensors as one vector."""
    return torch.cat([g.flatten() for g in grads])


def time_steps(ways: int, meta_batch: int, steps: int, rounds: int, names) -> tuple:
    """``names``' steps on one row's problem, timed side by side: (the nets, theta, the
    tasks, ``{name: seconds per round}``, ``{name: the float32 meta-gradient, flattened}``)."""
    tasks = problem(ways, meta_batch)
    nets = networks(ways, names)
    # all nets share their weights; requires_grad for autograd.grad (no accumulation)
    theta = mb.detached(mb.parameters_of(next(iter(nets.values()))), requires_grad=True)
    fns = {name: loop_step if name == "loop" else threaded_step if RUNS[name][1] else package_step for name in names}
    got = {name: flat(fns[name](nets[name], theta, tasks, steps)) for name in names}  # also the warm-up calls
    times = time_rounds({name: (lambda name=name: fns[name](nets[name], theta, tasks, steps)) for name in nets},
                        rounds)
    return nets, theta, tasks, times, got


def measure(ways: int, meta_batch: int, steps: int, rounds: int, names=tuple(RUNS), gradients=None) -> dict:
    """A row's part that holds the loop: ``names``' times, each float32 meta-gradient's
    difference to the loop's and error against the loop's in float64 (the ratios are
    `summarize`'s, in `measure_in_subprocess`). ``gradients``: a file that receives the
    loop's float32 and float64 meta-gradients (flattened), for the parts measured apart."""
    if "loop" not in names:
        raise ValueError(f"measure times a part with the loop, got {list(names)}: use measure_apart")
    nets, theta, tasks, times, got = time_steps(ways, meta_batch, steps, rounds, names)
    reference = got.pop("loop")
    difference = {name: relative_error(g, reference.double()) for name, g in got.items()}
    # after the timing, so that its memory does not add to the steps' peak
    exact = float64_meta_gradient(nets["loop"], theta, tasks, steps)
    error = {name: relative_error(g, exact) for name, g in {"loop": reference, **got}.items()}
    if gradients is not None:
        torch.save({"loop": reference, "exact": exact}, gradients)
    return {"ways": ways, "meta_batch": meta_batch, "inner_steps": steps, "times_s": times,
            "relative_difference_to_loop": difference, "float32_error": error,
            "gradient_norm": float(reference.norm())}


def measure_apart(ways: int, meta_batch: int, steps: int, rounds: int, names, gradients) -> dict:
    """A row's part without the loop (``--apart``): ``{"times_s": ...}``; its float32
    meta-gradients (flattened) go to the file ``gradients``, to be scored against the
    loop's by `measure_in_subprocess`."""
    if gradients is None:
        raise ValueError("a part without the loop saves its meta-gradients: give gradients, a file")
    *_, times, got = time_steps(ways, meta_batch, steps, rounds, names)
    torch.save(got, gradients)
    return {"times_s": times}


def float64_meta_gradient(net, theta, tasks, steps) -> torch.Tensor:
    """The loop's meta-gradient in float64, flattened: what every float32 step is scored
    against (``float32_error``). Task by task, each task's graph freed before the next."""
    net64 = copy.deepcopy(net).double()
    theta64 = {k: v.detach().double().requires_grad_() for k, v in theta.items()}
    total = None
    for one in tasks.split(tasks.num_tasks):
        grads = flat(loop_step(net64, theta64, one.to(dtype=torch.float64), steps))
        total = grads if total is None else total + grads
    return total / tasks.num_tasks


def relative_error(got: torch.Tensor, exact: torch.Tensor) -> float:
    """``|got - exact| / |exact|`` (Euclidean norms), computed in float64."""
    return float((got.double() - exact).norm() / exact.norm())


METHOD_OPTIONS = {  # the chapter's recipes' inner loops (5-way 1-shot)
    "fomaml": {"inner_lr": INNER_LR, "inner_steps": 1},
    "reptile": {"inner_lr": 0.1, "inner_steps": 5, "inner_data": "support+query"},
    "imaml": {"inner_lr": 0.1, "inner_steps": 5, "lam": 2.0, "cg_steps": 5, "cg_damping": 1.0},
}


def measure_method(method: str, meta_batch: int, rounds: int) -> dict:
    """The other methods (5-way, their recipes' inner loops): every implementation but the
    hand-written loop, timed and compared with the package's default step."""
    tasks = problem(5, meta_batch)
    nets = networks(5, IMPLEMENTATIONS)
    options = {**METHOD_OPTIONS[method], "loss_fn": mb.cross_entropy_per_task}

    theta = mb.detached(mb.parameters_of(nets["after"]), requires_grad=True)

    def run(name):
        if RUNS[name][1]:
            workers = min(torch.get_num_threads(), tasks.num_tasks)
            return threaded_meta_step(method, nets[name], theta, tasks, workers=workers, **options)
        return mb.get_method(method)(nets[name], theta, tasks, **options)

    steps = {name: run(name) for name in IMPLEMENTATIONS}  # warm-up, and the agreement
    got = {name: flat(step.grads.values()) for name, step in steps.items()}
    difference = {name: relative_error(g, got["after"].double()) for name, g in got.items()}
    times = time_rounds({name: (lambda name=name: run(name)) for name in IMPLEMENTATIONS}, rounds)
    return {"method": method, "ways": 5, "meta_batch": meta_batch, "options": METHOD_OPTIONS[method],
            "times_s": times, "relative_difference_to_after": difference, **summarize(times, meta_batch, "after")}


def measure_in_subprocess(ways: int, meta_batch: int, steps: int, rounds: int, threads: int, apart=()) -> dict:
    """`measure` in a fresh Python process: each row starts from an empty heap, and a row
    whose process dies (the 20-way, 32-task rows can outgrow a 23 GB machine's memory)
    is recorded as failed, with its signal or exit status, instead of ending the run.

    Each implementation named in ``apart`` runs afterwards in a process of its own (the
    same tasks and weights), so that the row's peak memory is the largest of its parts,
    not their sum (the vmap step alone peaks at 14 GB on the 20-way, 32-task, one-step
    row; the others at about 8.5 GB each, and one process holding them all was killed).
    Its ratios are then ratios of medians, not paired (the row lists it in ``"apart"``)."""
    size = {"ways": ways, "meta_batch": meta_batch, "inner_steps": steps}
    with tempfile.TemporaryDirectory() as tmp:
        parts = {}
        for part in [[n for n in RUNS if n not in apart], *([n] for n in apart)]:
            out, gradients = Path(tmp) / "row.json", Path(tmp) / f"{part[0]}.pt"
            done = subprocess.run([sys.executable, __file__, "--one-row", f"{ways},{meta_batch},{steps}",
                                   "--rounds", str(rounds), "--threads", str(threads), "--out", str(out),
                                   "--only", *part, "--gradients", str(gradients)],
                                  check=False)  # a killed row is recorded below, not raised
            if done.returncode != 0:
                ended = (f"was killed (signal {-done.returncode})" if done.returncode < 0
                         else f"exited with {done.returncode}")
                return {**size, "failed": f"not measured: the process of {', '.join(part)} {ended}"}
            parts[part[0]] = json.loads(out.read_text()), torch.load(gradients)
        row, saved = parts.pop("loop")
    for name, (part, got) in parts.items():  # the implementations measured apart
        row["times_s"][name] = part["times_s"][name]
        row["relative_difference_to_loop"][name] = relative_error(got[name], saved["loop"].double())
        row["float32_error"][name] = relative_error(got[name], saved["exact"])
    if apart:
        order = list(RUNS)  # the table's column order
        for key in ("times_s", "relative_difference_to_loop", "float32_error"):
            row[key] = dict(sorted(row[key].items(), key=lambda item: order.index(item[0])))
        row["apart"] = list(apart)
    return {**row, **summarize(row["times_s"], meta_batch, "loop", apart)}


def grid_row(text: str) -> tuple[int, int, int]:
    """``"WAYS,TASKS,STEPS"`` -> ``(ways, meta_batch, inner_steps)``, for ``--rows``."""
    try:
        ways, meta_batch, steps = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a row is WAYS,TASKS,STEPS (three integers), got {text!r}") from None
    if min(ways, meta_batch, steps) < 1 or ways < 2:
        raise argparse.ArgumentTypeError(f"a row needs ways >= 2, tasks >= 1 and steps >= 1, got {text!r}")
    return ways, meta_batch, steps


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--method-rounds", type=int, default=5, help="rounds for the other methods")
    grid = {"ways": [5, 20], "meta_batch": [8, 32], "inner_steps": [1, 5]}
    parser.add_argument("--meta-batch", type=int, nargs="+", help=f"default {grid['meta_batch']}")
    parser.add_argument("--inner-steps", type=int, nargs="+", help=f"default {grid['inner_steps']}")
    parser.add_argument("--ways", type=int, nargs="+", help=f"default {grid['ways']}")
    parser.add_argument("--rows", type=grid_row, nargs="+", metavar="WAYS,TASKS,STEPS",
                        help="measure these rows instead of the grid of --ways x --meta-batch x --inner-steps")
    parser.add_argument("--note", help="a note stored with the results (e.g. why a row of the grid is left out)")
    parser.add_argument("--methods", nargs="*", default=list(METHOD_OPTIONS), choices=list(METHOD_OPTIONS),
                        help="the other methods, timed at 5-way and the first row's meta-batch")
    parser.add_argument("--out", default=str(RESULTS / "conv_step.json"))  # mamlbook/results/
    parser.add_argument("--apart", nargs="+", default=[], choices=IMPLEMENTATIONS,
                        help="implementations measured in a process of their own, after the rest of "
                             "the row (less memory at once; their ratios are ratios of medians)")
    parser.add_argument("--one-row", type=grid_row, help=argparse.SUPPRESS)  # measure_in_subprocess:
    parser.add_argument("--only", nargs="+", help=argparse.SUPPRESS)  # the implementations of this part
    parser.add_argument("--gradients", help=argparse.SUPPRESS)  # where it saves their meta-gradients
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.one_row:
        names = args.only or tuple(RUNS)
        part = measure if "loop" in names else measure_apart
        write_json(part(*args.one_row, args.rounds, names, args.gradients), args.out)
        return 0
    if args.rows and any(getattr(args, key) is not None for key in grid):
        parser.error("--rows replaces the grid: give it alone, or --ways/--meta-batch/--inner-steps")
    rows = args.rows or list(itertools.product(*(getattr(args, key) or grid[key] for key in grid)))
    results = {"command": "python benchmarks/conv_step.py " + shlex.join(sys.argv[1:] if argv is None else argv),
               "environment": {"torch": torch.__version__, "threads": torch.get_num_threads(),
                               "cores": os.cpu_count(), "loadavg_before": os.getloadavg(),
                               "date": time.strftime("%Y-%m-%d %H:%M"), "filters": FILTERS, "query_per_class": QUERY,
                               "shots": 1, "inner_lr": INNER_LR, "rounds": args.rounds,
                               "method_rounds": args.method_rounds},
               "rows": [], "methods": []}
    if args.note:
        results["note"] = args.note
    print(f"{'ways':>4} {'T':>3} {'k':>2} | ms: " + " ".join(f"{n:>8}" for n in SHORT.values())
          + " | x loop: " + " ".join(f"{SHORT[n]:>8}" for n in IMPLEMENTATIONS), flush=True)
    for ways, meta_batch, steps in rows:
        row = measure_in_subprocess(ways, meta_batch, steps, args.rounds, args.threads, args.apart)
        results["rows"].append(row)
        results["environment"]["loadavg_after"] = os.getloadavg()
        write_json(results, args.out)  # after every row: a long run interrupted keeps what it measured
        if "failed" in row:
            print(f"{ways:>4} {meta_batch:>3} {steps:>2} | {row['failed']}", flush=True)
            continue
        print(f"{ways:>4} {meta_batch:>3} {steps:>2} |     " + " ".join(f"{row[n]['ms']:>8.0f}" for n in SHORT)
              + " |         " + " ".join(f"{row[n]['x_loop']:>8.2f}" for n in IMPLEMENTATIONS), flush=True)
    for method in args.methods:
        row = measure_method(method, rows[0][1], args.method_rounds)
        results["methods"].append(row)
        write_json(results, args.out)
        print(f"{method:>8} 5-way T={rows[0][1]}: " + ", ".join(f"{SHORT[n]} {row[n]['ms']:.0f} ms"
                                                                 for n in IMPLEMENTATIONS)
              + "; x package: " + ", ".join(f"{SHORT[n]} {row[n]['x_after']:.2f}" for n in FASTER[1:])
              + "; difference to package: " + ", ".join(f"{SHORT[n]} {row['relative_difference_to_after'][n]:.0e}"
                                                        for n in IMPLEMENTATIONS if n != "after"), flush=True)
    results["environment"]["loadavg_after"] = os.getloadavg()
    write_json(results, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

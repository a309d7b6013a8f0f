"""Meta-training throughput: one second-order MAML meta-step, mamlbook against baselines.

The step: a 1-40-40-1 ReLU net, meta-batch of 25 sinusoid tasks, K = 10 support and 10
query points, 1 or 5 inner SGD steps (alpha = 0.01), the exact meta-gradient
(differentiating through the inner steps). Implementations, all in one process and
one run, all checked to return the same meta-gradient (``allclose``) before timing:

* ``loop``: the plain per-task loop every tutorial writes (``F.linear`` forward,
  ``torch.autograd.grad(create_graph=True)``, tasks one after another);
* ``higher``: the same with the ``higher`` library (``innerloop_ctx``), per task;
* ``learn2learn``: ``l2l.algorithms.MAML`` clone/adapt, per task (if importable);
* ``vmap``: ``torch.func.grad`` + ``vmap`` over tasks (the torch.func MAML example);
* ``mamlbook``: ``mb.get_method("maml")``, the whole meta-batch as batched matrix
  products (eager);
* ``mamlbook-compiled``: `mamlbook.performance.compile_method`, the same call under
  ``torch.compile`` with the package's CPU settings (compile time is reported
  separately, with a fresh on-disk cache unless ``--warm-cache``, and not included in
  the step time).

Timing: rounds of ``--calls`` calls per implementation, implementations interleaved
round by round so that a change in machine load hits all of them alike; the median
over all calls is reported as each implementation's time. Speed-ups are *paired*: in
every round, the baseline's median call divided by ours, then the median (and
quartiles) of these per-round ratios; the ratio of the overall medians is stored too. The lower bound is the step's matrix products alone: the same
``bmm``/``baddbmm`` calls (shapes, order) replayed back to back without autograd or
any other operation, best of 200, in the same run; their FLOPs are counted with
``torch.utils.flop_counter``.

Run (about 2 minutes, most of it compiling)::

    .venv/bin/pip install -r benchmarks/requirements.txt
    .venv/bin/python benchmarks/throughput.py            # writes mamlbook/results/throughput.{json,png}
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

import mamlbook as mb

from _results import RESULTS, write
INNER_LR = 0.01
META_BATCH, SUPPORT, QUERY = 25, 10, 10


# --------------------------------------------------------------------------- setup
def make_problem(seed: int = 0):
    torch.manual_seed(seed)
    model = mb.SinusoidMLP()
    params = mb.detached(mb.parameters_of(model))
    tasks = mb.SinusoidTasks().sample(META_BATCH, SUPPORT, QUERY, generator=torch.Generator().manual_seed(seed))
    plain = torch.nn.Sequential(torch.nn.Linear(1, 40), torch.nn.ReLU(), torch.nn.Linear(40, 40), torch.nn.ReLU(),
                                torch.nn.Linear(40, 1))
    plain.load_state_dict(model.state_dict())
    return model, params, tasks, plain


def plain_forward(p: dict, x: torch.Tensor) -> torch.Tensor:
    """The 1-40-40-1 net written out, as in the MAML paper's own code."""
    h = F.relu(F.linear(x, p["0.weight"], p["0.bias"]))
    h = F.relu(F.linear(h, p["2.weight"], p["2.bias"]))
    return F.linear(h, p["4.weight"], p["4.bias"])


# ------------------------------------------------------------------ implementations
def make_loop(params, tasks, inner_steps):
    def step():
        theta = {k: v.detach().requires_grad_() for k, v in params.items()}
        meta_loss = 0.0
        for t in range(tasks.num_tasks):
            phi = theta
            for _ in range(inner_steps):
                loss = F.mse_loss(plain_forward(phi, tasks.x_support[t]), tasks.y_support[t])
                grads = torch.autograd.grad(loss, list(phi.values()), create_graph=True)
                phi = {k: v - INNER_LR * g for (k, v), g in zip(phi.items(), grads)}
            meta_loss = meta_loss + F.mse_loss(plain_forward(phi, tasks.x_query[t]), tasks.y_query[t])
        meta_loss = meta_loss / tasks.num_tasks
        return dict(zip(theta, torch.autograd.grad(meta_loss, list(theta.values()))))
    return step


def make_higher(plain, params, tasks, inner_steps):
    import higher
    with torch.no_grad():
        for k, p in plain.named_parameters():
            p.copy_(params[k])
    inner_opt = torch.optim.SGD(plain.parameters(), lr=INNER_LR)

    def step():
        plain.zero_grad(set_to_none=True)
        for t in range(tasks.num_tasks):
            with higher.innerloop_ctx(plain, inner_opt, copy_initial_weights=False) as (fmodel, diffopt):
                for _ in range(inner_steps):
                    diffopt.step(F.mse_loss(fmodel(tasks.x_support[t]), tasks.y_support[t]))
                (F.mse_loss(fmodel(tasks.x_query[t]), tasks.y_query[t]) / tasks.num_tasks).backward()
        return {k: p.grad for k, p in plain.named_parameters()}
    return step


def make_learn2learn(plain, params, tasks, inner_steps):
    import learn2learn as l2l  # optional; does not build on every machine
    with torch.no_grad():
        for k, p in plain.named_parameters():
            p.copy_(params[k])
    wrapped = l2l.algorithms.MAML(plain, lr=INNER_LR, first_order=False)

    def step():
        wrapped.zero_grad(set_to_none=True)
        for t in range(tasks.num_tasks):
            learner = wrapped.clone()
            for _ in range(inner_steps):
                learner.adapt(F.mse_loss(learner(tasks.x_support[t]), tasks.y_support[t]))
            (F.mse_loss(learner(tasks.x_query[t]), tasks.y_query[t]) / tasks.num_tasks).backward()
        return {k: p.grad for k, p in plain.named_parameters()}
    return step


def make_vmap(params, tasks, inner_steps):
    from torch.func import grad, vmap

    def query_loss(theta, xs, ys, xq, yq):
        phi = theta
        for _ in range(inner_steps):
            g = grad(lambda p: F.mse_loss(plain_forward(p, xs), ys))(phi)
            phi = {k: v - INNER_LR * g[k] for k, v in phi.items()}
        return F.mse_loss(plain_forward(phi, xq), yq)

    def meta_loss(theta):
        losses = vmap(query_loss, in_dims=(None, 0, 0, 0, 0))(theta, tasks.x_support, tasks.y_support,
                                                            tasks.x_query, tasks.y_query)
        return losses.mean()

    meta_grad = grad(meta_loss)

    def step():
        return meta_grad({k: v.detach() for k, v in params.items()})
    return step


def make_mamlbook(model, params, tasks, inner_steps):
    maml = mb.get_method("maml")

    def step():
        return maml(model, params, tasks, inner_lr=INNER_LR, inner_steps=inner_steps).grads
    return step


def make_compiled(model, params, tasks, inner_steps):
    step_fn = mb.performance.compile_method("maml", model, inner_lr=INNER_LR, inner_steps=inner_steps)

    def step():
        return step_fn(params, tasks).grads
    return step


# ------------------------------------------------------------------------ measuring
def step_flops(step) -> tuple[int, dict]:
    """Matrix FLOPs of one call (forward, inner gradients, meta-backward), by op."""
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    by_op = {str(op): int(n) for op, n in counter.get_flop_counts().get("Global", {}).items()}
    return int(counter.get_total_flops()), by_op


class CountOps(TorchDispatchMode):
    """Counts the tensor operations (ATen calls) that run while it is active."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


def count_ops(step) -> int:
    counter = CountOps()
    with counter:
        step()
    return counter.count


class RecordMatmuls(TorchDispatchMode):
    """Records every matrix product (``bmm``, ``baddbmm``, ``mm``, ``addmm``) with copies of its inputs."""

    KINDS = {torch.ops.aten.bmm.default, torch.ops.aten.baddbmm.default, torch.ops.aten.mm.default,
             torch.ops.aten.addmm.default}

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self.KINDS:
            copies = [a.detach().clone() if isinstance(a, torch.Tensor) else a for a in args]
            self.calls.append((func, copies, dict(kwargs)))
        return func(*args, **kwargs)


def matmul_floor(step, repeats: int = 200) -> float:
    """Seconds that the step's matrix products alone take, replayed back to back (best of ``repeats``).

    The products are those of one call of ``step`` (same shapes, same order, fresh copies
    of their inputs, no autograd): the time an implementation with zero overhead per
    operation would still need on this CPU.
    """
    recorder = RecordMatmuls()
    with recorder:
        step()
    best = float("inf")
    with torch.no_grad():
        for _ in range(repeats):
            start = time.perf_counter()
            for func, args, kwargs in recorder.calls:
                func(*args, **kwargs)
            best = min(best, time.perf_counter() - start)
    return best


def generic_op_cost(repeats: int = 50) -> float:
    """Seconds per small eager op (an add of two (25, 10, 40) tensors), best of ``repeats`` runs of 200."""
    a, b = torch.randn(META_BATCH, SUPPORT, 40), torch.randn(META_BATCH, SUPPORT, 40)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(200):
            torch.add(a, b)
        best = min(best, (time.perf_counter() - start) / 200)
    return best


def same_gradient(a: dict, b: dict, rtol=2e-3, atol=1e-5) -> float:
    """Max |a − b| relative to max |b|; raises if they are not allclose."""
    worst = 0.0
    for k in b:
        x, y = a[k].detach().float(), b[k].detach().float()
        if not torch.allclose(x, y, rtol=rtol, atol=atol * float(y.abs().max())):
            raise AssertionError(f"meta-gradient differs in {k!r}: max |diff| {float((x - y).abs().max()):.3e}")
        worst = max(worst, float((x - y).abs().max() / y.abs().max().clamp_min(1e-30)))
    return worst


def time_interleaved(steps: dict, rounds: int, calls: dict) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per-call seconds of each implementation, implementations interleaved round by round,
    and each implementation's median per round (for paired ratios)."""
    times = {name: [] for name in steps}
    per_round = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            this_round = []
            for _ in range(calls[name]):
                start = time.perf_counter()
                step()
                this_round.append(time.perf_counter() - start)
            times[name] += this_round
            per_round[name].append(statistics.median(this_round))
    return times, per_round


def paired_ratio(baseline: list[float], ours: list[float]) -> tuple[float, float, float]:
    """Median and quartiles over rounds of baseline/ours, each ratio from one round.

    A round times every implementation within about a second, so a slow drift of the
    machine's speed (other jobs, a busy neighbour on a shared host) cancels in each
    round's ratio instead of skewing one implementation's median against another's.
    """
    ratios = [b / o for b, o in zip(baseline, ours)]
    q = statistics.quantiles(ratios, n=4)
    return statistics.median(ratios), q[0], q[2]


def run(inner_steps_list, threads, rounds, compile_, calls_fast):
    torch.set_num_threads(threads)
    model, params, tasks, plain = make_problem()
    env = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": mb.device.cpu_name(),
           "cores": os.cpu_count(), "loadavg_before": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M")}
    op_cost = generic_op_cost()
    results = {"environment": env, "setup": {"net": "1-40-40-1 ReLU", "meta_batch": META_BATCH, "support": SUPPORT,
                                             "query": QUERY, "inner_lr": INNER_LR, "dtype": "float32",
                                             "rounds": rounds},
               "generic_op_us": op_cost * 1e6, "runs": {}}
    unavailable = {}
    for k in inner_steps_list:
        makers = {"loop": lambda: make_loop(params, tasks, k),
                  "higher": lambda: make_higher(plain, params, tasks, k),
                  "learn2learn": lambda: make_learn2learn(plain, params, tasks, k),
                  "vmap": lambda: make_vmap(params, tasks, k),
                  "mamlbook": lambda: make_mamlbook(model, params, tasks, k)}
        if compile_:
            makers["mamlbook-compiled"] = lambda: make_compiled(model, params, tasks, k)
        steps, compile_s, ops = {}, {}, {}
        reference = make_loop(params, tasks, k)()
        for name, make in makers.items():
            try:
                step = make()
                start = time.perf_counter()
                grads = step()  # first call: compiles where there is something to compile
                first = time.perf_counter() - start
            except ImportError as err:
                unavailable[name] = f"{type(err).__name__}: {err}"
                print(f"[{k} steps] {name}: unavailable ({err})")
                continue
            err = same_gradient(grads, reference)
            if name == "mamlbook-compiled":
                grads = step()  # a guard failure would recompile here; make sure it does not
                compile_s[name] = first
            steps[name] = step
            ops[name] = None if name == "mamlbook-compiled" else count_ops(step)
            print(f"[{k} steps] {name}: same meta-gradient as the loop (max rel. diff {err:.1e}), first call {first:.2f} s")
        for step in steps.values():  # warm-up
            for _ in range(3):
                step()
        flops, by_op = step_flops(steps["mamlbook"])
        floor_s = matmul_floor(steps["mamlbook"])
        fast = {"mamlbook", "mamlbook-compiled", "vmap"}
        calls = {name: (calls_fast if name in fast else max(1, calls_fast // 10)) for name in steps}
        times, per_round = time_interleaved(steps, rounds, calls)
        run_ = {"inner_steps": k, "matrix_flops": flops, "matrix_flops_by_op": by_op,
                "lower_bound_ms": 1e3 * floor_s, "matmul_gflops": flops / floor_s / 1e9, "impls": {}}
        loop_ms = 1e3 * statistics.median(times["loop"])
        higher_ms = 1e3 * statistics.median(times["higher"]) if "higher" in times else None
        for name, ts in times.items():
            ms = 1e3 * statistics.median(ts)
            q = statistics.quantiles([1e3 * t for t in ts], n=4)
            vs_loop = paired_ratio(per_round["loop"], per_round[name])
            vs_higher = paired_ratio(per_round["higher"], per_round[name]) if "higher" in per_round else None
            run_["impls"][name] = {
                "median_ms": ms, "q1_ms": q[0], "q3_ms": q[2], "calls": len(ts),
                "tasks_per_s": META_BATCH / (ms / 1e3),
                "speedup_vs_loop": vs_loop[0], "speedup_vs_loop_quartiles": vs_loop[1:],
                "speedup_vs_higher": vs_higher[0] if vs_higher else None,
                "speedup_vs_higher_quartiles": vs_higher[1:] if vs_higher else None,
                "ratio_of_medians_vs_loop": loop_ms / ms,
                "ratio_of_medians_vs_higher": (higher_ms / ms) if higher_ms else None,
                "times_lower_bound": ms / run_["lower_bound_ms"],
                "tensor_ops": ops.get(name),
                "compile_s": compile_s.get(name)}
        results["runs"][str(k)] = run_
    results["unavailable"] = unavailable
    results["environment"]["loadavg_after"] = os.getloadavg()
    return results


def print_table(results):
    print(f"\ngeneric op {results['generic_op_us']:.2f} us, "
          f"{results['environment']['threads']} threads, load {results['environment']['loadavg_before'][0]:.2f}")
    for k, run_ in results["runs"].items():
        print(f"\ninner steps {k}: {run_['matrix_flops'] / 1e6:.1f} MFLOP of matrix products, "
              f"lower bound {run_['lower_bound_ms']:.3f} ms (they run at {run_['matmul_gflops']:.0f} GFLOP/s)")
        print(f"{'implementation':<20}{'ms/step':>10}{'tasks/s':>10}{'vs loop':>9}{'vs higher':>11}{'x bound':>9}"
              f"{'ops':>8}{'compile s':>11}")
        for name, r in run_["impls"].items():
            vh = f"{r['speedup_vs_higher']:.1f}x" if r["speedup_vs_higher"] else "-"
            cs = f"{r['compile_s']:.1f}" if r["compile_s"] else "-"
            ops = str(r["tensor_ops"]) if r["tensor_ops"] else "-"
            print(f"{name:<20}{r['median_ms']:>10.3f}{r['tasks_per_s']:>10.0f}{r['speedup_vs_loop']:>8.1f}x{vh:>11}"
                  f"{r['times_lower_bound']:>8.1f}x{ops:>8}{cs:>11}")
    for name, why in results["unavailable"].items():
        print(f"{name}: unavailable ({why})")


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    runs = results["runs"]
    fig, axes = plt.subplots(1, len(runs), figsize=(5.5 * len(runs), 3.6), squeeze=False)
    for ax, (k, run_) in zip(axes[0], runs.items()):
        names = list(run_["impls"])
        values = [run_["impls"][n]["tasks_per_s"] for n in names]
        colors = ["C0" if n.startswith("mamlbook") else "C7" for n in names]
        ax.barh(names, values, color=colors)
        for i, n in enumerate(names):
            ax.text(values[i], i, f" {run_['impls'][n]['speedup_vs_loop']:.1f}x", va="center", fontsize=8)
        bound = META_BATCH / (run_["lower_bound_ms"] / 1e3)
        ax.axvline(bound, color="k", ls="--", lw=1, label="matrix-FLOP bound")
        ax.set_xscale("log")
        ax.set_xlabel("tasks per second (second-order MAML meta-step)")
        ax.set_title(f"{k} inner step{'s' if k != '1' else ''}, meta-batch {META_BATCH}")
        ax.invert_yaxis()
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inner-steps", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds (default 20)")
    parser.add_argument("--calls", type=int, default=20, help="calls per round of the fast implementations")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile path")
    parser.add_argument("--warm-cache", action="store_true",
                        help="reuse torch.compile's on-disk cache (default: a fresh one, so compile times are cold)")
    parser.add_argument("--out", default=str(RESULTS / "throughput.json"))
    args = parser.parse_args(argv)
    if not args.warm_cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-cold-")
    results = run(args.inner_steps, args.threads, args.rounds, not args.no_compile, args.calls)
    print_table(results)
    write(results, Path(args.out), plot, "throughput.py", argv)


if __name__ == "__main__":
    main()

"""Peak tensor memory of one meta-step against the number of inner steps.

MAML differentiates through every inner step, so it keeps every step's graph: memory
grows linearly with the number of steps. First-order MAML and Reptile cut the graph
after each step, and iMAML needs the graph of a single support gradient at the
adapted parameters (implicit differentiation), whatever the number of steps.

Setting: the book's sinusoid net (1-40-40-1), meta-batch 25, K = 10 support and
10 query points, inner steps 1, 5, 10, 25, 50, 100 (MAML/FOMAML/Reptile: α = 0.01;
iMAML: α = 0.01, λ = 2, 5 conjugate-gradient steps).

What is measured. On CPU: every tensor storage created while the meta-step runs
(forward, inner gradients, backward, all dispatched through a
``TorchDispatchMode``) is counted from its allocation until it is freed (a weak
reference on the storage); the peak of the running total is reported. Parameters and
data that exist before the step are not counted. On CUDA:
``torch.cuda.max_memory_allocated()`` above what was allocated before the step.

Run (about a minute)::

    .venv/bin/python benchmarks/memory.py            # writes mamlbook/results/memory.{json,png}
    .venv/bin/python benchmarks/memory.py --device cuda
"""
from __future__ import annotations

import argparse
import statistics
import time
import weakref
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

import mamlbook as mb

from _results import RESULTS, write
STEPS = (1, 5, 10, 25, 50, 100)
METHODS = {  # name -> (registered method, options)
    "MAML": ("maml", {}),
    "first-order MAML": ("fomaml", {}),
    "Reptile": ("reptile", {}),
    "iMAML": ("imaml", {"lam": 2.0, "cg_steps": 5}),
}


class PeakTensorMemory(TorchDispatchMode):
    """Running total of the bytes of tensor storages created under this mode, and its peak."""

    def __init__(self):
        super().__init__()
        self.live: dict[int, int] = {}
        self.current = 0
        self.peak = 0

    def _freed(self, key: int) -> None:
        self.current -= self.live.pop(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                storage = t.untyped_storage()
                key = storage._cdata
                if key not in self.live:  # a new storage (views share their base's)
                    self.live[key] = storage.nbytes()
                    self.current += storage.nbytes()
                    weakref.finalize(storage, self._freed, key)
        self.peak = max(self.peak, self.current)
        return out


def peak_bytes(step, device: torch.device) -> int:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        result = step()
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) - before
        del result
        return peak
    with PeakTensorMemory() as tracker:
        result = step()
    del result
    return tracker.peak


def median_ms(step, device, calls: int = 5) -> float:
    step()
    times = []
    for _ in range(calls):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def run(device: torch.device, steps_list, meta_batch: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = mb.SinusoidMLP().to(device)
    params = mb.detached(mb.parameters_of(model))
    tasks = mb.SinusoidTasks().sample(meta_batch, 10, 10, generator=torch.Generator().manual_seed(0), device=device)
    results = {"device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
               "setup": {"net": "1-40-40-1 ReLU", "meta_batch": meta_batch, "support": 10, "query": 10,
                         "inner_lr": 0.01, "methods": {k: {"method": m, **o} for k, (m, o) in METHODS.items()},
                         "measure": ("torch.cuda.max_memory_allocated above the start" if device.type == "cuda" else
                                     "peak of live tensor storages created during the step (TorchDispatchMode)")},
               "inner_steps": list(steps_list), "peak_mb": {}, "ms_per_step": {}, "date": time.strftime("%Y-%m-%d %H:%M")}
    for name, (method, options) in METHODS.items():
        fn = mb.get_method(method)
        results["peak_mb"][name], results["ms_per_step"][name] = [], []
        for k in steps_list:
            def step():
                return fn(model, params, tasks, inner_lr=0.01, inner_steps=k, **options)
            results["peak_mb"][name].append(peak_bytes(step, device) / 2**20)
            results["ms_per_step"][name].append(median_ms(step, device))
            print(f"{name:<18} {k:>4} inner steps: peak {results['peak_mb'][name][-1]:8.3f} MiB, "
                  f"{results['ms_per_step'][name][-1]:8.2f} ms/step", flush=True)
    i5, i100 = steps_list.index(5) if 5 in steps_list else None, steps_list.index(100) if 100 in steps_list else None
    if i5 is not None and i100 is not None:
        results["ratio_100_vs_5"] = {name: v[i100] / v[i5] for name, v in results["peak_mb"].items()}
    return results


def print_table(results):
    steps = results["inner_steps"]
    print(f"\npeak tensor memory (MiB) of one meta-step, {results['device']}, meta-batch {results['setup']['meta_batch']}")
    print(f"{'method':<18}" + "".join(f"{k:>9}" for k in steps) + (f"{'100 / 5':>9}" if "ratio_100_vs_5" in results else ""))
    for name, row in results["peak_mb"].items():
        ratio = f"{results['ratio_100_vs_5'][name]:>8.2f}x" if "ratio_100_vs_5" in results else ""
        print(f"{name:<18}" + "".join(f"{v:>9.2f}" for v in row) + ratio)


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for i, (name, row) in enumerate(results["peak_mb"].items()):
        axes[0].plot(results["inner_steps"], row, "o-", color=f"C{i}", label=name)
        axes[1].plot(results["inner_steps"], results["ms_per_step"][name], "o-", color=f"C{i}", label=name)
    axes[0].set(xlabel="inner steps", ylabel="peak tensor memory (MiB)", xscale="log", yscale="log",
                title=f"memory of one meta-step ({results['device']})")
    axes[1].set(xlabel="inner steps", ylabel="ms per meta-step", xscale="log", yscale="log", title="time of one meta-step")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--inner-steps", type=int, nargs="+", default=list(STEPS))
    parser.add_argument("--meta-batch", type=int, default=25)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="default: mamlbook/results/memory.json (memory_cuda.json on CUDA)")
    args = parser.parse_args(argv)
    device = mb.get_device(args.device)
    results = run(device, args.inner_steps, args.meta_batch, args.threads)
    print_table(results)
    out = Path(args.out or RESULTS / ("memory.json" if device.type == "cpu" else f"memory_{device.type}.json"))
    write(results, out, plot, "memory.py", argv)


if __name__ == "__main__":
    main()

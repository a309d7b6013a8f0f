"""Where the conv meta-step's time goes, and how fast it could be made without faster convolutions.

The step is `conv_step.py`'s plain per-task loop (second-order MAML, the 64-filter
`mamlbook.models.ConvNet`, 5-way 1-shot, 15 query images per class, meta-batch 8, one
inner step of 0.4). Measured in one run:

* **Profile.** ``torch.profiler`` on one step, self CPU time summed by kind of kernel
  (and the same for the package's per-task path in both layouts):
  convolutions (forward, backward and double backward: every op whose name holds
  ``convolution`` or ``conv2d``), batch norm (its own kernels; its double backward is
  made of element-wise ops, counted under "other"), max-pooling, ReLU (``clamp_min``,
  ``threshold_backward``), the rest.
* **Kernels.** The same loop timed (median of interleaved rounds) with the kernels and
  layouts PyTorch offers on a CPU, paired ratios to the default: oneDNN on NCHW tensors
  (the default); oneDNN with images and filters converted the usual way,
  ``contiguous(memory_format=torch.channels_last)`` (which leaves the first block's
  activations in NCHW: a one-channel image counts as contiguous in both layouts, so it
  keeps its NCHW strides, and the first convolution's output follows its input); the
  package's per-task path (pooling before ReLU), in the default layout and with
  ``ConvNet(channels_last=True)``: on the query sets, every activation channels-last
  from the first convolution's output on (the image and the first filters get
  channels-last strides with a view: batch norm, max-pooling and every convolution run
  on channels-last tensors), the support sets in the default layout; PyTorch's own
  im2col + GEMM kernels
  (oneDNN disabled); and, for one inner step, the whole step under ``torch.compile``
  (`mamlbook.performance.compile_method`).
* **Batch norm's float32 error** in each layout, on the first block's convolution
  output for one query set, against float64, at each number of threads (which sets
  the order of its sums).
* **Arithmetic.** The loop step's convolution FLOPs
  (``torch.utils.flop_counter.FlopCounterMode``: forward, backward and double
  backward), the rate at which its convolutions run (those FLOPs over their profiled
  time, per thread) beside the rate of a 1024 × 1024 matrix product at the same number
  of threads (the densest work the core does), and the rate per thread that twice the
  loop's speed would need if the convolutions were all the step did
  (``gflops_per_thread_for_2x``).
* **Bounds** (Amdahl's law). Whatever a faster step does *around* the convolution
  kernels, it cannot take less than their time: ``bound_x_loop`` = the timed loop step
  / its convolutions' time, at the same number of threads. A step that splits the
  meta-batch over ``N`` cores (threads, or batching the tasks) changes how the
  convolutions run, so with ``N`` threads the bound is also given for the one-thread
  convolution time divided perfectly by ``N``: ``bound_split_x_loop``.

Run::

    .venv/bin/python benchmarks/conv_profile.py [--threads 1 2] [--rounds 5]
    # writes mamlbook/results/conv_profile.json
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings

import torch
from torch.profiler import profile
from torch.utils.flop_counter import FlopCounterMode

import mamlbook as mb
from mamlbook.models import ConvNet

from _results import RESULTS, write_json
from conv_step import FILTERS, INNER_LR, flat, loop_step, paired_ratio, problem, relative_error, time_rounds

KINDS = {  # kind of kernel: substrings of the ATen op names it covers
    "convolution": ("convolution", "conv2d"),
    "batch norm": ("batch_norm",),
    "max-pool": ("max_pool",),
    "relu": ("clamp_min", "threshold_backward", "relu"),
}


def kind_of(op: str) -> str:
    for kind, keys in KINDS.items():
        if any(key in op for key in keys):
            return kind
    return "other"


def profile_step(call, theta, tasks) -> dict:
    """Self CPU milliseconds of one step, ``call(theta, tasks)``, by kind of kernel."""
    call(theta, tasks)  # warm-up
    with profile() as prof:
        call(theta, tasks)
    ms = {kind: 0.0 for kind in (*KINDS, "other")}
    for event in prof.key_averages():
        ms[kind_of(event.key)] += event.self_cpu_time_total / 1000
    total = sum(ms.values())
    return {"ms": {k: round(v, 1) for k, v in ms.items()}, "total_ms": round(total, 1),
            "convolution_share": round(ms["convolution"] / total, 3)}


def add_bounds(rows: list[dict]) -> None:
    """Each row's ``bound_x_loop`` and, given a one-thread row, ``bound_split_x_loop`` (in place)."""
    one = next((r for r in rows if r["threads"] == 1), None)
    for row in rows:
        step_ms, conv_ms = row["kernels"]["onednn_nchw"]["ms"], row["profile"]["ms"]["convolution"]
        row["bound_x_loop"] = round(step_ms / conv_ms, 2)
        if one is not None and row["threads"] > 1:
            split_ms = one["profile"]["ms"]["convolution"] / row["threads"]
            row["split_convolution_ms"] = round(split_ms, 1)
            row["bound_split_x_loop"] = round(step_ms / split_ms, 2)


def convolution_gflop(call, theta, tasks) -> float:
    """GFLOP of the convolutions (forward, backward, double backward) in ``call(theta, tasks)``."""
    with FlopCounterMode(display=False) as counter:
        call(theta, tasks)
    counts = counter.get_flop_counts()["Global"]
    return sum(n for op, n in counts.items() if kind_of(str(op)) == "convolution") / 1e9


def matmul_gflops(rounds: int, size: int = 1024) -> float:
    """The rate of a ``size × size`` float32 matrix product at the current number of
    threads, GFLOP/s (the median of ``rounds`` timings of 10 products each)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm-up
    times = time_rounds({"matmul": lambda: [a @ b for _ in range(10)]}, rounds)["matmul"]
    return 10 * 2 * size ** 3 / statistics.median(times) / 1e9


def add_arithmetic(row: dict, gflop: float, rounds: int) -> None:
    """The row's convolution rates (in place): achieved, a matrix product's, and needed for 2×."""
    threads, conv_s = row["threads"], row["profile"]["ms"]["convolution"] / 1000
    half_loop_s = row["kernels"]["onednn_nchw"]["ms"] / 2000
    row["arithmetic"] = {"convolution_gflop": round(gflop, 2),
                         "convolution_gflops_per_thread": round(gflop / conv_s / threads, 1),
                         "matmul_gflops_per_thread": round(matmul_gflops(rounds) / threads, 1),
                         "gflops_per_thread_for_2x": round(gflop / half_loop_s / threads, 1)}


def channels_last_step(net, theta, tasks, steps):
    """`conv_step.loop_step` with images and conv weights made channels-last the usual way
    (``contiguous(memory_format=torch.channels_last)``, a no-op on one-channel tensors);
    the gradient w.r.t. the converted weights is the one w.r.t. ``theta``'s."""
    def channels_last(x):
        return x.contiguous(memory_format=torch.channels_last)

    theta_cl = {k: channels_last(v) if v.ndim == 4 else v for k, v in theta.items()}
    return loop_step(net, theta_cl, tasks, steps, images=channels_last)


class PoolFirstConvNet(ConvNet):
    """`ConvNet` whose ``forward`` is the package's per-task path, with its ``channels_last``
    switch (each block pools before its ReLU: the same numbers, a quarter of the ReLUs).

    `conv_step.loop_step` calls ``forward`` through ``functional_call``, which the switch
    leaves in the default layout (so that every ``torch.func`` transform works); this
    subclass lets the same hand-written loop time the package's path in both layouts,
    so that the two rows differ in the layout alone."""

    def forward(self, x):
        return self._forward_one(dict(self.named_parameters()), x, channels_last=self.channels_last)


def pool_first_copy(net: ConvNet, channels_last: bool) -> PoolFirstConvNet:
    """A `PoolFirstConvNet` with ``net``'s settings and weights, in the given layout."""
    copy_ = PoolFirstConvNet(**{**net.settings, "channels_last": channels_last})
    copy_.load_state_dict(net.state_dict())
    return copy_


def native_step(net, theta, tasks, steps):
    """`conv_step.loop_step` with PyTorch's own convolution kernels (oneDNN disabled)."""
    with warnings.catch_warnings():  # switching oneDNN off warns about Intel GPUs' TF32: not ours
        warnings.simplefilter("ignore", UserWarning)
        with torch.backends.mkldnn.flags(enabled=False):
            return loop_step(net, theta, tasks, steps)


COMPILED_NOTE = ("compiled for one inner step only: compiling the five-step graph (the 8 tasks "
                 "unrolled into one graph) ran for over 12 minutes on this machine without finishing")


def variants(net, steps: int) -> dict:
    """{name: a call (theta, tasks) -> the meta-gradient's tensors}: the loop and what it is
    timed against. ``pool_first`` and ``pool_first_channels_last_activations`` run the
    package's per-task path through the same hand-written loop, so that they differ from
    each other in the layout alone; the compiled step (`mb.performance.compile_method`)
    only for one inner step (`COMPILED_NOTE`)."""
    pool_first, channels_last = pool_first_copy(net, False), pool_first_copy(net, True)
    calls = {
        "onednn_nchw": lambda theta, tasks: loop_step(net, theta, tasks, steps),
        "onednn_channels_last": lambda theta, tasks: channels_last_step(net, theta, tasks, steps),
        "pool_first": lambda theta, tasks: loop_step(pool_first, theta, tasks, steps),
        "pool_first_channels_last_activations": lambda theta, tasks: loop_step(channels_last, theta, tasks, steps),
        "native": lambda theta, tasks: native_step(net, theta, tasks, steps),
    }
    if steps == 1:
        compiled = mb.performance.compile_method("maml", net, inner_lr=INNER_LR, inner_steps=steps,
                                                 loss_fn=mb.cross_entropy_per_task, device_type="cpu")
        calls["compiled"] = lambda theta, tasks: list(compiled(theta, tasks).grads.values())
    return calls


def batch_norm_error(net: ConvNet, images: torch.Tensor) -> dict:
    """Float32 relative error of batch norm (its output, and the gradient to its input
    for a random output gradient) against float64, in each layout, on the first block's
    convolution output for ``images`` (a query set): the channels-last kernel sums
    sequentially, the default one in blocks."""
    conv, norm = net.features[0], net.features[1]
    with torch.no_grad():
        x64 = torch.nn.functional.conv2d(images.double(), conv.weight.double(), conv.bias.double(), padding=1)
    weight, bias = norm.weight.detach().double(), norm.bias.detach().double()
    grad_out = torch.randn(x64.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def forward_backward(x, grad, dtype):
        x = x.detach().to(dtype).requires_grad_()
        y = torch.nn.functional.batch_norm(x, None, None, weight.to(dtype), bias.to(dtype), training=True)
        return y.detach(), torch.autograd.grad(y, x, grad.to(dtype))[0]

    exact = forward_backward(x64, grad_out, torch.float64)
    errors = {}
    for layout, memory_format in (("default", torch.contiguous_format), ("channels_last", torch.channels_last)):
        got = forward_backward(x64.contiguous(memory_format=memory_format),
                               grad_out.contiguous(memory_format=memory_format), torch.float32)
        errors[layout] = {name: relative_error(g, e)
                          for name, g, e in zip(("output", "input_gradient"), got, exact)}
    return {"shape": list(x64.shape), "errors": errors}


def time_kernels(calls: dict, theta, tasks, rounds: int) -> dict:
    """Each call's median ms over interleaved rounds, its paired ratio to the loop
    (``x_default``) and its meta-gradient's relative difference to the loop's (the first
    calls, which compile, are the warm-up)."""
    flats = {name: flat(call(theta, tasks)) for name, call in calls.items()}
    reference = flats["onednn_nchw"]
    times = time_rounds({name: (lambda call=call: call(theta, tasks)) for name, call in calls.items()}, rounds)
    return {name: {"relative_difference": relative_error(flats[name], reference.double()),
                   "ms": round(1000 * statistics.median(ts), 1),
                   "x_default": paired_ratio(times["onednn_nchw"], ts)}
            for name, ts in times.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--meta-batch", type=int, default=8)
    parser.add_argument("--inner-steps", type=int, default=1)
    parser.add_argument("--ways", type=int, default=5)
    parser.add_argument("--out", default=str(RESULTS / "conv_profile.json"))
    args = parser.parse_args(argv)
    tasks = problem(args.ways, args.meta_batch)
    torch.manual_seed(0)
    net = ConvNet(args.ways, FILTERS)
    theta = mb.detached(mb.parameters_of(net), requires_grad=True)
    results = {"command": "python benchmarks/conv_profile.py " + " ".join(sys.argv[1:] if argv is None else argv),
               "environment": {"torch": torch.__version__, "cores": os.cpu_count(),
                               "loadavg_before": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M"),
                               "filters": FILTERS, "ways": args.ways, "meta_batch": args.meta_batch,
                               "inner_steps": args.inner_steps, "inner_lr": INNER_LR},
               "rows": [], "notes": {"compiled": COMPILED_NOTE}}
    gflop = convolution_gflop(lambda th, ta: loop_step(net, th, ta, args.inner_steps), theta, tasks)
    for threads in args.threads:
        torch.set_num_threads(threads)
        calls = variants(net, args.inner_steps)  # anew: the compiled step is compiled for these threads
        row = {"threads": threads, "profile": profile_step(calls["onednn_nchw"], theta, tasks),
               "profile_pool_first": profile_step(calls["pool_first"], theta, tasks),
               "profile_channels_last": profile_step(calls["pool_first_channels_last_activations"], theta, tasks),
               "kernels": time_kernels(calls, theta, tasks, args.rounds),
               # its summation order, so its error, depends on the number of threads
               "batch_norm_float32_error": batch_norm_error(net, tasks.x_query[0])}
        add_arithmetic(row, gflop, args.rounds)
        results["rows"].append(row)
        add_bounds(results["rows"])
        p, k = row["profile"], row["kernels"]
        split = f", {row['bound_split_x_loop']:.2f}x if split over the cores" if "bound_split_x_loop" in row else ""
        print(f"{threads} thread(s): loop step {k['onednn_nchw']['ms']:.0f} ms, convolutions "
              f"{p['ms']['convolution']:.0f} ms: at most {row['bound_x_loop']:.2f}x the loop with these kernels{split}",
              flush=True)
        print("   profiled: " + ", ".join(f"{kind} {ms:.0f}" for kind, ms in p["ms"].items()) + " ms", flush=True)
        for key in ("pool_first", "channels_last"):
            by_kind = row[f"profile_{key}"]["ms"].items()
            print(f"   profiled, {key}: " + ", ".join(f"{kind} {ms:.0f}" for kind, ms in by_kind) + " ms", flush=True)
        a = row["arithmetic"]
        print(f"   convolutions: {a['convolution_gflop']:.1f} GFLOP at {a['convolution_gflops_per_thread']:.0f} "
              f"GFLOP/s per thread (a 1024x1024 matmul: {a['matmul_gflops_per_thread']:.0f}); twice the loop "
              f"needs {a['gflops_per_thread_for_2x']:.0f} with nothing but the convolutions", flush=True)
        bn = row["batch_norm_float32_error"]
        print(f"   batch norm on {tuple(bn['shape'])}, float32 relative error (output, input gradient): "
              + "; ".join(f"{layout} {e['output']:.0e}, {e['input_gradient']:.0e}" for layout, e in bn["errors"].items()),
              flush=True)
        print("   kernels: " + ", ".join(f"{name} {r['ms']:.0f} ms ({r['x_default']:.2f}x)" for name, r in k.items()),
              flush=True)
    results["environment"]["loadavg_after"] = os.getloadavg()
    write_json(results, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The meta-step under ``torch.compile``: one fused graph for forward, inner gradients
and meta-backward.

At the book's network size the eager meta-step spends most of its time on per-operation
overhead (about 185 tensor operations, a few µs each); compiled, the whole step (inner
``torch.autograd.grad(create_graph=True)`` included, via
``torch._dynamo.config.trace_autograd_ops``) becomes one graph of fused C++ loops and
the matrix products, with the Python overhead paid once per call. The compiled function
takes and returns plain tensors, so that dynamo's checks on every call (its guards)
need not walk dicts and dataclasses.

Three CPU-specific settings, each measured on the book's shapes (Performance appendix,
``benchmarks/throughput.py``):

* `decompose_thin_products`, a graph pass: batched products with a dimension of size 1
  (the first layer has one input, the last one output) become elementwise work that
  inductor fuses into its loops, instead of calls into the matrix library.
* `rewrite_narrow_bmm`, a graph pass: a batched product ``A @ B`` whose result is
  narrower than it is tall (``(T, 40, 10)`` from ``(T, 40, 40) @ (T, 40, 10)``, which
  the meta-backward of a hidden layer needs) runs 2–4× slower in MKL than the same
  numbers computed as ``(Bᵀ @ Aᵀ)ᵀ``. The pass rewrites such products; the result is
  the same matrix (up to float rounding), read through a transposed view.
* ``cpp.threads = 1`` for the generated elementwise loops: at these sizes (a few
  thousand numbers) waking a second thread costs more than it saves; the matrix
  products still use all of ``torch.get_num_threads()``.
"""

from __future__ import annotations

import functools
from typing import Callable

import torch
import torch._dynamo
from torch import nn

from .. import checks
from ..algorithms.base import MetaStep, get_method
from ..functional import Params
from ..tasks import TaskBatch


def _static_cpu_product(node: torch.fx.Node, offsets: dict) -> tuple | None:
    """``(A, B, (m, k, n))`` if ``node`` is one of ``offsets``' batched products
    (``offsets`` maps the op to the position of ``A`` in its arguments) on CPU, with
    static shapes and no ``alpha``/``beta`` scaling; else None."""
    if (
        node.op != "call_function"
        or node.target not in offsets
        or node.kwargs.get("alpha", 1) != 1
        or node.kwargs.get("beta", 1) != 1
    ):
        return None
    first = offsets[node.target]
    if len(node.args) != first + 2:
        return None
    a, b = node.args[first:]
    a_val, b_val = a.meta.get("val"), b.meta.get("val")
    if a_val is None or b_val is None or a_val.device.type != "cpu":
        return None
    sizes = (a_val.shape[1], a_val.shape[2], b_val.shape[2])
    return (a, b, sizes) if all(isinstance(d, int) for d in sizes) else None


def _transposed(graph: torch.fx.Graph, x: torch.fx.Node) -> torch.fx.Node:
    return graph.call_function(torch.ops.aten.permute.default, (x, [0, 2, 1]))


def rewrite_narrow_bmm(graph: torch.fx.Graph) -> None:
    """Rewrite ``bmm(A, B)`` -> ``bmm(Bᵀ, Aᵀ)ᵀ`` on CPU when the result is narrow (in
    place).

    For ``A (T, m, k)``, ``B (T, k, n)`` with ``n < m`` the product is computed as the
    ``(T, n, m)`` product of the transposes and handed on as a transposed view (no
    copy; inductor reads it with swapped strides). Products on other devices are left
    alone. ``graph`` is an ATen-level FX graph whose nodes carry ``meta["val"]``.
    """
    bmm = torch.ops.aten.bmm.default
    for node in list(graph.nodes):
        found = _static_cpu_product(node, {bmm: 0})
        if found is None or not found[2][2] < found[2][0]:
            continue
        a, b, _ = found
        with graph.inserting_before(node):
            product = _transposed(
                graph,
                graph.call_function(
                    bmm, (_transposed(graph, b), _transposed(graph, a))
                ),
            )
        node.replace_all_uses_with(product)
        graph.erase_node(node)


def decompose_thin_products(graph: torch.fx.Graph) -> None:
    """Write batched products with a dimension of size 1 as elementwise work (in place,
    CPU only).

    ``(T, m, 1) @ (T, 1, n)`` is an outer product, ``A * B``; ``(T, m, k) @ (T, k, 1)``
    is ``(A * Bᵀ).sum(-1)``; ``(T, 1, k) @ (T, k, n)`` is ``(Aᵀ * B).sum(1)``. As
    elementwise operations and sums, inductor fuses them into the loops around them
    instead of calling the matrix library for a product with almost no arithmetic (the
    sinusoid network's first and last layers). ``baddbmm`` (``C + A @ B``) likewise.
    """
    aten = torch.ops.aten
    offsets = {aten.bmm.default: 0, aten.baddbmm.default: 1}
    for node in list(graph.nodes):
        found = _static_cpu_product(node, offsets)
        if found is None or 1 not in found[2]:
            continue
        a, b, (m, k, n) = found
        with graph.inserting_before(node):
            if k == 1:  # outer product
                product = graph.call_function(aten.mul.Tensor, (a, b))
            elif n == 1:  # matrix times vector: (T, m, k) * (T, 1, k), summed over k
                product = graph.call_function(
                    aten.sum.dim_IntList,
                    (
                        graph.call_function(
                            aten.mul.Tensor, (a, _transposed(graph, b))
                        ),
                        [2],
                        True,
                    ),
                )
            else:  # m == 1: (T, k, 1) * (T, k, n), summed over k
                product = graph.call_function(
                    aten.sum.dim_IntList,
                    (
                        graph.call_function(
                            aten.mul.Tensor, (_transposed(graph, a), b)
                        ),
                        [1],
                        True,
                    ),
                )
            if offsets[node.target]:
                product = graph.call_function(aten.add.Tensor, (node.args[0], product))
        node.replace_all_uses_with(product)
        graph.erase_node(node)


@functools.cache
def _cpu_graph_passes():
    """`decompose_thin_products`, then `rewrite_narrow_bmm`, as an inductor post-grad
    pass (imported late: torch._inductor takes a second to import, and most chapters
    never compile)."""
    from torch._inductor.custom_graph_pass import CustomGraphPass, get_hash_for_files

    class CpuGraphPasses(CustomGraphPass):
        def __call__(self, graph: torch.fx.Graph) -> None:
            decompose_thin_products(graph)
            rewrite_narrow_bmm(graph)

        def uuid(self):
            # Inductor caches compiled graphs keyed on this: a change to this file is a
            # new pass.
            return get_hash_for_files((__file__,))

    return CpuGraphPasses()


def inductor_options(device_type: str = "cpu") -> dict:
    """The inductor settings `compile_method` uses on ``device_type`` (see the module
    docstring)."""
    if device_type != "cpu":
        return {}
    return {"post_grad_custom_post_pass": _cpu_graph_passes(), "cpp.threads": 1}


def compile_method(
    method: str | Callable[..., MetaStep],
    model: nn.Module,
    *,
    inner_lr: float,
    inner_steps: int = 1,
    device_type: str = "cpu",
    **options,
) -> Callable[[Params, TaskBatch], MetaStep]:
    """A compiled ``(params, tasks) -> MetaStep`` for one method and fixed settings.

    The returned function computes exactly what ``get_method(method)(model, params,
    tasks, inner_lr=..., inner_steps=..., **options)`` computes (the same code, traced
    once into one graph), to float rounding. The first call compiles (tens of seconds
    on a laptop CPU; inductor caches the result on disk, so a second process starts in
    seconds); calls with tasks of another shape compile again.

    Parameters
    ----------
    method : a registered name (``"maml"``, ``"fomaml"``, ``"reptile"``, ...) or a
        method.
    model, inner_lr, inner_steps, **options : fixed for every call, as in the method.
    device_type : where the step will run (``"cpu"`` or ``"cuda"``), to pick inductor
        settings.

    Example
    -------
    >>> step = compile_method("maml", model, inner_lr=0.01, inner_steps=1)
    >>> step(params, tasks).grads  # first call compiles
    """
    fn = get_method(method) if isinstance(method, str) else method
    checks.module("model", model)
    checks.positive_float("inner_lr", inner_lr)
    checks.int_in_range(
        "inner_steps", inner_steps, 0
    )  # 0 only for "pretrain"; each method checks its own range
    checks.one_of("device_type", device_type, {"cpu", "cuda"})
    names: list[str] = []  # the parameter names, fixed at the first call

    def graph(values: tuple[torch.Tensor, ...], x_support, y_support, x_query, y_query):
        # Tensors in, tensors out: dynamo's checks on every call (its guards) then need
        # not walk the caller's dicts and dataclasses.
        step = fn(
            model,
            dict(zip(names, values)),
            TaskBatch(x_support, y_support, x_query, y_query),
            inner_lr=inner_lr,
            inner_steps=inner_steps,
            **options,
        )
        return (
            step.meta_loss,
            tuple(step.grads[k] for k in names),
            step.support_loss,
            step.query_loss,
            step.diagnostics,
        )

    compiled = torch.compile(
        graph, fullgraph=True, dynamic=False, options=inductor_options(device_type)
    )

    def meta_step(params: Params, tasks: TaskBatch) -> MetaStep:
        checks.gradients_enabled("a compiled meta-step")  # (the traced step cannot check it)
        if not names:
            names.extend(params)
        elif list(params) != names:
            raise ValueError(
                f"params must have the names {names} (those of the first call), "
                f"got {list(params)}"
            )
        # trace_autograd_ops lets dynamo trace torch.autograd.grad inside the step, so the
        # inner gradients (create_graph=True) and the meta-backward land in one graph;
        # set only while this step runs (and compiles), never for the whole process.
        with torch._dynamo.config.patch(trace_autograd_ops=True):
            meta_loss, grads, support_loss, query_loss, diagnostics = compiled(
                tuple(params.values()),
                tasks.x_support,
                tasks.y_support,
                tasks.x_query,
                tasks.y_query,
            )
        return MetaStep(
            meta_loss, dict(zip(names, grads)), support_loss, query_loss, diagnostics
        )

    return meta_step

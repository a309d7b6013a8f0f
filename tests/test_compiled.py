"""The compiled meta-step (mamlbook.performance.compiled): same meta-gradients as eager, and its graph pass."""
import pytest
import torch
from torch.fx.experimental.proxy_tensor import make_fx
from torch.fx.passes.shape_prop import ShapeProp

import mamlbook as mb
from helpers import cuda
from mamlbook.performance.compiled import compile_method, decompose_thin_products, rewrite_narrow_bmm


def _bmm_shapes(gm, *args):
    ShapeProp(gm).propagate(*args)
    return [(tuple(n.args[0].meta["tensor_meta"].shape), tuple(n.args[1].meta["tensor_meta"].shape))
            for n in gm.graph.nodes if n.op == "call_function" and n.target is torch.ops.aten.bmm.default]


def test_rewrite_narrow_bmm_computes_the_transposed_product_and_leaves_others_alone():
    a, b = torch.randn(3, 7, 4, dtype=torch.float64), torch.randn(3, 4, 2, dtype=torch.float64)  # result (3, 7, 2): narrow
    c = torch.randn(3, 2, 5, dtype=torch.float64)                                                 # (3, 7, 2) @ (3, 2, 5): wide

    def f(a, b, c):
        return torch.bmm(torch.bmm(a, b), c)

    gm = make_fx(f, tracing_mode="fake")(a, b, c)
    assert _bmm_shapes(gm, a, b, c) == [((3, 7, 4), (3, 4, 2)), ((3, 7, 2), (3, 2, 5))]
    rewrite_narrow_bmm(gm.graph)
    gm.recompile()
    shapes = _bmm_shapes(gm, a, b, c)
    assert ((3, 2, 4), (3, 4, 7)) in shapes           # the narrow product, computed transposed
    assert ((3, 7, 4), (3, 4, 2)) not in shapes
    assert len(shapes) == 2                            # the wide one is untouched (no new node for it)
    assert torch.allclose(gm(a, b, c), f(a, b, c), rtol=1e-12, atol=1e-12)


# iMAML: its proximal solver runs inside checks.with_gradients, which once asked torch for the inference
# mode while dynamo traced it ("Unsupported: ... is_inference_mode_enabled")
@pytest.mark.parametrize("method, options", [("maml", {}), ("fomaml", {}), ("imaml", {"lam": 1.0, "cg_steps": 2})])
def test_compiled_meta_step_matches_eager(method, options):
    torch.manual_seed(0)
    model = mb.SinusoidMLP()
    params = mb.detached(mb.parameters_of(model))
    tasks = mb.SinusoidTasks().sample(6, 5, 5, generator=torch.Generator().manual_seed(1))
    eager = mb.get_method(method)(model, params, tasks, inner_lr=0.01, inner_steps=2, **options)
    compiled = compile_method(method, model, inner_lr=0.01, inner_steps=2, **options)(params, tasks)
    assert torch.allclose(compiled.meta_loss, eager.meta_loss, rtol=1e-5)
    assert torch.allclose(compiled.query_loss, eager.query_loss, rtol=1e-5)
    for name, g in eager.grads.items():
        assert torch.allclose(compiled.grads[name], g, rtol=1e-4, atol=1e-6 * float(g.abs().max())), name


def test_compile_method_rejects_bad_settings():
    model = mb.SinusoidMLP()
    with pytest.raises(ValueError, match="method must be one of"):
        compile_method("nope", model, inner_lr=0.01)
    with pytest.raises(ValueError, match="inner_lr"):
        compile_method("maml", model, inner_lr=-1.0)
    with pytest.raises(ValueError, match="inner_steps"):
        compile_method("maml", model, inner_lr=0.01, inner_steps=-1)
    with pytest.raises(ValueError, match="device_type"):
        compile_method("maml", model, inner_lr=0.01, device_type="tpu")


@cuda
@pytest.mark.cuda
def test_compiled_meta_step_on_cuda_matches_cpu_eager():
    torch.manual_seed(0)
    model = mb.SinusoidMLP()
    params = mb.detached(mb.parameters_of(model))
    tasks = mb.SinusoidTasks().sample(6, 5, 5, generator=torch.Generator().manual_seed(1))
    eager = mb.get_method("maml")(model, params, tasks, inner_lr=0.01, inner_steps=2)
    dev = torch.device("cuda")
    on_gpu = compile_method("maml", model.to(dev), inner_lr=0.01, inner_steps=2, device_type="cuda")(
        {k: v.to(dev) for k, v in params.items()}, tasks.to(dev))
    for name, g in eager.grads.items():
        assert torch.allclose(on_gpu.grads[name].cpu(), g, rtol=1e-3, atol=1e-5 * float(g.abs().max())), name


def test_meta_train_compiled_follows_the_eager_run():
    def run(compile):
        g = mb.seed_everything(5)
        model = mb.SinusoidMLP()
        history = mb.meta_train(model, mb.SinusoidTasks(), iterations=15, generator=g, meta_batch_size=5,
                                progress=False, compile=compile)
        return history.meta_loss, mb.flatten_params(mb.parameters_of(model)).detach()

    (eager_loss, eager_params), (compiled_loss, compiled_params) = run(False), run(True)
    assert torch.allclose(torch.tensor(compiled_loss), torch.tensor(eager_loss), rtol=1e-4)
    assert torch.allclose(compiled_params, eager_params, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="compile=True cannot be combined with a step_fn"):
        mb.meta_train(mb.SinusoidMLP(), mb.SinusoidTasks(), iterations=1, generator=mb.seed_everything(0),
                      compile=True, step_fn=mb.get_method("maml"), progress=False)


@pytest.mark.parametrize("op", ["bmm", "baddbmm"])
@pytest.mark.parametrize("shapes", [((3, 5, 1), (3, 1, 4)), ((3, 5, 6), (3, 6, 1)), ((3, 1, 6), (3, 6, 4))])
def test_decompose_thin_products_replaces_them_with_elementwise_work(op, shapes):
    a, b = (torch.randn(*s, dtype=torch.float64) for s in shapes)
    c = torch.randn(3, 1, shapes[1][2], dtype=torch.float64)   # broadcast, as a bias row
    f = (lambda a, b, c: torch.bmm(a, b) * 2) if op == "bmm" else (lambda a, b, c: torch.baddbmm(c, a, b) * 2)
    gm = make_fx(f, tracing_mode="fake")(a, b, c)
    decompose_thin_products(gm.graph)
    gm.recompile()
    assert _bmm_shapes(gm, a, b, c) == []
    assert not any(n.target is torch.ops.aten.baddbmm.default for n in gm.graph.nodes)
    assert torch.allclose(gm(a, b, c), f(a, b, c), rtol=1e-12, atol=1e-12)

"""MAML's meta-gradient against independent computations."""
import pytest
import torch
from torch.func import functional_call

import mamlbook as mb
from mamlbook.algorithms import get_method
from helpers import central_difference, flat


def meta_loss_by_loop(model, params, tasks, inner_lr, inner_steps):
    """Reference meta-loss: one task at a time, plain autograd, no batching."""
    total = 0.0
    for t in range(tasks.num_tasks):
        phi = dict(params)
        for _ in range(inner_steps):
            loss = ((functional_call(model, phi, (tasks.x_support[t],)) - tasks.y_support[t]) ** 2).mean()
            grads = torch.autograd.grad(loss, list(phi.values()), create_graph=True)
            phi = {k: v - inner_lr * g for (k, v), g in zip(phi.items(), grads)}
        total = total + ((functional_call(model, phi, (tasks.x_query[t],)) - tasks.y_query[t]) ** 2).mean()
    return total / tasks.num_tasks


@pytest.mark.parametrize("inner_steps", [1, 3])
def test_second_order_meta_gradient_matches_finite_differences(small_model, tasks64, inner_steps):
    params = mb.detached(mb.parameters_of(small_model))
    step = get_method("maml")(small_model, params, tasks64, inner_lr=0.05, inner_steps=inner_steps)

    def f(p):
        p = {k: v.detach().requires_grad_() for k, v in p.items()}
        return float(meta_loss_by_loop(small_model, p, tasks64, 0.05, inner_steps).detach())

    reference = central_difference(f, params)
    assert torch.allclose(flat(step.grads), reference, rtol=1e-6, atol=1e-8), (flat(step.grads) - reference).abs().max()
    # and the first-order approximation is measurably different (so the check above has teeth)
    fo = get_method("fomaml")(small_model, params, tasks64, inner_lr=0.05, inner_steps=inner_steps)
    assert (flat(fo.grads) - reference).abs().max() > 1e-5


def test_meta_gradient_full_size_net_directional_derivative(tasks64):
    torch.manual_seed(1)
    model = mb.SinusoidMLP().double()
    params = mb.detached(mb.parameters_of(model))
    step = mb.get_method("maml")(model, params, tasks64, inner_lr=0.01, inner_steps=2)
    g = torch.Generator().manual_seed(5)
    for _ in range(3):
        direction = {k: torch.randn(v.shape, generator=g, dtype=v.dtype) for k, v in params.items()}
        eps = 1e-6
        plus = {k: v + eps * direction[k] for k, v in params.items()}
        minus = {k: v - eps * direction[k] for k, v in params.items()}
        fd = (meta_loss_by_loop(model, {k: v.requires_grad_() for k, v in plus.items()}, tasks64, 0.01, 2)
              - meta_loss_by_loop(model, {k: v.requires_grad_() for k, v in minus.items()}, tasks64, 0.01, 2)) / (2 * eps)
        analytic = sum((step.grads[k] * direction[k]).sum() for k in params)
        fd, analytic = float(fd.detach()), float(analytic)
        assert abs(fd - analytic) < 1e-6 * max(1.0, abs(analytic))


def test_first_order_equals_query_gradient_at_adapted_parameters(small_model, tasks64):
    params = mb.detached(mb.parameters_of(small_model))
    step = mb.get_method("fomaml")(small_model, params, tasks64, inner_lr=0.05, inner_steps=3)
    expected = {k: torch.zeros_like(v) for k, v in params.items()}
    for t in range(tasks64.num_tasks):
        phi = {k: v.clone() for k, v in params.items()}
        for _ in range(3):
            phi = {k: v.requires_grad_() for k, v in phi.items()}
            loss = ((functional_call(small_model, phi, (tasks64.x_support[t],)) - tasks64.y_support[t]) ** 2).mean()
            grads = torch.autograd.grad(loss, list(phi.values()))
            phi = {k: (v - 0.05 * g).detach() for (k, v), g in zip(phi.items(), grads)}
        phi = {k: v.requires_grad_() for k, v in phi.items()}
        q = ((functional_call(small_model, phi, (tasks64.x_query[t],)) - tasks64.y_query[t]) ** 2).mean()
        for k, g in zip(phi, torch.autograd.grad(q, list(phi.values()))):
            expected[k] += g / tasks64.num_tasks
    assert torch.allclose(flat(step.grads), flat(expected), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("method", ["maml", "fomaml"])
def test_batched_meta_batch_equals_per_task_loop(small_model, tasks64, method):
    params = mb.detached(mb.parameters_of(small_model))
    batched = mb.get_method(method)(small_model, params, tasks64, inner_lr=0.05, inner_steps=2)
    per_task = [mb.get_method(method)(small_model, params, tasks64.split(tasks64.num_tasks)[t], inner_lr=0.05, inner_steps=2)
                for t in range(tasks64.num_tasks)]
    mean_grad = sum(flat(s.grads) for s in per_task) / len(per_task)
    assert torch.allclose(flat(batched.grads), mean_grad, rtol=1e-10, atol=1e-12)
    assert torch.allclose(batched.query_loss, torch.cat([s.query_loss for s in per_task]))


def test_vmap_path_equals_broadcast_path(tasks64):
    """A model without task-batched layers goes through torch.func.vmap; same numbers."""
    torch.manual_seed(2)
    fast = mb.SinusoidMLP(hidden=(8, 8)).double()
    plain = torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)).double()
    plain.load_state_dict(fast.state_dict())
    params = mb.detached(mb.parameters_of(fast))
    a = mb.get_method("maml")(fast, params, tasks64, inner_lr=0.05, inner_steps=2)
    b = mb.get_method("maml")(plain, params, tasks64, inner_lr=0.05, inner_steps=2)
    assert torch.allclose(flat(a.grads), flat(b.grads), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("create_graph", [True, False])
def test_adapt_in_matmul_layout_equals_the_generic_loop(tasks64, create_graph):
    """SinusoidMLP's inner loop runs on Wᵀ and row biases (matmul_layout); the result is
    the same φ, handed back in the module's layout (leaves when the graph is cut)."""
    torch.manual_seed(3)
    fast = mb.SinusoidMLP(hidden=(8, 8)).double()
    plain = torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8), torch.nn.ReLU(),
                                torch.nn.Linear(8, 1)).double()
    plain.load_state_dict(fast.state_dict())
    assert mb.functional.inner_loop_form(fast, mb.parameters_of(fast)).to_loop == fast.matmul_layout
    theta = mb.detached(mb.parameters_of(fast), requires_grad=True)
    kwargs = dict(inner_lr=0.05, inner_steps=3, create_graph=create_graph)
    phi_fast, first_fast = mb.adapt(fast, mb.batch_parameters(theta, 4), tasks64.x_support, tasks64.y_support, **kwargs)
    phi_plain, first_plain = mb.adapt(plain, mb.batch_parameters(theta, 4), tasks64.x_support, tasks64.y_support, **kwargs)
    assert torch.allclose(first_fast, first_plain, rtol=1e-12)
    for k, v in phi_plain.items():
        assert phi_fast[k].shape == v.shape == (4, *theta[k].shape)
        assert torch.allclose(phi_fast[k], v, rtol=1e-10, atol=1e-12), k
        assert phi_fast[k].is_leaf == (not create_graph) and phi_fast[k].requires_grad


def test_reptile_in_matmul_layout_equals_the_generic_loop(tasks64):
    torch.manual_seed(4)
    fast = mb.SinusoidMLP(hidden=(8, 8)).double()
    plain = torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8), torch.nn.ReLU(),
                                torch.nn.Linear(8, 1)).double()
    plain.load_state_dict(fast.state_dict())
    params = mb.detached(mb.parameters_of(fast))
    a = mb.get_method("reptile")(fast, params, tasks64, inner_lr=0.05, inner_steps=4)
    b = mb.get_method("reptile")(plain, params, tasks64, inner_lr=0.05, inner_steps=4)
    assert torch.allclose(flat(a.grads), flat(b.grads), rtol=1e-10, atol=1e-12)


def test_same_seed_same_numbers_twice():
    def run():
        g = mb.seed_everything(7)
        model = mb.SinusoidMLP()
        history = mb.meta_train(model, mb.SinusoidTasks(), iterations=20, generator=g, meta_batch_size=5, progress=False)
        return history.meta_loss, flat(mb.parameters_of(model)).detach()

    (l1, p1), (l2, p2) = run(), run()
    assert l1 == l2 and torch.equal(p1, p2)
    g = mb.seed_everything(8)
    assert mb.meta_train(mb.SinusoidMLP(), mb.SinusoidTasks(), iterations=20, generator=g, meta_batch_size=5,
                         progress=False).meta_loss != l1


def test_meta_training_learns_sinusoids(generator):
    torch.manual_seed(0)
    model = mb.SinusoidMLP()
    family = mb.SinusoidTasks()
    test_tasks = family.sample(200, 5, 50, generator=torch.Generator().manual_seed(99))
    before = mb.adaptation_curve(model, mb.parameters_of(model), test_tasks, inner_lr=0.01, max_steps=10)[:, -1].mean()
    mb.meta_train(model, family, iterations=1500, generator=generator, progress=False)
    after = mb.adaptation_curve(model, mb.parameters_of(model), test_tasks, inner_lr=0.01, max_steps=10)[:, -1].mean()
    assert after < 0.5 * before


def test_adaptation_curve_step_zero_is_unadapted_loss(small_model, tasks64):
    params = mb.detached(mb.parameters_of(small_model))
    curve = mb.adaptation_curve(small_model, params, tasks64, inner_lr=0.05, max_steps=3)
    assert curve.shape == (4, 4)
    direct = mb.task_losses(small_model, mb.batch_parameters(params, 4), tasks64.x_query, tasks64.y_query)
    assert torch.allclose(curve[:, 0], direct)
    # column 1 equals the query loss after one step taken by the MAML machinery
    step = mb.get_method("maml")(small_model, params, tasks64, inner_lr=0.05, inner_steps=1)
    assert torch.allclose(curve[:, 1], step.query_loss)


def test_adaptation_curve_reports_divergence_instead_of_returning_inf(small_model, tasks64):
    params = mb.detached(mb.parameters_of(small_model))
    with pytest.raises(mb.DivergenceError, match="inner_lr"):
        mb.adaptation_curve(small_model, params, tasks64, inner_lr=1e4, max_steps=40)
    kept = mb.adaptation_curve(small_model, params, tasks64, inner_lr=1e4, max_steps=40, on_divergence="keep")
    assert not torch.isfinite(kept).all()
    with pytest.raises(ValueError, match="NaN/inf"):
        mb.mean_and_ci95(kept[:, -1])

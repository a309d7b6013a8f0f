"""MAML++ (eqs. 10.4, 10.5): per-layer per-step rates and the multi-step loss against a per-task loop and
finite differences; the annealing schedules."""
import math

import pytest
import torch

import mamlbook as mb
from helpers import central_difference, flat, mse, relative_error


def mamlpp_by_loop(net, theta, sizes, tasks, inner_lr, weights, first_order=False):
    """Σ_i w_i · 1/T Σ_t L_query,t(φ_{t,i}), φ_i^l = φ_{i−1}^l − α s_{l,i} ∇_l L_support, task by task."""
    total = 0.0
    for t in range(tasks.num_tasks):
        phi = dict(theta)
        for i, w in enumerate(weights):
            grads = torch.autograd.grad(mse(net, phi, tasks.x_support[t], tasks.y_support[t]), list(phi.values()),
                                        create_graph=not first_order)
            phi = {k: v - inner_lr * sizes[k][i] * g for (k, v), g in zip(phi.items(), grads)}
            if w:
                total = total + w * mse(net, phi, tasks.x_query[t], tasks.y_query[t])
    return total / tasks.num_tasks


def wrapped(model, steps, seed=0):
    torch.manual_seed(seed)
    net = mb.LSLRNet(model, steps)
    with torch.no_grad():
        for p in net.step_size.values():
            p.uniform_(0.5, 1.5)
    return net


def split(net, params):
    theta = {k[4:]: v for k, v in params.items() if k.startswith("net.")}
    return theta, {k: params["step_size." + k.replace(".", "_")] for k in theta}


@pytest.mark.parametrize("weights, first_order", [((0.0, 0.0, 1.0), False), ((0.2, 0.3, 0.5), False),
                                                  ((0.2, 0.3, 0.5), True)])
def test_mamlpp_matches_a_per_task_loop(small_model, tasks64, weights, first_order):
    net = wrapped(small_model, 3)
    params = mb.detached(mb.parameters_of(net))
    step = mb.get_method("mamlpp")(net, params, tasks64, inner_lr=0.05, inner_steps=3, step_weights=weights,
                                   first_order=first_order)
    leaves = mb.detached(params, requires_grad=True)
    objective = mamlpp_by_loop(small_model, *split(net, leaves), tasks64, 0.05, weights, first_order)
    want = flat(dict(zip(leaves, torch.autograd.grad(objective, list(leaves.values())))))
    error = relative_error(flat(step.grads), want)
    print(f"mamlpp weights={weights} first_order={first_order}: max relative error vs loop {error:.1e}")
    assert error < 1e-12
    assert torch.allclose(step.diagnostics["objective"], objective.detach(), rtol=1e-13, atol=0)
    assert step.diagnostics["query_loss_per_step"].shape == (3, 4)


def test_mamlpp_gradient_matches_finite_differences(tasks64):
    torch.manual_seed(3)
    net = wrapped(mb.SinusoidMLP(hidden=(4, 4)).double(), 2)
    params = mb.detached(mb.parameters_of(net))
    step = mb.get_method("mamlpp")(net, params, tasks64, inner_lr=0.05, inner_steps=2, step_weights=(0.4, 0.6))
    numeric = central_difference(lambda p: mamlpp_by_loop(net.net, *split(net, mb.detached(p, requires_grad=True)),
                                                          tasks64, 0.05, (0.4, 0.6)).detach(), params)
    error = relative_error(flat(step.grads), numeric)
    print(f"mamlpp: max relative error vs finite differences {error:.1e}")
    assert error < 1e-7


def test_unit_rates_and_last_step_only_are_maml(small_model, tasks64):
    net = mb.LSLRNet(small_model, 2)
    step = mb.get_method("mamlpp")(net, mb.detached(mb.parameters_of(net)), tasks64, inner_lr=0.05, inner_steps=2)
    maml = mb.get_method("maml")(small_model, mb.detached(mb.parameters_of(small_model)), tasks64, inner_lr=0.05,
                                 inner_steps=2)
    assert torch.allclose(flat({k: step.grads["net." + k] for k in maml.grads}), flat(maml.grads), rtol=1e-12,
                          atol=1e-14)
    assert torch.allclose(step.meta_loss, maml.meta_loss, rtol=1e-13, atol=0)


def test_multi_step_weights_follow_the_papers_schedule():
    assert multi(0, 5, 100) == pytest.approx((0.2,) * 5)
    for it in (0, 10, 50, 99, 100, 1000):
        assert math.isclose(sum(multi(it, 5, 100)), 1.0, abs_tol=1e-12)
    w = multi(1000, 5, 100)  # annealed: the non-final steps at their floor 0.03/k
    assert w[:4] == pytest.approx((0.006,) * 4) and w[4] == pytest.approx(1 - 4 * 0.006)
    assert multi(50, 5, 100)[0] == pytest.approx(0.2 - 50 / 500)
    assert multi(7, 1, 10) == (1.0,)


def multi(*args):
    return mb.algorithms.multi_step_weights(*args)


def test_the_schedule_anneals_the_derivative_order_and_the_weights():
    torch.manual_seed(0)
    schedule = mb.MAMLPlusPlusSchedule(anneal_iterations=4, first_order_iterations=2)
    assert schedule.options(0, 3) == {"step_weights": multi(0, 3, 4), "first_order": True}
    assert schedule.options(2, 3)["first_order"] is False
    net = mb.LSLRNet(mb.SinusoidMLP(hidden=(8, 8)), 3)
    history = mb.meta_train(net, mb.SinusoidTasks(), iterations=3, inner_steps=3, method="mamlpp", step_fn=schedule,
                            generator=torch.Generator().manual_seed(0), meta_batch_size=2, progress=False)
    assert schedule.iteration == 3 and len(history.meta_loss) == 3
    with pytest.raises(TypeError, match="step_weights"):
        schedule(net, mb.detached(mb.parameters_of(net)), mb.SinusoidTasks().sample(
            2, 3, 3, generator=torch.Generator().manual_seed(0)), inner_lr=0.01, inner_steps=3, step_weights=None)


def test_mamlpp_refuses_bad_inputs(small_model, tasks64):
    net = mb.LSLRNet(small_model, 2)
    params = mb.detached(mb.parameters_of(net))
    method = mb.get_method("mamlpp")
    with pytest.raises(ValueError, match="inner_steps must equal"):
        method(net, params, tasks64, inner_lr=0.05, inner_steps=3)
    with pytest.raises(ValueError, match="step_weights must sum to 1"):
        method(net, params, tasks64, inner_lr=0.05, inner_steps=2, step_weights=(0.5, 0.6))
    with pytest.raises(ValueError, match="step_weights"):
        method(net, params, tasks64, inner_lr=0.05, inner_steps=2, step_weights=(1.0,))
    with pytest.raises(ValueError, match=r"step_weights\[0\]"):
        method(net, params, tasks64, inner_lr=0.05, inner_steps=2, step_weights=(-0.5, 1.5))
    with pytest.raises(TypeError, match="model must be a mamlbook.LSLRNet"):
        method(mb.MetaSGDNet(small_model), mb.detached(mb.parameters_of(mb.MetaSGDNet(small_model))), tasks64,
               inner_lr=0.05, inner_steps=2)

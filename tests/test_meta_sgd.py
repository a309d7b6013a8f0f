"""Meta-SGD (eqs. 10.2, 10.3) against a per-task loop, the one-step closed form and finite differences."""
import pytest
import torch

import mamlbook as mb
from helpers import central_difference, flat, mse, relative_error


def meta_sgd_by_loop(net, theta, sizes, tasks, inner_lr, inner_steps):
    """1/T Σ_t L_query,t(φ_t), φ = θ − α s ⊙ ∇L_support, one task at a time (plain autograd)."""
    total = 0.0
    for t in range(tasks.num_tasks):
        phi = dict(theta)
        for _ in range(inner_steps):
            grads = torch.autograd.grad(mse(net, phi, tasks.x_support[t], tasks.y_support[t]), list(phi.values()),
                                        create_graph=True)
            phi = {k: v - inner_lr * sizes[k] * g for (k, v), g in zip(phi.items(), grads)}
        total = total + mse(net, phi, tasks.x_query[t], tasks.y_query[t])
    return total / tasks.num_tasks


def wrapped(model, seed=0):
    """A MetaSGDNet whose step sizes are random (not all 1), so that s matters in every check."""
    torch.manual_seed(seed)
    net = mb.MetaSGDNet(model)
    with torch.no_grad():
        for p in net.step_size.values():
            p.uniform_(0.5, 1.5)
    return net


def split(net, params):
    theta = {k[4:]: v for k, v in params.items() if k.startswith("net.")}
    return theta, {k: params["step_size." + k.replace(".", "_")] for k in theta}


@pytest.mark.parametrize("inner_steps", [1, 3])
def test_meta_sgd_matches_a_per_task_loop(small_model, tasks64, inner_steps):
    net = wrapped(small_model)
    params = mb.detached(mb.parameters_of(net))
    step = mb.get_method("meta_sgd")(net, params, tasks64, inner_lr=0.05, inner_steps=inner_steps)
    leaves = mb.detached(params, requires_grad=True)
    meta = meta_sgd_by_loop(small_model, *split(net, leaves), tasks64, 0.05, inner_steps)
    want = flat(dict(zip(leaves, torch.autograd.grad(meta, list(leaves.values())))))
    error = relative_error(flat(step.grads), want)
    print(f"meta_sgd k={inner_steps}: max relative error vs loop {error:.1e}")
    assert error < 1e-12
    assert list(step.grads) == list(params)


def test_one_step_closed_form(small_model, tasks64):
    """Eq. 10.3: ∂/∂s = −α g ⊙ ∇L_query(φ), ∂/∂θ = (I − α H diag(s)) ∇L_query(φ), per task, averaged."""
    net = wrapped(small_model)
    params = mb.detached(mb.parameters_of(net))
    theta, sizes = split(net, params)
    alpha = 0.05
    step = mb.get_method("meta_sgd")(net, params, tasks64, inner_lr=alpha, inner_steps=1)
    d_theta, d_s = torch.zeros(flat(theta).numel(), dtype=torch.float64), 0
    s = flat(sizes)
    for t in range(tasks64.num_tasks):
        def support(vector):
            return mse(small_model, mb.unflatten_params(vector, theta), tasks64.x_support[t], tasks64.y_support[t])

        x0 = flat(theta)
        g = torch.func.grad(support)(x0)
        hessian = torch.func.hessian(support)(x0)
        phi = x0 - alpha * s * g
        q = torch.func.grad(lambda v: mse(small_model, mb.unflatten_params(v, theta), tasks64.x_query[t],
                                          tasks64.y_query[t]))(phi)
        d_s = d_s - alpha * g * q
        d_theta = d_theta + q - alpha * hessian @ (s * q)
    T = tasks64.num_tasks
    got_theta = flat({k: step.grads["net." + k] for k in theta})
    got_s = flat({k: step.grads["step_size." + k.replace(".", "_")] for k in theta})
    error = max(relative_error(got_theta, d_theta / T), relative_error(got_s, d_s / T))
    print(f"meta_sgd one step: max relative error vs closed form (eq. 10.3) {error:.1e}")
    assert error < 1e-12


def test_meta_sgd_gradient_matches_finite_differences(tasks64):
    torch.manual_seed(2)
    net = wrapped(mb.SinusoidMLP(hidden=(4, 4)).double())
    params = mb.detached(mb.parameters_of(net))
    step = mb.get_method("meta_sgd")(net, params, tasks64, inner_lr=0.05, inner_steps=2)
    numeric = central_difference(lambda p: meta_sgd_by_loop(net.net, *split(net, mb.detached(p, requires_grad=True)),
                                                            tasks64, 0.05, 2).detach(), params)
    error = relative_error(flat(step.grads), numeric)
    print(f"meta_sgd: max relative error vs finite differences {error:.1e}")
    assert error < 1e-7


def test_unit_step_sizes_are_maml(small_model, tasks64):
    net = mb.MetaSGDNet(small_model)
    params = mb.detached(mb.parameters_of(net))
    step = mb.get_method("meta_sgd")(net, params, tasks64, inner_lr=0.05, inner_steps=2)
    maml = mb.get_method("maml")(small_model, mb.detached(mb.parameters_of(small_model)), tasks64, inner_lr=0.05,
                                 inner_steps=2)
    assert torch.allclose(flat({k: step.grads["net." + k] for k in maml.grads}), flat(maml.grads), rtol=1e-12,
                          atol=1e-14)


def test_first_order_drops_the_hessian_only(small_model, tasks64):
    """One first-order step: ∂/∂θ = ∇L_query(φ) (no Hessian), ∂/∂s unchanged (it needs no second derivative)."""
    net = wrapped(small_model)
    params = mb.detached(mb.parameters_of(net))
    exact = mb.get_method("meta_sgd")(net, params, tasks64, inner_lr=0.05, inner_steps=1)
    first = mb.get_method("meta_sgd")(net, params, tasks64, inner_lr=0.05, inner_steps=1, first_order=True)
    s_names = [k for k in params if k.startswith("step_size.")]
    assert relative_error(flat({k: first.grads[k] for k in s_names}), flat({k: exact.grads[k] for k in s_names})) < 1e-13
    theta, sizes = split(net, params)
    want = 0
    for t in range(tasks64.num_tasks):  # mean over tasks of ∇L_query,t(φ_t), φ_t = θ − α s ⊙ ∇L_support,t(θ)
        leaves = mb.detached(theta, requires_grad=True)
        g = torch.autograd.grad(mse(small_model, leaves, tasks64.x_support[t], tasks64.y_support[t]),
                                list(leaves.values()))
        phi = {k: (v - 0.05 * sizes[k] * gk).detach().requires_grad_() for (k, v), gk in zip(leaves.items(), g)}
        q = torch.autograd.grad(mse(small_model, phi, tasks64.x_query[t], tasks64.y_query[t]), list(phi.values()))
        want = want + flat(dict(zip(phi, q))) / tasks64.num_tasks
    assert relative_error(flat({k: first.grads["net." + k] for k in theta}), want) < 1e-13


def test_meta_train_updates_the_step_sizes():
    torch.manual_seed(0)
    net = mb.MetaSGDNet(mb.SinusoidMLP(hidden=(8, 8)))
    family = mb.SinusoidTasks()
    before = mb.detached(mb.parameters_of(net))
    tasks = family.sample(3, 10, 10, generator=torch.Generator().manual_seed(5))
    step = mb.get_method("meta_sgd")(net, before, tasks, inner_lr=0.01, inner_steps=1)
    mb.meta_train(net, family, iterations=1, generator=torch.Generator().manual_seed(5), method="meta_sgd",
                  meta_batch_size=3, inner_lr=0.01, outer_lr=0.1, optimizer="sgd", progress=False)
    after = mb.parameters_of(net)
    for k, v in before.items():
        assert torch.allclose(after[k].detach(), v - 0.1 * step.grads[k], rtol=0, atol=1e-6), k
    assert not torch.equal(after["step_size.0_weight"].detach(), before["step_size.0_weight"])


def test_meta_sgd_refuses_a_plain_network(small_model, tasks64):
    with pytest.raises(TypeError, match="model must be a mamlbook.MetaSGDNet"):
        mb.get_method("meta_sgd")(small_model, mb.detached(mb.parameters_of(small_model)), tasks64, inner_lr=0.1)

"""ANIL (eq. 10.1) against a per-task plain-autograd loop and finite differences, in float64."""
import pytest
import torch
from torch.func import functional_call

import mamlbook as mb
from helpers import central_difference, flat, mse, relative_error


def anil_by_loop(model, theta, tasks, inner_lr, inner_steps, loss, first_order=False):
    """Mean over tasks of the query loss after adapting the head only, one task at a time, full forward."""
    head = model.head_names
    total = 0.0
    for t in range(tasks.num_tasks):
        phi = {k: theta[k] for k in head}
        for _ in range(inner_steps):
            support = loss(model, {**theta, **phi}, tasks.x_support[t], tasks.y_support[t])
            grads = torch.autograd.grad(support, list(phi.values()), create_graph=not first_order)
            phi = {k: v - inner_lr * g for (k, v), g in zip(phi.items(), grads)}
        total = total + loss(model, {**theta, **phi}, tasks.x_query[t], tasks.y_query[t])
    return total / tasks.num_tasks


@pytest.mark.parametrize("inner_steps, first_order", [(1, False), (3, False), (2, True)])
def test_anil_matches_a_per_task_loop(small_model, tasks64, inner_steps, first_order):
    theta = mb.detached(mb.parameters_of(small_model))
    step = mb.get_method("anil")(small_model, theta, tasks64, inner_lr=0.1, inner_steps=inner_steps,
                                 first_order=first_order)
    leaves = mb.detached(theta, requires_grad=True)
    meta = anil_by_loop(small_model, leaves, tasks64, 0.1, inner_steps, mse, first_order)
    want = flat(dict(zip(leaves, torch.autograd.grad(meta, list(leaves.values())))))
    error = relative_error(flat(step.grads), want)
    print(f"anil k={inner_steps} first_order={first_order}: max relative error vs loop {error:.1e}")
    assert error < 1e-12
    assert torch.allclose(step.meta_loss, meta.detach(), rtol=1e-13, atol=0)


def test_anil_gradient_matches_finite_differences(tasks64):
    torch.manual_seed(1)
    model = mb.SinusoidMLP(hidden=(4, 4)).double()
    theta = mb.detached(mb.parameters_of(model))
    step = mb.get_method("anil")(model, theta, tasks64, inner_lr=0.1, inner_steps=2)
    numeric = central_difference(
        lambda p: anil_by_loop(model, mb.detached(p, requires_grad=True), tasks64, 0.1, 2, mse).detach(), theta)
    error = relative_error(flat(step.grads), numeric)
    print(f"anil: max relative error vs finite differences {error:.1e}")
    assert error < 1e-7


def test_the_body_is_not_adapted_but_gets_the_outer_gradient(small_model, tasks64):
    """With the head frozen in the loop (inner steps on the head only), every body gradient is nonzero,
    and equals MAML's only when no step is taken on the body: ANIL ≠ MAML."""
    theta = mb.detached(mb.parameters_of(small_model))
    anil = mb.get_method("anil")(small_model, theta, tasks64, inner_lr=0.1, inner_steps=2)
    maml = mb.get_method("maml")(small_model, theta, tasks64, inner_lr=0.1, inner_steps=2)
    assert all(float(g.abs().max()) > 0 for g in anil.grads.values())
    assert not torch.allclose(flat(anil.grads), flat(maml.grads))
    # adapting the head only = MAML on a model whose body has step size 0 (checked by the loop above)
    head, feats, _ = mb.algorithms.adapt_head(small_model, mb.batch_parameters(theta, 4), tasks64.x_support,
                                              tasks64.y_support, inner_lr=0.1, inner_steps=2,
                                              loss_fn=mb.mse_per_task, create_graph=False)
    assert set(head) == set(small_model.head_names) and feats.shape == (4, 5, 8)


def cross_entropy(model, params, x, y):
    return torch.nn.functional.cross_entropy(functional_call(model, params, (x,)), y)


@pytest.mark.parametrize("mode", ["loop", "vmap"])
def test_anil_on_the_convnet_matches_a_per_task_loop(mode):
    torch.manual_seed(0)
    net = mb.ConvNet(ways=3, filters=3, blocks=2, image_size=8, meta_batch=mode).double()
    g = torch.Generator().manual_seed(0)
    tasks = mb.TaskBatch(torch.rand(2, 6, 1, 8, 8, generator=g, dtype=torch.float64),
                         torch.tensor([[0, 1, 2, 0, 1, 2]] * 2),
                         torch.rand(2, 3, 1, 8, 8, generator=g, dtype=torch.float64), torch.tensor([[2, 0, 1]] * 2))
    theta = mb.detached(mb.parameters_of(net))
    step = mb.get_method("anil")(net, theta, tasks, inner_lr=0.5, inner_steps=2, loss_fn=mb.cross_entropy_per_task)
    leaves = mb.detached(theta, requires_grad=True)
    meta = anil_by_loop(net, leaves, tasks, 0.5, 2, cross_entropy)
    want = flat(dict(zip(leaves, torch.autograd.grad(meta, list(leaves.values())))))
    error = relative_error(flat(step.grads), want)
    print(f"anil ConvNet ({mode}): max relative error vs loop {error:.1e}")
    assert error < 1e-10


def test_anil_refuses_a_model_without_a_declared_head(tasks64):
    model = torch.nn.Sequential(torch.nn.Linear(1, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)).double()
    with pytest.raises(TypeError, match="model must declare its head"):
        mb.get_method("anil")(model, mb.detached(mb.parameters_of(model)), tasks64, inner_lr=0.1, inner_steps=1)
    with pytest.raises(ValueError, match="inner_steps"):
        mb.get_method("anil")(mb.SinusoidMLP().double(), mb.detached(mb.parameters_of(mb.SinusoidMLP().double())),
                              tasks64, inner_lr=0.1, inner_steps=0)

"""Prototypical Networks (eq. 10.6) against a per-task loop with explicit class means, finite differences,
and the equivalent linear head."""
import pytest
import torch
from torch.func import functional_call

import mamlbook as mb
from mamlbook.algorithms.protonet import prototype_logits
from helpers import central_difference, flat, relative_error


def point_tasks(num_tasks=3, ways=3, shots=2, queries=4, seed=0):
    """2-D points, ``ways`` classes per task, every class ``shots`` times in each support set (float64)."""
    g = torch.Generator().manual_seed(seed)
    y_s = torch.arange(ways).repeat(shots).expand(num_tasks, -1).clone()
    y_q = torch.randint(0, ways, (num_tasks, queries), generator=g)
    centres = torch.randn(num_tasks, ways, 2, generator=g, dtype=torch.float64) * 2
    x_s = centres.gather(1, y_s[..., None].expand(-1, -1, 2)) + torch.randn(num_tasks, ways * shots, 2, generator=g,
                                                                           dtype=torch.float64)
    x_q = centres.gather(1, y_q[..., None].expand(-1, -1, 2)) + torch.randn(num_tasks, queries, 2, generator=g,
                                                                           dtype=torch.float64)
    return mb.TaskBatch(x_s, y_s, x_q, y_q)


def embedder():
    torch.manual_seed(0)
    return mb.SinusoidMLP(hidden=(5, 4), in_features=2, out_features=3).double()


def protonet_by_loop(model, theta, tasks):
    """Mean over tasks of the cross-entropy of −‖f(x_q) − c_n‖², class means taken one class at a time."""
    body = torch.nn.Sequential(*list(model)[:-1])
    params = {k: v for k, v in theta.items() if k not in model.head_names}
    total = 0.0
    for t in range(tasks.num_tasks):
        support = functional_call(body, params, (tasks.x_support[t],))
        ways = int(tasks.y_support[t].max()) + 1
        centres = torch.stack([support[tasks.y_support[t] == n].mean(0) for n in range(ways)])
        query = functional_call(body, params, (tasks.x_query[t],))
        logits = torch.stack([-((query - c) ** 2).sum(-1) for c in centres], dim=1)
        total = total + torch.nn.functional.cross_entropy(logits, tasks.y_query[t])
    return total / tasks.num_tasks


def test_protonet_matches_a_per_task_loop():
    model, tasks = embedder(), point_tasks()
    theta = mb.detached(mb.parameters_of(model))
    step = mb.get_method("protonet")(model, theta, tasks, inner_lr=1.0, inner_steps=0)
    leaves = mb.detached(theta, requires_grad=True)
    loss = protonet_by_loop(model, leaves, tasks)
    want = dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()), allow_unused=True,
                                                materialize_grads=True)))
    error = relative_error(flat(step.grads), flat(want))
    print(f"protonet: max relative error vs loop {error:.1e}")
    assert error < 1e-13
    assert torch.allclose(step.meta_loss, loss.detach(), rtol=1e-13, atol=0)
    assert all(float(step.grads[k].abs().max()) == 0 for k in model.head_names)


def test_protonet_gradient_matches_finite_differences():
    model, tasks = embedder(), point_tasks(seed=1)
    theta = mb.detached(mb.parameters_of(model))
    step = mb.get_method("protonet")(model, theta, tasks, inner_lr=1.0, inner_steps=0)
    numeric = central_difference(lambda p: protonet_by_loop(model, p, tasks), theta)
    error = relative_error(flat(step.grads), numeric)
    print(f"protonet: max relative error vs finite differences {error:.1e}")
    assert error < 1e-7


def test_squared_distance_is_a_linear_head():
    """−‖f − c_n‖² = 2 c_nᵀ f − ‖c_n‖² − ‖f‖²: a linear layer W_n = 2c_n, b_n = −‖c_n‖², up to a per-image shift
    that the softmax ignores (Snell et al., §2.4)."""
    g = torch.Generator().manual_seed(0)
    f, c = torch.randn(2, 5, 4, generator=g, dtype=torch.float64), torch.randn(2, 3, 4, generator=g,
                                                                                dtype=torch.float64)
    logits = prototype_logits(f, c)
    linear = f @ (2 * c).transpose(1, 2) - c.square().sum(-1)[:, None, :]
    assert torch.allclose(logits.softmax(-1), linear.softmax(-1), rtol=1e-13, atol=0)


@pytest.mark.parametrize("mode", ["loop", "vmap"])
def test_protonet_on_the_convnet(mode):
    torch.manual_seed(0)
    net = mb.ConvNet(ways=3, filters=3, blocks=2, image_size=8, meta_batch=mode).double()
    g = torch.Generator().manual_seed(0)
    tasks = mb.TaskBatch(torch.rand(2, 6, 1, 8, 8, generator=g, dtype=torch.float64),
                         torch.tensor([[0, 1, 2, 0, 1, 2]] * 2),
                         torch.rand(2, 3, 1, 8, 8, generator=g, dtype=torch.float64), torch.tensor([[2, 0, 1]] * 2))
    theta = mb.detached(mb.parameters_of(net))
    step = mb.get_method("protonet")(net, theta, tasks, inner_lr=1.0, inner_steps=0)
    leaves = mb.detached(theta, requires_grad=True)
    total = 0.0
    for t in range(2):
        body = {k: v for k, v in leaves.items() if k.startswith("features.")}
        emb = lambda x: functional_call(net.features, {k[9:]: v for k, v in body.items()}, (x,)).flatten(1)  # noqa
        s, q = emb(tasks.x_support[t]), emb(tasks.x_query[t])
        centres = torch.stack([s[tasks.y_support[t] == n].mean(0) for n in range(3)])
        total = total + torch.nn.functional.cross_entropy(-torch.cdist(q, centres) ** 2, tasks.y_query[t]) / 2
    want = torch.autograd.grad(total, list(leaves.values()), allow_unused=True, materialize_grads=True)
    error = relative_error(flat(step.grads), flat(dict(zip(leaves, want))))
    print(f"protonet ConvNet ({mode}): max relative error vs loop {error:.1e}")
    assert error < 1e-10


def test_protonet_refuses_what_it_cannot_use():
    model, tasks = embedder(), point_tasks()
    theta = mb.detached(mb.parameters_of(model))
    method = mb.get_method("protonet")
    with pytest.raises(ValueError, match="inner_steps must be 0"):
        method(model, theta, tasks, inner_lr=1.0, inner_steps=1)
    with pytest.raises(ValueError, match="every class"):  # labels 0 and 2 only: class 1 has no prototype
        method(model, theta, mb.TaskBatch(tasks.x_support, tasks.y_support.clamp(max=1) * 2, tasks.x_query,
                                          tasks.y_query), inner_lr=1.0, inner_steps=0)
    with pytest.raises(ValueError, match="tasks.y_query"):
        method(model, theta, mb.TaskBatch(tasks.x_support, tasks.y_support, tasks.x_query, tasks.y_query + 3),
               inner_lr=1.0, inner_steps=0)
    with pytest.raises(ValueError, match="inner_steps must be 0 or left out"):
        mb.meta_train(mb.ConvNet(ways=2, filters=2, blocks=1, image_size=4), mb.SinusoidTasks(), iterations=1, method="protonet",
                      inner_steps=1, generator=torch.Generator())
    with pytest.raises(TypeError, match="tasks.y_support must hold integer class labels"):
        method(mb.SinusoidMLP().double(), mb.detached(mb.parameters_of(mb.SinusoidMLP().double())),
               mb.SinusoidTasks().sample(2, 3, 3, generator=torch.Generator(), dtype=torch.float64), inner_lr=1.0,
               inner_steps=0)


def test_protonet_trains_with_more_ways_than_its_head():
    """Its head is unused (distances to prototypes classify), so training 20-way with a network
    built for 5 is the usual practice; meta_train's check that the head fits the tasks (other
    methods) must not refuse it."""
    torch.manual_seed(0)
    net = mb.ConvNet(ways=5, filters=4)
    family = mb.ClassificationTasks(torch.rand(24, 3, 28, 28, generator=torch.Generator().manual_seed(0)), ways=20)
    history = mb.meta_train(net, family, method="protonet", inner_steps=0, iterations=1, meta_batch_size=1,
                            support_shots=1, query_shots=1, generator=torch.Generator().manual_seed(1), progress=False)
    assert len(history.meta_loss) == 1
    with pytest.raises(ValueError, match="model has ways=5 outputs, but family samples 20-way tasks"):
        mb.meta_train(net, family, iterations=1, meta_batch_size=1, support_shots=1, query_shots=1,
                      method_options={"loss_fn": mb.cross_entropy_per_task},
                      generator=torch.Generator().manual_seed(1), progress=False)

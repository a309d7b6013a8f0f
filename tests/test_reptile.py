"""Reptile against plain per-task loops and against SGD on the joint training loss."""
import pytest
import torch

import mamlbook as mb
from helpers import flat, mse


def reptile_by_loop(model, params, x, y, x_query, y_query, inner_lr, inner_steps):
    """One task at a time, plain autograd: (θ − mean φ_t, query losses at φ_t)."""
    adapted, query = [], []
    for t in range(x.shape[0]):
        phi = {k: v.clone() for k, v in params.items()}
        for _ in range(inner_steps):
            phi = {k: v.requires_grad_() for k, v in phi.items()}
            grads = torch.autograd.grad(mse(model, phi, x[t], y[t]), list(phi.values()))
            phi = {k: (v - inner_lr * g).detach() for (k, v), g in zip(phi.items(), grads)}
        adapted.append(phi)
        query.append(mse(model, phi, x_query[t], y_query[t]).detach())
    direction = {k: params[k] - sum(phi[k] for phi in adapted) / len(adapted) for k in params}
    return direction, torch.stack(query)


def test_one_inner_step_is_a_scaled_sgd_step_on_the_summed_training_losses(small_model, tasks64):
    """θ − mean_t φ_t = α ∇_θ (1/T Σ_t L_support,t(θ)): Reptile(k=1) is joint training."""
    params = mb.detached(mb.parameters_of(small_model))
    step = mb.get_method("reptile")(small_model, params, tasks64, inner_lr=0.07, inner_steps=1)
    theta = {k: v.clone().requires_grad_() for k, v in params.items()}
    summed = sum(mse(small_model, theta, tasks64.x_support[t], tasks64.y_support[t]) for t in range(tasks64.num_tasks))
    joint_grad = flat(dict(zip(theta, torch.autograd.grad(summed, list(theta.values())))))
    error = (flat(step.grads) - 0.07 / tasks64.num_tasks * joint_grad).abs().max()
    assert error < 1e-14, error
    # so an outer SGD step with rate ε is an SGD step with rate ε·α/T on the summed losses
    eps = 0.3
    assert torch.allclose(flat(params) - eps * flat(step.grads),
                          flat(params) - eps * 0.07 / tasks64.num_tasks * joint_grad, rtol=0, atol=1e-14)


@pytest.mark.parametrize("inner_steps", [2, 5])
def test_k_steps_match_a_plain_per_task_loop(small_model, tasks64, inner_steps):
    params = mb.detached(mb.parameters_of(small_model))
    step = mb.get_method("reptile")(small_model, params, tasks64, inner_lr=0.05, inner_steps=inner_steps)
    direction, query = reptile_by_loop(small_model, params, tasks64.x_support, tasks64.y_support,
                                       tasks64.x_query, tasks64.y_query, 0.05, inner_steps)
    error = (flat(step.grads) - flat(direction)).abs().max()
    assert error < 1e-14, error
    assert torch.allclose(step.query_loss, query, rtol=1e-12, atol=0)
    assert torch.allclose(step.meta_loss, query.mean(), rtol=1e-12, atol=0)
    assert step.grads["0.weight"].grad_fn is None and not step.grads["0.weight"].requires_grad


def test_support_plus_query_inner_data_matches_loop_on_concatenated_shots(small_model, tasks64):
    params = mb.detached(mb.parameters_of(small_model))
    step = mb.get_method("reptile")(small_model, params, tasks64, inner_lr=0.05, inner_steps=3,
                                    inner_data="support+query")
    x = torch.cat([tasks64.x_support, tasks64.x_query], 1)
    y = torch.cat([tasks64.y_support, tasks64.y_query], 1)
    direction, query = reptile_by_loop(small_model, params, x, y, tasks64.x_query, tasks64.y_query, 0.05, 3)
    assert (flat(step.grads) - flat(direction)).abs().max() < 1e-14
    assert torch.allclose(step.query_loss, query, rtol=1e-12, atol=0)
    # the support loss reported is still the loss on the support set before adapting
    plain = mb.get_method("reptile")(small_model, params, tasks64, inner_lr=0.05, inner_steps=3)
    assert torch.allclose(step.support_loss, plain.support_loss)


def test_batched_equals_one_task_at_a_time(small_model, tasks64):
    params = mb.detached(mb.parameters_of(small_model))
    batched = mb.get_method("reptile")(small_model, params, tasks64, inner_lr=0.05, inner_steps=3)
    singles = [mb.get_method("reptile")(small_model, params, part, inner_lr=0.05, inner_steps=3)
               for part in tasks64.split(tasks64.num_tasks)]
    assert torch.allclose(flat(batched.grads), sum(flat(s.grads) for s in singles) / len(singles), rtol=0, atol=1e-14)
    assert torch.allclose(batched.query_loss, torch.cat([s.query_loss for s in singles]))
    assert torch.allclose(batched.diagnostics["step_norm"], torch.cat([s.diagnostics["step_norm"] for s in singles]))


def test_meta_train_with_sgd_is_the_reptile_update():
    """meta_train(optimizer="sgd", outer_lr=ε) moves θ to θ + ε·mean(φ_t − θ)."""
    torch.manual_seed(4)
    model = mb.SinusoidMLP(hidden=(8, 8))
    theta = mb.detached(mb.parameters_of(model))
    family = mb.SinusoidTasks()
    tasks = family.sample(5, 10, 10, generator=torch.Generator().manual_seed(11))
    direction, _ = reptile_by_loop(model, theta, tasks.x_support, tasks.y_support, tasks.x_query, tasks.y_query,
                                   0.02, 4)
    mb.meta_train(model, family, iterations=1, generator=torch.Generator().manual_seed(11), method="reptile",
                  meta_batch_size=5, inner_lr=0.02, inner_steps=4, outer_lr=0.5, optimizer="sgd", progress=False)
    expected = {k: v - 0.5 * direction[k] for k, v in theta.items()}  # = θ + ε·mean(φ − θ)
    assert torch.allclose(flat(mb.parameters_of(model)).detach(), flat(expected), rtol=0, atol=1e-6)


def inner_gradients_by_loop(model, params, batches, inner_lr):
    """One task at a time, plain autograd: [g_1, ..., g_k] per task, g_i = ∇L_i(φ_{i−1})."""
    per_task = []
    for t in range(batches[0][0].shape[0]):
        phi, gs = {k: v.clone() for k, v in params.items()}, []
        for x, y in batches:
            phi = {k: v.requires_grad_() for k, v in phi.items()}
            grads = torch.autograd.grad(mse(model, phi, x[t], y[t]), list(phi.values()))
            gs.append(flat(dict(zip(phi, grads))))
            phi = {k: (v - inner_lr * g).detach() for (k, v), g in zip(phi.items(), grads)}
        per_task.append(gs)
    return per_task


@pytest.mark.parametrize("weights", [(1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (0.5, -2.0)])
def test_gradient_weights_on_minibatches_match_a_per_task_loop(small_model, generator, weights):
    """grads = α · mean_t Σ_i w_i g_{t,i}, step i on the i-th half of the support set."""
    tasks = mb.SinusoidTasks().sample(3, 6, 4, generator=generator, dtype=torch.float64)
    params = mb.detached(mb.parameters_of(small_model))
    step = mb.get_method("reptile")(small_model, params, tasks, inner_lr=0.05, inner_steps=2,
                                    inner_data="minibatches", gradient_weights=weights)
    halves = [(tasks.x_support[:, :3], tasks.y_support[:, :3]), (tasks.x_support[:, 3:], tasks.y_support[:, 3:])]
    per_task = inner_gradients_by_loop(small_model, params, halves, 0.05)
    expected = 0.05 * sum(sum(w * g for w, g in zip(weights, gs)) for gs in per_task) / len(per_task)
    assert (flat(step.grads) - expected).abs().max() < 1e-14


def test_weights_all_one_are_reptile_and_the_last_gradient_on_minibatches_is_fomaml(small_model, generator):
    """(1, 1, 1) reproduces the default direction θ − mean φ (same data every step); with
    minibatches, (0, 1) is first-order MAML: one step on the first half, gradient on the second."""
    params = mb.detached(mb.parameters_of(small_model))
    tasks = mb.SinusoidTasks().sample(4, 6, 5, generator=generator, dtype=torch.float64)
    reptile = mb.get_method("reptile")
    plain = reptile(small_model, params, tasks, inner_lr=0.05, inner_steps=3)
    summed = reptile(small_model, params, tasks, inner_lr=0.05, inner_steps=3, gradient_weights=[1, 1, 1])
    assert (flat(plain.grads) - flat(summed.grads)).abs().max() < 1e-15
    assert torch.equal(plain.query_loss, summed.query_loss) or torch.allclose(plain.query_loss, summed.query_loss,
                                                                              rtol=1e-13, atol=0)
    assert torch.allclose(plain.support_loss, summed.support_loss, rtol=1e-13, atol=0)
    last = reptile(small_model, params, tasks, inner_lr=0.05, inner_steps=2, inner_data="minibatches",
                   gradient_weights=(0, 1))
    split = mb.TaskBatch(tasks.x_support[:, :3], tasks.y_support[:, :3], tasks.x_support[:, 3:],
                         tasks.y_support[:, 3:])
    fomaml = mb.get_method("fomaml")(small_model, params, split, inner_lr=0.05, inner_steps=1)
    assert (flat(last.grads) - 0.05 * flat(fomaml.grads)).abs().max() < 1e-15
    # and the sum of both inner gradients is Reptile on the two minibatches (eq. 5.6)
    both = reptile(small_model, params, tasks, inner_lr=0.05, inner_steps=2, inner_data="minibatches")
    by_weights = reptile(small_model, params, tasks, inner_lr=0.05, inner_steps=2, inner_data="minibatches",
                         gradient_weights=(1, 1))
    assert (flat(both.grads) - flat(by_weights.grads)).abs().max() < 1e-15


@pytest.mark.parametrize("bad, error, words", [
    ((1.0,), ValueError, "one weight per inner step (2)"),
    ("11", TypeError, "sequence of inner_steps numbers"),
    ((1.0, float("nan")), ValueError, "gradient_weights[1] must be finite"),
    ((1.0, "a"), TypeError, "gradient_weights[1] must be a number"),
])
def test_bad_gradient_weights_are_refused_with_what_is_expected(small_model, tasks64, bad, error, words):
    params = mb.detached(mb.parameters_of(small_model))
    with pytest.raises(error) as info:
        mb.get_method("reptile")(small_model, params, tasks64, inner_lr=0.05, inner_steps=2, gradient_weights=bad)
    assert words in str(info.value)


def test_minibatches_need_support_shots_divisible_by_the_steps(small_model, tasks64):
    params = mb.detached(mb.parameters_of(small_model))
    with pytest.raises(ValueError) as info:
        mb.get_method("reptile")(small_model, params, tasks64, inner_lr=0.05, inner_steps=2, inner_data="minibatches")
    assert "divisible by inner_steps = 2, got 5 support shots" in str(info.value)


def test_classification_minibatches_hold_every_class_and_match_a_per_task_loop():
    """On classification tasks (laid out class by class) step i takes the i-th part of
    every class's drawings, not the i-th class: checked against a loop over tasks."""
    torch.manual_seed(5)
    net = mb.ConvNet(ways=3, filters=2, blocks=2, image_size=8).double()
    params = mb.detached(mb.parameters_of(net))
    family = mb.ClassificationTasks(torch.rand(6, 8, 8, 8, dtype=torch.float64), ways=3)
    tasks = family.sample(2, 4, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert tasks.y_support[0].tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]
    step = mb.get_method("reptile")(net, params, tasks, inner_lr=0.3, inner_steps=2, inner_data="minibatches",
                                    loss_fn=mb.cross_entropy_per_task)
    expected = []
    for t in range(2):
        phi = {k: v.clone() for k, v in params.items()}
        for i in range(2):
            index = torch.tensor([c * 4 + 2 * i + j for c in range(3) for j in range(2)])
            x, y = tasks.x_support[t, index], tasks.y_support[t, index]
            assert sorted(y.tolist()) == [0, 0, 1, 1, 2, 2]
            phi = {k: v.requires_grad_() for k, v in phi.items()}
            loss = torch.nn.functional.cross_entropy(torch.func.functional_call(net, phi, (x,)), y)
            grads = torch.autograd.grad(loss, list(phi.values()))
            phi = {k: (v - 0.3 * g).detach() for (k, v), g in zip(phi.items(), grads)}
        expected.append(flat({k: params[k] - phi[k] for k in params}))
    assert (flat(step.grads) - sum(expected) / 2).abs().max() < 1e-13


def test_classification_minibatches_need_equal_classes_divisible_by_the_steps():
    net = mb.ConvNet(ways=3, filters=2, blocks=2, image_size=8)
    params = mb.detached(mb.parameters_of(net))
    family = mb.ClassificationTasks(torch.rand(6, 8, 8, 8), ways=3)
    tasks = family.sample(2, 3, 1, generator=torch.Generator().manual_seed(0))
    reptile = mb.get_method("reptile")
    with pytest.raises(ValueError, match="per class divisible by inner_steps = 2, got 3 per class"):
        reptile(net, params, tasks, inner_lr=0.1, inner_steps=2, inner_data="minibatches",
                loss_fn=mb.cross_entropy_per_task)
    uneven = mb.TaskBatch(tasks.x_support, torch.tensor([[0, 0, 0, 0, 1, 1, 1, 2, 2]] * 2), tasks.x_query,
                          tasks.y_query)
    with pytest.raises(ValueError, match="same number of support examples of every class"):
        reptile(net, params, uneven, inner_lr=0.1, inner_steps=3, inner_data="minibatches",
                loss_fn=mb.cross_entropy_per_task)


ABLATION = sorted(n for n in mb.recipes.RECIPES if n.startswith("sinusoid_ablation_"))


@pytest.mark.parametrize("name", ABLATION)
def test_the_ablation_recipes_train_and_their_checkpoints_record_them(name):
    """Each recipe of the Reptile chapter's ablation runs through meta_train (3 iterations
    here), and a shipped checkpoint was trained with exactly the recipe's settings."""
    import json

    recipe = mb.recipes.RECIPES[name]
    meta = mb.recipes.regenerate(name, device="cpu", progress=False, iterations=3, save=False)
    assert json.loads(meta["settings"])["iterations"] == 3
    path = mb.checkpoints.PRETRAINED_DIR / f"{name}.pt"
    if not path.is_file():
        pytest.skip(f"{name}.pt not generated (python -m mamlbook regenerate {name})")
    _, shipped = mb.recipes.load(name, device="cpu")
    stored = json.loads(shipped["settings"])
    current = json.loads(json.dumps(recipe.as_dict()))  # tuples as lists
    assert {key: current[key] for key in stored} == stored


def test_gradient_of_half_squared_distance_to_a_solution_set_is_theta_minus_its_projection():
    """Chapter 05, 'A second reading': ∇ ½ dist(θ, 𝒲)² = θ − P_𝒲(θ), checked by central
    differences of the distance on two solution sets with known projections: the solutions
    {w : Xw = y} of an underdetermined least-squares task (projection by the KKT system)
    and a sphere (curved, like a network's solution manifold). On the linear task, gradient
    descent from θ ends at P_𝒲(θ): there Reptile's φ_t is the projection exactly.
    A check of the formula the book states; no package code is involved."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(3, 8, generator=generator, dtype=torch.float64)  # 3 equations, 8 unknowns
    y = torch.randn(3, generator=generator, dtype=torch.float64)
    theta = torch.randn(8, generator=generator, dtype=torch.float64)

    def project_affine(w):  # argmin_v ½‖v − w‖² s.t. Xv = y, from its KKT system
        kkt = torch.cat([torch.cat([torch.eye(8, dtype=w.dtype), x.T], 1),
                         torch.cat([x, torch.zeros(3, 3, dtype=w.dtype)], 1)])
        return torch.linalg.solve(kkt, torch.cat([w, y]))[:8]

    centre, radius = torch.randn(8, generator=generator, dtype=torch.float64), 0.7

    def project_sphere(w):
        return centre + radius * (w - centre) / (w - centre).norm()

    for project in (project_affine, project_sphere):
        def half_squared_distance(w):
            return 0.5 * float((w - project(w)).norm() ** 2)

        h, basis = 1e-6, torch.eye(8, dtype=torch.float64)
        numeric = torch.tensor([(half_squared_distance(theta + h * e) - half_squared_distance(theta - h * e)) / (2 * h)
                                for e in basis], dtype=torch.float64)
        expected = theta - project(theta)
        assert expected.norm() > 0.1  # θ is off the set
        assert torch.allclose(numeric, expected, rtol=0, atol=1e-8), (numeric - expected).abs().max()

    phi = theta.clone()  # gradient descent on ½‖Xφ − y‖² from θ
    step = 1 / torch.linalg.matrix_norm(x, ord=2) ** 2
    for _ in range(5000):
        phi = phi - step * x.T @ (x @ phi - y)
    assert torch.allclose(phi, project_affine(theta), rtol=0, atol=1e-10)

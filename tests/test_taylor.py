"""mamlbook.taylor: Taylor expansions of the methods' updates in α, and the smooth network."""
import itertools

import pytest
import torch
from torch import nn
from torch.func import functional_call

import mamlbook as mb
from mamlbook import taylor


@pytest.fixture
def smooth_model(small_model):
    return taylor.with_activation(small_model)


def flat(params, batch_dims=0):
    return mb.flatten_params(params, batch_dims)


def test_with_activation_swaps_relu_and_keeps_the_weights(small_model, tasks64):
    smooth = taylor.with_activation(small_model, nn.Tanh)
    assert not any(isinstance(m, nn.ReLU) for m in smooth.modules())
    assert sum(isinstance(m, nn.Tanh) for m in smooth.modules()) == 2
    assert any(isinstance(m, nn.ReLU) for m in small_model.modules())  # the original is untouched
    for (n1, p1), (n2, p2) in zip(small_model.named_parameters(), smooth.named_parameters()):
        assert n1 == n2 and torch.equal(p1, p2) and p1 is not p2
    params = mb.detached(mb.parameters_of(small_model))
    out = mb.task_forward(smooth, mb.batch_parameters(params, tasks64.num_tasks), tasks64.x_support)
    w = {k: v for k, v in params.items()}
    x = tasks64.x_support[0]
    manual = torch.tanh(torch.tanh(x @ w["0.weight"].T + w["0.bias"]) @ w["2.weight"].T + w["2.bias"]) @ w["4.weight"].T + w["4.bias"]
    assert torch.allclose(out[0], manual, rtol=0, atol=1e-14)
    with pytest.raises(ValueError, match="no nn.ReLU"):
        taylor.with_activation(smooth)


def test_sgd_on_identical_batches_is_adapt(small_model, tasks64):
    params = mb.detached(mb.parameters_of(small_model))
    batch = (tasks64.x_support, tasks64.y_support)
    phi = taylor.sgd_on_batches(small_model, params, [batch] * 3, inner_lr=0.05)
    ref, _ = mb.adapt(small_model, mb.detached(mb.batch_parameters(params, tasks64.num_tasks), requires_grad=True),
                      *batch, inner_lr=0.05, inner_steps=3, create_graph=False)
    assert (flat(phi, 1) - flat(ref, 1)).abs().max() < 1e-14


def test_reptile_expansion_is_exact_for_one_step(smooth_model, tasks64):
    params = mb.detached(mb.parameters_of(smooth_model))
    step = mb.get_method("reptile")(smooth_model, params, tasks64, inner_lr=0.1, inner_steps=1)
    ex = taylor.reptile_expansion(smooth_model, params, [(tasks64.x_support, tasks64.y_support)], inner_lr=0.1)
    assert (flat(step.grads) / 0.1 - ex.prediction).abs().max() < 1e-12
    assert ex.inner_sum.abs().max() == 0


def _relative_error(a, b):
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("distinct_batches", [False, True])
def test_reptile_expansion_error_shrinks_like_alpha_squared(smooth_model, generator, distinct_batches):
    params = mb.detached(mb.parameters_of(smooth_model))
    tasks = mb.SinusoidTasks().sample(3, 12, 5, generator=generator, dtype=torch.float64)
    if distinct_batches:
        batches = list(zip(tasks.x_support.chunk(3, 1), tasks.y_support.chunk(3, 1)))
    else:
        batches = [(tasks.x_support, tasks.y_support)] * 3
    errors, first_order = [], []
    for lr in (1e-2, 1e-3):
        phi = taylor.sgd_on_batches(smooth_model, params, batches, inner_lr=lr)
        direction = (flat(params) - flat(phi, 1).mean(0)) / lr
        if not distinct_batches:
            step = mb.get_method("reptile")(smooth_model, params, tasks, inner_lr=lr, inner_steps=3)
            assert (flat(step.grads) / lr - direction).abs().max() < 1e-10
        ex = taylor.reptile_expansion(smooth_model, params, batches, inner_lr=lr)
        errors.append(_relative_error(ex.prediction, direction))
        first_order.append(_relative_error(ex.gradient_sum, direction))
    assert 50 < errors[0] / errors[1] < 200, errors        # O(α²): a factor ~100 per decade
    assert 5 < first_order[0] / first_order[1] < 20, first_order  # without the correction only O(α)
    assert errors[1] < 0.1 * first_order[1]


def test_reptile_expansion_inner_sum_by_explicit_hessians(smooth_model, tasks64):
    """Σ_{i>j} H̄_i ḡ_j against full Hessians for two different batches of one task."""
    params = mb.detached(mb.parameters_of(smooth_model))
    one = tasks64.split(4)[0]
    b1, b2 = (one.x_support, one.y_support), (one.x_query, one.y_query)
    ex = taylor.reptile_expansion(smooth_model, params, [b1, b2], inner_lr=0.1)
    f1 = mb.loss_function(smooth_model, b1[0][0], b1[1][0])
    f2 = mb.loss_function(smooth_model, b2[0][0], b2[1][0])
    g1, g2 = mb.hessian.gradient(f1, params), mb.hessian.gradient(f2, params)
    assert torch.allclose(ex.gradient_sum, g1 + g2, rtol=0, atol=1e-12)
    assert torch.allclose(ex.inner_sum, mb.full_hessian(f2, params) @ g1, rtol=0, atol=1e-10)


def test_first_order_expansions_match_the_methods_to_second_order(smooth_model, tasks64):
    params = mb.detached(mb.parameters_of(smooth_model))
    ratios = {}
    for name in ("maml", "fomaml", "reptile"):
        errors = []
        for lr in (1e-2, 1e-3):
            ex = taylor.first_order_expansions(smooth_model, params, tasks64, inner_lr=lr, inner_steps=2)
            grads = flat(mb.get_method(name)(smooth_model, params, tasks64, inner_lr=lr, inner_steps=2).grads)
            errors.append(_relative_error(getattr(ex, name), grads / (lr if name == "reptile" else 1.0)))
        ratios[name] = errors[0] / errors[1]
    assert all(50 < r < 200 for r in ratios.values()), ratios
    ex = taylor.first_order_expansions(smooth_model, params, tasks64, inner_lr=0.1, inner_steps=1)
    reptile = flat(mb.get_method("reptile")(smooth_model, params, tasks64, inner_lr=0.1, inner_steps=1).grads) / 0.1
    assert (ex.reptile - reptile).abs().max() < 1e-12  # one step: exact


def test_expansions_reject_bad_input(small_model, tasks64):
    params = mb.detached(mb.parameters_of(small_model))
    with pytest.raises(ValueError, match="batches"):
        taylor.reptile_expansion(small_model, params, [], inner_lr=0.1)
    with pytest.raises(ValueError, match="inner_lr"):
        taylor.sgd_on_batches(small_model, params, [(tasks64.x_support, tasks64.y_support)], inner_lr=-1.0)
    with pytest.raises(ValueError, match="tasks"):
        taylor.reptile_expansion(small_model, params, [(tasks64.x_support, tasks64.y_support),
                                                         (tasks64.x_support[:2], tasks64.y_support[:2])], inner_lr=0.1)
    with pytest.raises(ValueError, match="inner_steps"):
        taylor.first_order_expansions(small_model, params, tasks64, inner_lr=0.1, inner_steps=0)


# ------------------------------------------------------------------ expected directions (eqs. 5.8-5.10)
# The expectations over minibatches are computed exactly: a few data points per task, and
# every ordered draw of the points the steps use enumerated as one row of a TaskBatch, so
# that the methods' mean over the rows is the expectation over tasks and draws. Draws are
# independent (with replacement, the chapter's "independent draws from the same data") or
# distinct points (without replacement, minibatches cut from a shuffled task).

DRAWS = {"with_replacement": True, "without_replacement": False}


def _every_draw(tasks, points, support_points, replacement):
    """One row per task and ordered draw of ``points`` of its support points, the first
    ``support_points`` of them as the support set and the rest as the query set (with no rest,
    the query set repeats the support set)."""
    n = tasks.x_support.shape[1]
    draws = itertools.product(range(n), repeat=points) if replacement else itertools.permutations(range(n), points)
    index = torch.tensor(list(draws))
    x, y = tasks.x_support[:, index].flatten(0, 1), tasks.y_support[:, index].flatten(0, 1)
    if support_points == points:
        return mb.TaskBatch(x, y, x.clone(), y.clone())
    return mb.TaskBatch(x[:, :support_points], y[:, :support_points], x[:, support_points:], y[:, support_points:])


def _avg_grad_and_avg_grad_inner(model, params, tasks, replacement):
    """AvgGrad and AvgGradInner of eq. (5.8) for one-point minibatches of each task's support
    points, by plain autograd on per-point losses, AvgGradInner in its second form
    ½ E[∇(ḡ_i·ḡ_j)]: for independent draws E[ḡ_i·ḡ_j | T] = ‖∇L_T‖² (the chapter's remark
    after eq. 5.9); for distinct draws, the mean of g_a·g_b over ordered pairs of points a ≠ b."""
    theta = {k: v.clone().requires_grad_() for k, v in params.items()}
    num_tasks, n = tasks.x_support.shape[:2]
    avg_grad = avg_grad_inner = 0
    for t in range(num_tasks):
        per_point = []
        for a in range(n):
            x, y = tasks.x_support[t, a:a + 1], tasks.y_support[t, a:a + 1]
            loss = ((functional_call(model, theta, (x,)) - y) ** 2).mean()
            per_point.append(flat(dict(zip(theta, torch.autograd.grad(loss, list(theta.values()), create_graph=True)))))
        total = sum(per_point)
        if replacement:
            agreement = total @ total / n**2
        else:
            agreement = (total @ total - sum(g @ g for g in per_point)) / (n * (n - 1))
        avg_grad = avg_grad + total.detach() / n
        avg_grad_inner = avg_grad_inner + 0.5 * flat(dict(zip(theta, torch.autograd.grad(agreement, list(theta.values())))))
    return avg_grad / num_tasks, avg_grad_inner / num_tasks


@pytest.fixture
def four_points(generator):
    """Two sinusoid tasks with four data points each (float64)."""
    return mb.SinusoidTasks().sample(2, 4, 1, generator=generator, dtype=torch.float64)


@pytest.mark.parametrize("replacement", DRAWS.values(), ids=DRAWS.keys())
def test_expected_reptile_direction_over_minibatches_is_eq_5_9(smooth_model, four_points, replacement):
    """Eq. (5.9): E[g_Rep] = k·AvgGrad − ½k(k−1)α·AvgGradInner + O(α²), k = 3 one-point minibatches
    (``inner_data="minibatches"``), E over both tasks and all 64 (or 24 distinct) ordered draws."""
    params = mb.detached(mb.parameters_of(smooth_model))
    k = 3
    avg_grad, avg_grad_inner = _avg_grad_and_avg_grad_inner(smooth_model, params, four_points, replacement)
    every = _every_draw(four_points, k, k, replacement)
    errors, first_order = [], []
    for lr in (1e-2, 1e-3):
        step = mb.get_method("reptile")(smooth_model, params, every, inner_lr=lr, inner_steps=k, inner_data="minibatches")
        expected_g_rep = flat(step.grads) / lr  # eq. (5.6), mean over tasks and draws
        errors.append(_relative_error(k * avg_grad - 0.5 * k * (k - 1) * lr * avg_grad_inner, expected_g_rep))
        first_order.append(_relative_error(k * avg_grad, expected_g_rep))
    assert 50 < errors[0] / errors[1] < 200, errors        # O(α²): a factor ~100 per decade
    assert 5 < first_order[0] / first_order[1] < 20, first_order  # without AvgGradInner only O(α)
    assert errors[1] < 0.1 * first_order[1]


@pytest.mark.parametrize("replacement", DRAWS.values(), ids=DRAWS.keys())
@pytest.mark.parametrize("name, weight", [("maml", 2), ("fomaml", 1)])
def test_expected_maml_and_fomaml_directions_follow_eq_5_10(smooth_model, four_points, name, weight, replacement):
    """After eq. (5.10): with k inner steps on the support set, E[MAML] = AvgGrad − 2kα·AvgGradInner
    and E[first-order MAML] = AvgGrad − kα·AvgGradInner, + O(α²); E over both tasks and every
    (two-point support set, one-point query set) drawn from their four points. The paper's
    convention (query batch counted as one of the k steps: 2(k−1), k−1) is off at O(α) here."""
    params = mb.detached(mb.parameters_of(smooth_model))
    k = 3
    avg_grad, avg_grad_inner = _avg_grad_and_avg_grad_inner(smooth_model, params, four_points, replacement)
    every = _every_draw(four_points, 3, 2, replacement)
    errors, first_order, paper_k = [], [], []
    # MAML's correction carries 2kα = 6α: at α = 1e-2 it is not small yet (error ~0.2), hence 1e-3, 1e-4
    for lr in (1e-3, 1e-4):
        direction = flat(mb.get_method(name)(smooth_model, params, every, inner_lr=lr, inner_steps=k).grads)
        errors.append(_relative_error(avg_grad - weight * k * lr * avg_grad_inner, direction))
        first_order.append(_relative_error(avg_grad, direction))
        paper_k.append(_relative_error(avg_grad - weight * (k - 1) * lr * avg_grad_inner, direction))
    assert 50 < errors[0] / errors[1] < 200, errors
    assert 5 < first_order[0] / first_order[1] < 20, first_order
    assert 5 < paper_k[0] / paper_k[1] < 20, paper_k
    assert errors[1] < 0.1 * min(first_order[1], paper_k[1])


@pytest.mark.parametrize("replacement", DRAWS.values(), ids=DRAWS.keys())
@pytest.mark.parametrize("weights, grad_coefficient, inner_coefficient", [
    ((1.0, 0.0), 1, 0),   # g1: AvgGrad, exactly (the gradient at θ)
    ((0.0, 1.0), 1, 1),   # g2: AvgGrad − α AvgGradInner
    ((1.0, 1.0), 2, 1),   # g1 + g2: 2 AvgGrad − α AvgGradInner
])
def test_ablation_directions_have_the_tabled_expectations(smooth_model, four_points, replacement, weights,
                                                          grad_coefficient, inner_coefficient):
    """The ablation table of the Reptile chapter: two one-point minibatches, ``gradient_weights``
    picking g1, g2 or g1 + g2, E over both tasks and every ordered draw of the two points."""
    params = mb.detached(mb.parameters_of(smooth_model))
    avg_grad, avg_grad_inner = _avg_grad_and_avg_grad_inner(smooth_model, params, four_points, replacement)
    every = _every_draw(four_points, 2, 2, replacement)
    errors, first_order = [], []
    for lr in (1e-2, 1e-3):
        step = mb.get_method("reptile")(smooth_model, params, every, inner_lr=lr, inner_steps=2,
                                        inner_data="minibatches", gradient_weights=weights)
        direction = flat(step.grads) / lr  # mean of Σ_i w_i g_i
        expected = grad_coefficient * avg_grad - inner_coefficient * lr * avg_grad_inner
        errors.append(_relative_error(expected, direction))
        first_order.append(_relative_error(grad_coefficient * avg_grad, direction))
    if inner_coefficient == 0:
        assert max(errors) < 1e-13, errors
        return
    assert 50 < errors[0] / errors[1] < 200, errors
    assert 5 < first_order[0] / first_order[1] < 20, first_order
    assert errors[1] < 0.1 * first_order[1]

"""mamlbook.taylor: Taylor expansions of the methods' updates in α, and the smooth network."""
import pytest
import torch
from torch import nn

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

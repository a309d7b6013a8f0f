"""mamlbook.hessian against torch.autograd.functional, and MAML's meta-gradient against explicit matrices.

References here never use `mamlbook.hessian`: they are written with
``torch.autograd.functional`` (hessian, jacobian), ``torch.linalg`` and plain per-task loops.
"""
import pytest
import torch
from torch.func import functional_call

import mamlbook as mb
from helpers import central_difference, flat, mse, unflat


def autograd_hessian(model, params, x, y):
    return torch.autograd.functional.hessian(lambda w: mse(model, unflat(w, params), x, y), flat(params))


def test_full_hessian_matches_autograd(small_model, tasks64):
    params = mb.detached(mb.parameters_of(small_model))
    x, y = tasks64.x_support[0], tasks64.y_support[0]
    h = mb.full_hessian(mb.loss_function(small_model, x, y), params)
    reference = autograd_hessian(small_model, params, x, y)
    assert h.shape == (97, 97)
    assert torch.allclose(h, reference, rtol=0, atol=1e-12), (h - reference).abs().max()


def test_gauss_newton_split_adds_up_to_the_hessian(small_model, tasks64):
    params = mb.detached(mb.parameters_of(small_model))
    x, y = tasks64.x_support[1], tasks64.y_support[1]
    split = mb.gauss_newton_split(small_model, params, x, y)
    reference = autograd_hessian(small_model, params, x, y)
    assert torch.allclose(split.gauss_newton + split.residual, reference, rtol=0, atol=1e-12)
    # Gauss-Newton term = 2/n JᵀJ with J the Jacobian of the outputs (independent computation)
    jac = torch.autograd.functional.jacobian(
        lambda w: functional_call(small_model, unflat(w, params), (x,)).reshape(-1), flat(params))
    assert torch.allclose(split.gauss_newton, 2 / x.shape[0] * jac.T @ jac, rtol=0, atol=1e-12)
    assert torch.allclose(mb.hessian.output_jacobian(small_model, params, x), jac, rtol=0, atol=1e-14)
    assert torch.linalg.eigvalsh(split.gauss_newton).min() > -1e-12  # positive semi-definite
    assert split.residual.abs().max() > 1e-3  # the residual term is not trivially zero here


def test_gradient_is_two_over_n_jacobian_times_residual(small_model, tasks64):
    """Eq. (3.5), first line: ∇L = (2/n) Σₙ (Mₙ − yₙ) ∇Mₙ = (2/n) Jᵀ(M − y), J from autograd."""
    params = mb.detached(mb.parameters_of(small_model))
    x, y = tasks64.x_support[1], tasks64.y_support[1]
    jac = torch.autograd.functional.jacobian(
        lambda w: functional_call(small_model, unflat(w, params), (x,)).reshape(-1), flat(params))
    residual = (functional_call(small_model, params, (x,)) - y).reshape(-1)
    w = flat(params).requires_grad_()
    (grad,) = torch.autograd.grad(mse(small_model, unflat(w, params), x, y), w)
    assert torch.allclose(grad, 2 / residual.numel() * jac.T @ residual, rtol=0, atol=1e-14)
    assert torch.allclose(mb.hessian.gradient(mb.loss_function(small_model, x, y), params), grad, rtol=0, atol=1e-14)
    assert grad.abs().max() > 1e-3  # not trivially zero


def test_residual_term_vanishes_at_a_perfect_fit(small_model, tasks64):
    params = mb.detached(mb.parameters_of(small_model))
    x = tasks64.x_support[0]
    y = functional_call(small_model, params, (x,)).detach()  # targets the model fits exactly
    split = mb.gauss_newton_split(small_model, params, x, y)
    assert split.residual.abs().max() < 1e-14


def test_hessian_vector_product_matches_explicit_hessian(small_model, tasks64):
    params = mb.detached(mb.parameters_of(small_model))
    x, y = tasks64.x_support[2], tasks64.y_support[2]
    v = unflat(torch.randn(97, generator=torch.Generator().manual_seed(3), dtype=torch.float64), params)
    hv = mb.hessian_vector_product(mb.loss_function(small_model, x, y), params, v)
    assert torch.allclose(flat(hv), autograd_hessian(small_model, params, x, y) @ flat(v), rtol=0, atol=1e-12)


def test_batched_products_and_the_full_hessian_match_autograd(small_model, tasks64):
    """Every task's product at once (double backward) against each task's explicit Hessian;
    the P products with the columns of I (reverse-over-reverse) against `full_hessian`
    (forward-over-reverse)."""
    params = mb.detached(mb.parameters_of(small_model))
    full = [autograd_hessian(small_model, params, tasks64.x_support[t], tasks64.y_support[t])
            for t in range(tasks64.num_tasks)]
    v = torch.randn(tasks64.num_tasks, full[0].shape[0], generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    hv = mb.hessian.hessian_vector_products(small_model, params, tasks64.x_support, tasks64.y_support, v)
    assert torch.allclose(hv, torch.stack([full[t] @ v[t] for t in range(tasks64.num_tasks)]), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="vectors"):
        mb.hessian.hessian_vector_products(small_model, params, tasks64.x_support, tasks64.y_support, v[:2])
    for t in range(tasks64.num_tasks):
        x, y = tasks64.x_support[t], tasks64.y_support[t]
        p = full[t].shape[0]
        columns = mb.hessian.hessian_vector_products(  # the same task P times, one column of I each
            small_model, params, x.expand(p, *x.shape), y.expand(p, *y.shape), torch.eye(p, dtype=torch.float64))
        h = mb.full_hessian(mb.loss_function(small_model, x, y), params)
        assert torch.allclose(columns, h, rtol=0, atol=1e-12)
        assert torch.allclose(h, full[t], rtol=0, atol=1e-12)


def test_gradient_and_hvps_give_each_tasks_gradient(small_model, tasks64):
    params = mb.detached(mb.parameters_of(small_model))
    grads, products = mb.hessian.gradient_and_hvps(small_model, params, tasks64.x_query, tasks64.y_query, [])
    assert products == []
    for t in range(tasks64.num_tasks):
        theta = {k: v.clone().requires_grad_() for k, v in params.items()}
        g = torch.autograd.grad(mse(small_model, theta, tasks64.x_query[t], tasks64.y_query[t]), list(theta.values()))
        assert torch.allclose(grads[t], torch.cat([x.reshape(-1) for x in g]), rtol=0, atol=1e-14)


def test_top_eigenvalues_are_each_tasks_largest_magnitude(small_model, tasks64):
    params = mb.detached(mb.parameters_of(small_model))
    top = mb.hessian.top_eigenvalues(small_model, params, tasks64.x_support, tasks64.y_support, iterations=500,
                                     generator=torch.Generator().manual_seed(0))
    expected = [float(torch.linalg.eigvalsh(autograd_hessian(small_model, params, tasks64.x_support[t],
                                                              tasks64.y_support[t])).abs().max())
                for t in range(tasks64.num_tasks)]
    assert top.shape == (tasks64.num_tasks,)
    assert top.tolist() == pytest.approx(expected, rel=1e-6)


def test_gauss_newton_top_eigenvalue_matches_the_split(small_model, tasks64):
    params = mb.detached(mb.parameters_of(small_model))
    x, y = tasks64.x_support[0], tasks64.y_support[0]
    expected = float(torch.linalg.eigvalsh(mb.gauss_newton_split(small_model, params, x, y).gauss_newton)[-1])
    assert mb.hessian.gauss_newton_top_eigenvalue(small_model, params, x) == pytest.approx(expected, rel=1e-10)


def k_step_map(model, x, y, inner_lr, steps, like):
    """θ ↦ θ_k by plain autograd (create_graph), the reference for the Jacobian."""
    def u(w):
        phi = unflat(w, like)
        for _ in range(steps):
            grads = torch.autograd.grad(mse(model, phi, x, y), list(phi.values()), create_graph=True)
            phi = {k: v - inner_lr * g for (k, v), g in zip(phi.items(), grads)}
        return flat(phi)
    return u


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_k_step_jacobian_product_matches_autograd(small_model, tasks64, steps):
    params = mb.detached(mb.parameters_of(small_model))
    x, y = tasks64.x_support[0], tasks64.y_support[0]
    product = mb.inner_loop_jacobian(mb.loss_function(small_model, x, y), params, 0.3, steps)
    reference = torch.autograd.functional.jacobian(k_step_map(small_model, x, y, 0.3, steps, params), flat(params))
    assert torch.allclose(product, reference, rtol=0, atol=1e-12), (product - reference).abs().max()
    if steps > 1:  # the product of symmetric factors is not symmetric: the order matters
        assert (product - product.T).abs().max() > 1e-6


def test_k_step_product_is_one_minus_alpha_sum_of_hessians_to_first_order(small_model, tasks64):
    """Chapter 03 (question 3) and 07: ∏ᵢ (I − α∇²L(φ_{i−1})) = I − α Σᵢ ∇²L(φ_{i−1}) + O(α²).

    The product from autograd's Jacobian of the k-step map; the Hessians at each φ_{i−1}
    from ``torch.autograd.functional.hessian``. A tenfold smaller α leaves about a hundredth
    of the remainder (it is second order), a tenth of the product's distance from I (first
    order)."""
    params = mb.detached(mb.parameters_of(small_model))
    x, y = tasks64.x_support[0], tasks64.y_support[0]
    steps, remainders, deviations = 3, [], []
    for inner_lr in (1e-2, 1e-3):
        product = torch.autograd.functional.jacobian(
            k_step_map(small_model, x, y, inner_lr, steps, params), flat(params))
        phi, hessians = flat(params), []
        for _ in range(steps):
            hessians.append(autograd_hessian(small_model, unflat(phi, params), x, y))
            phi = phi - inner_lr * torch.autograd.functional.jacobian(
                lambda w: mse(small_model, unflat(w, params), x, y), phi)
        first_order = torch.eye(len(phi), dtype=phi.dtype) - inner_lr * sum(hessians)
        remainders.append(float((product - first_order).abs().max()))
        deviations.append(float((product - torch.eye(len(phi), dtype=phi.dtype)).abs().max()))
    assert 70 < remainders[0] / remainders[1] < 130, remainders   # second order: α²
    assert 7 < deviations[0] / deviations[1] < 13, deviations     # the product − I itself: α
    assert remainders[1] < 1e-2 * deviations[1]


def test_hessian_of_half_sum_of_squares_is_n_over_2_times_the_split(small_model, tasks64):
    """Chapter 03 after eq. (3.5): the source article's ∇²[½ Σₙ (yₙ − Mₙ)²] = ∇M∇Mᵀ − Σₙ (yₙ − Mₙ)∇²Mₙ
    is n/2 times the book's G + R (the mean squared error's split), term by term."""
    params = mb.detached(mb.parameters_of(small_model))
    x, y = tasks64.x_support[1], tasks64.y_support[1]
    n = y.numel()
    half_sum = torch.autograd.functional.hessian(
        lambda w: 0.5 * ((functional_call(small_model, unflat(w, params), (x,)) - y) ** 2).sum(), flat(params))
    jac = torch.autograd.functional.jacobian(
        lambda w: functional_call(small_model, unflat(w, params), (x,)).reshape(-1), flat(params))
    residuals = (y - functional_call(small_model, params, (x,))).reshape(-1)
    second = sum(r * torch.autograd.functional.hessian(
        lambda w, i=i: functional_call(small_model, unflat(w, params), (x,)).reshape(-1)[i], flat(params))
        for i, r in enumerate(residuals))
    assert torch.allclose(half_sum, jac.T @ jac - second, rtol=0, atol=1e-11)
    split = mb.gauss_newton_split(small_model, params, x, y)
    assert torch.allclose(n / 2 * split.gauss_newton, jac.T @ jac, rtol=0, atol=1e-11)
    assert torch.allclose(n / 2 * split.residual, -second, rtol=0, atol=1e-11)


def test_maml_one_step_equals_closed_form_with_explicit_hessian(small_model, tasks64):
    """∇_θ L_meta = 1/T Σ_t (I − α∇²L_support,t(θ)) ∇L_query,t(θ′_t), explicit P × P Hessian."""
    params = mb.detached(mb.parameters_of(small_model))
    alpha = 0.05
    step = mb.get_method("maml")(small_model, params, tasks64, inner_lr=alpha, inner_steps=1)
    expected = torch.zeros(97, dtype=torch.float64)
    for t in range(tasks64.num_tasks):
        xs, ys, xq, yq = tasks64.x_support[t], tasks64.y_support[t], tasks64.x_query[t], tasks64.y_query[t]
        hess = autograd_hessian(small_model, params, xs, ys)
        theta = {k: v.clone().requires_grad_() for k, v in params.items()}
        g_support = torch.autograd.grad(mse(small_model, theta, xs, ys), list(theta.values()))
        adapted = {k: (v - alpha * g).detach().requires_grad_() for (k, v), g in zip(params.items(), g_support)}
        g_query = torch.cat([g.reshape(-1) for g in
                             torch.autograd.grad(mse(small_model, adapted, xq, yq), list(adapted.values()))])
        expected += (torch.eye(97, dtype=torch.float64) - alpha * hess) @ g_query / tasks64.num_tasks
    error = (flat(step.grads) - expected).abs().max()
    assert error < 1e-12, error


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_maml_k_steps_equals_jacobian_product_formula(small_model, tasks64, steps):
    params = mb.detached(mb.parameters_of(small_model))
    step = mb.get_method("maml")(small_model, params, tasks64, inner_lr=0.05, inner_steps=steps)
    expected = sum(mb.maml_gradient_by_matrices(mb.loss_function(small_model, t.x_support[0], t.y_support[0]),
                                                mb.loss_function(small_model, t.x_query[0], t.y_query[0]),
                                                params, 0.05, steps)
                   for t in tasks64.split(tasks64.num_tasks)) / tasks64.num_tasks
    error = (flat(step.grads) - expected).abs().max()
    assert error < 1e-12, error


def test_maml_two_steps_matches_central_differences(tasks64):
    """k = 2 (test_maml.py covers k = 1 and 3); a 1-4-4-1 net keeps the 33 coordinates cheap."""
    torch.manual_seed(3)
    model = mb.SinusoidMLP(hidden=(4, 4)).double()
    params = mb.detached(mb.parameters_of(model))
    step = mb.get_method("maml")(model, params, tasks64, inner_lr=0.05, inner_steps=2)

    def meta_loss(p):
        total = 0.0
        for t in range(tasks64.num_tasks):
            phi = {k: v.detach().requires_grad_() for k, v in p.items()}
            for _ in range(2):
                grads = torch.autograd.grad(mse(model, phi, tasks64.x_support[t], tasks64.y_support[t]),
                                            list(phi.values()))
                phi = {k: (v - 0.05 * g).detach().requires_grad_() for (k, v), g in zip(phi.items(), grads)}
            total += float(mse(model, phi, tasks64.x_query[t], tasks64.y_query[t]).detach())
        return total / tasks64.num_tasks

    reference = central_difference(meta_loss, params)
    error = (flat(step.grads) - reference).abs().max()
    assert error < 1e-8, error


def test_flatten_unflatten_round_trip_batched(small_model):
    params = mb.detached(mb.parameters_of(small_model))
    batched = mb.batch_parameters(params, 3)
    rows = mb.flatten_params(batched, batch_dims=1)
    assert rows.shape == (3, 97) and torch.equal(rows[1], mb.flatten_params(params))
    back = mb.unflatten_params(rows, params)
    assert all(torch.equal(back[k], batched[k]) for k in params)
    with pytest.raises(ValueError, match="vector"):
        mb.unflatten_params(rows[:, :-1], params)
    # a batch of zero tasks: (0, P) (reshape(0, -1) could not infer P); a scalar per task: one column
    assert mb.flatten_params({k: v.expand(0, *v.shape) for k, v in params.items()}, batch_dims=1).shape == (0, 97)
    scalars = mb.flatten_params({"a": torch.arange(3.0), "b": torch.ones(3, 2)}, batch_dims=1)
    assert torch.equal(scalars, torch.tensor([[0.0, 1, 1], [1, 1, 1], [2, 1, 1]]))


def test_a_hessian_vector_product_costs_three_gradients_whatever_p():
    """Chapters 03 and 06, `hessian_vector_product`'s docstring: forward-over-reverse costs a
    fixed multiple of a gradient, whatever P is: floating-point operations counted by
    ``torch.utils.flop_counter`` for a gradient and for its forward-mode derivative along v
    (autograd's forward AD over its backward pass: the package's ``jvp(grad(f))``, whose
    ``torch.func`` transforms the counter cannot enter in torch 2.13), on the book's
    1-40-40-1 network and one ten times wider (P: 1,761 and 162,001); the product is the
    package's to round-off."""
    import torch.autograd.forward_ad as forward_ad
    from torch.utils.flop_counter import FlopCounterMode

    ratios = []
    for hidden in (40, 400):
        model = mb.SinusoidMLP(hidden=(hidden, hidden)).double()
        names = [n for n, _ in model.named_parameters()]
        params = [p.detach() for p in model.parameters()]
        x = torch.linspace(-5, 5, 10, dtype=torch.float64).view(10, 1)
        v = [torch.randn(p.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64) for p in params]

        def loss(ps):
            return mse(model, dict(zip(names, ps)), x, torch.sin(x))

        with FlopCounterMode(display=False) as counter:
            leaves = [p.clone().requires_grad_() for p in params]
            torch.autograd.grad(loss(leaves), leaves)
        gradient_flops = counter.get_total_flops()
        with FlopCounterMode(display=False) as counter, forward_ad.dual_level():
            duals = [forward_ad.make_dual(p.clone().requires_grad_(), t) for p, t in zip(params, v)]
            hv = [forward_ad.unpack_dual(g).tangent for g in torch.autograd.grad(loss(duals), duals)]
        ratios.append(counter.get_total_flops() / gradient_flops)
        package = mb.hessian_vector_product(lambda d: loss([d[n] for n in names]), dict(zip(names, params)),
                                            dict(zip(names, v)))
        assert all(torch.allclose(a, package[n], rtol=0, atol=1e-10) for a, n in zip(hv, names))
    assert all(2.5 < r < 3.5 for r in ratios) and abs(ratios[0] - ratios[1]) < 0.05 * ratios[0], ratios

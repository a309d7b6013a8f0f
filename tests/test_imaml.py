"""iMAML against closed forms, explicit solves and finite differences (its conjugate-gradient
solver: test_solvers.py).

Also: memory that does not grow with the number of inner steps, measured as the peak
number of bytes autograd holds in saved tensors (``torch.autograd.graph.saved_tensors_hooks``).
"""
import pytest
import torch
from torch import nn
from torch.func import functional_call

import mamlbook as mb
from helpers import flat, unflat


# ---------------------------------------------------------------- linear regression: closed form
def linear_tasks(num_tasks=3, dim=3, shots=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    w_true = torch.randn(num_tasks, 1, dim, generator=g, dtype=torch.float64)

    def data(n):
        x = torch.randn(num_tasks, n, dim, generator=g, dtype=torch.float64)
        return x, x @ w_true.transpose(1, 2) + 0.1 * torch.randn(num_tasks, n, 1, generator=g, dtype=torch.float64)

    return mb.TaskBatch(*data(shots), *data(shots + 2))


def closed_form_meta_gradient(params, tasks, lam, damping=0.0, first_order=False):
    """d/dθ 1/T Σ_t L_query,t(φ_t*(θ)) by autograd through φ* = (2/N XᵀX + λI)⁻¹(2/N Xᵀy + λθ).

    With ``damping`` > 0 instead the explicit solve of ((1 + damping) I + H/λ) v = ∇L_query(φ*);
    with ``first_order`` the plain mean of ∇L_query(φ*) (no inverse matrix).
    """
    theta = flat(params).clone().requires_grad_()  # [W (1×d), b]
    total, solves, firsts = 0.0, [], []
    for t in range(tasks.num_tasks):
        def design(x):
            return torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype)], 1)
        xs, ys, xq, yq = design(tasks.x_support[t]), tasks.y_support[t], design(tasks.x_query[t]), tasks.y_query[t]
        n, p = xs.shape
        hess = 2 / n * xs.T @ xs
        phi = torch.linalg.solve(hess + lam * torch.eye(p, dtype=xs.dtype), 2 / n * xs.T @ ys[:, 0] + lam * theta)
        query = ((xq @ phi - yq[:, 0]) ** 2).mean()
        total = total + query / tasks.num_tasks
        g_query = 2 / xq.shape[0] * xq.T @ (xq @ phi - yq[:, 0])
        firsts.append(g_query.detach())
        solves.append(torch.linalg.solve((1 + damping) * torch.eye(p, dtype=xs.dtype) + hess / lam, g_query.detach()))
    if first_order:
        return sum(flat_g for flat_g in firsts) / len(firsts)
    if damping:
        return sum(solves) / len(solves)
    return torch.autograd.grad(total, theta)[0]


def test_meta_gradient_on_linear_regression_matches_closed_form():
    tasks = linear_tasks()
    torch.manual_seed(0)
    model = nn.Linear(3, 1).double()
    params = mb.detached(mb.parameters_of(model))
    step = mb.get_method("imaml")(model, params, tasks, inner_lr=0.1, inner_steps=120, lam=2.0, cg_steps=4)
    reference = closed_form_meta_gradient(params, tasks, lam=2.0)
    error = (flat(step.grads) - reference).abs().max()
    assert error < 1e-10, error
    assert step.diagnostics["prox_grad_norm"].max() < 1e-10       # the inner problem was solved
    assert step.diagnostics["cg_relative_residual"].max() < 1e-10  # and so were the 4 × 4 CG systems
    assert step.diagnostics["cg_min_curvature"].min() >= 1 - 1e-12  # I + H/λ with H ⪰ 0: every pᵀAp/pᵀp ≥ 1
    # dropping the inverse matrix (a first-order iMAML) is visibly different, so the agreement is not luck
    assert (closed_form_meta_gradient(params, tasks, lam=2.0, first_order=True) - reference).abs().max() > 1e-2


def test_cg_damping_solves_the_damped_system():
    tasks = linear_tasks(seed=1)
    torch.manual_seed(1)
    model = nn.Linear(3, 1).double()
    params = mb.detached(mb.parameters_of(model))
    step = mb.get_method("imaml")(model, params, tasks, inner_lr=0.1, inner_steps=120, lam=2.0, cg_steps=4,
                                  cg_damping=0.5)
    reference = closed_form_meta_gradient(params, tasks, lam=2.0, damping=0.5)
    assert (flat(step.grads) - reference).abs().max() < 1e-10


def test_first_order_returns_the_mean_query_gradient_at_the_adapted_parameters():
    tasks = linear_tasks(seed=2)
    torch.manual_seed(2)
    model = nn.Linear(3, 1).double()
    params = mb.detached(mb.parameters_of(model))
    imaml = mb.get_method("imaml")
    step = imaml(model, params, tasks, inner_lr=0.1, inner_steps=120, lam=2.0, first_order=True)
    reference = closed_form_meta_gradient(params, tasks, lam=2.0, first_order=True)
    assert (flat(step.grads) - reference).abs().max() < 1e-10
    assert step.diagnostics["cg_relative_residual"].eq(0).all()
    assert step.diagnostics["cg_min_curvature"].isinf().all()
    # the same adapted parameters and query loss as the full method, another direction
    full = imaml(model, params, tasks, inner_lr=0.1, inner_steps=120, lam=2.0, cg_steps=4)
    assert torch.equal(full.meta_loss, step.meta_loss)
    assert (flat(full.grads) - reference).abs().max() > 1e-2
    with pytest.raises(TypeError, match="first_order must be True or False"):
        imaml(model, params, tasks, inner_lr=0.1, first_order="yes")


# ---------------------------------------------------------------- a nonlinear network
@pytest.fixture
def tanh_model():
    """A smooth 1-6-1 net (ReLU's kinks can stall gradient descent on the inner problem)."""
    torch.manual_seed(5)
    return nn.Sequential(nn.Linear(1, 6), nn.Tanh(), nn.Linear(6, 1)).double()


def solve_inner_by_loop(model, theta, x, y, lam, lr, steps):
    phi = {k: v.clone() for k, v in theta.items()}
    for _ in range(steps):
        phi = {k: v.requires_grad_() for k, v in phi.items()}
        loss = ((functional_call(model, phi, (x,)) - y) ** 2).mean()
        grads = torch.autograd.grad(loss, list(phi.values()))
        phi = {k: (v - lr * (g + lam * (v - theta[k]))).detach() for (k, v), g in zip(phi.items(), grads)}
    return phi


def test_nonlinear_meta_gradient_matches_explicit_hessian_solve(tanh_model, tasks64):
    params = mb.detached(mb.parameters_of(tanh_model))
    lam, p = 5.0, 19
    step = mb.get_method("imaml")(tanh_model, params, tasks64, inner_lr=0.1, inner_steps=150, lam=lam, cg_steps=p)
    expected = torch.zeros(p, dtype=torch.float64)
    for t in range(tasks64.num_tasks):
        xs, ys, xq, yq = tasks64.x_support[t], tasks64.y_support[t], tasks64.x_query[t], tasks64.y_query[t]
        phi = solve_inner_by_loop(tanh_model, params, xs, ys, lam, 0.1, 150)
        hess = torch.autograd.functional.hessian(
            lambda w: ((functional_call(tanh_model, unflat(w, phi), (xs,)) - ys) ** 2).mean(), flat(phi))
        grad_q = torch.autograd.functional.jacobian(
            lambda w: ((functional_call(tanh_model, unflat(w, phi), (xq,)) - yq) ** 2).mean(), flat(phi))
        expected += torch.linalg.solve(torch.eye(p, dtype=torch.float64) + hess / lam, grad_q) / tasks64.num_tasks
    error = (flat(step.grads) - expected).abs().max()
    assert error < 1e-9, error


def test_nonlinear_meta_gradient_matches_finite_differences_of_the_solved_problem(tanh_model, tasks64):
    """The implicit gradient is the derivative of L_query(φ*(θ)) when φ* is (nearly) exact."""
    params = mb.detached(mb.parameters_of(tanh_model))
    tasks64 = tasks64.split(2)[0]  # two tasks keep the 4 × 2 inner solves cheap
    lam, lr, steps = 5.0, 0.1, 150
    step = mb.get_method("imaml")(tanh_model, params, tasks64, inner_lr=lr, inner_steps=steps, lam=lam, cg_steps=19)
    assert step.diagnostics["prox_grad_norm"].max() < 1e-12

    def meta_loss(theta):
        total = 0.0
        for t in range(tasks64.num_tasks):
            phi = solve_inner_by_loop(tanh_model, theta, tasks64.x_support[t], tasks64.y_support[t], lam, lr, steps)
            total += float(((functional_call(tanh_model, phi, (tasks64.x_query[t],)) - tasks64.y_query[t]) ** 2).mean())
        return total / tasks64.num_tasks

    g = torch.Generator().manual_seed(8)
    for _ in range(2):
        d = unflat(torch.randn(19, generator=g, dtype=torch.float64), params)
        eps = 1e-5
        fd = (meta_loss({k: v + eps * d[k] for k, v in params.items()})
              - meta_loss({k: v - eps * d[k] for k, v in params.items()})) / (2 * eps)
        analytic = float(flat(step.grads) @ flat(d))
        assert abs(fd - analytic) < 1e-8 * max(1.0, abs(analytic)), (fd, analytic)


def test_inner_tolerance_stops_each_task_on_its_own(tanh_model, tasks64):
    params = mb.detached(mb.parameters_of(tanh_model))
    kwargs = dict(inner_lr=0.1, inner_steps=500, lam=5.0, cg_steps=5, inner_tol=1e-8)
    batched = mb.get_method("imaml")(tanh_model, params, tasks64, **kwargs)
    taken = batched.diagnostics["inner_steps_taken"]
    assert (taken < 500).all() and (batched.diagnostics["prox_grad_norm"] <= 1e-8).all()
    singles = [mb.get_method("imaml")(tanh_model, params, part, **kwargs) for part in tasks64.split(tasks64.num_tasks)]
    assert torch.equal(taken, torch.cat([s.diagnostics["inner_steps_taken"] for s in singles]))
    assert len(set(taken.tolist())) > 1  # tasks really stopped at different steps
    assert torch.allclose(flat(batched.grads), sum(flat(s.grads) for s in singles) / len(singles), rtol=0, atol=1e-14)


def test_batched_equals_one_task_at_a_time_and_residual_is_reported(small_model, tasks64):
    params = mb.detached(mb.parameters_of(small_model))
    batched = mb.get_method("imaml")(small_model, params, tasks64, inner_lr=0.05, inner_steps=10, cg_steps=5)
    singles = [mb.get_method("imaml")(small_model, params, part, inner_lr=0.05, inner_steps=10, cg_steps=5)
               for part in tasks64.split(tasks64.num_tasks)]
    assert torch.allclose(flat(batched.grads), sum(flat(s.grads) for s in singles) / len(singles), rtol=0, atol=1e-14)
    for key in ("prox_grad_norm", "cg_relative_residual"):
        assert torch.allclose(batched.diagnostics[key], torch.cat([s.diagnostics[key] for s in singles]), rtol=1e-10)
    one = mb.get_method("imaml")(small_model, params, tasks64, inner_lr=0.05, inner_steps=10, cg_steps=1)
    assert (one.diagnostics["cg_relative_residual"] > batched.diagnostics["cg_relative_residual"]).all()


# ---------------------------------------------------------------- memory
class _Saved:
    """Bytes autograd holds in saved tensors right now, and the peak."""

    def __init__(self):
        self.now = self.peak = 0


class _Box:
    __slots__ = ("tensor", "size", "stats")

    def __init__(self, tensor, stats):
        self.tensor, self.size, self.stats = tensor, tensor.numel() * tensor.element_size(), stats
        stats.now += self.size
        stats.peak = max(stats.peak, stats.now)

    def __del__(self):
        self.stats.now -= self.size


def peak_saved_bytes(fn):
    stats = _Saved()
    with torch.autograd.graph.saved_tensors_hooks(lambda t: _Box(t, stats), lambda box: box.tensor):
        fn()
    return stats.peak


@pytest.mark.parametrize("method", ["imaml", "reptile", "fomaml"])
def test_memory_does_not_grow_with_inner_steps(small_model, tasks64, method):
    params = mb.detached(mb.parameters_of(small_model))

    def run(steps):
        return peak_saved_bytes(lambda: mb.get_method(method)(small_model, params, tasks64, inner_lr=0.01,
                                                              inner_steps=steps))

    few, many = run(3), run(60)
    assert few > 0 and many == few, (few, many)


def test_second_order_maml_memory_grows_with_inner_steps(small_model, tasks64):
    """The contrast that gives the test above its teeth."""
    params = mb.detached(mb.parameters_of(small_model))
    few, many = (peak_saved_bytes(lambda: mb.get_method("maml")(small_model, params, tasks64, inner_lr=0.01,
                                                                inner_steps=steps)) for steps in (3, 12))
    assert many > 3 * few, (few, many)


def test_negative_curvature_is_reported(small_model, tasks64):
    """A ReLU net's support Hessian has negative eigenvalues; with a small λ, I + H/λ is indefinite."""
    params = mb.detached(mb.parameters_of(small_model))
    weak = mb.get_method("imaml")(small_model, params, tasks64, inner_lr=0.01, inner_steps=5, lam=0.1)
    assert (weak.diagnostics["cg_min_curvature"] < 0).any()
    strong = mb.get_method("imaml")(small_model, params, tasks64, inner_lr=0.01, inner_steps=5, lam=50.0)
    assert (strong.diagnostics["cg_min_curvature"] > 0.9).all()
    assert strong.diagnostics["cg_relative_residual"].max() < 1e-5


def test_proximal_solver_is_monotone_when_the_step_is_too_large():
    """inner_lr far above 2/(λ + curvature): fixed-step GD would blow up; the solver halves the step instead."""
    from mamlbook.functional import proximal_adapt
    tasks = linear_tasks()
    torch.manual_seed(0)
    model = nn.Linear(3, 1).double()
    params = mb.detached(mb.parameters_of(model))
    anchor = mb.batch_parameters(params, tasks.num_tasks)

    def objective(phi):
        distance = sum((v - anchor[k]).flatten(1).square().sum(1) for k, v in phi.items())
        return mb.task_losses(model, phi, tasks.x_support, tasks.y_support) + 1.0 * distance  # λ/2 = 1

    previous = objective(anchor)
    for steps in (1, 5, 20, 100):
        phi, _, taken = proximal_adapt(model, anchor, tasks.x_support, tasks.y_support, inner_lr=50.0,
                                       inner_steps=steps, lam=2.0)
        current = objective(phi)
        assert torch.isfinite(current).all() and (current <= previous + 1e-12).all()
        previous = current
    assert (taken < 100).all()            # some steps were rejected
    assert (previous < objective(anchor) - 1e-3).all()  # and the accepted ones made progress
    step = mb.get_method("imaml")(model, params, tasks, inner_lr=50.0, inner_steps=100, lam=2.0, cg_steps=4)
    assert torch.isfinite(flat(step.grads)).all()


def test_proximal_adaptation_curve_matches_proximal_adapt():
    tasks = linear_tasks()
    torch.manual_seed(0)
    model = nn.Linear(3, 1).double()
    params = mb.detached(mb.parameters_of(model))
    curve = mb.proximal_adaptation_curve(model, params, tasks, inner_lr=0.1, max_steps=4, lam=2.0)
    assert curve.shape == (tasks.num_tasks, 5)
    from mamlbook.functional import proximal_adapt
    phi, _, _ = proximal_adapt(model, mb.batch_parameters(params, tasks.num_tasks), tasks.x_support, tasks.y_support,
                               inner_lr=0.1, inner_steps=3, lam=2.0)
    assert torch.allclose(curve[:, 3], mb.task_losses(model, phi, tasks.x_query, tasks.y_query))
    assert torch.allclose(curve[:, 0], mb.task_losses(model, mb.batch_parameters(params, tasks.num_tasks),
                                                      tasks.x_query, tasks.y_query))


# ---------------------------------------------------------------- claims of the chapter's text
def test_fixed_step_descent_on_g_diverges_exactly_past_curvature_2_over_alpha_minus_lambda():
    """Chapter 06 after eq. (6.1): gradient descent with a fixed step α on
    G(φ) = L(φ) + λ/2 ‖φ − θ‖² diverges as soon as the curvature h of L exceeds 2/α − λ;
    the package's solver (`proximal_adapt`) rejects a step that would raise G and halves
    its step size, so it converges there too. L(φ) = h/2 φ², α = 0.1, λ = 2: threshold 18,
    φ* = λθ/(h + λ)."""
    from mamlbook.functional import proximal_adapt
    alpha, lam, theta, steps = 0.1, 2.0, 1.0, 1000

    def fixed_step(h):
        phi, g_values = theta, []
        for _ in range(steps):
            phi = phi - alpha * (h * phi + lam * (phi - theta))
            g_values.append(h / 2 * phi ** 2 + lam / 2 * (phi - theta) ** 2)
        return phi, g_values

    def distance(h, phi):  # |φ − φ*| / |θ − φ*|
        star = lam * theta / (h + lam)
        return abs(phi - star) / abs(theta - star)

    below, _ = fixed_step(17.9)   # contraction factor |1 − α(h + λ)| = 0.99
    at, _ = fixed_step(18.0)      # 1: it oscillates forever at the same distance
    above, g_above = fixed_step(18.1)  # 1.01
    assert distance(17.9, below) < 1e-4
    assert distance(18.0, at) == pytest.approx(1.0, rel=1e-9)
    assert distance(18.1, above) > 1e4 and all(b > a for a, b in zip(g_above, g_above[1:]))  # G rises at every step

    # the package's solver on the same two problems, as two tasks of one batch: L_t(φ) is the
    # mean squared error of φx on the single point (x, 0) with x² = h/2, a model without bias
    model = nn.Linear(1, 1, bias=False).double()
    h = torch.tensor([17.9, 18.1], dtype=torch.float64)
    x, y = (h / 2).sqrt().view(2, 1, 1), torch.zeros(2, 1, 1, dtype=torch.float64)
    anchor = mb.batch_parameters({"weight": torch.full((1, 1), theta, dtype=torch.float64)}, 2)
    assert torch.allclose(mb.task_losses(model, anchor, x, y), h / 2 * theta ** 2, rtol=1e-15, atol=0)
    phi, _, taken = proximal_adapt(model, anchor, x, y, inner_lr=alpha, inner_steps=steps, lam=lam)
    phi = phi["weight"].flatten()
    # below the threshold every step is accepted: exactly fixed-step gradient descent
    assert taken[0] == steps and float(phi[0]) == pytest.approx(below, rel=1e-10)
    # above it the first step (it would raise G) is rejected, α halved, and then it converges
    assert taken[1] == steps - 1
    assert float(phi[1]) == pytest.approx(lam * theta / (18.1 + lam), rel=1e-12)


def test_inverse_of_i_plus_h_over_lambda_expands_to_i_minus_h_over_lambda():
    """Chapter 06 after eq. (6.5): (I + H/λ)⁻¹ = I − H/λ + O(λ⁻²), and in an eigenvector of H
    with eigenvalue h the matrix (I + H/λ)⁻¹ of eqs. (6.4)-(6.5) multiplies by λ/(λ + h).
    For a random symmetric (indefinite) H: λ²‖(I + H/λ)⁻¹ − (I − H/λ)‖ stays bounded and
    tends to ‖H²‖ (spectral norms; it equals max_i h_i² λ/(λ + h_i), so it is at most
    ‖H²‖/(1 − ‖H‖/λ) and within a relative ‖H‖/λ of ‖H²‖), while the first-order term is
    really there: λ‖(I + H/λ)⁻¹ − I‖ tends to ‖H‖, not to 0."""
    g = torch.Generator().manual_seed(6)
    m = torch.randn(6, 6, generator=g, dtype=torch.float64)
    hess = (m + m.T) / 2
    h, vectors = torch.linalg.eigh(hess)
    assert h.min() < 0 < h.max()
    eye = torch.eye(6, dtype=torch.float64)
    norm_h = float(torch.linalg.matrix_norm(hess, ord=2))
    norm_h2 = float(torch.linalg.matrix_norm(hess @ hess, ord=2))
    gaps = []
    for lam in (10.0, 100.0, 1000.0):
        inverse = torch.linalg.inv(eye + hess / lam)
        second = lam ** 2 * float(torch.linalg.matrix_norm(inverse - (eye - hess / lam), ord=2))
        assert second <= norm_h2 / (1 - norm_h / lam), (lam, second, norm_h2)  # bounded
        gaps.append(abs(second / norm_h2 - 1))
        assert gaps[-1] <= norm_h / lam, (lam, second, norm_h2)                  # and tends to ‖H²‖
        # the same number from H's eigenvalues (rel 1e-9: `second` is λ² times a difference of
        # O(1) matrices, 1e-5 at λ = 1000, so it carries about 1e-11 of relative round-off)
        assert second == pytest.approx(float((h ** 2 * lam / (lam + h)).max()), rel=1e-9)
        first = lam * float(torch.linalg.matrix_norm(inverse - eye, ord=2))
        assert abs(first / norm_h - 1) <= 2 * norm_h / lam, (lam, first, norm_h)
        # eigenvalues λ/(λ + h_i), on H's own eigenvectors
        factors = lam / (lam + h)
        assert torch.allclose(torch.linalg.eigvalsh(inverse), factors.sort().values, rtol=0, atol=1e-14)
        assert torch.allclose(vectors @ torch.diag(factors) @ vectors.T, inverse, rtol=0, atol=1e-14)
    assert gaps[1] < gaps[0] / 5 and gaps[2] < gaps[1] / 5  # the O(λ⁻²) term's coefficient settles like 1/λ


def test_imaml_memory_does_not_depend_on_cg_steps(small_model, tasks64):
    """Chapter 06, exercise ex-imaml-memory: with inner_steps = 50, iMAML's peak saved-tensor
    memory (`measure.saved_tensor_memory`, as the chapter measures it) is the same for
    cg_steps = 1, 5 and 20: each Hessian-vector product differentiates the one support-gradient
    graph without keeping a graph of its own."""
    from mamlbook import measure
    params = mb.detached(mb.parameters_of(small_model))
    runs = {cg: measure.saved_tensor_memory(lambda: mb.get_method("imaml")(
        small_model, params, tasks64, inner_lr=0.02, inner_steps=50, lam=2.0, cg_steps=cg)) for cg in (1, 5, 20)}
    peaks = [stats.peak_bytes for _, stats in runs.values()]
    assert peaks[0] > 0 and peaks[0] == peaks[1] == peaks[2], peaks
    assert len({stats.count for _, stats in runs.values()}) == 1  # not even one more tensor saved
    # the CG iterations did run: each task's residual falls with cg_steps
    residuals = [step.diagnostics["cg_relative_residual"] for step, _ in runs.values()]
    assert (residuals[1] < residuals[0]).all() and (residuals[2] < residuals[1]).all()

"""mamlbook.solvers: conjugate gradient against torch.linalg.solve, power iteration and the
top eigenvalue against torch.linalg.eigvalsh."""
import pytest
import torch

import mamlbook as mb
from mamlbook import solvers


def spd(n, generator, batch=()):
    q = torch.randn(*batch, n, n, generator=generator, dtype=torch.float64)
    return q @ q.transpose(-1, -2) / n + 0.5 * torch.eye(n, dtype=torch.float64)


def test_conjugate_gradient_matches_linalg_solve():
    assert mb.conjugate_gradient is solvers.conjugate_gradient  # the flat name is this one
    g = torch.Generator().manual_seed(0)
    a, b = spd(12, g), torch.randn(12, generator=g, dtype=torch.float64)
    x, r = solvers.conjugate_gradient(lambda v: a @ v, b, 12)
    exact = torch.linalg.solve(a, b)
    assert (x - exact).abs().max() < 1e-10
    assert torch.allclose(r, b - a @ x, rtol=0, atol=1e-10)  # the residual the recurrence kept is the true one
    x3, _ = solvers.conjugate_gradient(lambda v: a @ v, b, 3)
    assert (x3 - exact).abs().max() > 1e-4  # three steps are not enough: the check above has teeth
    x_warm, r_warm = solvers.conjugate_gradient(lambda v: a @ v, b, 2, x0=exact)  # starting at the answer stays there
    assert (x_warm - exact).abs().max() < 1e-12 and r_warm.abs().max() < 1e-12


def test_batched_conjugate_gradient_solves_each_system_separately():
    g = torch.Generator().manual_seed(1)
    a, b = spd(7, g, batch=(3,)), torch.randn(3, 7, generator=g, dtype=torch.float64)
    b[1] = 0.0  # an already-solved system must stay at 0, not turn into 0/0 = NaN
    x, _ = solvers.conjugate_gradient(lambda v: torch.einsum("tij,tj->ti", a, v), b, 7)
    assert (x - torch.linalg.solve(a, b)).abs().max() < 1e-10
    for t in (0, 2):
        single, _ = solvers.conjugate_gradient(lambda v: a[t] @ v, b[t], 4)
        partial, _ = solvers.conjugate_gradient(lambda v: torch.einsum("tij,tj->ti", a, v), b, 4)
        assert torch.allclose(partial[t], single, rtol=0, atol=1e-13)


def test_top_eigenvalue_matches_eigvalsh():
    g = torch.Generator().manual_seed(0)
    m = torch.randn(30, 8, generator=g, dtype=torch.float64)
    a = m @ m.T                                     # PSD, rank 8
    expected = float(torch.linalg.eigvalsh(a)[-1])
    assert solvers.top_eigenvalue(a, generator=g) == pytest.approx(expected, rel=1e-9)
    assert solvers.top_eigenvalue(lambda v: a @ v, 30, generator=g) == pytest.approx(expected, rel=1e-9)
    assert solvers.top_eigenvalue(torch.zeros(3, 3)) == 0.0
    with pytest.raises(ValueError, match="square"):
        solvers.top_eigenvalue(torch.zeros(3, 2))
    with pytest.raises(TypeError, match="size"):
        solvers.top_eigenvalue(lambda v: v)


def test_power_iteration_runs_each_matrix_on_its_own():
    """T symmetric matrices at once: each row as if alone; the magnitude finds the
    largest |eigenvalue| of an indefinite matrix, the eigenvalue its sign; a zero matrix
    gives 0, not NaN."""
    g = torch.Generator().manual_seed(2)
    q, _ = torch.linalg.qr(torch.randn(3, 6, 6, generator=g, dtype=torch.float64))
    spectra = torch.tensor([[5.0, 2.0, 1.0, 0.5, -0.3, 0.1],
                            [-7.0, 3.0, 2.0, 1.0, 0.5, 0.2],
                            [0.0] * 6], dtype=torch.float64)
    a = q @ torch.diag_embed(spectra) @ q.transpose(1, 2)
    start = torch.randn(3, 6, generator=g, dtype=torch.float64)
    batched = solvers.power_iteration(lambda v: torch.einsum("tij,tj->ti", a, v), start, 200)
    assert batched.magnitude.tolist() == pytest.approx([5.0, 7.0, 0.0], rel=1e-10)
    assert batched.eigenvalue.tolist() == pytest.approx([5.0, -7.0, 0.0], rel=1e-10)
    assert not batched.vector.isnan().any()
    for t in range(2):
        alone = solvers.power_iteration(lambda v: a[t] @ v, start[t], 200)
        assert torch.allclose(batched.vector[t], alone.vector, rtol=0, atol=1e-12)
        assert float(alone.magnitude) == pytest.approx(float(batched.magnitude[t]), rel=1e-12)
    with pytest.raises(ValueError, match="iterations"):
        solvers.power_iteration(lambda v: v, start, 0)
    with pytest.raises(ValueError, match="start"):
        solvers.power_iteration(lambda v: v, torch.ones(2, 2, 2), 3)


def test_conjugate_gradient_iterate_is_the_a_norm_best_point_of_the_krylov_space():
    """Chapter 06, the CG paragraph after eq. (6.7): after j steps the iterate is the best
    point, in the A-norm, of span{b, Ab, ..., A^{j-1} b}. Reference: minimise ‖x − A⁻¹b‖_A
    over x = K c, i.e. solve (KᵀAK) c = Kᵀb, with K an orthonormal basis of that span
    (QR of the power basis: the same span, while the power basis's condition number
    reaches 8e6 at j = 8 and would cost the comparison its digits)."""
    g = torch.Generator().manual_seed(3)
    a, b = spd(12, g), torch.randn(12, generator=g, dtype=torch.float64)
    exact = torch.linalg.solve(a, b)

    def a_norm(e):
        return float(torch.sqrt(e @ a @ e))

    for j in (1, 2, 3, 5, 8):
        powers = [b]
        for _ in range(j - 1):
            powers.append(a @ powers[-1])
        k, _ = torch.linalg.qr(torch.stack(powers, 1))
        best = k @ torch.linalg.solve(k.T @ a @ k, k.T @ b)
        x, _ = solvers.conjugate_gradient(lambda v: a @ v, b, j)
        assert (x - best).norm() < 1e-10 * best.norm(), (j, float((x - best).norm() / best.norm()))
        # another point of the same space, the one with the smallest residual ‖b − Ax‖:
        # its A-norm error is larger, so "best in the A-norm" is a property with teeth
        least_residual = k @ torch.linalg.lstsq(a @ k, b.unsqueeze(1)).solution[:, 0]
        assert (least_residual - best).norm() > 1e-5 * best.norm()
        assert a_norm(least_residual - exact) > a_norm(x - exact)
    full, _ = solvers.conjugate_gradient(lambda v: a @ v, b, 12)  # j = P: the space is everything
    assert (full - exact).norm() < 1e-10 * exact.norm()


@pytest.mark.parametrize("kappa", [10.0, 100.0, 1000.0])
def test_conjugate_gradient_error_obeys_bound_6_8_and_never_increases_in_the_a_norm(kappa):
    """Eq. (6.8): ‖v_j − v‖_A ≤ 2 ((√κ − 1)/(√κ + 1))^j ‖v_0 − v‖_A at every step j, for an
    SPD A with condition number κ (eigenvalues log-spaced from 1 to κ, random
    eigenvectors), and the A-norm error never increases, while the residual ‖b − A v_j‖
    may (the chapter's remark after its CG table)."""
    n = 60
    g = torch.Generator().manual_seed(4)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    a = q @ torch.diag(torch.logspace(0, torch.log10(torch.tensor(kappa)).item(), n, dtype=torch.float64)) @ q.T
    assert torch.linalg.cond(a).item() == pytest.approx(kappa, rel=1e-9)
    b = torch.randn(n, generator=g, dtype=torch.float64)
    exact = torch.linalg.solve(a, b)

    def a_norm(e):
        return float(torch.sqrt(e @ a @ e))

    rate = (kappa ** 0.5 - 1) / (kappa ** 0.5 + 1)
    errors, residuals = [], []
    for j in range(41):
        x, r = solvers.conjugate_gradient(lambda v: a @ v, b, j)
        errors.append(a_norm(x - exact) / a_norm(exact))  # v_0 = 0
        residuals.append(float(r.norm()))
    assert errors[0] == pytest.approx(1.0, rel=1e-14)
    for j, error in enumerate(errors):
        assert error <= 2 * rate ** j, (j, error, 2 * rate ** j)
    assert all(later <= earlier for earlier, later in zip(errors, errors[1:])), errors
    assert errors[40] < 0.1 * errors[5]  # it did converge, not stall at a flat error
    if kappa >= 100:  # the contrast: there the residual rises at some steps (at κ = 10 it happens not to)
        assert any(later > earlier for earlier, later in zip(residuals, residuals[1:]))

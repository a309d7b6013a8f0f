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

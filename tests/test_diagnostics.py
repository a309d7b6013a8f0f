"""mamlbook.diagnostics: saved-tensor memory, timing, gradient agreement, top eigenvalue."""
import copy
import math

import pytest
import torch

import mamlbook as mb
from mamlbook import diagnostics
from helpers import flat


def test_saved_tensor_memory_counts_a_simple_graph():
    x = torch.randn(1000, dtype=torch.float64, requires_grad=True)
    result, stats = diagnostics.saved_tensor_memory(lambda: (x * x).sum())
    # mul saves both operands: the same storage twice, counted once in bytes
    assert stats.count == 2
    assert stats.total_bytes == stats.peak_bytes == 8000
    assert stats._live_bytes == 8000          # still held by result's graph
    del result
    assert stats._live_bytes == 0             # freed with the graph


def test_saved_tensor_memory_releases_what_backward_consumed():
    x = torch.randn(500, dtype=torch.float64, requires_grad=True)

    def forward_and_backward():
        y = torch.tanh(x).square().sum()
        return torch.autograd.grad(y, x)[0]

    grad, stats = diagnostics.saved_tensor_memory(forward_and_backward)
    assert stats.peak_bytes > 0 and stats._live_bytes == 0
    assert torch.allclose(grad, 2 * torch.tanh(x) * (1 - torch.tanh(x) ** 2))


@pytest.mark.parametrize("method", ["maml", "fomaml"])
def test_measurement_leaves_meta_gradients_unchanged(small_model, tasks64, method):
    params = mb.detached(mb.parameters_of(small_model))
    call = lambda: mb.get_method(method)(small_model, params, tasks64, inner_lr=0.05, inner_steps=3)
    measured, stats = diagnostics.saved_tensor_memory(call)
    assert stats.count > 0
    assert torch.equal(flat(measured.grads), flat(call().grads))


def test_second_order_memory_grows_with_inner_steps_first_order_does_not(small_model, tasks64):
    params = mb.detached(mb.parameters_of(small_model))

    def peak(method, k):
        return diagnostics.saved_tensor_memory(
            lambda: mb.get_method(method)(small_model, params, tasks64, inner_lr=0.05, inner_steps=k))[1].peak_bytes

    maml = [peak("maml", k) for k in (1, 2, 4)]
    fomaml = [peak("fomaml", k) for k in (1, 2, 4)]
    assert maml[0] < maml[1] < maml[2]
    assert maml[2] - maml[1] == pytest.approx(2 * (maml[1] - maml[0]), rel=0.05)   # linear in k
    assert fomaml[0] == fomaml[1] == fomaml[2]


def test_time_per_call():
    calls = []
    seconds = diagnostics.time_per_call(lambda: calls.append(1), repeats=3, warmup=2)
    assert len(calls) == 5 and 0 <= seconds < 1
    assert diagnostics.time_per_call(lambda: None, repeats=3, statistic="median") >= 0
    with pytest.raises(ValueError, match="statistic"):
        diagnostics.time_per_call(lambda: None, statistic="mean")
    with pytest.raises(ValueError, match="repeats"):
        diagnostics.time_per_call(lambda: None, repeats=0)


def test_gradient_agreement():
    a = {"w": torch.tensor([1.0, 2.0]), "b": torch.tensor([3.0])}
    assert diagnostics.gradient_agreement(a, a) == pytest.approx((1.0, 1.0))
    twice_back = {k: -2 * v for k, v in a.items()}
    assert diagnostics.gradient_agreement(a, twice_back) == pytest.approx((-1.0, 2.0))
    cos, ratio = diagnostics.gradient_agreement(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0]))
    assert cos == pytest.approx(1 / math.sqrt(2)) and ratio == pytest.approx(math.sqrt(2))
    assert math.isnan(diagnostics.gradient_agreement(torch.zeros(2), torch.ones(2)).cosine)
    with pytest.raises(ValueError, match="same keys"):
        diagnostics.gradient_agreement(a, {"w": a["w"]})
    with pytest.raises(ValueError, match="same number"):
        diagnostics.gradient_agreement(torch.ones(2), torch.ones(3))


def test_top_eigenvalue_matches_eigvalsh():
    g = torch.Generator().manual_seed(0)
    m = torch.randn(30, 8, generator=g, dtype=torch.float64)
    a = m @ m.T                                     # PSD, rank 8
    expected = float(torch.linalg.eigvalsh(a)[-1])
    assert diagnostics.top_eigenvalue(a, generator=g) == pytest.approx(expected, rel=1e-9)
    assert diagnostics.top_eigenvalue(lambda v: a @ v, 30, generator=g) == pytest.approx(expected, rel=1e-9)
    assert diagnostics.top_eigenvalue(torch.zeros(3, 3)) == 0.0
    with pytest.raises(ValueError, match="square"):
        diagnostics.top_eigenvalue(torch.zeros(3, 2))
    with pytest.raises(TypeError, match="size"):
        diagnostics.top_eigenvalue(lambda v: v)


def test_agreement_during_training_probes_and_trains_like_meta_train():
    family = mb.SinusoidTasks()
    torch.manual_seed(0)
    model = mb.SinusoidMLP(hidden=(8, 8))
    twin = copy.deepcopy(model)
    history = diagnostics.agreement_during_training(model, family, iterations=7, every=3,
                                                    generator=torch.Generator().manual_seed(5), meta_batch_size=4)
    assert history.iterations == [0, 3, 6]
    assert all(-1 <= c <= 1 for c in history.cosine) and all(r > 0 for r in history.norm_ratio)
    assert len(history.meta_loss) == 7
    # the probes do not disturb training: the same run as mb.meta_train
    reference = mb.meta_train(twin, family, iterations=7, generator=torch.Generator().manual_seed(5),
                              meta_batch_size=4, progress=False)
    assert torch.equal(flat(mb.parameters_of(model)), flat(mb.parameters_of(twin)))
    assert history.meta_loss == reference.meta_loss


def test_agreement_of_a_method_with_itself_is_perfect():
    torch.manual_seed(1)
    history = diagnostics.agreement_during_training(mb.SinusoidMLP(hidden=(8, 8)), mb.SinusoidTasks(), iterations=2,
                                                    every=1, generator=torch.Generator().manual_seed(0),
                                                    other="maml", meta_batch_size=3)
    assert history.cosine == pytest.approx([1.0, 1.0]) and history.norm_ratio == pytest.approx([1.0, 1.0])
    with pytest.raises(ValueError, match="method"):
        diagnostics.agreement_during_training(mb.SinusoidMLP(hidden=(8, 8)), mb.SinusoidTasks(), iterations=1,
                                              every=1, generator=torch.Generator(), other="nope")


def test_gauss_newton_top_eigenvalue_matches_the_split(small_model, tasks64):
    params = mb.detached(mb.parameters_of(small_model))
    x, y = tasks64.x_support[0], tasks64.y_support[0]
    expected = float(torch.linalg.eigvalsh(mb.gauss_newton_split(small_model, params, x, y).gauss_newton)[-1])
    assert diagnostics.gauss_newton_top_eigenvalue(small_model, params, x) == pytest.approx(expected, rel=1e-10)

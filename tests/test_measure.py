"""mamlbook.measure: saved-tensor memory, time per call, gradient agreement, and the
agreement probe as a meta_train callback."""
import copy
import math

import pytest
import torch

import mamlbook as mb
from mamlbook import measure
from helpers import flat


# ---------------------------------------------------------------- saved-tensor memory


def test_saved_tensor_memory_counts_a_simple_graph():
    x = torch.randn(1000, dtype=torch.float64, requires_grad=True)
    result, stats = measure.saved_tensor_memory(lambda: (x * x).sum())
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

    grad, stats = measure.saved_tensor_memory(forward_and_backward)
    assert stats.peak_bytes > 0 and stats._live_bytes == 0
    assert torch.allclose(grad, 2 * torch.tanh(x) * (1 - torch.tanh(x) ** 2))


def test_peak_saved_bytes_counts_storages_once_and_releases_them():
    w = torch.randn(1000, dtype=torch.float64, requires_grad=True)
    x = torch.randn(1000, dtype=torch.float64, requires_grad=True)

    def forward_backward():
        y = (w * x).sum()             # mul saves w and x: 2 × 8000 bytes
        y.backward()                  # frees them
        z = (w.expand(5, 1000) * x).sum()  # saves a 5000-element view of w: w's storage, 8000 bytes
        return z

    result, stats = measure.saved_tensor_memory(forward_backward)
    assert stats.peak_bytes == 16000 and stats.count == 4
    assert isinstance(result, torch.Tensor)
    with pytest.raises(TypeError, match="callable"):
        measure.saved_tensor_memory(3)


@pytest.mark.parametrize("method", ["maml", "fomaml"])
def test_measurement_leaves_meta_gradients_unchanged(small_model, tasks64, method):
    params = mb.detached(mb.parameters_of(small_model))
    call = lambda: mb.get_method(method)(small_model, params, tasks64, inner_lr=0.05, inner_steps=3)
    measured, stats = measure.saved_tensor_memory(call)
    assert stats.count > 0
    assert torch.equal(flat(measured.grads), flat(call().grads))


def test_second_order_memory_grows_with_inner_steps_first_order_does_not(small_model, tasks64):
    params = mb.detached(mb.parameters_of(small_model))

    def peak(method, k):
        return measure.saved_tensor_memory(
            lambda: mb.get_method(method)(small_model, params, tasks64, inner_lr=0.05, inner_steps=k))[1].peak_bytes

    maml = [peak("maml", k) for k in (1, 2, 4)]
    fomaml = [peak("fomaml", k) for k in (1, 2, 4)]
    assert maml[0] < maml[1] < maml[2]
    assert maml[2] - maml[1] == pytest.approx(2 * (maml[1] - maml[0]), rel=0.05)   # linear in k
    assert fomaml[0] == fomaml[1] == fomaml[2]


def test_peak_saved_bytes_grows_with_steps_for_maml_only(small_model, tasks64):
    params = mb.detached(mb.parameters_of(small_model))

    def peak(method, steps, **options):
        return measure.saved_tensor_memory(lambda: mb.get_method(method)(
            small_model, params, tasks64, inner_lr=0.01, inner_steps=steps, **options))[1].peak_bytes

    assert peak("maml", 12) > 3 * peak("maml", 3)
    assert peak("imaml", 3) == peak("imaml", 30) > 0
    assert peak("reptile", 3) == peak("reptile", 30) > 0
    # the measurement does not change the result
    plain = mb.get_method("imaml")(small_model, params, tasks64, inner_lr=0.01, inner_steps=5)
    measured, _ = measure.saved_tensor_memory(lambda: mb.get_method("imaml")(
        small_model, params, tasks64, inner_lr=0.01, inner_steps=5))
    assert torch.equal(flat(plain.grads), flat(measured.grads))


# ---------------------------------------------------------------- time


def test_time_per_call():
    calls = []
    seconds = measure.time_per_call(lambda: calls.append(1), repeats=3, warmup=2)
    assert len(calls) == 5 and 0 <= seconds < 1
    assert measure.time_per_call(lambda: None, repeats=3, statistic="median") >= 0
    with pytest.raises(ValueError, match="statistic"):
        measure.time_per_call(lambda: None, statistic="mean")
    with pytest.raises(ValueError, match="repeats"):
        measure.time_per_call(lambda: None, repeats=0)


# ---------------------------------------------------------------- agreement


def test_gradient_agreement():
    a = {"w": torch.tensor([1.0, 2.0]), "b": torch.tensor([3.0])}
    assert measure.gradient_agreement(a, a) == pytest.approx((1.0, 1.0))
    twice_back = {k: -2 * v for k, v in a.items()}
    assert measure.gradient_agreement(a, twice_back) == pytest.approx((-1.0, 2.0))
    cos, ratio = measure.gradient_agreement(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0]))
    assert cos == pytest.approx(1 / math.sqrt(2)) and ratio == pytest.approx(math.sqrt(2))
    assert math.isnan(measure.gradient_agreement(torch.zeros(2), torch.ones(2)).cosine)
    # a zero gradient: no cosine, and the ratio ‖other‖/‖reference‖ as it is (it said inf for a zero other)
    assert measure.gradient_agreement(torch.zeros(2), torch.ones(2)).norm_ratio == math.inf
    assert measure.gradient_agreement(torch.ones(2), torch.zeros(2)).norm_ratio == 0.0
    assert math.isnan(measure.gradient_agreement(torch.zeros(2), torch.zeros(2)).norm_ratio)
    with pytest.raises(ValueError, match="same keys"):
        measure.gradient_agreement(a, {"w": a["w"]})
    with pytest.raises(ValueError, match="same number"):
        measure.gradient_agreement(torch.ones(2), torch.ones(3))


def test_agreement_probe_probes_and_leaves_meta_train_unchanged():
    family = mb.SinusoidTasks()
    torch.manual_seed(0)
    model = mb.SinusoidMLP(hidden=(8, 8))
    twin = copy.deepcopy(model)
    probe = measure.AgreementProbe(model, other="fomaml", every=3)
    history = mb.meta_train(model, family, iterations=7, generator=torch.Generator().manual_seed(5),
                            meta_batch_size=4, progress=False, callbacks=[probe])
    assert probe.iterations == [0, 3, 6]
    assert all(-1 <= c <= 1 for c in probe.cosine) and all(r > 0 for r in probe.norm_ratio)
    assert len(history.meta_loss) == 7
    # the probes do not disturb training: the same run as mb.meta_train without them
    reference = mb.meta_train(twin, family, iterations=7, generator=torch.Generator().manual_seed(5),
                              meta_batch_size=4, progress=False)
    assert torch.equal(flat(mb.parameters_of(model)), flat(mb.parameters_of(twin)))
    assert history.meta_loss == reference.meta_loss


def test_agreement_probe_compares_on_the_trained_meta_batch_before_the_update():
    """Each probe equals gradient_agreement of the two methods at that iteration's θ and
    meta-batch, recomputed independently (a rerun of the same sampling and updates)."""
    family = mb.SinusoidTasks()
    torch.manual_seed(2)
    model = mb.SinusoidMLP(hidden=(8, 8))
    start = copy.deepcopy(model)
    probe = measure.AgreementProbe(model, other="fomaml", every=2, inner_lr=0.05, inner_steps=2)
    mb.meta_train(model, family, iterations=4, generator=torch.Generator().manual_seed(7), meta_batch_size=3,
                  inner_lr=0.05, inner_steps=2, progress=False, callbacks=[probe])
    generator, params = torch.Generator().manual_seed(7), mb.parameters_of(start)
    opt = torch.optim.Adam(params.values(), lr=1e-3)
    expected = []
    for it in range(4):
        tasks = family.sample(3, 10, 10, generator=generator)
        maml = mb.get_method("maml")(start, params, tasks, inner_lr=0.05, inner_steps=2)
        if it % 2 == 0:
            fomaml = mb.get_method("fomaml")(start, params, tasks, inner_lr=0.05, inner_steps=2)
            expected.append(measure.gradient_agreement(maml.grads, fomaml.grads).cosine)
        for name, p in params.items():
            p.grad = maml.grads[name]
        opt.step()
    assert probe.iterations == [0, 2] and probe.cosine == expected


def test_agreement_of_a_method_with_itself_is_perfect():
    torch.manual_seed(1)
    model = mb.SinusoidMLP(hidden=(8, 8))
    probe = measure.AgreementProbe(model, other="maml", every=1)
    mb.meta_train(model, mb.SinusoidTasks(), iterations=2, generator=torch.Generator().manual_seed(0),
                  meta_batch_size=3, progress=False, callbacks=[probe])
    assert probe.cosine == pytest.approx([1.0, 1.0]) and probe.norm_ratio == pytest.approx([1.0, 1.0])
    # a named reference is computed by the probe itself
    named = measure.AgreementProbe(model, other="maml", reference="maml", every=1)
    mb.meta_train(model, mb.SinusoidTasks(), iterations=1, generator=torch.Generator().manual_seed(0),
                  meta_batch_size=3, progress=False, callbacks=[named])
    assert named.cosine == pytest.approx([1.0]) and named.norm_ratio == pytest.approx([1.0])
    with pytest.raises(ValueError, match="method"):
        measure.AgreementProbe(mb.SinusoidMLP(hidden=(8, 8)), other="nope")
    with pytest.raises(ValueError, match="every"):
        measure.AgreementProbe(mb.SinusoidMLP(hidden=(8, 8)), every=0)


def test_meta_train_calls_callbacks_after_each_step_and_checks_them():
    torch.manual_seed(3)
    model = mb.SinusoidMLP(hidden=(8, 8))
    seen = []

    def record(iteration, params, step, tasks):
        seen.append((iteration, float(step.meta_loss), tasks.num_tasks, params is not None))

    history = mb.meta_train(model, mb.SinusoidTasks(), iterations=3, generator=torch.Generator().manual_seed(0),
                            meta_batch_size=2, progress=False, callbacks=(record,))
    assert [s[0] for s in seen] == [0, 1, 2] and [s[1] for s in seen] == history.meta_loss
    assert all(s[2] == 2 and s[3] for s in seen)
    with pytest.raises(TypeError, match=r"callbacks\[1\]"):
        mb.meta_train(model, mb.SinusoidTasks(), iterations=1, generator=torch.Generator(), progress=False,
                      callbacks=[record, "not a function"])
    with pytest.raises(TypeError, match="callbacks"):
        mb.meta_train(model, mb.SinusoidTasks(), iterations=1, generator=torch.Generator(), progress=False,
                      callbacks=record)

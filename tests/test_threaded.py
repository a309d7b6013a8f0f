"""The meta-batch split over threads (mamlbook.performance.threaded): the plain step's numbers, in float64."""
import threading

import pytest
import torch

import mamlbook as mb
from helpers import flat
from mamlbook.models import ConvNet
from mamlbook.performance.threaded import combine, threaded_meta_step
from mamlbook.tasks.classification import ClassificationTasks

OPTIONS = {
    "maml": {"inner_lr": 0.3, "inner_steps": 2},
    "fomaml": {"inner_lr": 0.3, "inner_steps": 2},
    "reptile": {"inner_lr": 0.3, "inner_steps": 2},
    "imaml": {"inner_lr": 0.1, "inner_steps": 3, "lam": 2.0, "cg_steps": 3, "cg_damping": 1.0},
    "anil": {"inner_lr": 0.3, "inner_steps": 2},
}


def conv_setup(tasks=5, ways=3, shots=1, seed=0):
    torch.manual_seed(seed)
    net = ConvNet(ways=ways, filters=4, blocks=2, image_size=8).double()
    g = torch.Generator().manual_seed(seed + 1)
    images = torch.rand(ways * 2, 2 * shots + 3, 8, 8, generator=g, dtype=torch.float64)
    batch = ClassificationTasks(images, ways).sample(tasks, shots, shots + 1, generator=g, dtype=torch.float64)
    return net, mb.detached(mb.parameters_of(net)), batch


@pytest.mark.parametrize("method", sorted(OPTIONS))
@pytest.mark.parametrize("workers", [2, 3])
def test_threaded_step_equals_the_plain_step(method, workers):
    net, theta, tasks = conv_setup()  # 5 tasks: shards of 3 + 2, or 2 + 2 + 1
    options = {**OPTIONS[method], "loss_fn": mb.cross_entropy_per_task}
    plain = mb.get_method(method)(net, theta, tasks, **options)
    threaded = threaded_meta_step(method, net, theta, tasks, workers=workers, **options)
    assert torch.allclose(flat(threaded.grads), flat(plain.grads), rtol=1e-11, atol=1e-14)
    assert torch.allclose(threaded.meta_loss, plain.meta_loss, rtol=1e-12)
    assert torch.allclose(threaded.support_loss, plain.support_loss, rtol=1e-12)  # per task, in task order
    assert torch.allclose(threaded.query_loss, plain.query_loss, rtol=1e-12)
    assert threaded.diagnostics.keys() == plain.diagnostics.keys()
    for key, value in plain.diagnostics.items():
        got = threaded.diagnostics[key]
        assert torch.allclose(torch.as_tensor(got).double(), torch.as_tensor(value).double(), rtol=1e-8,
                              atol=1e-12), key


def test_threaded_step_on_the_sinusoid_regressor():
    torch.manual_seed(0)
    model = mb.SinusoidMLP().double()
    theta = mb.detached(mb.parameters_of(model))
    tasks = mb.SinusoidTasks().sample(7, 5, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    plain = mb.get_method("maml")(model, theta, tasks, inner_lr=0.01, inner_steps=2)
    threaded = threaded_meta_step("maml", model, theta, tasks, workers=2, inner_lr=0.01, inner_steps=2)
    assert torch.allclose(flat(threaded.grads), flat(plain.grads), rtol=1e-11, atol=1e-14)


def test_combine_weights_shards_by_their_task_counts():
    # two shards of 3 and 1 tasks whose means are 1 and 5: the batch mean is (3·1 + 1·5) / 4 = 2
    steps = [mb.MetaStep(torch.tensor(1.0), {"w": torch.ones(2)}, torch.zeros(3), torch.ones(3),
                         {"per_step": torch.zeros(2, 3), "objective": torch.tensor(1.0)}),
             mb.MetaStep(torch.tensor(5.0), {"w": 5 * torch.ones(2)}, torch.ones(1), 5 * torch.ones(1),
                         {"per_step": torch.ones(2, 1), "objective": torch.tensor(5.0)})]
    step = combine(steps, [3, 1])
    assert float(step.meta_loss) == 2.0 and torch.equal(step.grads["w"], 2 * torch.ones(2))
    assert step.query_loss.tolist() == [1, 1, 1, 5] and step.support_loss.tolist() == [0, 0, 0, 1]
    assert step.diagnostics["per_step"].shape == (2, 4) and float(step.diagnostics["objective"]) == 2.0


def test_workers_use_one_intra_op_thread_and_leave_the_callers_alone(monkeypatch):
    before = torch.get_num_threads()
    seen = []

    def probe(model, params, tasks, **options):
        seen.append((threading.current_thread().name, torch.get_num_threads()))
        return mb.get_method("fomaml")(model, params, tasks, **options)

    net, theta, tasks = conv_setup(tasks=4)
    from mamlbook.performance import threaded

    monkeypatch.setattr(threaded, "get_method", lambda method: probe)
    threaded_meta_step("fomaml", net, theta, tasks, workers=2, inner_lr=0.3, loss_fn=mb.cross_entropy_per_task)
    assert len(seen) == 2 and all(name.startswith("mamlbook-task") and n == 1 for name, n in seen)
    assert torch.get_num_threads() == before


def test_an_error_in_a_shard_is_raised_in_the_caller(monkeypatch):
    from mamlbook.performance import threaded

    def step(model, params, tasks, **options):
        if tasks.num_tasks == 1:  # the second shard of 3 tasks split in two
            raise mb.DivergenceError("meta-loss is nan")
        return mb.get_method("fomaml")(model, params, tasks, **options)

    monkeypatch.setattr(threaded, "get_method", lambda method: step)
    net, theta, tasks = conv_setup(tasks=3)
    with pytest.raises(mb.DivergenceError, match="meta-loss is nan"):
        threaded_meta_step("fomaml", net, theta, tasks, workers=2, inner_lr=0.3, loss_fn=mb.cross_entropy_per_task)


def test_bad_arguments_are_named():
    net, theta, tasks = conv_setup(tasks=3)
    with pytest.raises(ValueError, match=r"workers must be in \[1, 3\], got 4"):
        threaded_meta_step("maml", net, theta, tasks, workers=4, inner_lr=0.3, loss_fn=mb.cross_entropy_per_task)
    with pytest.raises(ValueError, match="method must be one of"):
        threaded_meta_step("nope", net, theta, tasks, workers=2, inner_lr=0.3)
    family = ClassificationTasks(torch.rand(6, 5, 8, 8), 3)
    with pytest.raises(ValueError, match=r"task_threads must be in \[1, 2\], got 3"):
        mb.meta_train(net, family, iterations=1, meta_batch_size=2, task_threads=3, generator=torch.Generator())
    with pytest.raises(ValueError, match="task_threads=2 cannot be combined with compile=True or a step_fn"):
        mb.meta_train(net, family, iterations=1, meta_batch_size=2, task_threads=2, compile=True,
                      generator=torch.Generator())


class Float64Tasks(ClassificationTasks):
    def sample(self, *args, **kwargs):
        return super().sample(*args, **kwargs, dtype=torch.float64)


def test_meta_train_with_task_threads_follows_the_plain_run():
    family = Float64Tasks(torch.rand(6, 5, 8, 8, generator=torch.Generator().manual_seed(3)), 3)
    results = []
    for task_threads in (1, 2):
        net, start, _ = conv_setup()
        history = mb.meta_train(net, family, iterations=5, method="maml", meta_batch_size=4, support_shots=1,
                                query_shots=1, inner_lr=0.3, method_options={"loss_fn": mb.cross_entropy_per_task},
                                generator=torch.Generator().manual_seed(4), progress=False,
                                task_threads=task_threads)
        results.append((history.meta_loss, flat(mb.parameters_of(net)).detach()))
    (loss1, theta1), (loss2, theta2) = results
    assert loss1 == pytest.approx(loss2, rel=1e-10)
    assert torch.allclose(theta1, theta2, rtol=1e-8, atol=1e-11)
    assert (theta1 - flat(start)).abs().max() > 1e-3  # it did train


def test_regenerate_refuses_threads_where_they_do_not_apply():
    with pytest.raises(ValueError, match=r"task_threads must be 1 for recipe 'sinusoid_maml'"):
        mb.recipes.regenerate("sinusoid_maml", task_threads=2, save=False, iterations=1)
    with pytest.raises(ValueError, match=r"task_threads must be in \[1, 4\], got 5"):
        mb.recipes.regenerate("omniglot_maml_1shot", task_threads=5, save=False, iterations=1)


def test_a_threaded_meta_step_under_no_grad_is_refused_as_the_plain_one_is():
    """Grad mode is per thread: the workers ran a meta-step the calling thread's no_grad refuses."""
    net, theta, tasks = conv_setup(tasks=3)
    for workers in (1, 2):
        with torch.no_grad(), pytest.raises(RuntimeError, match="no_grad"):
            threaded_meta_step("maml", net, theta, tasks, workers=workers, inner_lr=0.3,
                               loss_fn=mb.cross_entropy_per_task)

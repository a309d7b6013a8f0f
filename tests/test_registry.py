"""mamlbook.algorithms.base: the registry of methods, and a method of one's own in it.

A method registered with `mb.register` is a method like the book's: `get_method` finds
it, `meta_train` trains with it (its options through ``method_options``), and what it
returns is checked against θ with errors that name the entry. What the registry refuses
would otherwise change another method or accept options silently.
"""
import pytest
import torch

import mamlbook as mb
from mamlbook.algorithms import base


def shrink(model, params, tasks, *, inner_lr, inner_steps, loss_fn=mb.mse_per_task, on_divergence="raise",
           factor=1.0, drop=None):
    """A toy method: the direction ``factor · θ`` (weight decay), or one with ``drop`` missing/None."""
    grads = {k: factor * v.detach() for k, v in params.items()}
    if drop == "missing":
        grads.pop(next(iter(grads)))
    elif drop == "none":
        grads[next(iter(grads))] = None
    zeros = torch.zeros(tasks.num_tasks)
    return mb.MetaStep(torch.tensor(1.0), grads, zeros, zeros + 1)


@pytest.fixture
def registered():
    names = []

    def add(name, fn, **fixed):
        mb.register(name, **fixed)(fn)
        names.append(name)

    yield add
    for name in names:  # the registry is the process's: leave it as the package made it
        base._REGISTRY.pop(name, None)


def test_a_registered_method_trains_with_its_options(registered):
    registered("shrink", shrink)
    assert "shrink" in mb.method_names() and mb.get_method("shrink") is shrink
    assert base.method_options("shrink") == ["loss_fn", "on_divergence", "factor", "drop"]
    model = mb.SinusoidMLP(hidden=(4,))
    before = mb.detached(mb.parameters_of(model))
    mb.meta_train(model, mb.SinusoidTasks(), iterations=2, method="shrink", optimizer="sgd", outer_lr=0.1,
                  method_options={"factor": 2.0}, generator=torch.Generator().manual_seed(0), progress=False)
    for name, value in mb.parameters_of(model).items():  # θ ← θ − 0.1 · 2θ, twice
        torch.testing.assert_close(value.detach(), 0.8 ** 2 * before[name])
    # the threaded step (meta_train's speed switch) takes it too: each shard's step, averaged
    threaded = mb.SinusoidMLP(hidden=(4,))
    threaded.load_state_dict({k: v.clone() for k, v in before.items()})
    mb.meta_train(threaded, mb.SinusoidTasks(), iterations=2, method="shrink", optimizer="sgd", outer_lr=0.1,
                  method_options={"factor": 2.0}, task_threads=2, meta_batch_size=4,
                  generator=torch.Generator().manual_seed(0), progress=False)
    for name, value in mb.parameters_of(threaded).items():
        torch.testing.assert_close(value.detach(), 0.8 ** 2 * before[name])


@pytest.mark.parametrize("drop, message", [
    ("missing", r"iteration 0 of shrink: MetaStep.grads is missing the model's parameters \['0.weight'\]"),
    ("none", r"iteration 0 of shrink: MetaStep.grads has None for \['0.weight'\]: not in the meta-loss's graph"),
])
def test_meta_train_names_a_gradient_that_does_not_match_theta(registered, drop, message):
    registered("shrink", shrink)
    with pytest.raises(ValueError, match=message):
        mb.meta_train(mb.SinusoidMLP(hidden=(4,)), mb.SinusoidTasks(), iterations=1, method="shrink",
                      method_options={"drop": drop}, generator=torch.Generator().manual_seed(0), progress=False)


def test_finite_step_names_a_none_gradient():
    # a method's own check of its step (every method of the package calls it)
    with pytest.raises(ValueError, match=r"maml: the gradient of \['b'\] is None: not in the meta-loss's graph"):
        mb.checks.finite_step("maml", torch.tensor(1.0), {"a": torch.zeros(2), "b": None}, "raise", "")


def test_adapted_logits_refuses_a_method_whose_learner_it_does_not_know(registered):
    registered("shrink", shrink)
    images = torch.rand(6, 4, 28, 28, generator=torch.Generator().manual_seed(0))
    tasks = mb.ClassificationTasks(images, ways=3).sample(2, 1, 1, generator=torch.Generator().manual_seed(1))
    net = mb.ConvNet(ways=3, filters=4)
    with pytest.raises(ValueError, match=r"method 'shrink' has no test-time learner here \(known: \["):
        mb.protocol.adapted_accuracy(net, dict(net.named_parameters()), tasks, method="shrink", inner_lr=0.1,
                                     steps=1)


def test_re_registering_the_same_function_replaces_it(registered):
    import types

    registered("shrink", shrink)
    # what reloading a module, or running a notebook cell again, makes: a new function
    # object of the same module and name
    again = types.FunctionType(shrink.__code__, shrink.__globals__, "shrink", shrink.__defaults__)
    again.__kwdefaults__, again.__qualname__ = shrink.__kwdefaults__, shrink.__qualname__
    registered("shrink", again)
    assert mb.get_method("shrink") is again and again is not shrink


def test_a_variant_with_fixed_options(registered):
    registered("double_shrink", shrink, factor=2.0)
    assert base.method_options("double_shrink") == ["loss_fn", "on_divergence", "drop"]
    with pytest.raises(TypeError, match="method 'double_shrink' fixes factor=2.0; do not pass factor"):
        mb.get_method("double_shrink")(None, {}, None, inner_lr=0.1, inner_steps=1, factor=3.0)


def test_variants_of_an_option_without_default_and_partials_run_again(registered):
    import functools

    def moded(model, params, tasks, *, inner_lr, inner_steps, loss_fn=mb.mse_per_task, on_divergence="raise",
              mode):
        return mode

    registered("mode_one", moded, mode=1)  # the fixed option supplies what has no default
    registered("mode_two", moded, mode=2)
    assert mb.get_method("mode_two")(None, {}, None, inner_lr=0.1, inner_steps=1) == 2
    registered("mode_two", moded, mode=2)  # the same variant again (a module reloaded)
    with pytest.raises(ValueError, match=r"name 'mode_two' is taken by .*moded with fixed options \[\('mode', 2\)\]"):
        mb.register("mode_two", mode=3)(moded)
    # a partial made again by a cell run again is the same method; other arguments are not
    registered("half", functools.partial(shrink, factor=0.5))
    registered("half", functools.partial(shrink, factor=0.5))
    with pytest.raises(ValueError, match="name 'half' is taken by"):
        mb.register("half")(functools.partial(shrink, factor=0.25))


def test_meta_train_names_per_task_gradients(registered):
    def per_task(model, params, tasks, *, inner_lr, inner_steps, loss_fn=mb.mse_per_task, on_divergence="raise"):
        step = shrink(model, params, tasks, inner_lr=inner_lr, inner_steps=inner_steps)
        step.grads = {k: g.expand(tasks.num_tasks, *g.shape) for k, g in step.grads.items()}
        return step

    registered("per_task", per_task)
    with pytest.raises(ValueError, match=r"MetaStep.grads\['0.weight'\] has shape \(25, 4, 1\), one gradient per "
                                         r"task; a method returns their mean over the meta-batch"):
        mb.meta_train(mb.SinusoidMLP(hidden=(4,)), mb.SinusoidTasks(), iterations=1, method="per_task",
                      generator=torch.Generator().manual_seed(0), progress=False)


def with_kwargs(model, params, tasks, *, inner_lr, inner_steps, **options):
    raise AssertionError("never called")


def without_divergence_option(model, params, tasks, *, inner_lr, inner_steps, loss_fn=mb.mse_per_task):
    raise AssertionError("never called")


def option_without_default(model, params, tasks, *, inner_lr, inner_steps, loss_fn=mb.mse_per_task,
                           on_divergence="raise", lam):
    raise AssertionError("never called")


def positional_rates(model, params, tasks, inner_lr, inner_steps):
    raise AssertionError("never called")


@pytest.mark.parametrize("name, fn, fixed, error, message", [
    (42, shrink, {}, TypeError, r"name must be a string usable as an identifier \(e.g. 'cavia'\), got 42"),
    ("my method", shrink, {}, TypeError, "name must be a string usable as an identifier"),
    ("maml", shrink, {}, ValueError, r"name 'maml' is taken by mamlbook.algorithms.maml.maml; register shrink under "
                                     "another name"),
    ("kw", with_kwargs, {}, TypeError, r"with_kwargs\(\*\*options\) would take options it never reads"),
    ("pos", positional_rates, {}, TypeError, r"must be \(model, params, tasks, \*, inner_lr, inner_steps, loss_fn"),
    ("fixed", shrink, {"factr": 2.0}, TypeError, r"fixed options \['factr'\] are not keyword-only parameters"),
    ("nodiv", without_divergence_option, {}, TypeError, r"must be \(model, params, tasks, \*, inner_lr, inner_steps, "
                                                      r"loss_fn=..., on_divergence='raise'"),
    ("nodefault", option_without_default, {}, TypeError, r"options \['lam'\] have no default"),
    # the same function with other fixed options is another method: fomaml is not MAML
    ("fomaml", mb.algorithms.maml.maml, {"first_order": False}, ValueError,
     r"name 'fomaml' is taken by mamlbook.algorithms.maml.maml with fixed options \[\('first_order', True\)\]"),
    ("fomaml", mb.algorithms.maml.maml, {}, ValueError, "name 'fomaml' is taken"),
    ("maml", mb.algorithms.maml.maml, {"first_order": True}, ValueError, "name 'maml' is taken"),
])
def test_register_refuses(name, fn, fixed, error, message):
    before = dict(base._REGISTRY)
    with pytest.raises(error, match=message):
        mb.register(name, **fixed)(fn)
    assert base._REGISTRY == before  # nothing replaced, nothing added
    assert mb.method_names() == sorted(before)


def test_every_method_of_the_package_has_a_test_time_learner():
    assert set(mb.protocol.TEST_TIME_LEARNER) == set(mb.method_names())


def test_a_name_taken_by_code_without_a_module_is_named_plainly(registered):
    # what the README's example makes: a function defined by exec, whose __module__ is None
    namespace = {"mb": mb}
    exec("def own(model, params, tasks, *, inner_lr, inner_steps, loss_fn=None, on_divergence='raise'):\n"
         "    pass\n", namespace)
    assert namespace["own"].__module__ is None
    registered("own", namespace["own"])
    with pytest.raises(ValueError, match=r"name 'own' is taken by own; register shrink under another name"):
        mb.register("own")(shrink)

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


@pytest.mark.parametrize("drop, message", [
    ("missing", r"iteration 0 of shrink: MetaStep.grads must have θ's keys; missing \['0.weight'\]"),
    ("none", r"MetaStep.grads\['0.weight'\] must be a tensor of θ's shape \(4, 1\), got None \(θ's entry is not in "
             r"the meta-loss's graph"),
])
def test_meta_train_names_a_gradient_that_does_not_match_theta(registered, drop, message):
    registered("shrink", shrink)
    with pytest.raises(ValueError, match=message):
        mb.meta_train(mb.SinusoidMLP(hidden=(4,)), mb.SinusoidTasks(), iterations=1, method="shrink",
                      method_options={"drop": drop}, generator=torch.Generator().manual_seed(0), progress=False)


def test_adapted_logits_refuses_a_method_whose_learner_it_does_not_know(registered):
    registered("shrink", shrink)
    images = torch.rand(6, 4, 28, 28, generator=torch.Generator().manual_seed(0))
    tasks = mb.ClassificationTasks(images, ways=3).sample(2, 1, 1, generator=torch.Generator().manual_seed(1))
    net = mb.ConvNet(ways=3, filters=4)
    with pytest.raises(ValueError, match=r"method 'shrink' has no test-time learner here \(known: \["):
        mb.protocol.adapted_accuracy(net, dict(net.named_parameters()), tasks, method="shrink", inner_lr=0.1,
                                     steps=1)


def test_re_registering_the_same_function_replaces_it(registered):
    registered("shrink", shrink)
    registered("shrink", shrink)  # what reloading the module that registers it does
    assert mb.get_method("shrink") is shrink


def test_a_variant_with_fixed_options(registered):
    registered("double_shrink", shrink, factor=2.0)
    assert base.method_options("double_shrink") == ["loss_fn", "on_divergence", "drop"]
    with pytest.raises(TypeError, match="method 'double_shrink' fixes factor=2.0; do not pass factor"):
        mb.get_method("double_shrink")(None, {}, None, inner_lr=0.1, inner_steps=1, factor=3.0)


def with_kwargs(model, params, tasks, *, inner_lr, inner_steps, **options):
    raise AssertionError("never called")


def positional_rates(model, params, tasks, inner_lr, inner_steps):
    raise AssertionError("never called")


@pytest.mark.parametrize("name, fn, fixed, error, message", [
    (42, shrink, {}, TypeError, r"name must be a string usable as an identifier \(e.g. 'cavia'\), got 42"),
    ("my method", shrink, {}, TypeError, "name must be a string usable as an identifier"),
    ("maml", shrink, {}, ValueError, r"name 'maml' is taken by mamlbook.algorithms.maml.maml; register shrink under "
                                     "another name"),
    ("kw", with_kwargs, {}, TypeError, r"with_kwargs\(\*\*options\) would take options it never reads"),
    ("pos", positional_rates, {}, TypeError, r"must be \(model, params, tasks, \*, inner_lr, inner_steps, ...\)"),
    ("fixed", shrink, {"factr": 2.0}, TypeError, r"fixed options \['factr'\] are not keyword-only parameters"),
])
def test_register_refuses(name, fn, fixed, error, message):
    before = dict(base._REGISTRY)
    with pytest.raises(error, match=message):
        mb.register(name, **fixed)(fn)
    assert base._REGISTRY == before  # nothing replaced, nothing added
    assert mb.method_names() == sorted(before)

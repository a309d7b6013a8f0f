"""The conv net's switches: every method gives the per-task loop's numbers (float64).

`ConvNet.forward_with` runs a meta-batch either task by task (``"loop"``, the CPU
default) or with ``torch.func.vmap`` (``"vmap"``, the default elsewhere), and on the
per-task path with channels-last activations or not (``channels_last``). Every choice
must give what a plain Python loop over tasks gives, for all four methods.
"""
import inspect

import pytest
import torch
from torch.func import functional_call

import mamlbook as mb
from mamlbook.models import ConvNet
from mamlbook.performance.threaded import threaded_meta_step
from mamlbook.tasks.classification import ClassificationTasks
from helpers import cuda, flat

CE = torch.nn.functional.cross_entropy


def setup(mode, seed=0, tasks=3, ways=3, shots=2):
    torch.manual_seed(seed)
    net = ConvNet(ways=ways, filters=4, blocks=2, image_size=8, meta_batch=mode).double()
    g = torch.Generator().manual_seed(seed + 1)
    images = torch.rand(ways * 2, 2 * shots + 3, 8, 8, generator=g, dtype=torch.float64)
    batch = ClassificationTasks(images, ways).sample(tasks, shots, shots + 1, generator=g, dtype=torch.float64)
    return net, mb.detached(mb.parameters_of(net)), batch


def loop_adapt(net, theta, x, y, lr, steps, create_graph):
    phi = dict(theta)
    for _ in range(steps):
        loss = CE(functional_call(net, phi, (x,)), y)
        grads = torch.autograd.grad(loss, list(phi.values()), create_graph=create_graph)
        phi = {k: v - lr * g for (k, v), g in zip(phi.items(), grads)}
        if not create_graph:
            phi = {k: v.detach().requires_grad_() for k, v in phi.items()}
    return phi


def loop_reference(method, net, theta, tasks, lr, steps):
    """The meta-gradient (Reptile: direction) computed one task at a time, no batching at all."""
    theta = {k: v.detach().requires_grad_() for k, v in theta.items()}
    per_task = []
    for t in range(tasks.num_tasks):
        xs, ys, xq, yq = tasks.x_support[t], tasks.y_support[t], tasks.x_query[t], tasks.y_query[t]
        if method == "maml":
            phi = loop_adapt(net, theta, xs, ys, lr, steps, True)
            per_task.append(torch.autograd.grad(CE(functional_call(net, phi, (xq,)), yq), list(theta.values())))
        elif method == "fomaml":
            phi = loop_adapt(net, theta, xs, ys, lr, steps, False)
            per_task.append(torch.autograd.grad(CE(functional_call(net, phi, (xq,)), yq), list(phi.values())))
        else:  # reptile
            phi = loop_adapt(net, theta, xs, ys, lr, steps, False)
            per_task.append([theta[k].detach() - phi[k].detach() for k in theta])
    return torch.stack([torch.cat([g.reshape(-1) for g in grads]) for grads in per_task]).mean(0)


@pytest.mark.parametrize("mode", ["loop", "vmap"])
@pytest.mark.parametrize("method", ["maml", "fomaml", "reptile"])
def test_meta_batch_modes_match_the_plain_loop(mode, method):
    net, theta, tasks = setup(mode)
    steps = 2
    step = mb.get_method(method)(net, theta, tasks, inner_lr=0.3, inner_steps=steps, loss_fn=mb.cross_entropy_per_task)
    reference = loop_reference(method, net, theta, tasks, 0.3, steps)
    assert torch.allclose(flat(step.grads), reference, rtol=1e-10, atol=1e-13), (flat(step.grads) - reference).abs().max()


def test_imaml_is_the_same_in_both_modes():
    results = []
    for mode in ("loop", "vmap"):
        net, theta, tasks = setup(mode)
        results.append(mb.get_method("imaml")(net, theta, tasks, inner_lr=0.1, inner_steps=5, lam=2.0, cg_steps=3,
                                              loss_fn=mb.cross_entropy_per_task))
    loop, batched = results
    assert torch.allclose(flat(loop.grads), flat(batched.grads), rtol=1e-10, atol=1e-13)
    for key in loop.diagnostics:
        assert torch.allclose(loop.diagnostics[key].double(), batched.diagnostics[key].double(), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("method", ["maml", "fomaml", "reptile", "imaml"])
def test_channels_last_activations_give_the_plain_loops_numbers(method, monkeypatch):
    """``ConvNet(channels_last=True)`` changes the activations' memory layout only."""
    net, theta, tasks = setup("loop")
    # the query sets (9 images) channels-last, the support sets (6) in the default layout
    net_cl = ConvNet(ways=3, filters=4, blocks=2, image_size=8, meta_batch="loop", channels_last=True,
                     channels_last_min_examples=8).double()
    net_cl.load_state_dict(net.state_dict())
    recorded = []  # (examples, channels-last?) of every convolution's output and batch norm's input
    batch_norm, conv2d = torch.nn.functional.batch_norm, torch.nn.functional.conv2d

    def recording_batch_norm(x, *args, **kwargs):
        recorded.append((len(x), x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()))
        return batch_norm(x, *args, **kwargs)

    def recording_conv2d(x, *args, **kwargs):
        out = conv2d(x, *args, **kwargs)
        # channels innermost in memory: the first convolution's output too, as the
        # convolution made it (its one-channel input is NCHW unless its strides say otherwise)
        recorded.append((len(x), out.stride(1) == 1))
        return out

    def layouts_as_switched():
        """Whether query sets ran channels-last and support sets not (both were seen)."""
        done = set(recorded)
        recorded.clear()
        return done == {(len(tasks.x_query[0]), True), (len(tasks.x_support[0]), False)}

    monkeypatch.setattr(torch.nn.functional, "batch_norm", recording_batch_norm)
    monkeypatch.setattr(torch.nn.functional, "conv2d", recording_conv2d)
    options = {"inner_lr": 0.3, "inner_steps": 2, "loss_fn": mb.cross_entropy_per_task}
    if method == "imaml":
        options.update(inner_lr=0.1, inner_steps=5, lam=2.0, cg_steps=3)
        reference = flat(mb.get_method(method)(net, theta, tasks, **options).grads)
    else:
        reference = loop_reference(method, net, theta, tasks, 0.3, 2)
    assert recorded and not any(cl for _, cl in recorded)  # the plain network: NCHW throughout
    recorded.clear()
    step = mb.get_method(method)(net_cl, theta, tasks, **options)
    assert layouts_as_switched()
    assert torch.allclose(flat(step.grads), reference, rtol=1e-10, atol=1e-13), \
        (flat(step.grads) - reference).abs().max()
    if method == "maml":  # the meta-batch over threads runs the same per-task path
        threaded = threaded_meta_step(method, net_cl, theta, tasks, workers=2, **options)
        assert layouts_as_switched()
        assert torch.allclose(flat(threaded.grads), reference, rtol=1e-10, atol=1e-13)
    params = mb.batch_parameters(theta, tasks.num_tasks)  # the body alone (ANIL, ProtoNets)
    features = net_cl.features_with(params, tasks.x_query)
    assert set(recorded) == {(len(tasks.x_query[0]), True)}
    assert torch.allclose(features, net.features_with(params, tasks.x_query), rtol=1e-12, atol=1e-13)
    monkeypatch.undo()  # (the recorder's layout query is not allowed under vmap)
    # forward, so functional_call and the vmap mode, keep the default layout, which every
    # torch.func transform supports, and the same numbers
    x = tasks.x_query[0]
    assert torch.allclose(net_cl(x), net(x), rtol=1e-12, atol=1e-13)
    single = {k: v.detach() for k, v in theta.items()}
    hessians = [mb.hessian.full_hessian(lambda p, model=model: CE(functional_call(model, p, (x,)), tasks.y_query[0]),
                                        single) for model in (net_cl, net)]
    assert torch.equal(*hessians)
    net_cl.meta_batch = "vmap"
    assert torch.allclose(flat(mb.get_method(method)(net_cl, theta, tasks, **options).grads), reference,
                          rtol=1e-10, atol=1e-13)


def test_channels_last_by_default_lays_out_the_papers_query_sets_not_their_support_sets(monkeypatch):
    """With the default threshold (32 images), a 5-way task with 15 query images per class
    runs its query set channels-last and its 1-shot support set in the default layout."""
    net = ConvNet(ways=5, filters=4, blocks=2, image_size=8, channels_last=True)
    assert net.channels_last_min_examples == 32
    params = mb.batch_parameters(mb.parameters_of(net), 1)
    conv2d, outputs = torch.nn.functional.conv2d, []

    def recording_conv2d(*args, **kwargs):
        outputs.append(conv2d(*args, **kwargs))
        return outputs[-1]

    monkeypatch.setattr(torch.nn.functional, "conv2d", recording_conv2d)
    for examples, channels_last in ((5, False), (31, False), (32, True), (75, True)):
        outputs.clear()
        net.forward_with(params, torch.rand(1, examples, 1, 8, 8))
        assert len(outputs) == 2 and all((out.stride(1) == 1) is channels_last for out in outputs), examples


def test_channels_last_with_colour_images_gives_the_plain_networks_numbers(monkeypatch):
    """Images of several channels take the other branch of the layout change (a copy,
    not a view): the same outputs and gradients in float64, channels-last inside."""
    torch.manual_seed(0)
    plain = ConvNet(ways=3, filters=4, blocks=2, channels=3, image_size=8).double()
    switched = ConvNet(**{**plain.settings, "channels_last": True, "channels_last_min_examples": 4}).double()
    switched.load_state_dict(plain.state_dict())
    params = mb.batch_parameters(mb.detached(mb.parameters_of(plain), requires_grad=True), 2)
    x = torch.rand(2, 6, 3, 8, 8, dtype=torch.float64)
    conv2d, layouts = torch.nn.functional.conv2d, []

    def recording_conv2d(*args, **kwargs):
        out = conv2d(*args, **kwargs)
        layouts.append(out.stride(1) == 1)
        return out

    monkeypatch.setattr(torch.nn.functional, "conv2d", recording_conv2d)
    outputs = []
    for net in (plain, switched):
        layouts.clear()
        outputs.append(net.forward_with(params, x))
        assert layouts == [net is switched] * 4  # two tasks, two blocks
    grads = [torch.autograd.grad(out.square().sum(), list(params.values())) for out in outputs]
    assert torch.allclose(outputs[1], outputs[0], rtol=1e-12, atol=1e-13)
    for got, expected in zip(*grads[::-1]):
        assert torch.allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_auto_picks_the_loop_on_a_cpu_and_the_switch_is_validated():
    net = ConvNet(ways=2, filters=2, blocks=1, image_size=4)
    assert net.meta_batch == "auto" and net.meta_batch_mode(torch.device("cpu")) == "loop"
    assert net.meta_batch_mode(torch.device("cuda")) == "vmap"
    assert ConvNet(meta_batch="vmap").meta_batch_mode(torch.device("cpu")) == "vmap"
    with pytest.raises(ValueError, match="meta_batch must be one of"):
        ConvNet(meta_batch="grouped")
    with pytest.raises(TypeError, match="channels_last"):
        ConvNet(channels_last="yes")
    with pytest.raises(TypeError, match="channels_last"):  # checked when set later, too
        net.channels_last = "yes"
    with pytest.raises(ValueError, match="meta_batch must be one of"):
        net.meta_batch = "grouped"
    for bad in (0, 2.5):
        with pytest.raises((ValueError, TypeError), match="channels_last_min_examples"):
            ConvNet(channels_last_min_examples=bad)
        with pytest.raises((ValueError, TypeError), match="channels_last_min_examples"):
            net.channels_last_min_examples = bad
    assert (net.meta_batch, net.channels_last, net.channels_last_min_examples) == ("auto", False, 32)
    # settings rebuild a network like this one, switches included
    assert set(net.settings) == set(inspect.signature(ConvNet).parameters)  # every argument
    like = ConvNet(ways=3, filters=2, blocks=1, channels=3, image_size=4, meta_batch="vmap", channels_last=True,
                   channels_last_min_examples=5)
    copy = ConvNet(**like.settings)
    assert copy.settings == like.settings and copy.architecture == like.architecture
    assert like.architecture == "ConvNet(ways=3, filters=2, blocks=1, channels=3, image_size=4)"
    # names missing from params fall back to the module's own tensors
    params = mb.batch_parameters({"head.bias": torch.zeros(2)}, 3)
    out = mb.task_forward(net, params, torch.rand(3, 4, 1, 4, 4))
    assert out.shape == (3, 4, 2)


@cuda
@pytest.mark.cuda
def test_on_cuda_the_batched_step_beats_the_loop():
    """5-way 1-shot, 15 query per class, 64 filters, meta-batch 32: vmap must be faster than the loop."""
    import time

    dev = torch.device("cuda")
    images = torch.rand(40, 20, 28, 28)
    tasks = ClassificationTasks(images, 5).sample(32, 1, 15, generator=torch.Generator().manual_seed(0)).to(dev)
    times = {}
    for mode in ("loop", "vmap"):
        net = ConvNet(5, 64, meta_batch=mode).to(dev)
        theta = mb.detached(mb.parameters_of(net))
        run = lambda: mb.get_method("maml")(net, theta, tasks, inner_lr=0.4, inner_steps=1,  # noqa: E731
                                            loss_fn=mb.cross_entropy_per_task)
        for _ in range(3):
            run()
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(10):
            run()
        torch.cuda.synchronize()
        times[mode] = time.perf_counter() - start
    assert times["vmap"] < times["loop"], times


def graph_nodes(tensor) -> list[str]:
    """The names of every autograd node behind ``tensor``."""
    seen, stack, names = set(), [tensor.grad_fn], []
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.append(type(node).__name__)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return names


@pytest.mark.parametrize("run", ["forward_with", "features_with"])
def test_the_loop_splits_task_batched_parameters_once_per_tensor(run):
    """The per-task path takes each task's weights with one ``unbind`` per parameter:
    its backward stacks the T tasks' gradients into one (T, ...) tensor, where taking
    ``v[i]`` task by task would zero-fill a (T, ...) tensor per task and parameter and
    sum them (T² work; same numbers)."""
    net, theta, batch = setup("loop", tasks=4)
    theta = {k: v.requires_grad_() for k, v in theta.items()}
    params = mb.batch_parameters(theta, batch.num_tasks)
    names = graph_nodes(getattr(net, run)(params, batch.x_query))
    used = len(params) if run == "forward_with" else len(params) - len(net.head_names)
    assert names.count("UnbindBackward0") == used
    assert "SelectBackward0" not in names


def test_the_split_gives_indexing_s_gradients_bit_for_bit_and_checks_the_task_count():
    from mamlbook.models import convnet

    net, theta, batch = setup("loop", tasks=3)
    grads = []
    for split in (convnet._unbind_tasks, lambda params: [{k: v[i] for k, v in params.items()} for i in range(batch.num_tasks)]):
        params = mb.batch_parameters({k: v.clone().requires_grad_() for k, v in theta.items()}, batch.num_tasks)
        original, convnet._unbind_tasks = convnet._unbind_tasks, split
        try:
            out = net.forward_with(params, batch.x_query)
        finally:
            convnet._unbind_tasks = original
        grads.append(torch.autograd.grad(out.square().sum(), list(params.values())))
    assert all(torch.equal(a, b) for a, b in zip(*grads))
    params = mb.batch_parameters(theta, batch.num_tasks + 1)  # one task more than the images
    for mode in ("loop", "vmap"):
        net.meta_batch = mode
        for run in (net.forward_with, net.features_with):
            with pytest.raises(ValueError, match="first dimension"):
                run(params, batch.x_query)

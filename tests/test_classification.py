"""N-way K-shot sampling, the functional conv net with per-task batch norm, and MAML through it."""
import dataclasses
import json

import pytest
import torch
from torch.func import functional_call

import mamlbook as mb
from mamlbook.models import ConvNet, accuracy_per_task
from mamlbook.tasks.classification import ClassificationTasks, shift_images
from helpers import central_difference, flat


@pytest.fixture
def images():
    """10 classes × 6 drawings of asymmetric 5×5 images: every rotation is distinguishable."""
    return (torch.rand(10, 6, 5, 5, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)


def test_shapes_labels_and_disjoint_drawings(images):
    family = ClassificationTasks(images, ways=4)
    batch = family.sample(7, 2, 3, generator=torch.Generator().manual_seed(1))
    assert batch.x_support.shape == (7, 8, 1, 5, 5) and batch.x_query.shape == (7, 12, 1, 5, 5)
    assert batch.y_support.dtype == torch.int64
    assert torch.equal(batch.y_support[0], torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
    assert torch.equal(batch.y_query[3], torch.arange(4).repeat_interleave(3))
    assert batch.x_support.dtype == torch.float32 and 0 <= batch.x_support.min() and batch.x_support.max() <= 1
    classes, drawings = batch.info["classes"], batch.info["drawings"]
    for t in range(7):
        assert len(set(classes[t].tolist())) == 4, "distinct classes within a task"
        for n in range(4):
            assert len(set(drawings[t, n].tolist())) == 5, "support and query drawings never repeat"
            c = int(classes[t, n])
            expect = images[c, drawings[t, n]].float() / 255
            got = torch.cat([batch.x_support[t, 2 * n:2 * n + 2, 0], batch.x_query[t, 3 * n:3 * n + 3, 0]])
            assert torch.equal(got, expect)
    assert (batch.info["rotations"] == 0).all()


def test_rotations_are_new_classes(images):
    family = ClassificationTasks(images, ways=5, rotations=True)
    assert family.num_classes == 40
    batch = family.sample(50, 1, 1, generator=torch.Generator().manual_seed(2))
    turns, classes, drawings = batch.info["rotations"], batch.info["classes"], batch.info["drawings"]
    assert set(turns.flatten().tolist()) == {0, 1, 2, 3}
    for t in range(50):
        pairs = list(zip(classes[t].tolist(), turns[t].tolist()))
        assert len(set(pairs)) == 5, "a (class, rotation) pair appears once per task"
        for n, (c, k) in enumerate(pairs):
            expect = torch.rot90(images[c, drawings[t, n, 0]].float() / 255, k, dims=(0, 1))
            assert torch.equal(batch.x_support[t, n, 0], expect)
            # the query drawing is rotated the same way (same class)
            assert torch.equal(batch.x_query[t, n, 0], torch.rot90(images[c, drawings[t, n, 1]].float() / 255, k, dims=(0, 1)))


def test_same_generator_same_tasks(images):
    family = ClassificationTasks(images, ways=3, rotations=True)
    a = family.sample(4, 1, 2, generator=torch.Generator().manual_seed(5))
    b = family.sample(4, 1, 2, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a.x_support, b.x_support) and torch.equal(a.x_query, b.x_query)


def test_shift_images_moves_each_image_by_its_own_offset_and_fills_with_background():
    g = torch.Generator().manual_seed(3)
    images = torch.zeros(2, 3, 9, 9)
    images[..., 3:6, 3:6] = torch.rand(2, 3, 3, 3, generator=g) + 0.1  # ink away from the border
    shifts = torch.randint(-3, 4, (2, 3, 2), generator=g)
    shifts[0, 0] = torch.tensor([1, -2])
    moved = shift_images(images, shifts)
    for i in range(2):
        for j in range(3):
            dy, dx = shifts[i, j].tolist()
            # with a blank border wider than the shift, a move is a roll
            assert torch.equal(moved[i, j], torch.roll(images[i, j], (dy, dx), dims=(0, 1)))
    assert moved[0, 0, 4, 1] == images[0, 0, 3, 3]  # one row down, two columns left
    edge = torch.ones(1, 5, 5)
    assert torch.equal(shift_images(edge, torch.tensor([[0, 2]]))[0, :, :2], torch.zeros(5, 2)), "vacated: 0"
    assert torch.equal(shift_images(images, torch.zeros(2, 3, 2, dtype=torch.long)), images)
    with pytest.raises(ValueError, match=r"shifts must be shaped \(2, 3, 2\)"):
        shift_images(images, shifts[:, :, :1])
    with pytest.raises(ValueError, match=r"shifts must be in \[-8, 8\] for 9×9 images, got -9"):
        shift_images(images, torch.full((2, 3, 2), -9))
    with pytest.raises(TypeError, match="shifts must be an integer tensor"):
        shift_images(images, shifts.float())


def test_shifted_tasks_are_the_drawings_moved_by_the_recorded_offsets(images):
    family = ClassificationTasks(images, ways=4, rotations=True, max_shift=2)
    batch = family.sample(30, 2, 1, generator=torch.Generator().manual_seed(4))
    shifts = batch.info["shifts"]
    assert shifts.shape == (30, 4, 3, 2) and set(shifts.flatten().tolist()) == {-2, -1, 0, 1, 2}
    classes, turns, drawings = batch.info["classes"], batch.info["rotations"], batch.info["drawings"]
    for t in range(30):
        for n in range(4):
            c, k = int(classes[t, n]), int(turns[t, n])
            plain = torch.rot90(images[c, drawings[t, n]].float() / 255, k, dims=(1, 2))  # (3, 5, 5)
            expect = shift_images(plain, shifts[t, n])
            got = torch.cat([batch.x_support[t, 2 * n:2 * n + 2, 0], batch.x_query[t, n:n + 1, 0]])
            assert torch.equal(got, expect)
    # no shift: the stream of tasks of a sampler without the option, bit for bit
    plain_family = ClassificationTasks(images, ways=4, rotations=True)
    zero_family = ClassificationTasks(images, ways=4, rotations=True, max_shift=0)
    a = zero_family.sample(5, 1, 1, generator=torch.Generator().manual_seed(6))
    b = plain_family.sample(5, 1, 1, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a.x_support, b.x_support) and "shifts" not in a.info
    # ... and it draws nothing more than the classes and drawings (the shipped recipes' streams)
    g, reference = torch.Generator().manual_seed(8), torch.Generator().manual_seed(8)
    zero_family.sample(5, 1, 1, generator=g)
    torch.rand(5, 40, generator=reference), torch.rand(5, 4, 6, generator=reference)
    assert torch.equal(g.get_state(), reference.get_state())
    with pytest.raises(ValueError, match=r"max_shift must be in \[0, 4\], got 5"):
        ClassificationTasks(images, ways=4, max_shift=5)
    with pytest.raises(TypeError, match="max_shift"):
        ClassificationTasks(images, ways=4, max_shift=1.5)


def test_bad_inputs_are_named(images):
    with pytest.raises(ValueError, match=r"ways must be in \[1, 10\]"):
        ClassificationTasks(images, ways=11)
    with pytest.raises(ValueError, match=r"ways must be in \[1, 40\].*rotations"):
        ClassificationTasks(images, ways=41, rotations=True)
    ClassificationTasks(images, ways=40, rotations=True)  # exactly enough classes is fine
    family = ClassificationTasks(images, ways=5)
    with pytest.raises(ValueError, match=r"at most the 6 drawings per class, got 5 \+ 2 = 7"):
        family.sample(2, 5, 2, generator=torch.Generator())
    with pytest.raises(ValueError, match="support_shots"):
        family.sample(2, 0, 2, generator=torch.Generator())
    with pytest.raises(ValueError, match=r"\(classes, drawings, height, width\)"):
        ClassificationTasks(images[0], ways=2)
    with pytest.raises(TypeError, match="uint8 or floating point"):
        ClassificationTasks(images.long(), ways=2)
    with pytest.raises(TypeError, match="generator"):
        family.sample(2, 1, 1, generator=None)


def test_images_with_channels_of_any_shape_are_sampled_whole():
    """Colour (classes, drawings, channels, height, width), not square: every channel of a
    drawing comes along, and a shift moves all of them together."""
    colour = (torch.rand(10, 6, 3, 5, 7, generator=torch.Generator().manual_seed(9)) * 255).to(torch.uint8)
    family = ClassificationTasks(colour, ways=4, max_shift=2)
    assert family.channels == 3 and "of 3 channels" in repr(family)
    batch = family.sample(6, 2, 1, generator=torch.Generator().manual_seed(1))
    assert batch.x_support.shape == (6, 8, 3, 5, 7) and batch.x_query.shape == (6, 4, 3, 5, 7)
    shifts, classes, drawings = batch.info["shifts"], batch.info["classes"], batch.info["drawings"]
    assert shifts.shape == (6, 4, 3, 2) and shifts.abs().max() == 2
    for t in range(6):
        for n in range(4):
            plain = colour[int(classes[t, n]), drawings[t, n]].float() / 255  # (3 drawings, 3 channels, 5, 7)
            got = torch.cat([batch.x_support[t, 2 * n:2 * n + 2], batch.x_query[t, n:n + 1]])
            for channel in range(3):
                assert torch.equal(got[:, channel], shift_images(plain[:, channel], shifts[t, n]))
    # one channel given explicitly: the grey sampler's tasks, bit for bit (rotations and shifts too)
    square = colour[:, :, 0, :, :5]  # (classes, drawings, 5, 5)
    for options in ({}, {"rotations": True, "max_shift": 2}):
        grey = ClassificationTasks(square, ways=4, **options)
        explicit = ClassificationTasks(square.unsqueeze(2), ways=4, **options)
        a = grey.sample(5, 2, 1, generator=torch.Generator().manual_seed(3))
        b = explicit.sample(5, 2, 1, generator=torch.Generator().manual_seed(3))
        assert torch.equal(a.x_support, b.x_support) and torch.equal(a.x_query, b.x_query)
    with pytest.raises(ValueError, match=r"rotations need square images, got height × width \(5, 7\)"):
        ClassificationTasks(colour, ways=4, rotations=True)
    with pytest.raises(ValueError, match=r"max_shift must be in \[0, 4\], got 5"):
        ClassificationTasks(colour, ways=4, max_shift=5)
    with pytest.raises(ValueError, match="at least one channel"):
        ClassificationTasks(colour[:, :, :0], ways=4)
    with pytest.raises(ValueError, match=r"reads as 5 channels of 7×3 pixels.*permute\(0, 1, 4, 2, 3\)"):
        ClassificationTasks(colour.permute(0, 1, 3, 4, 2), ways=4)  # channels last
    with pytest.raises(ValueError, match=r"\(classes, drawings, channels, height, width\)"):
        ClassificationTasks(colour.unsqueeze(0), ways=4)


def test_a_colour_network_of_rectangular_images_meta_trains_and_is_scored():
    """The whole path for images of one's own: sampler, ConvNet(channels=3, image_size=(h, w)),
    meta_train, adapted_accuracy; and the shapes it refuses, named."""
    net = ConvNet(ways=3, filters=4, blocks=2, channels=3, image_size=(12, 8))
    assert net.input_shape == (3, 12, 8) and net.head.in_features == 4 * 3 * 2
    assert net(torch.rand(2, 3, 12, 8)).shape == (2, 3)
    assert net.architecture == "ConvNet(ways=3, filters=4, blocks=2, channels=3, image_size=(12, 8))"
    assert ConvNet(image_size=(28, 28)).architecture == ConvNet().architecture, "one name for one network"
    mini_imagenet = ConvNet(ways=5, filters=32, channels=3, image_size=84)  # 84 → 42 → 21 → 10 → 5
    # conv 896 + 3 · 9,248, batch norms 4 · 64, head 32 · 5 · 5 · 5 + 5
    assert mini_imagenet.head.in_features == 800 and sum(p.numel() for p in mini_imagenet.parameters()) == 32_901
    colour = torch.rand(6, 5, 3, 12, 8, generator=torch.Generator().manual_seed(0))
    family = ClassificationTasks(colour, ways=3)
    torch.manual_seed(0)
    before = {k: v.detach().clone() for k, v in net.named_parameters()}
    history = mb.meta_train(net, family, iterations=2, meta_batch_size=2, support_shots=1, query_shots=2,
                            inner_lr=0.1, method_options={"loss_fn": mb.cross_entropy_per_task},
                            generator=torch.Generator().manual_seed(1), progress=False)
    # (a NaN loss would have raised) two steps taken, and they moved the first convolution's colour filters
    assert len(history.meta_loss) == 2
    assert not torch.equal(net.features[0].weight, before["features.0.weight"])
    tasks = family.sample(4, 1, 2, generator=torch.Generator().manual_seed(2))
    accuracy = mb.protocol.adapted_accuracy(net, mb.detached(mb.parameters_of(net)), tasks, method="maml",
                                            inner_lr=0.1, steps=1)
    assert accuracy.shape == (4,) and ((accuracy >= 0) & (accuracy <= 1)).all()
    wrong = family.sample(1, 1, 1, generator=torch.Generator().manual_seed(3))
    with pytest.raises(ValueError, match=r"shots, 3, 12, 8\) for this model, got \(1, 3, 3, 8, 12\)"):
        mb.get_method("maml")(net, mb.detached(mb.parameters_of(net)),
                              mb.TaskBatch(wrong.x_support.transpose(-1, -2), wrong.y_support,
                                           wrong.x_query.transpose(-1, -2), wrong.y_query),
                              inner_lr=0.1, inner_steps=1, loss_fn=mb.cross_entropy_per_task)
    with pytest.raises(ValueError, match=r"at least 2\*\*blocks = 16 on each side"):
        ConvNet(image_size=(28, 8))
    with pytest.raises(ValueError, match=r"one side or \(height, width\)"):
        ConvNet(image_size=(28, 28, 3))
    with pytest.raises(ValueError, match="image_size"):
        ConvNet(image_size=(28, 0))
    with pytest.raises(TypeError, match="image_size"):
        ConvNet(image_size=(28, 2.5))


# ---------------------------------------------------------------- the conv net


def random_tasks(num_tasks, ways, shots, size, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(ways * 3, shots * 2 + 2, size, size, generator=g, dtype=dtype)
    return ClassificationTasks(images, ways).sample(num_tasks, shots, shots + 1, generator=g, dtype=dtype)


def test_paper_architecture_shapes():
    net = ConvNet(ways=5, filters=64)
    # 4 convs (640 + 3 · 36,928) + 4 batch norms (4 · 128) + head (64 · 5 + 5)
    assert sum(p.numel() for p in net.parameters()) == 112_261
    assert net(torch.rand(3, 1, 28, 28)).shape == (3, 5)
    assert not list(net.buffers()), "no running statistics anywhere"
    with pytest.raises(ValueError, match="mamlbook.task_forward"):
        net(torch.rand(2, 3, 1, 28, 28))
    with pytest.raises(ValueError, match="image_size"):
        ConvNet(blocks=5, image_size=28)


def test_batch_norm_statistics_do_not_leak_between_tasks():
    torch.manual_seed(0)
    net = ConvNet(ways=5, filters=8)
    params = mb.batch_parameters(mb.detached(mb.parameters_of(net)), 3)
    tasks = random_tasks(3, 5, 1, 28, seed=1)
    out = mb.task_forward(net, params, tasks.x_query)
    # each task alone, plain forward: the same numbers
    for t in range(3):
        alone = functional_call(net, {k: v[t] for k, v in params.items()}, (tasks.x_query[t],))
        assert torch.allclose(out[t], alone, atol=1e-5)
    # change task 2's images drastically: tasks 0 and 1 do not move at all
    x = tasks.x_query.clone()
    x[2] = x[2] * 10 + 3
    out2 = mb.task_forward(net, params, x)
    assert torch.equal(out2[:2], out[:2]) and not torch.allclose(out2[2], out[2])
    # and train/eval mode make no difference (there is no mode-dependent state)
    net.eval()
    assert torch.equal(mb.task_forward(net, params, tasks.x_query), out)


def test_adaptation_of_a_task_is_independent_of_its_meta_batch():
    torch.manual_seed(0)
    net = ConvNet(ways=3, filters=4).double()
    params = mb.detached(mb.parameters_of(net))
    tasks = random_tasks(4, 3, 2, 28, seed=2, dtype=torch.float64)
    step = mb.get_method("maml")(net, params, tasks, inner_lr=0.3, inner_steps=2, loss_fn=mb.cross_entropy_per_task)
    parts = tasks.split(4)
    singles = [mb.get_method("maml")(net, params, p, inner_lr=0.3, inner_steps=2, loss_fn=mb.cross_entropy_per_task)
               for p in parts]
    assert torch.allclose(step.query_loss, torch.cat([s.query_loss for s in singles]), rtol=1e-12, atol=1e-12)
    assert torch.allclose(flat(step.grads), sum(flat(s.grads) for s in singles) / 4, rtol=1e-10, atol=1e-12)


def meta_loss_by_loop(model, params, tasks, inner_lr, inner_steps):
    """Reference: one task at a time, plain functional_call and autograd, no vmap."""
    ce = torch.nn.functional.cross_entropy
    total = 0.0
    for t in range(tasks.num_tasks):
        phi = dict(params)
        for _ in range(inner_steps):
            loss = ce(functional_call(model, phi, (tasks.x_support[t],)), tasks.y_support[t])
            grads = torch.autograd.grad(loss, list(phi.values()), create_graph=True)
            phi = {k: v - inner_lr * g for (k, v), g in zip(phi.items(), grads)}
        total = total + ce(functional_call(model, phi, (tasks.x_query[t],)), tasks.y_query[t])
    return total / tasks.num_tasks


@pytest.mark.parametrize("inner_steps", [2])
def test_maml_meta_gradient_through_conv_and_batch_norm_matches_finite_differences(inner_steps):
    """Tiny net (2 blocks of 2 filters, 8×8 images), float64; ReLU and max-pool kinks are
    avoided by generic random inputs and a small ε (no activation sits within ε of a kink)."""
    torch.manual_seed(3)
    net = ConvNet(ways=3, filters=2, blocks=2, image_size=8).double()
    params = mb.detached(mb.parameters_of(net))
    tasks = random_tasks(2, 3, 2, 8, seed=4, dtype=torch.float64)
    step = mb.get_method("maml")(net, params, tasks, inner_lr=0.5, inner_steps=inner_steps, loss_fn=mb.cross_entropy_per_task)

    def f(p):
        p = {k: v.detach().requires_grad_() for k, v in p.items()}
        return float(meta_loss_by_loop(net, p, tasks, 0.5, inner_steps).detach())

    reference = central_difference(f, params, eps=1e-6)
    assert torch.allclose(flat(step.grads), reference, rtol=1e-5, atol=1e-7), (flat(step.grads) - reference).abs().max()
    fo = mb.get_method("fomaml")(net, params, tasks, inner_lr=0.5, inner_steps=inner_steps, loss_fn=mb.cross_entropy_per_task)
    assert (flat(fo.grads) - reference).abs().max() > 1e-4, "the second-order terms matter here"


def test_accuracy_per_task():
    logits = torch.tensor([[[2.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [1.0, 0.0]]])
    assert torch.equal(accuracy_per_task(logits, torch.tensor([[0, 1], [0, 1]])), torch.tensor([1.0, 0.5]))
    with pytest.raises(ValueError, match="logits must be"):
        accuracy_per_task(logits, torch.tensor([0, 1]))


# ---------------------------------------------------------------- recipes and checkpoints


def test_recipe_runs_end_to_end_with_its_curve(monkeypatch, tmp_path):
    monkeypatch.setattr(mb.protocol, "CURVE_TASKS", 3)
    monkeypatch.setattr(mb.checkpoints, "PRETRAINED_DIR", tmp_path)
    shipped = mb.recipes.RECIPES["omniglot_maml_1shot"]
    base = dataclasses.replace(shipped, filters=4, eval_every=1,
                               training=dataclasses.replace(shipped.training, lr_schedule=((1, 0.5),)))
    imaml = dataclasses.replace(base, training=dataclasses.replace(
        base.training, method="imaml", inner_lr=0.1, method_options={"lam": 2.0, "cg_steps": 2}))
    commits = []  # the source's commit is taken once per run, not at each of its saves
    monkeypatch.setattr(mb.recipes.runs, "source_commit", lambda: commits.append(1) or "abc")
    for name, recipe in (("omniglot_maml_1shot", base), ("omniglot_imaml_1shot", imaml)):
        monkeypatch.setitem(mb.recipes.RECIPES, name, recipe)
        meta = mb.recipes.regenerate(name, device="cpu", progress=False, iterations=2, save=True, eval_tasks=3)
        assert meta["commit"] == "abc" and len(commits) == 1  # 4 saves: at 0, 1, 2 iterations and the end
        commits.clear()
        assert len(meta["test_accuracy"]) == 3 and meta["seconds"] > 0 and meta["iterations_done"] == 2
        # the data it read, by the SHA-256 of the files (the two minimal sets)
        shipped = mb.tasks.omniglot_shipped
        assert json.loads(meta["data_sha256"]) == {
            f: shipped.sha256sum(shipped.DATA_DIR / f) for f in ("images_background_small1.zip",
                                                                 "images_background_small2.zip")}
        assert meta["mamlbook"] == mb.__version__
        curve = mb.recipes.load_curve(name)
        assert [row[0] for row in curve["curve"]] == [0, 1, 2] and curve["iterations_done"] == 2
        assert all(0 <= row[2] <= 1 for row in curve["curve"])
        json.dumps(curve, allow_nan=False)  # valid JSON: no NaN
    with pytest.raises(ValueError, match="name must be one of"):
        mb.recipes.regenerate("omniglot_nope")


def test_a_recipe_with_test_shots_trains_on_its_shots_and_is_scored_on_the_test_shots(monkeypatch, tmp_path):
    """Reptile's paper recipe: 10-shot training tasks (minibatches of every class), 1-shot
    test tasks: the curve and the test accuracy are on 5-way 1-shot tasks (one query
    drawing per class, so accuracies are multiples of 1/5), the training tasks are 10-shot."""
    monkeypatch.setattr(mb.protocol, "CURVE_TASKS", 3)
    monkeypatch.setattr(mb.checkpoints, "PRETRAINED_DIR", tmp_path)
    shipped = mb.recipes.RECIPES["omniglot_reptile_1shot_train10"]
    assert (shipped.shots, shipped.training.support_shots, shipped.test_shots) == (1, 10, 1)
    monkeypatch.setitem(mb.recipes.RECIPES, "omniglot_reptile_1shot_train10",
                        dataclasses.replace(shipped, filters=4, eval_every=1))
    seen = []
    original = mb.ClassificationTasks.sample

    def spy(self, num_tasks, support_shots, query_shots, **kw):
        seen.append((num_tasks, support_shots, query_shots))
        return original(self, num_tasks, support_shots, query_shots, **kw)

    monkeypatch.setattr(mb.ClassificationTasks, "sample", spy)
    meta = mb.recipes.regenerate("omniglot_reptile_1shot_train10", device="cpu", progress=False, iterations=2,
                                 save=True, eval_tasks=3)
    assert (5, 10, 10) in seen and (3, 1, 1) in seen  # training tasks, then 1-shot curve/test tasks
    assert all(abs(5 * a - round(5 * a)) < 1e-6 for a in meta["test_accuracy"])
    assert json.loads(meta["settings"])["test_shots"] == 1
    assert "test_shots" not in mb.recipes.RECIPES["omniglot_maml_1shot"].as_dict()
    with pytest.raises(ValueError, match="test_shots"):
        dataclasses.replace(shipped, test_shots=0)


def test_a_recipe_with_max_shift_trains_on_shifted_tasks_and_is_scored_on_unshifted_ones(monkeypatch, tmp_path):
    monkeypatch.setattr(mb.protocol, "CURVE_TASKS", 3)
    monkeypatch.setattr(mb.checkpoints, "PRETRAINED_DIR", tmp_path)
    base = dataclasses.replace(mb.recipes.RECIPES["omniglot_maml_1shot"], filters=4, eval_every=1)
    monkeypatch.setitem(mb.recipes.RECIPES, "omniglot_maml_1shot", dataclasses.replace(base, max_shift=2))
    seen = []
    original = mb.ClassificationTasks.sample

    def spy(self, num_tasks, support_shots, query_shots, **kw):
        seen.append((num_tasks, self.max_shift))
        return original(self, num_tasks, support_shots, query_shots, **kw)

    monkeypatch.setattr(mb.ClassificationTasks, "sample", spy)
    meta = mb.recipes.regenerate("omniglot_maml_1shot", device="cpu", progress=False, iterations=2, save=True,
                                 eval_tasks=3)
    assert (4, 2) in seen and (3, 0) in seen  # shifted training meta-batches, unshifted curve/test tasks
    assert json.loads(meta["settings"])["max_shift"] == 2
    assert "max_shift" not in base.as_dict()
    assert mb.recipes.RECIPES["omniglot_maml_1shot_shift2"].max_shift == 2
    with pytest.raises(ValueError, match=r"max_shift must be in \[0, 27\], got -1"):
        dataclasses.replace(base, max_shift=-1)
    with pytest.raises(ValueError, match="sinusoid recipe takes no Omniglot fields"):
        dataclasses.replace(mb.recipes.RECIPES["sinusoid_maml"], max_shift=1)


SHIPPED = [n for n, r in sorted(mb.recipes.RECIPES.items())
           if r.family == "omniglot" and (mb.checkpoints.PRETRAINED_DIR / f"{n}.pt").is_file()]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_checkpoints_load_with_their_evaluation_and_curve(name):
    model, meta = mb.recipes.load(name, device="cpu")
    net = model.net if isinstance(model, (mb.MetaSGDNet, mb.LSLRNet)) else model  # (step sizes beside it)
    assert isinstance(net, ConvNet) and net.filters == mb.recipes.RECIPES[name].filters
    assert len(meta["test_accuracy"]) == mb.protocol.EVAL_TASKS
    assert mb.checkpoints.pretrained_path(name).stat().st_size < 1_000_000
    curve = mb.recipes.load_curve(name)
    assert curve["iterations_done"] == meta["iterations_done"] == mb.recipes.RECIPES[name].training.iterations


def test_pooling_before_relu_gives_the_usual_orders_numbers():
    """The ConvNet's blocks pool before their ReLU (appendix A1: "the same numbers bit for
    bit, since ReLU is monotone"): values and input gradients equal to relu-then-pool's
    with ``torch.equal``, in float32, on inputs with ties and zeros (values on a coarse
    grid) as well as on continuous ones; and the network's outputs through its modules
    (ReLU then pool) equal to its meta-steps' functional path (pool then ReLU): bit for
    bit on the per-task path, up to float32 rounding on the vmap path."""
    g = torch.Generator().manual_seed(0)
    pool, relu = torch.nn.functional.max_pool2d, torch.nn.functional.relu
    for x in (torch.randn(8, 16, 28, 28, generator=g),
              torch.randint(-3, 4, (8, 16, 28, 28), generator=g).float() / 2):
        upstream = torch.randn(8, 16, 14, 14, generator=g)
        outputs, grads = [], []
        for forward in (lambda v: relu(pool(v, 2)), lambda v: pool(relu(v), 2)):
            v = x.clone().requires_grad_()
            out = forward(v)
            out.backward(upstream)
            outputs.append(out.detach())
            grads.append(v.grad)
        assert torch.equal(outputs[0], outputs[1]) and torch.equal(grads[0], grads[1])
        assert (grads[0] != 0).any() and (outputs[0] == 0).any()  # both branches exercised
    # and the network itself: its modules (nn.Sequential, ReLU then pool) against the
    # functional path the meta-steps run (pool then ReLU), both task paths
    torch.manual_seed(0)
    net = ConvNet(ways=5, filters=8)
    x = torch.randn(10, 1, 28, 28, generator=g)
    params = {k: v.detach()[None].clone() for k, v in net.named_parameters()}
    net.meta_batch = "loop"  # one task's convolutions are the module's own: the same numbers
    assert torch.equal(net(x), net.forward_with(params, x[None])[0])
    # the vmap path runs the meta-batch as batched convolutions, whose kernels may round
    # differently from the module's on some CPUs (an AVX2-only AMD EPYC: 8.3e-7 of outputs
    # up to 2.3; bit for bit equal on the CPU that first ran this test): float32 rounding
    net.meta_batch = "vmap"
    torch.testing.assert_close(net(x), net.forward_with(params, x[None])[0], rtol=1e-5, atol=1e-6)

"""The contracts behind the bad-input catalogue: per-task losses, divergence opt-out, checksums.

`test_bad_inputs.py` shows each bad input refused; these tests show the good side of
each rule: a loss that follows the contract is used as given (and checked only once per
call), ``on_divergence="keep"`` hands the non-finite step back, and checksummed files
round-trip while legacy ones can be converted without touching their weights.
"""
import math

import pytest
import torch

import mamlbook as mb
from mamlbook import checks, checkpoints
from helpers import flat

METHODS = {"maml": {}, "fomaml": {}, "reptile": {}, "imaml": {"lam": 2.0}, "pretrain": {}}


def small():
    torch.manual_seed(0)
    model = mb.SinusoidMLP(hidden=(8, 8)).double()
    tasks = mb.SinusoidTasks().sample(4, 5, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    return model, mb.detached(mb.parameters_of(model)), tasks


def steps_for(method):
    return 0 if method == "pretrain" else 2


@pytest.mark.parametrize("method", sorted(METHODS))
def test_a_per_task_loss_of_ones_own_is_used_as_given(method):
    """A custom loss following the (T,) contract gives exactly what the same loss gives built in."""
    model, theta, tasks = small()
    fn = mb.get_method(method)
    options = dict(inner_lr=0.01, inner_steps=steps_for(method), **METHODS[method])
    own = fn(model, theta, tasks, loss_fn=lambda p, y: (p - y).square().mean(dim=(1, 2)), **options)
    builtin = fn(model, theta, tasks, **options)
    assert torch.allclose(own.meta_loss, builtin.meta_loss, rtol=1e-12, atol=0)
    assert torch.allclose(flat(own.grads), flat(builtin.grads), rtol=1e-10, atol=1e-14)


def test_a_scalar_loss_is_refused_with_what_it_returned_and_what_is_expected():
    model, theta, tasks = small()
    with pytest.raises(ValueError) as info:
        mb.get_method("maml")(model, theta, tasks, inner_lr=0.01, loss_fn=torch.nn.functional.mse_loss)
    message = str(info.value)
    assert "loss_fn returned a scalar" in message and "expected shape (4,)" in message and "mse_per_task" in message


def test_the_loss_contract_is_checked_on_the_first_call_only():
    """After its first call for the support and the query targets, the wrapper adds no checks."""
    model, theta, tasks = small()
    seen = []
    original = checks.check_loss_output

    def spy(*args, **kwargs):
        seen.append(args[3])
        return original(*args, **kwargs)

    checks.check_loss_output = spy
    try:
        mb.get_method("maml")(model, theta, tasks, inner_lr=0.01, inner_steps=5)
    finally:
        checks.check_loss_output = original
    assert seen == ["tasks.y_support", "tasks.y_query"]  # five inner steps, one check for each target tensor


@pytest.mark.parametrize("method, options", [("maml", {}), ("fomaml", {}), ("reptile", {})])
def test_on_divergence_keep_returns_the_non_finite_step(method, options):
    model, theta, tasks = small()
    fn = mb.get_method(method)
    with pytest.raises(mb.DivergenceError, match="smaller inner_lr"):
        fn(model, theta, tasks, inner_lr=1e8, inner_steps=6, **options)
    step = fn(model, theta, tasks, inner_lr=1e8, inner_steps=6, on_divergence="keep", **options)
    assert not math.isfinite(float(step.meta_loss)) or not bool(torch.isfinite(flat(step.grads)).all())


def test_adapt_on_divergence_keep():
    model, theta, tasks = small()
    phi0 = mb.detached(mb.batch_parameters(theta, tasks.num_tasks), requires_grad=True)
    with pytest.raises(mb.DivergenceError, match="inner_lr"):
        mb.adapt(model, phi0, tasks.x_support, tasks.y_support, inner_lr=1e8, inner_steps=6)
    phi, _ = mb.adapt(model, phi0, tasks.x_support, tasks.y_support, inner_lr=1e8, inner_steps=6,
                      on_divergence="keep")
    assert not bool(torch.isfinite(flat(phi)).all())


def test_meta_train_defaults_for_pretrain_and_others():
    """inner_steps left out: 1 for the adapting methods, 0 for pretrain; 0 may also be given for pretrain."""
    for method, steps in (("pretrain", None), ("pretrain", 0), ("maml", None)):
        model = mb.SinusoidMLP(hidden=(4, 4))
        kwargs = {} if steps is None else {"inner_steps": steps}
        history = mb.meta_train(model, mb.SinusoidTasks(), method=method, iterations=2, meta_batch_size=2,
                                generator=torch.Generator().manual_seed(0), progress=False, **kwargs)
        assert len(history.meta_loss) == 2


def test_method_options_lists_what_each_method_takes():
    from mamlbook.algorithms.base import method_options

    assert method_options("maml") == ["loss_fn", "first_order", "on_divergence"]
    assert method_options("fomaml") == ["loss_fn", "on_divergence"]
    assert set(method_options("imaml")) >= {"lam", "cg_steps", "cg_damping", "inner_tol"}


def test_every_shipped_checkpoint_has_a_valid_checksum():
    for path in sorted(checkpoints.PRETRAINED_DIR.rglob("*.pt")):  # the transfer baseline's too
        payload = checkpoints._read_payload(path)
        assert payload["checksum"].startswith("sha256:"), path
        checkpoints._verify(path, payload)  # raises CheckpointError on a mismatch


def test_add_checksum_converts_a_legacy_file_without_changing_its_weights(tmp_path):
    model = mb.SinusoidMLP(hidden=(8, 8))
    legacy = {"architecture": model.architecture, "metadata": {"torch": torch.__version__, "run": 3},
              "params": {k: v.detach().clone() for k, v in mb.parameters_of(model).items()}}
    path = tmp_path / "legacy.pt"
    torch.save(legacy, path)
    with pytest.raises(mb.CheckpointError, match="no checksum"):
        mb.load_checkpoint(path, model)
    mb.add_checksum(path)
    params, metadata = mb.load_checkpoint(path, mb.SinusoidMLP(hidden=(8, 8)))
    assert metadata == {"torch": str(torch.__version__), "run": 3}
    for k, v in legacy["params"].items():
        assert v.dtype == params[k].dtype and torch.equal(v.view(torch.int32), params[k].view(torch.int32))
    before = path.read_bytes()
    mb.add_checksum(path)  # a file that has one is left as it is
    assert path.read_bytes() == before


def test_checksum_covers_metadata(tmp_path):
    model = mb.SinusoidMLP(hidden=(4,))
    path = mb.save_checkpoint(tmp_path / "m.pt", model, metadata={"note": "abc"})
    payload = checkpoints._read_payload(path)
    payload["metadata"]["note"] = "abd"
    torch.save(payload, path)
    with pytest.raises(mb.CheckpointError, match="checksum"):
        mb.load_checkpoint(path, model)


def test_no_flipped_byte_yields_wrong_weights(tmp_path):
    """Flip each byte of a small checkpoint in turn: every load either refuses (CheckpointError naming the
    file) or returns exactly the saved weights and metadata (bytes the content does not depend on, e.g.
    zip padding). And a refused load copies nothing into the model."""
    torch.manual_seed(0)
    model = mb.SinusoidMLP(hidden=(2,))
    path = mb.save_checkpoint(tmp_path / "m.pt", model, metadata={"note": "x"})
    original = path.read_bytes()
    saved = flat(mb.parameters_of(model)).detach().clone()
    target = mb.SinusoidMLP(hidden=(2,))
    untouched = flat(mb.parameters_of(target)).detach().clone()
    refused = 0
    for i in range(len(original)):
        data = bytearray(original)
        data[i] ^= 0x5A
        path.write_bytes(bytes(data))
        try:
            params, metadata = mb.load_checkpoint(path, target, into_model=False)
        except mb.CheckpointError as err:
            assert "m.pt" in str(err)
            refused += 1
            continue
        assert torch.equal(flat(params), saved) and metadata == {"note": "x"}, f"byte {i} changed the weights silently"
    assert refused > len(original) // 4
    data = bytearray(original)
    start, size = __import__("test_bad_inputs").zip_member_offset(path, "data/0")
    data[start] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(mb.CheckpointError, match="checksum"):
        mb.load_checkpoint(path, target)
    assert torch.equal(flat(mb.parameters_of(target)).detach(), untouched)


def test_meta_train_divergence_message_gives_training_advice_only():
    with pytest.raises(mb.DivergenceError) as info:
        mb.meta_train(mb.SinusoidMLP(hidden=(4, 4)), mb.SinusoidTasks(), iterations=50, outer_lr=1e4, inner_lr=10.0,
                      meta_batch_size=2, generator=torch.Generator().manual_seed(0), progress=False)
    message = str(info.value)
    assert "training diverged at iteration" in message and "smaller outer_lr" in message
    assert "on_divergence" not in message  # the methods' opt-out is not meta_train's


def test_evaluation_under_no_grad_gives_the_same_numbers():
    """Test-time adaptation takes gradients whatever the caller's mode (as torch.func.grad does under an outer
    no_grad): wrapping an evaluation in no_grad, the usual habit, changes nothing."""
    model, theta, tasks = small()
    outside = mb.adaptation_curve(model, theta, tasks, inner_lr=0.01, max_steps=3)
    phi_outside, _ = mb.adapt(model, mb.detached(mb.batch_parameters(theta, 4), requires_grad=True),
                              tasks.x_support, tasks.y_support, inner_lr=0.01, inner_steps=2, create_graph=False)
    with torch.no_grad():
        inside = mb.adaptation_curve(model, theta, tasks, inner_lr=0.01, max_steps=3)
        phi_inside, _ = mb.adapt(model, mb.detached(mb.batch_parameters(theta, 4), requires_grad=True),
                                 tasks.x_support, tasks.y_support, inner_lr=0.01, inner_steps=2, create_graph=False)
        assert not torch.is_grad_enabled()  # the caller's mode is left as it was
    assert torch.equal(inside, outside)
    assert all(torch.equal(phi_inside[k], phi_outside[k]) for k in phi_outside)


def test_a_model_of_its_parameters_alone_is_accepted():
    """What `checks.module` lets through: BatchNorm that normalises each batch (no running statistics) and a
    non-persistent buffer (a constant the constructor rebuilds); it refuses frozen parameters and saved buffers."""
    class Scaled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(1, 4), torch.nn.BatchNorm1d(4, track_running_stats=False),
                                           torch.nn.ReLU(), torch.nn.Linear(4, 1))
            self.register_buffer("scale", torch.tensor(2.0), persistent=False)

        def forward(self, x):
            return self.scale * self.net(x)

    model = Scaled().double()
    assert checks.module("model", model) is model
    tasks = mb.SinusoidTasks().sample(3, 5, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    step = mb.get_method("maml")(model, mb.detached(mb.parameters_of(model)), tasks, inner_lr=0.01, inner_steps=1)
    assert all(bool(torch.isfinite(g).all()) for g in step.grads.values())
    model.net[1].track_running_stats = True  # as BatchNorm1d(4) would be, but without its buffers
    model.net[1].register_buffer("running_mean", torch.zeros(4))
    with pytest.raises(ValueError, match="running_mean"):
        checks.module("model", model)


def test_adapted_predictions_of_a_classifier_are_its_adapted_logits():
    """adapted_predictions takes the loss to adapt with (it took MSE only, refusing class labels with advice it
    could not follow): with cross-entropy it returns the logits of `adapt` then `task_forward`."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).double()
    g = torch.Generator().manual_seed(1)
    def split(n):  # n points of 3 classes per task
        return torch.randn(4, n, 2, generator=g, dtype=torch.float64), torch.arange(n).remainder(3).repeat(4, 1)
    tasks = mb.TaskBatch(*split(6), *split(9))
    theta = mb.detached(mb.parameters_of(model))
    out = mb.adapted_predictions(model, theta, tasks, tasks.x_query, inner_lr=0.5, steps=[0, 2],
                                 loss_fn=mb.cross_entropy_per_task)
    phi, _ = mb.adapt(model, mb.detached(mb.batch_parameters(theta, 4), requires_grad=True), tasks.x_support,
                      tasks.y_support, inner_lr=0.5, inner_steps=2, loss_fn=mb.cross_entropy_per_task,
                      create_graph=False)
    assert out[2].shape == (4, 9, 3)
    assert torch.allclose(out[2], mb.task_forward(model, phi, tasks.x_query).detach(), rtol=0, atol=1e-12)
    assert torch.allclose(out[0], mb.task_forward(model, mb.batch_parameters(theta, 4), tasks.x_query))
    assert not torch.allclose(out[0], out[2])


def test_meta_train_gives_a_float64_model_float64_tasks():
    """A float64 model meta-trains (meta_train passed the family's float32 tasks and the first step refused the
    mix): the tasks' floating tensors are cast to the model's dtype, for a family that takes no dtype too."""
    class NoDtype:
        def sample(self, num_tasks, support_shots, query_shots, *, generator, device=None):
            return mb.SinusoidTasks().sample(num_tasks, support_shots, query_shots, generator=generator,
                                             device=device)
    seen = []
    for family in (mb.SinusoidTasks(), NoDtype()):
        model = mb.SinusoidMLP(hidden=(8, 8)).double()
        history = mb.meta_train(model, family, iterations=3, meta_batch_size=2, progress=False,
                                generator=torch.Generator().manual_seed(0),
                                callbacks=[lambda it, params, step, tasks: seen.append(tasks.x_query.dtype)])
        assert len(history.meta_loss) == 3 and next(model.parameters()).dtype == torch.float64
    assert seen == [torch.float64] * 6


def test_meta_train_names_a_keyword_the_familys_sample_lacks():
    class NoDevice:
        def sample(self, num_tasks, support_shots, query_shots, *, generator):
            raise AssertionError("not called")
    with pytest.raises(TypeError, match="family.sample must take device="):
        mb.meta_train(mb.SinusoidMLP(), NoDevice(), iterations=1, generator=torch.Generator(), progress=False)


def test_a_parameter_the_forward_never_uses_is_named_as_such():
    """torch's "differentiated Tensor ... not used in the graph" surfaced raw from deep inside the inner loop."""
    class Unused(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(1, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
            self.aux = torch.nn.Linear(3, 2)  # defined, never called

        def forward(self, x):
            return self.net(x)

    model = Unused()
    tasks = mb.SinusoidTasks().sample(2, 5, 5, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="parameter its forward does not use"):
        mb.meta_train(model, mb.SinusoidTasks(), iterations=1, generator=torch.Generator(), progress=False)
    with pytest.raises(ValueError, match="parameter its forward does not use"):
        mb.adaptation_curve(model, mb.parameters_of(model), tasks, inner_lr=0.01, max_steps=1)

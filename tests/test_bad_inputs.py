"""A catalogue of bad inputs: each raises a clear error that names the offending argument.

Nothing is clamped, printed and ignored. And divergence stops training with advice.
"""
import functools

import pytest
import torch

import mamlbook as mb
from mamlbook.algorithms import get_method


@functools.lru_cache(maxsize=None)
def ctx():
    torch.manual_seed(0)
    model = mb.SinusoidMLP(hidden=(4, 4))
    tasks = mb.SinusoidTasks().sample(2, 3, 4, generator=torch.Generator().manual_seed(0))
    return model, mb.detached(mb.parameters_of(model)), tasks


def call(method, tasks=None, params=None, **kwargs):
    model, default_params, default_tasks = ctx()
    options = {"inner_lr": 0.01, "inner_steps": 1, **kwargs}
    return get_method(method)(model, default_params if params is None else params,
                              default_tasks if tasks is None else tasks, **options)


def batch(**replace):
    """The context's tasks with some fields replaced (builds a new, validated TaskBatch)."""
    tasks = ctx()[2]
    fields = {k: getattr(tasks, k) for k in ("x_support", "y_support", "x_query", "y_query")}
    fields.update(replace)
    return mb.TaskBatch(**fields)


def with_value(name, index, value):
    t = getattr(ctx()[2], name).clone()
    t.view(-1)[index] = value
    return t


def train(**kwargs):
    options = dict(iterations=1, generator=torch.Generator().manual_seed(0), meta_batch_size=2, progress=False)
    options.update(kwargs)
    return mb.meta_train(mb.SinusoidMLP(hidden=(4, 4)), mb.SinusoidTasks(), **options)


def params_like(fn):
    return {k: fn(v) for k, v in ctx()[1].items()}


def save_other_architecture(path):
    mb.save_checkpoint(path, mb.SinusoidMLP(hidden=(3,)))
    return mb.load_checkpoint(path, mb.SinusoidMLP(hidden=(4, 4)))


def save_foreign_file(path):
    torch.save([torch.zeros(3)], path)  # a torch file, but not a mamlbook checkpoint
    return mb.load_checkpoint(path, mb.SinusoidMLP(hidden=(4, 4)))


def save_text_file(path):
    path.write_text("not a checkpoint at all")
    return mb.load_checkpoint(path, mb.SinusoidMLP(hidden=(4, 4)))


CASES = [
    # (id, function of tmp_path, exception, word the message must contain)
    ("maml inner_lr = 0", lambda p: call("maml", inner_lr=0.0), ValueError, "inner_lr"),
    ("fomaml inner_lr < 0", lambda p: call("fomaml", inner_lr=-0.1), ValueError, "inner_lr"),
    ("reptile inner_lr = 0", lambda p: call("reptile", inner_lr=0), ValueError, "inner_lr"),
    ("imaml inner_lr < 0", lambda p: call("imaml", inner_lr=-1.0), ValueError, "inner_lr"),
    ("maml inner_lr NaN", lambda p: call("maml", inner_lr=float("nan")), ValueError, "inner_lr"),
    ("maml inner_lr as a string", lambda p: call("maml", inner_lr="0.01"), TypeError, "inner_lr"),
    ("maml inner_steps = 0", lambda p: call("maml", inner_steps=0), ValueError, "inner_steps"),
    ("reptile inner_steps < 0", lambda p: call("reptile", inner_steps=-1), ValueError, "inner_steps"),
    ("imaml inner_steps = 0", lambda p: call("imaml", inner_steps=0), ValueError, "inner_steps"),
    ("maml inner_steps float", lambda p: call("maml", inner_steps=1.5), TypeError, "inner_steps"),
    ("pretrain inner_steps != 0", lambda p: call("pretrain", inner_steps=2), ValueError, "inner_steps"),
    ("imaml lam = 0", lambda p: call("imaml", lam=0.0), ValueError, "lam"),
    ("imaml lam < 0", lambda p: call("imaml", lam=-2.0), ValueError, "lam"),
    ("imaml lam is a bool", lambda p: call("imaml", lam=True), TypeError, "lam"),
    ("imaml cg_steps < 0", lambda p: call("imaml", cg_steps=-1), ValueError, "cg_steps"),
    ("imaml cg_steps = 0", lambda p: call("imaml", cg_steps=0), ValueError, "cg_steps"),
    ("imaml cg_damping < 0", lambda p: call("imaml", cg_damping=-0.1), ValueError, "cg_damping"),
    ("imaml inner_tol = 0", lambda p: call("imaml", inner_tol=0.0), ValueError, "inner_tol"),
    ("reptile unknown inner_data", lambda p: call("reptile", inner_data="query"), ValueError, "inner_data"),
    ("unknown method name", lambda p: get_method("mamal"), ValueError, "method"),
    ("tasks not a TaskBatch", lambda p: call("maml", tasks=(1, 2, 3, 4)), TypeError, "tasks"),
    ("params not a dict", lambda p: call("reptile", params=[torch.zeros(3)]), TypeError, "params"),
    ("params of another dtype", lambda p: call("imaml", params=params_like(torch.Tensor.double)), TypeError, "params"),
    ("params on another device", lambda p: call("maml", params=params_like(lambda v: v.to("meta"))), ValueError,
     "params"),
    ("zero support shots", lambda p: mb.SinusoidTasks().sample(2, 0, 4, generator=torch.Generator()), ValueError,
     "support_shots"),
    ("zero query shots in a TaskBatch", lambda p: batch(x_query=torch.zeros(2, 0, 1), y_query=torch.zeros(2, 0, 1)),
     ValueError, "x_query"),
    ("support x/y shot mismatch", lambda p: batch(y_support=torch.zeros(2, 5, 1)), ValueError, "y_support"),
    ("support/query input shape mismatch", lambda p: batch(x_query=torch.zeros(2, 4, 2)), ValueError, "x_query"),
    ("task count mismatch", lambda p: batch(y_query=torch.zeros(3, 4, 1)), ValueError, "y_query"),
    ("NaN in y_support", lambda p: batch(y_support=with_value("y_support", 1, float("nan"))), ValueError, "y_support"),
    ("inf in x_query", lambda p: batch(x_query=with_value("x_query", 0, float("inf"))), ValueError, "x_query"),
    ("tensors of mixed dtypes", lambda p: batch(y_query=ctx()[2].y_query.double()), TypeError, "y_query"),
    ("tensors on mixed devices", lambda p: batch(x_query=ctx()[2].x_query.to("meta")), ValueError, "x_query"),
    ("meta_train outer_lr = 0", lambda p: train(outer_lr=0.0), ValueError, "outer_lr"),
    ("meta_train outer_lr < 0", lambda p: train(outer_lr=-1e-3), ValueError, "outer_lr"),
    ("meta_train inner_lr = 0", lambda p: train(inner_lr=0.0), ValueError, "inner_lr"),
    ("meta_train unknown method", lambda p: train(method="protonet"), ValueError, "method"),
    ("meta_train iterations = 0", lambda p: train(iterations=0), ValueError, "iterations"),
    ("meta_train unknown optimizer", lambda p: train(optimizer="rmsprop"), ValueError, "optimizer"),
    ("meta_train imaml lam < 0", lambda p: train(method="imaml", method_options={"lam": -1.0}), ValueError, "lam"),
    ("checkpoint of another architecture", lambda p: save_other_architecture(p / "a.pt"), ValueError, "architecture"),
    ("a torch file that is not a checkpoint", lambda p: save_foreign_file(p / "b.pt"), ValueError, "not a mamlbook"),
    ("a text file as checkpoint", lambda p: save_text_file(p / "c.pt"), ValueError, "not a mamlbook"),
    ("a missing checkpoint", lambda p: mb.load_checkpoint(p / "none.pt", mb.SinusoidMLP()), FileNotFoundError,
     "does not exist"),
    ("unknown shipped checkpoint", lambda p: mb.pretrained_path("no-such-run"), FileNotFoundError, "no-such-run"),
    ("conjugate_gradient steps < 0", lambda p: mb.conjugate_gradient(lambda v: v, torch.ones(3), -1), ValueError,
     "steps"),
    ("hessian inner_lr = 0", lambda p: mb.inner_step_jacobian(lambda q: q["0.bias"].sum(), ctx()[1], 0.0), ValueError,
     "inner_lr"),
    ("batch_parameters num_tasks = 0", lambda p: mb.batch_parameters(ctx()[1], 0), ValueError, "num_tasks"),
]


@pytest.mark.parametrize("case, error, word", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_a_clear_error(tmp_path, case, error, word):
    with pytest.raises(error) as info:
        case(tmp_path)
    assert word in str(info.value), str(info.value)


def test_catalogue_is_large_enough():
    assert len(CASES) >= 20


# outer_lr: Adam moves every weight by about outer_lr per step, so 1e6 overflows float32 within a few steps.
@pytest.mark.parametrize("method, inner_lr, outer_lr, bad", [
    ("maml", 0.01, 1e6, "outer_lr"),
    ("reptile", 1e4, 1e-3, "inner_lr"),
    # iMAML's proximal solver halves a task's step when it would increase the inner
    # objective, so a huge inner_lr no longer diverges; a huge outer_lr still does.
    ("imaml", 0.01, 1e6, "outer_lr"),
    ("fomaml", 1e4, 1e-3, "inner_lr"),
])
def test_divergence_stops_training_with_advice(method, inner_lr, outer_lr, bad):
    with pytest.raises(mb.DivergenceError) as info:
        train(method=method, iterations=30, inner_lr=inner_lr, outer_lr=outer_lr, inner_steps=3)
    message = str(info.value)
    assert "smaller" in message and bad in message, message

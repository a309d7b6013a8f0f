"""A catalogue of bad inputs through the public API: each raises a clear error naming the argument.

Every case builds its inputs from a fresh context, calls the package once with one bad
input, and must raise the stated exception type with the stated word (the argument)
in its message. The failed call must leave everything as it was: the model's
parameters, ``θ``, the task tensors and the files in the case's folder are compared
before and after. Nothing is clamped, broadcast, printed and ignored.

`tests/classify_bad_inputs.py` runs the same catalogue against any version of the
package and sorts each case into clear / obscure / silent (the issue-17 measurement).
On the code before issue 17 the 209 cases gave 91 clear, 60 obscure (a torch error, a
KeyError, a message not naming the argument) and 58 silent (a result, at most a
warning); after it, 209 clear.
"""
from __future__ import annotations

import hashlib
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import mamlbook as mb
from mamlbook.algorithms import get_method

CheckpointError = getattr(mb, "CheckpointError", ValueError)  # (ValueError before issue 17)
DivergenceError = mb.DivergenceError


@dataclass
class Ctx:
    """What a case may use: a small regressor, its θ (detached copies), a task batch, a folder."""

    model: torch.nn.Module
    theta: dict
    tasks: mb.TaskBatch
    tmp: Path


def make_ctx(tmp: Path) -> Ctx:
    torch.manual_seed(0)
    model = mb.SinusoidMLP(hidden=(4, 4))
    tasks = mb.SinusoidTasks().sample(2, 3, 4, generator=torch.Generator().manual_seed(0))
    return Ctx(model, mb.detached(mb.parameters_of(model)), tasks, tmp)


# ----------------------------------------------------------------------------- helpers


def call(c, method, tasks=None, params=None, model=None, **kwargs):
    options = {"inner_lr": 0.01, "inner_steps": 1, **kwargs}
    return get_method(method)(c.model if model is None else model, c.theta if params is None else params,
                              c.tasks if tasks is None else tasks, **options)


def fields(c, **replace):
    f = {k: getattr(c.tasks, k) for k in ("x_support", "y_support", "x_query", "y_query")}
    f.update(replace)
    return f


def batch(c, **replace):
    """The context's tasks with some fields replaced (builds a new, validated TaskBatch)."""
    return mb.TaskBatch(**fields(c, **replace))


def with_value(c, name, index, value):
    t = getattr(c.tasks, name).clone()
    t.view(-1)[index] = value
    return t


def logits(tasks=None, **kwargs):
    """`protocol.adapted_logits` of a small 2-way ConvNet on one task, ``kwargs`` replacing its arguments."""
    net = mb.ConvNet(ways=2, filters=4)
    options = {"method": "maml", "inner_lr": 0.4, "steps": 1, **kwargs}
    return mb.protocol.adapted_logits(net, mb.detached(mb.parameters_of(net)),
                                      two_way() if tasks is None else tasks, **options)


def float_labels(tasks):
    return mb.TaskBatch(tasks.x_support, tasks.y_support.float(), tasks.x_query, tasks.y_query.float())


def two_way(support=None, query=None, ways=2):
    """One 2-way (or ``ways``) 1-shot task of held-out characters, one query image per class; ``support``/``query``:
    the second support/query label replaced."""
    tasks = mb.protocol.held_out_tasks(1, num_tasks=1, ways=ways, query_shots=1)
    y_support, y_query = tasks.y_support.clone(), tasks.y_query.clone()
    if support is not None:
        y_support[0, 1] = support
    if query is not None:
        y_query[0, 1] = query
    return mb.TaskBatch(tasks.x_support, y_support, tasks.x_query, y_query)


def train(c, **kwargs):
    options = dict(iterations=1, generator=torch.Generator().manual_seed(0), meta_batch_size=2, progress=False)
    options.update(kwargs)
    return mb.meta_train(c.model, mb.SinusoidTasks(), **options)


def theta_with(c, name, value):
    out = dict(c.theta)
    out[name] = value
    return out


def theta_without(c, name):
    return {k: v for k, v in c.theta.items() if k != name}


def theta_map(c, fn):
    return {k: fn(v) for k, v in c.theta.items()}


def nan_at(c, name, value=float("nan")):
    t = c.theta[name].clone()
    t.view(-1)[0] = value
    return theta_with(c, name, t)


def batched(c, num_tasks=2):
    return mb.detached(mb.batch_parameters(c.theta, num_tasks), requires_grad=True)


def square_batch(c, **replace):
    """Three tasks of three support shots: (T, K) == (3, 3), where broadcasting is most treacherous."""
    tasks = mb.SinusoidTasks().sample(3, 3, 4, generator=torch.Generator().manual_seed(1))
    f = {k: getattr(tasks, k) for k in ("x_support", "y_support", "x_query", "y_query")}
    f.update(replace)
    return mb.TaskBatch(**f)


def adapt(c, params=None, x=None, y=None, **kwargs):
    options = {"inner_lr": 0.01, "inner_steps": 1, **kwargs}
    return mb.adapt(c.model, batched(c) if params is None else params, c.tasks.x_support if x is None else x,
                    c.tasks.y_support if y is None else y, **options)


def curve(c, params=None, tasks=None, **kwargs):
    options = {"inner_lr": 0.01, "max_steps": 2, **kwargs}
    return mb.adaptation_curve(c.model, c.theta if params is None else params, c.tasks if tasks is None else tasks,
                               **options)


def prox(c, anchor=None, **kwargs):
    options = {"inner_lr": 0.01, "inner_steps": 2, "lam": 1.0, **kwargs}
    return mb.proximal_adapt(c.model, mb.batch_parameters(c.theta, 2) if anchor is None else anchor,
                             c.tasks.x_support, c.tasks.y_support, **options)


def frozen(c):
    """The context's model with one parameter frozen (requires_grad=False)."""
    c.model.get_parameter("0.bias").requires_grad_(False)


def buffered(c):
    """The context's model with a persistent buffer, which no method adapts and no checkpoint saves."""
    c.model.register_buffer("scale", torch.ones(1))


def batchnorm_net():
    return torch.nn.Sequential(torch.nn.Linear(1, 4), torch.nn.BatchNorm1d(4), torch.nn.ReLU(), torch.nn.Linear(4, 1))


def under(mode, thunk):
    with mode():
        return thunk()


def scalar_mse(predictions, targets):
    return F.mse_loss(predictions, targets)  # one number for the whole meta-batch: not per task


def per_shot_mse(predictions, targets):
    return (predictions - targets).square().mean(-1)  # (T, N): not reduced over the shots


def python_float_loss(predictions, targets):
    return float((predictions - targets).square().mean())


def one_loss_mse(predictions, targets):
    return (predictions - targets).square().mean().reshape(1)


def integer_loss(predictions, targets):
    return (predictions - targets).square().mean((1, 2)).round().long()


# classification: a tiny ConvNet and hand-made 2-way tasks of 4×4 images


def conv_ctx():
    torch.manual_seed(0)
    net = mb.ConvNet(ways=2, filters=2, blocks=1, image_size=4)
    g = torch.Generator().manual_seed(0)
    x_s, x_q = torch.rand(2, 4, 1, 4, 4, generator=g), torch.rand(2, 6, 1, 4, 4, generator=g)
    y_s, y_q = torch.tensor([[0, 0, 1, 1]] * 2), torch.tensor([[0, 0, 0, 1, 1, 1]] * 2)
    return net, mb.detached(mb.parameters_of(net)), (x_s, y_s, x_q, y_q)


def conv_call(method="maml", replace=None, params=None, **kwargs):
    net, theta, tensors = conv_ctx()
    names = ("x_support", "y_support", "x_query", "y_query")
    f = dict(zip(names, tensors))
    f.update(replace or {})
    options = {"inner_lr": 0.1, "inner_steps": 1, "loss_fn": mb.cross_entropy_per_task, **kwargs}
    return get_method(method)(net, theta if params is None else params, mb.TaskBatch(**f), **options)


# checkpoints


def saved(c, name="run.pt", **kwargs):
    return mb.save_checkpoint(c.tmp / name, c.model, **kwargs)


def load(c, path, **kwargs):
    return mb.load_checkpoint(path, c.model, **kwargs)


def truncated(c, fraction):
    path = saved(c)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * fraction)])
    return path


def zip_member_offset(path: Path, suffix: str) -> tuple[int, int]:
    """(offset of the first data byte, size) of the zip member whose name ends with ``suffix``."""
    with zipfile.ZipFile(path) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith(suffix))
    raw = path.read_bytes()
    header = info.header_offset
    name_len = int.from_bytes(raw[header + 26:header + 28], "little")
    extra_len = int.from_bytes(raw[header + 28:header + 30], "little")
    return header + 30 + name_len + extra_len, info.compress_size


def flipped(c, suffix, where=0.5):
    path = saved(c)
    start, size = zip_member_offset(path, suffix)
    data = bytearray(path.read_bytes())
    data[start + int(size * where)] ^= 0x10
    path.write_bytes(bytes(data))
    return path


def corrupted_pickle(c):
    """Replace the pickle's first dict key string (``architecture``) by bytes that break the protocol."""
    path = saved(c)
    start, size = zip_member_offset(path, "data.pkl")
    data = bytearray(path.read_bytes())
    data[start + 2:start + 6] = b"\xff\xfe\xfd\xfc"
    path.write_bytes(bytes(data))
    return path


def hand_made(c, name, payload):
    path = c.tmp / name
    torch.save(payload, path)
    return path


def payload_of(c, **replace):
    """A payload like the one save_checkpoint writes (with its checksum, when the package has one)."""
    path = saved(c, "template.pt")
    payload = torch.load(path, weights_only=True)
    path.unlink()
    payload.update(replace)
    checksum = getattr(mb.checkpoints, "weights_checksum", None)
    if checksum is not None and "params" in replace:
        payload["checksum"] = checksum(payload["architecture"], payload["params"], payload.get("metadata", {}))
    return payload


def nan_weights(c):
    params = {k: v.clone() for k, v in c.theta.items()}
    params["2.weight"][0, 0] = float("nan")
    return params


# the wider map (issue 16): the step sizes live in a wrapper around the context's own network


def sgd_net(c):
    return mb.MetaSGDNet(c.model)


def lslr_net(c, steps=2):
    return mb.LSLRNet(c.model, steps)


def wrapped_call(c, method, net, params=None, **kwargs):
    return call(c, method, model=net, params=mb.detached(mb.parameters_of(net)) if params is None else params,
                **kwargs)


def wrapped_theta_with(net, name, value):
    out = mb.detached(mb.parameters_of(net))
    out[name] = value
    return out


@dataclass(frozen=True)
class Case:
    id: str
    make: object      # (ctx) -> thunk: the bad call (setup, e.g. writing a file, happens in make)
    error: type
    word: str         # the argument (or what is wrong) that the message must name
    trains: bool = False  # meta_train diverging after some iterations: the model keeps its last finite θ


V, T, C, D, FNF = ValueError, TypeError, CheckpointError, DivergenceError, FileNotFoundError

CASES = [
    # --- scalar options of the methods (numbers and strings)
    Case("maml inner_lr = 0", lambda c: lambda: call(c, "maml", inner_lr=0.0), V, "inner_lr"),
    Case("fomaml inner_lr < 0", lambda c: lambda: call(c, "fomaml", inner_lr=-0.1), V, "inner_lr"),
    Case("reptile inner_lr = 0", lambda c: lambda: call(c, "reptile", inner_lr=0), V, "inner_lr"),
    Case("imaml inner_lr < 0", lambda c: lambda: call(c, "imaml", inner_lr=-1.0), V, "inner_lr"),
    Case("maml inner_lr NaN", lambda c: lambda: call(c, "maml", inner_lr=float("nan")), V, "inner_lr"),
    Case("maml inner_lr inf", lambda c: lambda: call(c, "maml", inner_lr=math.inf), V, "inner_lr"),
    Case("maml inner_lr as a string", lambda c: lambda: call(c, "maml", inner_lr="0.01"), T, "inner_lr"),
    Case("maml inner_lr as a tensor", lambda c: lambda: call(c, "maml", inner_lr=torch.tensor(0.01)), T, "inner_lr"),
    # beyond float32 (the tasks' dtype): torch failed inside its add with "cannot be converted ... without overflow"
    Case("maml inner_lr beyond float32", lambda c: lambda: call(c, "maml", inner_lr=1e39), V, "inner_lr"),
    Case("adapt inner_lr beyond float32", lambda c: lambda: adapt(c, inner_lr=1e300), V, "inner_lr"),
    Case("adaptation_curve inner_lr beyond float32", lambda c: lambda: curve(c, inner_lr=1e39), V, "inner_lr"),
    Case("adapted_logits inner_lr beyond float32", lambda c: lambda: logits(inner_lr=1e300), V, "inner_lr"),
    Case("meta_train inner_lr beyond float32", lambda c: lambda: train(c, inner_lr=1e39), V, "inner_lr"),
    Case("maml inner_steps = 0", lambda c: lambda: call(c, "maml", inner_steps=0), V, "inner_steps"),
    Case("reptile inner_steps < 0", lambda c: lambda: call(c, "reptile", inner_steps=-1), V, "inner_steps"),
    Case("imaml inner_steps = 0", lambda c: lambda: call(c, "imaml", inner_steps=0), V, "inner_steps"),
    Case("maml inner_steps float", lambda c: lambda: call(c, "maml", inner_steps=1.5), T, "inner_steps"),
    Case("maml inner_steps True", lambda c: lambda: call(c, "maml", inner_steps=True), T, "inner_steps"),
    Case("pretrain inner_steps != 0", lambda c: lambda: call(c, "pretrain", inner_steps=2), V, "inner_steps"),
    Case("imaml lam = 0", lambda c: lambda: call(c, "imaml", lam=0.0), V, "lam"),
    Case("imaml lam < 0", lambda c: lambda: call(c, "imaml", lam=-2.0), V, "lam"),
    Case("imaml lam is a bool", lambda c: lambda: call(c, "imaml", lam=True), T, "lam"),
    Case("imaml cg_steps < 0", lambda c: lambda: call(c, "imaml", cg_steps=-1), V, "cg_steps"),
    Case("imaml cg_steps = 0", lambda c: lambda: call(c, "imaml", cg_steps=0), V, "cg_steps"),
    Case("imaml cg_steps float", lambda c: lambda: call(c, "imaml", cg_steps=2.0), T, "cg_steps"),
    Case("imaml cg_damping < 0", lambda c: lambda: call(c, "imaml", cg_damping=-0.1), V, "cg_damping"),
    Case("imaml inner_tol = 0", lambda c: lambda: call(c, "imaml", inner_tol=0.0), V, "inner_tol"),
    Case("imaml first_order=1", lambda c: lambda: call(c, "imaml", first_order=1), T, "first_order"),
    Case("reptile unknown inner_data", lambda c: lambda: call(c, "reptile", inner_data="query"), V, "inner_data"),
    Case("reptile inner_data None", lambda c: lambda: call(c, "reptile", inner_data=None), V, "inner_data"),
    Case("unknown method name", lambda c: lambda: get_method("mamal"), V, "method"),
    Case("method name not a string", lambda c: lambda: get_method(3), V, "method"),
    Case("maml unknown option", lambda c: lambda: call(c, "maml", lam=1.0), T, "lam"),
    Case("fomaml first_order given again", lambda c: lambda: call(c, "fomaml", first_order=False), T, "first_order"),
    # --- flags must be bool
    Case("maml first_order='no'", lambda c: lambda: call(c, "maml", first_order="no"), T, "first_order"),
    Case("maml first_order=1", lambda c: lambda: call(c, "maml", first_order=1), T, "first_order"),
    Case("maml first_order=None", lambda c: lambda: call(c, "maml", first_order=None), T, "first_order"),
    Case("adapt create_graph='yes'", lambda c: lambda: adapt(c, create_graph="yes"), T, "create_graph"),
    Case("adapt create_graph=0", lambda c: lambda: adapt(c, create_graph=0), T, "create_graph"),
    Case("meta_train progress='no'", lambda c: lambda: train(c, progress="no"), T, "progress"),
    Case("meta_train compile='no'", lambda c: lambda: train(c, compile="no"), T, "compile"),
    Case("load_checkpoint into_model='no'", lambda c: (lambda p: lambda: load(c, p, into_model="no"))(saved(c)), T,
         "into_model"),
    Case("ClassificationTasks rotations='yes'",
         lambda c: lambda: mb.ClassificationTasks(torch.zeros(3, 2, 4, 4), ways=2, rotations="yes"), T, "rotations"),
    Case("adaptation_curve on_divergence='ignore'", lambda c: lambda: curve(c, on_divergence="ignore"), V,
         "on_divergence"),
    # --- the loss_fn contract: per-task losses, shape (T,)
    Case("maml loss_fn = F.mse_loss (a scalar)", lambda c: lambda: call(c, "maml", loss_fn=F.mse_loss), V, "loss_fn"),
    Case("fomaml loss_fn scalar", lambda c: lambda: call(c, "fomaml", loss_fn=scalar_mse), V, "loss_fn"),
    Case("reptile loss_fn scalar", lambda c: lambda: call(c, "reptile", loss_fn=scalar_mse), V, "loss_fn"),
    Case("imaml loss_fn scalar", lambda c: lambda: call(c, "imaml", loss_fn=scalar_mse), V, "loss_fn"),
    Case("pretrain loss_fn scalar", lambda c: lambda: call(c, "pretrain", loss_fn=scalar_mse, inner_steps=0), V,
         "loss_fn"),
    Case("adapt loss_fn scalar", lambda c: lambda: adapt(c, loss_fn=F.mse_loss), V, "loss_fn"),
    Case("adaptation_curve loss_fn scalar", lambda c: lambda: curve(c, loss_fn=F.mse_loss), V, "loss_fn"),
    Case("proximal_adaptation_curve loss_fn scalar",
         lambda c: lambda: mb.proximal_adaptation_curve(c.model, c.theta, c.tasks, inner_lr=0.01, max_steps=2, lam=1.0,
                                                        loss_fn=F.mse_loss), V, "loss_fn"),
    Case("meta_train loss_fn scalar", lambda c: lambda: train(c, method_options={"loss_fn": F.mse_loss}), V, "loss_fn"),
    Case("maml loss_fn per shot (T, N)", lambda c: lambda: call(c, "maml", loss_fn=per_shot_mse), V, "loss_fn"),
    Case("maml loss_fn returns a float", lambda c: lambda: call(c, "maml", loss_fn=python_float_loss), T, "loss_fn"),
    Case("maml loss_fn returns (1,)", lambda c: lambda: call(c, "maml", loss_fn=one_loss_mse), V, "loss_fn"),
    Case("maml loss_fn returns integers", lambda c: lambda: call(c, "maml", loss_fn=integer_loss), T, "loss_fn"),
    Case("maml loss_fn not callable", lambda c: lambda: call(c, "maml", loss_fn="mse"), T, "loss_fn"),
    # --- predictions and targets must match exactly (no broadcasting)
    Case("maml y_support with two outputs", lambda c: lambda: call(c, "maml", tasks=batch(
        c, y_support=c.tasks.y_support.expand(2, 3, 2).clone())), V, "y_support"),
    Case("maml y_query with two outputs", lambda c: lambda: call(c, "maml", tasks=batch(
        c, y_query=c.tasks.y_query.expand(2, 4, 2).clone())), V, "y_query"),
    Case("reptile y_support with two outputs", lambda c: lambda: call(c, "reptile", tasks=batch(
        c, y_support=c.tasks.y_support.expand(2, 3, 2).clone())), V, "y_support"),
    Case("imaml y_query with two outputs", lambda c: lambda: call(c, "imaml", tasks=batch(
        c, y_query=c.tasks.y_query.expand(2, 4, 2).clone())), V, "y_query"),
    Case("maml y_support without its last axis, T == K", lambda c: lambda: call(c, "maml", tasks=square_batch(
        c, y_support=torch.zeros(3, 3))), V, "y_support"),
    Case("fomaml y_support without its last axis, T == K", lambda c: lambda: call(c, "fomaml", tasks=square_batch(
        c, y_support=torch.zeros(3, 3))), V, "y_support"),
    Case("pretrain y_query with an extra axis", lambda c: lambda: call(c, "pretrain", inner_steps=0, tasks=batch(
        c, y_query=c.tasks.y_query.unsqueeze(-1))), V, "y_query"),
    Case("adapt y_support with two outputs", lambda c: lambda: adapt(c, y=c.tasks.y_support.expand(2, 3, 2)), V,
         "y_support"),
    Case("adapt y_support of other shot count", lambda c: lambda: adapt(c, y=torch.zeros(2, 5, 1)), V, "y_support"),
    Case("adaptation_curve y_query with two outputs", lambda c: lambda: curve(c, tasks=batch(
        c, y_query=c.tasks.y_query.expand(2, 4, 2).clone())), V, "y_query"),
    Case("mse_per_task broadcasting targets", lambda c: lambda: mb.mse_per_task(torch.zeros(3, 3, 1), torch.zeros(3, 3)),
         V, "targets"),
    Case("cross_entropy_per_task labels (T, N, 1)",
         lambda c: lambda: mb.cross_entropy_per_task(torch.zeros(2, 4, 3), torch.zeros(2, 4, 1, dtype=torch.long)), V,
         "labels"),
    Case("classification labels out of range",
         lambda c: lambda: conv_call(replace={"y_support": torch.tensor([[0, 0, 1, 7]] * 2)}), V, "y_support"),
    Case("classification float labels",
         lambda c: lambda: conv_call(replace={"y_support": torch.tensor([[0., 0., 1., 1.]] * 2)}), T, "y_support"),
    Case("regression with mse and integer targets", lambda c: lambda: call(c, "maml", tasks=batch(
        c, y_support=c.tasks.y_support.round().long(), y_query=c.tasks.y_query.round().long())), T, "y_support"),
    # --- θ must match the model's parameters in names and shapes
    Case("maml θ tensor of the wrong shape", lambda c: lambda: call(c, "maml", params=theta_with(
        c, "2.weight", torch.zeros(4, 3))), V, "2.weight"),
    Case("fomaml θ tensor transposed", lambda c: lambda: call(c, "fomaml", params=theta_with(
        c, "0.weight", c.theta["0.weight"].t())), V, "0.weight"),
    Case("reptile θ tensor of the wrong shape", lambda c: lambda: call(c, "reptile", params=theta_with(
        c, "4.bias", torch.zeros(2))), V, "4.bias"),
    Case("imaml θ tensor of the wrong shape", lambda c: lambda: call(c, "imaml", params=theta_with(
        c, "0.bias", torch.zeros(5))), V, "0.bias"),
    Case("pretrain θ tensor of the wrong shape", lambda c: lambda: call(c, "pretrain", inner_steps=0, params=theta_with(
        c, "2.bias", torch.zeros(4, 1))), V, "2.bias"),
    Case("maml θ with an extra key", lambda c: lambda: call(c, "maml", params=theta_with(
        c, "6.weight", torch.zeros(1, 1))), V, "6.weight"),
    Case("reptile θ with an extra key", lambda c: lambda: call(c, "reptile", params=theta_with(
        c, "head.bias", torch.zeros(1))), V, "head.bias"),
    Case("maml θ missing a key", lambda c: lambda: call(c, "maml", params=theta_without(c, "4.bias")), V, "4.bias"),
    Case("imaml θ missing a key", lambda c: lambda: call(c, "imaml", params=theta_without(c, "0.weight")), V,
         "0.weight"),
    Case("pretrain θ missing a key", lambda c: lambda: call(c, "pretrain", inner_steps=0,
                                                            params=theta_without(c, "2.weight")), V, "2.weight"),
    Case("maml θ task-batched", lambda c: lambda: call(c, "maml", params=mb.batch_parameters(c.theta, 2)), V,
         "params"),
    Case("maml θ of integers", lambda c: lambda: call(c, "maml", params=theta_map(c, lambda v: v.long())), T, "params"),
    Case("maml θ holding a NumPy array", lambda c: lambda: call(c, "maml", params=theta_with(
        c, "0.bias", c.theta["0.bias"].numpy())), T, "0.bias"),
    Case("maml θ empty dict", lambda c: lambda: call(c, "maml", params={}), T, "params"),
    Case("convnet θ tensor of the wrong shape", lambda c: lambda: conv_call(params=dict(
        conv_ctx()[1], **{"head.weight": torch.zeros(2, 3)})), V, "head.weight"),
    Case("adapt with unbatched θ", lambda c: lambda: adapt(c, params=c.theta), V, "params"),
    Case("adapt θ batched for 3 tasks, data for 2", lambda c: lambda: adapt(c, params=batched(c, 3)), V, "params"),
    Case("adapt θ of the wrong shape", lambda c: lambda: adapt(c, params=dict(
        batched(c), **{"2.weight": torch.zeros(2, 4, 3, requires_grad=True)})), V, "2.weight"),
    Case("adapt θ missing a key", lambda c: lambda: adapt(c, params={k: v for k, v in batched(c).items()
                                                                     if k != "0.bias"}), V, "0.bias"),
    Case("adaptation_curve θ of the wrong shape", lambda c: lambda: curve(c, params=theta_with(
        c, "4.weight", torch.zeros(4, 1))), V, "4.weight"),
    Case("adaptation_curve θ task-batched", lambda c: lambda: curve(c, params=mb.batch_parameters(c.theta, 2)), V,
         "params"),
    Case("adaptation_curve θ with an extra key", lambda c: lambda: curve(c, params=theta_with(
        c, "extra", torch.zeros(1))), V, "extra"),
    Case("params not a dict", lambda c: lambda: call(c, "reptile", params=[torch.zeros(3)]), T, "params"),
    Case("params of another dtype", lambda c: lambda: call(c, "imaml", params=theta_map(c, torch.Tensor.double)), T,
         "params"),
    Case("params on another device", lambda c: lambda: call(c, "maml", params=theta_map(c, lambda v: v.to("meta"))), V,
         "params"),
    # --- inputs: the model's input size, floating dtype, task-batched
    Case("maml inputs with two features", lambda c: lambda: call(c, "maml", tasks=batch(
        c, x_support=torch.zeros(2, 3, 2), x_query=torch.zeros(2, 4, 2))), V, "x_support"),
    Case("reptile inputs with two features", lambda c: lambda: call(c, "reptile", tasks=batch(
        c, x_support=torch.zeros(2, 3, 2), x_query=torch.zeros(2, 4, 2))), V, "x_support"),
    Case("imaml inputs without a feature axis", lambda c: lambda: call(c, "imaml", tasks=batch(
        c, x_support=torch.zeros(2, 3), x_query=torch.zeros(2, 4))), V, "x_support"),
    Case("adaptation_curve inputs with two features", lambda c: lambda: curve(c, tasks=batch(
        c, x_support=torch.zeros(2, 3, 2), x_query=torch.zeros(2, 4, 2))), V, "x_support"),
    Case("adapt inputs with two features", lambda c: lambda: adapt(c, x=torch.zeros(2, 3, 2)), V, "x_support"),
    Case("adapt inputs for 3 tasks, θ for 2", lambda c: lambda: adapt(c, x=torch.zeros(3, 3, 1),
                                                                    y=torch.zeros(3, 3, 1)), V, "x_support"),
    Case("adapt inputs not a tensor", lambda c: lambda: adapt(c, x=[[0.0]]), T, "x_support"),
    Case("adapt NaN in the inputs", lambda c: lambda: adapt(c, x=with_value(c, "x_support", 0, float("nan"))), V,
         "x_support"),
    Case("adapt inf in the targets", lambda c: lambda: adapt(c, y=with_value(c, "y_support", 2, float("inf"))), V,
         "y_support"),
    Case("integer-typed inputs", lambda c: lambda: batch(c, x_support=c.tasks.x_support.round().long(),
                                                         x_query=c.tasks.x_query.round().long()), T, "x_support"),
    Case("boolean targets", lambda c: lambda: batch(c, y_support=c.tasks.y_support > 0), T, "y_support"),
    Case("complex inputs", lambda c: lambda: batch(c, x_support=c.tasks.x_support.to(torch.complex64),
                                                   x_query=c.tasks.x_query.to(torch.complex64)), T, "x_support"),
    Case("convnet images of the wrong size", lambda c: lambda: conv_call(replace={
        "x_support": torch.zeros(2, 4, 1, 5, 5), "x_query": torch.zeros(2, 6, 1, 5, 5)}), V, "x_support"),
    Case("convnet images without a channel axis", lambda c: lambda: conv_call(replace={
        "x_support": torch.zeros(2, 4, 4, 4), "x_query": torch.zeros(2, 6, 4, 4)}), V, "x_support"),
    Case("adapted_predictions x with two features",
         lambda c: lambda: mb.adapted_predictions(c.model, c.theta, c.tasks, torch.zeros(2, 5, 2), inner_lr=0.01,
                                                  steps=[0, 1]), V, "x"),
    Case("tasks not a TaskBatch", lambda c: lambda: call(c, "maml", tasks=(1, 2, 3, 4)), T, "tasks"),
    Case("adaptation_curve tasks not a TaskBatch", lambda c: lambda: curve(c, tasks=(1, 2, 3, 4)), T, "tasks"),
    Case("zero support shots", lambda c: lambda: mb.SinusoidTasks().sample(2, 0, 4, generator=torch.Generator()), V,
         "support_shots"),
    Case("zero query shots in a TaskBatch", lambda c: lambda: batch(c, x_query=torch.zeros(2, 0, 1),
                                                                    y_query=torch.zeros(2, 0, 1)), V, "x_query"),
    Case("support x/y shot mismatch", lambda c: lambda: batch(c, y_support=torch.zeros(2, 5, 1)), V, "y_support"),
    Case("support/query input shape mismatch", lambda c: lambda: batch(c, x_query=torch.zeros(2, 4, 2)), V, "x_query"),
    Case("task count mismatch", lambda c: lambda: batch(c, y_query=torch.zeros(3, 4, 1)), V, "y_query"),
    Case("tensors of mixed dtypes", lambda c: lambda: batch(c, y_query=c.tasks.y_query.double()), T, "y_query"),
    Case("tensors on mixed devices", lambda c: lambda: batch(c, x_query=c.tasks.x_query.to("meta")), V, "x_query"),
    # --- non-finite values: refused up front, or DivergenceError with advice
    Case("NaN in y_support", lambda c: lambda: batch(c, y_support=with_value(c, "y_support", 1, float("nan"))), V,
         "y_support"),
    Case("inf in x_query", lambda c: lambda: batch(c, x_query=with_value(c, "x_query", 0, float("inf"))), V,
         "x_query"),
    Case("maml NaN in θ", lambda c: lambda: call(c, "maml", params=nan_at(c, "0.weight")), V, "0.weight"),
    Case("fomaml inf in θ", lambda c: lambda: call(c, "fomaml", params=nan_at(c, "2.bias", math.inf)), V, "2.bias"),
    Case("reptile NaN in θ", lambda c: lambda: call(c, "reptile", params=nan_at(c, "4.weight")), V, "4.weight"),
    Case("imaml NaN in θ", lambda c: lambda: call(c, "imaml", params=nan_at(c, "0.bias")), V, "0.bias"),
    Case("pretrain −inf in θ", lambda c: lambda: call(c, "pretrain", inner_steps=0, params=nan_at(
        c, "2.weight", -math.inf)), V, "2.weight"),
    Case("adaptation_curve NaN in θ", lambda c: lambda: curve(c, params=nan_at(c, "0.weight")), V, "0.weight"),
    Case("adapt NaN in θ", lambda c: lambda: adapt(c, params=mb.detached(mb.batch_parameters(
        nan_at(c, "2.bias"), 2), requires_grad=True)), V, "2.bias"),
    Case("meta_train NaN in the model's parameters",
         lambda c: (c.model[0].bias.data.fill_(float("nan")), lambda: train(c))[1], V, "0.bias"),
    Case("maml diverging inner_lr", lambda c: lambda: call(c, "maml", inner_lr=1e6, inner_steps=5), D, "inner_lr"),
    Case("fomaml diverging inner_lr", lambda c: lambda: call(c, "fomaml", inner_lr=1e6, inner_steps=5), D, "inner_lr"),
    Case("reptile diverging inner_lr", lambda c: lambda: call(c, "reptile", inner_lr=1e6, inner_steps=5), D,
         "inner_lr"),
    Case("pretrain overflowing θ", lambda c: lambda: call(c, "pretrain", inner_steps=0, params=theta_map(
        c, lambda v: v * 1e30)), D, "params"),
    Case("imaml overflowing θ", lambda c: lambda: call(c, "imaml", params=theta_map(c, lambda v: v * 1e30)), D,
         "params"),
    Case("adapt diverging inner_lr", lambda c: lambda: adapt(c, inner_lr=1e6, inner_steps=5), D, "inner_lr"),
    Case("adaptation_curve diverging inner_lr", lambda c: lambda: curve(c, inner_lr=1e6, max_steps=5), D, "inner_lr"),
    Case("mean_and_ci95 of NaN values", lambda c: lambda: mb.mean_and_ci95(torch.tensor([1.0, float("nan")])), V,
         "values"),
    Case("mean_and_ci95 of a (T, Q) table", lambda c: lambda: mb.mean_and_ci95(torch.rand(4, 5)), V, "values"),
    # --- evaluation options
    Case("adaptation_curve max_steps < 0", lambda c: lambda: curve(c, max_steps=-1), V, "max_steps"),
    Case("adaptation_curve inner_lr = 0", lambda c: lambda: curve(c, inner_lr=0.0), V, "inner_lr"),
    Case("proximal_adaptation_curve lam = 0",
         lambda c: lambda: mb.proximal_adaptation_curve(c.model, c.theta, c.tasks, inner_lr=0.01, max_steps=2, lam=0.0),
         V, "lam"),
    Case("adapted_predictions steps empty",
         lambda c: lambda: mb.adapted_predictions(c.model, c.theta, c.tasks, c.tasks.x_query, inner_lr=0.01, steps=[]),
         V, "steps"),
    Case("adapt inner_lr as a string", lambda c: lambda: adapt(c, inner_lr="big"), T, "inner_lr"),
    Case("adapt inner_steps < 0", lambda c: lambda: adapt(c, inner_steps=-2), V, "inner_steps"),
    Case("batch_parameters num_tasks = 0", lambda c: lambda: mb.batch_parameters(c.theta, 0), V, "num_tasks"),
    Case("batch_parameters params not a dict", lambda c: lambda: mb.batch_parameters([torch.zeros(2)], 2), T, "params"),
    # --- meta_train
    Case("meta_train outer_lr = 0", lambda c: lambda: train(c, outer_lr=0.0), V, "outer_lr"),
    Case("meta_train outer_lr < 0", lambda c: lambda: train(c, outer_lr=-1e-3), V, "outer_lr"),
    Case("meta_train inner_lr = 0", lambda c: lambda: train(c, inner_lr=0.0), V, "inner_lr"),
    Case("meta_train unknown method", lambda c: lambda: train(c, method="relationnet"), V, "method"),
    Case("meta_train iterations = 0", lambda c: lambda: train(c, iterations=0), V, "iterations"),
    Case("meta_train meta_batch_size = 0", lambda c: lambda: train(c, meta_batch_size=0), V, "meta_batch_size"),
    Case("meta_train unknown optimizer", lambda c: lambda: train(c, optimizer="rmsprop"), V, "optimizer"),
    Case("meta_train generator not a Generator", lambda c: lambda: train(c, generator=0), T, "generator"),
    Case("meta_train imaml lam < 0", lambda c: lambda: train(c, method="imaml", method_options={"lam": -1.0}), V,
         "lam"),
    Case("meta_train pretrain with inner_steps", lambda c: lambda: train(c, method="pretrain", inner_steps=5), V,
         "inner_steps"),
    Case("meta_train an option the method ignores", lambda c: lambda: train(c, method="maml",
                                                                            method_options={"lam": 1.0}), V, "lam"),
    Case("meta_train fomaml with first_order", lambda c: lambda: train(c, method="fomaml",
                                                                       method_options={"first_order": False}), V,
         "first_order"),
    Case("meta_train inner_lr inside method_options", lambda c: lambda: train(c, method_options={"inner_lr": 0.1}), V,
         "inner_lr"),
    Case("meta_train method_options not a dict", lambda c: lambda: train(c, method_options=[("lam", 1.0)]), T,
         "method_options"),
    Case("meta_train family without sample", lambda c: lambda: mb.meta_train(
        c.model, object(), iterations=1, generator=torch.Generator(), progress=False), T, "family"),
    Case("meta_train model not a Module", lambda c: lambda: mb.meta_train(
        c.theta, mb.SinusoidTasks(), iterations=1, generator=torch.Generator(), progress=False), T, "model"),
    Case("meta_train compile with step_fn", lambda c: lambda: train(c, compile=True, step_fn=lambda *a, **k: None), V,
         "step_fn"),
    Case("meta_train diverging outer_lr", lambda c: lambda: train(c, iterations=30, outer_lr=1e6, inner_steps=3), D,
         "outer_lr", trains=True),
    Case("meta_train an unknown setting", lambda c: lambda: train(c, inner_step=3), T, "inner_step"),
    Case("meta_train settings not TrainingSettings", lambda c: lambda: mb.meta_train(
        c.model, mb.SinusoidTasks(), {"iterations": 1}, generator=torch.Generator(), progress=False), T, "settings"),
    Case("meta_train without iterations", lambda c: lambda: mb.meta_train(
        c.model, mb.SinusoidTasks(), generator=torch.Generator(), progress=False), T, "iterations"),
    Case("meta_train callbacks not a list", lambda c: lambda: train(c, callbacks=print), T, "callbacks"),
    Case("TrainingSettings lr_schedule factor 0", lambda c: lambda: mb.TrainingSettings(
        iterations=1, lr_schedule=((10, 0.0),)), V, "lr_schedule"),
    Case("TrainingSettings lr_schedule not pairs", lambda c: lambda: mb.TrainingSettings(
        iterations=1, lr_schedule=(10, 0.5)), V, "lr_schedule"),
    # --- recipes
    Case("recipes.load unknown name", lambda c: lambda: mb.recipes.load("sinusoid_nope"), V, "name"),
    Case("Recipe sinusoid with Omniglot fields", lambda c: lambda: mb.recipes.Recipe(
        "sinusoid", mb.TrainingSettings(iterations=1), ways=5), V, "Omniglot"),
    Case("Recipe unknown family", lambda c: lambda: mb.recipes.Recipe(
        "cifar", mb.TrainingSettings(iterations=1)), V, "family"),
    Case("Recipe schedule for another method", lambda c: lambda: mb.recipes.Recipe(
        "omniglot", mb.TrainingSettings(iterations=1, support_shots=1, query_shots=1), ways=5, filters=4,
        test_steps=1, schedule={"anneal_iterations": 10}), V, "schedule"),
    # --- constructors
    Case("SinusoidMLP(hidden=40)", lambda c: lambda: mb.SinusoidMLP(hidden=40), T, "hidden"),
    Case("SinusoidMLP hidden with a zero", lambda c: lambda: mb.SinusoidMLP(hidden=(40, 0)), V, "hidden"),
    Case("SinusoidMLP hidden of floats", lambda c: lambda: mb.SinusoidMLP(hidden=(40.0, 40.0)), T, "hidden"),
    Case("SinusoidMLP hidden of bools", lambda c: lambda: mb.SinusoidMLP(hidden=(True,)), T, "hidden"),
    Case("SinusoidMLP hidden empty", lambda c: lambda: mb.SinusoidMLP(hidden=()), V, "hidden"),
    Case("SinusoidMLP in_features = 0", lambda c: lambda: mb.SinusoidMLP(in_features=0), V, "in_features"),
    Case("SinusoidMLP out_features a string", lambda c: lambda: mb.SinusoidMLP(out_features="1"), T, "out_features"),
    Case("ConvNet ways = 0", lambda c: lambda: mb.ConvNet(ways=0), V, "ways"),
    Case("ConvNet filters float", lambda c: lambda: mb.ConvNet(filters=2.5), T, "filters"),
    Case("ConvNet image too small for its blocks", lambda c: lambda: mb.ConvNet(blocks=5, image_size=28), V,
         "image_size"),
    Case("SinusoidTasks reversed amplitude_range", lambda c: lambda: mb.SinusoidTasks(amplitude_range=(5, 0.1)), V,
         "amplitude_range"),
    Case("SinusoidTasks amplitude_range a number", lambda c: lambda: mb.SinusoidTasks(amplitude_range=5), T,
         "amplitude_range"),
    Case("SinusoidTasks x_range with NaN", lambda c: lambda: mb.SinusoidTasks(x_range=(float("nan"), 1.0)), V,
         "x_range"),
    Case("SinusoidTasks phase_range of strings", lambda c: lambda: mb.SinusoidTasks(phase_range=("0", "pi")), T,
         "phase_range"),
    Case("SinusoidTasks.sample integer dtype", lambda c: lambda: mb.SinusoidTasks().sample(
        2, 3, 4, generator=torch.Generator(), dtype=torch.int64), T, "dtype"),
    Case("SinusoidTasks.sample num_tasks float", lambda c: lambda: mb.SinusoidTasks().sample(
        2.0, 3, 4, generator=torch.Generator()), T, "num_tasks"),
    Case("ClassificationTasks images of int32", lambda c: lambda: mb.ClassificationTasks(
        torch.zeros(3, 2, 4, 4, dtype=torch.int32), ways=2), T, "images"),
    Case("ClassificationTasks more ways than classes", lambda c: lambda: mb.ClassificationTasks(
        torch.zeros(3, 2, 4, 4), ways=5), V, "ways"),
    Case("ClassificationTasks images 3-D", lambda c: lambda: mb.ClassificationTasks(torch.zeros(3, 4, 4), ways=2), V,
         "images"),
    # --- checkpoints
    Case("checkpoint of another architecture", lambda c: (lambda p: lambda: mb.load_checkpoint(
        p, mb.SinusoidMLP(hidden=(4, 4))))(mb.save_checkpoint(c.tmp / "a.pt", mb.SinusoidMLP(hidden=(3,)))), C,
         "architecture"),
    Case("a torch file that is not a checkpoint", lambda c: (lambda p: lambda: load(c, p))(
        hand_made(c, "b.pt", [torch.zeros(3)])), C, "not a mamlbook"),
    Case("a text file as checkpoint", lambda c: (lambda p: lambda: load(c, p))(
        (c.tmp / "c.txt").write_text("not a checkpoint at all") and c.tmp / "c.txt"), C, "not a mamlbook"),
    Case("an empty file as checkpoint", lambda c: (lambda p: lambda: load(c, p))(
        (c.tmp / "e.pt").write_bytes(b"") or c.tmp / "e.pt"), C, "e.pt"),
    Case("a zip that is not a torch file", lambda c: (lambda p: lambda: load(c, p))(
        (zipfile.ZipFile(c.tmp / "z.pt", "w").close(), c.tmp / "z.pt")[1]), C, "z.pt"),
    Case("a missing checkpoint", lambda c: lambda: mb.load_checkpoint(c.tmp / "none.pt", mb.SinusoidMLP()), FNF,
         "does not exist"),
    Case("unknown shipped checkpoint", lambda c: lambda: mb.pretrained_path("no-such-run"), FNF, "no-such-run"),
    Case("checkpoint truncated to 90%", lambda c: (lambda p: lambda: load(c, p))(truncated(c, 0.9)), C, "run.pt"),
    Case("checkpoint truncated to 50%", lambda c: (lambda p: lambda: load(c, p))(truncated(c, 0.5)), C, "run.pt"),
    Case("checkpoint truncated to 10 bytes", lambda c: (lambda p: lambda: load(c, p))(truncated(c, 0.002)), C,
         "run.pt"),
    Case("checkpoint with a corrupted pickle", lambda c: (lambda p: lambda: load(c, p))(corrupted_pickle(c)), C,
         "run.pt"),
    Case("checkpoint with a flipped byte in the weights", lambda c: (lambda p: lambda: load(c, p))(
        flipped(c, "data/2")), C, "checksum"),
    Case("checkpoint with a flipped byte in the last weights", lambda c: (lambda p: lambda: load(c, p))(
        flipped(c, "data/5", 0.0)), C, "checksum"),
    Case("checkpoint holding NaN weights", lambda c: (lambda p: lambda: load(c, p))(
        hand_made(c, "nan.pt", payload_of(c, params=nan_weights(c)))), C, "NaN"),
    Case("checkpoint without a checksum", lambda c: (lambda p: lambda: load(c, p))(
        hand_made(c, "old.pt", {k: v for k, v in payload_of(c).items() if k != "checksum"})), C, "checksum"),
    Case("checkpoint whose params are not tensors", lambda c: (lambda p: lambda: load(c, p))(
        hand_made(c, "p.pt", payload_of(c, params={k: v.tolist() for k, v in c.theta.items()}))), C, "params"),
    Case("checkpoint whose params are a list", lambda c: (lambda p: lambda: load(c, p))(
        hand_made(c, "l.pt", payload_of(c, params=list(c.theta.values())))), C, "params"),
    Case("checkpoint with a parameter of the wrong shape", lambda c: (lambda p: lambda: load(c, p))(
        hand_made(c, "s.pt", payload_of(c, params=dict(c.theta, **{"0.weight": torch.zeros(3, 1)})))), C, "0.weight"),
    Case("save_checkpoint of NaN weights", lambda c: lambda: mb.save_checkpoint(c.tmp / "n.pt", c.model,
                                                                                nan_weights(c)), V, "2.weight"),
    Case("save_checkpoint params of the wrong shape", lambda c: lambda: mb.save_checkpoint(
        c.tmp / "w.pt", c.model, theta_with(c, "0.weight", torch.zeros(3, 1))), V, "0.weight"),
    Case("save_checkpoint params with an extra key", lambda c: lambda: mb.save_checkpoint(
        c.tmp / "x.pt", c.model, theta_with(c, "extra", torch.zeros(1))), V, "extra"),
    Case("save_checkpoint model not a Module", lambda c: lambda: mb.save_checkpoint(c.tmp / "m.pt", c.theta), T,
         "model"),
    Case("save_checkpoint metadata not a dict", lambda c: lambda: mb.save_checkpoint(c.tmp / "d.pt", c.model,
                                                                                     metadata=[1, 2]), T, "metadata"),
    Case("load_checkpoint model not a Module", lambda c: (lambda p: lambda: mb.load_checkpoint(p, c.theta))(saved(c)),
         T, "model"),
    # --- Hessian tools
    Case("conjugate_gradient steps < 0", lambda c: lambda: mb.conjugate_gradient(lambda v: v, torch.ones(3), -1), V,
         "steps"),
    Case("hessian loss_function with a scalar loss_fn", lambda c: lambda: mb.full_hessian(mb.loss_function(
        c.model, c.tasks.x_support[0], c.tasks.y_support[0], loss_fn=F.mse_loss), c.theta), V, "loss_fn"),
    Case("hessian loss_function y of another shape", lambda c: lambda: mb.hessian.gradient(mb.loss_function(
        c.model, c.tasks.x_support[0], c.tasks.y_support[0, :, 0]), c.theta), V, "targets"),
    Case("hessian loss_function loss_fn not callable", lambda c: lambda: mb.loss_function(
        c.model, c.tasks.x_support[0], c.tasks.y_support[0], loss_fn=None)(c.theta), T, "loss_fn"),
    Case("hessian inner_lr beyond float32", lambda c: lambda: mb.inner_step_jacobian(
        lambda q: q["0.bias"].square().sum(), c.theta, 1e39), V, "inner_lr"),  # quietly gave inf entries
    Case("hessian inner_lr = 0", lambda c: lambda: mb.inner_step_jacobian(lambda q: q["0.bias"].sum(), c.theta, 0.0), V,
         "inner_lr"),
    # --- the wider map (issue 16): ANIL, Meta-SGD, MAML++, Prototypical Networks
    Case("anil inner_lr = 0", lambda c: lambda: call(c, "anil", inner_lr=0.0), V, "inner_lr"),
    Case("anil inner_steps = 0", lambda c: lambda: call(c, "anil", inner_steps=0), V, "inner_steps"),
    Case("anil first_order='no'", lambda c: lambda: call(c, "anil", first_order="no"), T, "first_order"),
    Case("anil loss_fn scalar", lambda c: lambda: call(c, "anil", loss_fn=scalar_mse), V, "loss_fn"),
    Case("anil unknown option", lambda c: lambda: call(c, "anil", lam=1.0), T, "lam"),
    Case("anil y_query with two outputs", lambda c: lambda: call(c, "anil", tasks=batch(
        c, y_query=c.tasks.y_query.expand(2, 4, 2).clone())), V, "y_query"),
    Case("anil model without a declared head", lambda c: lambda: call(
        c, "anil", model=torch.nn.Sequential(*c.model), params=c.theta), T, "model"),
    Case("anil NaN in θ", lambda c: lambda: call(c, "anil", params=nan_at(c, "4.weight")), V, "4.weight"),
    Case("meta_sgd on a plain network", lambda c: lambda: call(c, "meta_sgd"), T, "model"),
    Case("meta_sgd inner_lr < 0", lambda c: lambda: wrapped_call(c, "meta_sgd", sgd_net(c), inner_lr=-0.1), V,
         "inner_lr"),
    Case("meta_sgd inner_steps = 0", lambda c: lambda: wrapped_call(c, "meta_sgd", sgd_net(c), inner_steps=0), V,
         "inner_steps"),
    Case("meta_sgd first_order=None", lambda c: lambda: wrapped_call(c, "meta_sgd", sgd_net(c), first_order=None), T,
         "first_order"),
    Case("meta_sgd params without step sizes", lambda c: lambda: wrapped_call(
        c, "meta_sgd", sgd_net(c), params={f"net.{k}": v for k, v in c.theta.items()}), V, "step_size"),
    Case("meta_sgd NaN step size", lambda c: (lambda net: lambda: wrapped_call(c, "meta_sgd", net, params=wrapped_theta_with(
        net, "step_size.0_weight", torch.full((4, 1), float("nan"))))) (sgd_net(c)), V, "step_size.0_weight"),
    Case("meta_sgd step size of the wrong shape", lambda c: (lambda net: lambda: wrapped_call(
        c, "meta_sgd", net, params=wrapped_theta_with(net, "step_size.0_weight", torch.ones(4))))(sgd_net(c)), V,
         "step_size.0_weight"),
    Case("meta_sgd loss_fn scalar", lambda c: lambda: wrapped_call(c, "meta_sgd", sgd_net(c), loss_fn=scalar_mse), V,
         "loss_fn"),
    Case("MetaSGDNet init = 0", lambda c: lambda: mb.MetaSGDNet(c.model, init=0.0), V, "init"),
    Case("MetaSGDNet net not a Module", lambda c: lambda: mb.MetaSGDNet(c.theta), T, "net"),
    Case("mamlpp on a plain network", lambda c: lambda: call(c, "mamlpp", inner_steps=2), T, "model"),
    Case("mamlpp inner_steps other than the model's", lambda c: lambda: wrapped_call(
        c, "mamlpp", lslr_net(c, 2), inner_steps=3), V, "inner_steps"),
    Case("mamlpp step_weights not summing to 1", lambda c: lambda: wrapped_call(
        c, "mamlpp", lslr_net(c, 2), inner_steps=2, step_weights=(0.5, 0.6)), V, "step_weights"),
    Case("mamlpp step_weights of the wrong length", lambda c: lambda: wrapped_call(
        c, "mamlpp", lslr_net(c, 2), inner_steps=2, step_weights=(1.0,)), V, "step_weights"),
    Case("mamlpp negative step weight", lambda c: lambda: wrapped_call(
        c, "mamlpp", lslr_net(c, 2), inner_steps=2, step_weights=(-0.5, 1.5)), V, "step_weights[0]"),
    Case("mamlpp step weight NaN", lambda c: lambda: wrapped_call(
        c, "mamlpp", lslr_net(c, 2), inner_steps=2, step_weights=(float("nan"), 1.0)), V, "step_weights[0]"),
    Case("mamlpp first_order=1", lambda c: lambda: wrapped_call(
        c, "mamlpp", lslr_net(c, 2), inner_steps=2, first_order=1), T, "first_order"),
    Case("mamlpp unknown option", lambda c: lambda: wrapped_call(
        c, "mamlpp", lslr_net(c, 2), inner_steps=2, lam=1.0), T, "lam"),
    Case("LSLRNet steps = 0", lambda c: lambda: mb.LSLRNet(c.model, 0), V, "steps"),
    Case("MAMLPlusPlusSchedule anneal_iterations = 0", lambda c: lambda: mb.MAMLPlusPlusSchedule(0), V,
         "anneal_iterations"),
    Case("multi_step_weights iteration < 0", lambda c: lambda: mb.algorithms.multi_step_weights(-1, 3, 10), V,
         "iteration"),
    Case("protonet inner_steps != 0", lambda c: lambda: conv_call("protonet", inner_steps=1), V, "inner_steps"),
    Case("protonet inner_lr = 0", lambda c: lambda: conv_call("protonet", inner_steps=0, inner_lr=0.0), V,
         "inner_lr"),
    Case("protonet on regression targets", lambda c: lambda: call(c, "protonet", inner_steps=0), T, "y_support"),
    Case("protonet a class missing from the support set", lambda c: lambda: conv_call(
        "protonet", inner_steps=0, replace={"y_support": torch.tensor([[0, 0, 2, 2]] * 2)}), V, "y_support"),
    Case("protonet query label outside the support classes", lambda c: lambda: conv_call(
        "protonet", inner_steps=0, replace={"y_query": torch.tensor([[0, 0, 0, 1, 1, 2]] * 2)}), V, "y_query"),
    Case("protonet loss_fn scalar", lambda c: lambda: conv_call("protonet", inner_steps=0, loss_fn=lambda p, y: (
        F.cross_entropy(p.flatten(0, 1), y.flatten()))), V,
         "loss_fn"),
    Case("meta_train protonet with inner_steps", lambda c: lambda: train(c, method="protonet", inner_steps=2), V,
         "inner_steps"),
    Case("meta_train meta_sgd on a plain network", lambda c: lambda: train(c, method="meta_sgd"), T, "model"),
    Case("TrainingSettings maml inner_steps = 0", lambda c: lambda: mb.TrainingSettings(iterations=1, inner_steps=0), V,
         "inner_steps"),
    # --- curvature and solvers: a vector or a matrix-vector product of the wrong shape, a Hessian too large
    Case("hessian_vector_product v of the wrong shape", lambda c: lambda: mb.hessian_vector_product(
        mb.loss_function(c.model, c.tasks.x_support[0], c.tasks.y_support[0]), c.theta,
        {k: torch.zeros(2) for k in c.theta}), V, "v["),
    Case("loss_function x of the wrong input shape", lambda c: lambda: mb.loss_function(
        c.model, torch.zeros(3, 2), torch.zeros(3, 1))(c.theta), V, "x must have shape"),
    Case("full_hessian of a ConvNet", lambda c: lambda: mb.full_hessian(mb.loss_function(
        mb.ConvNet(), torch.zeros(2, 1, 28, 28), torch.zeros(2, dtype=torch.long), mb.cross_entropy_per_task),
        mb.detached(mb.parameters_of(mb.ConvNet()))), V, "hessian_vector_product"),
    Case("conjugate_gradient matvec of the wrong shape", lambda c: lambda: mb.conjugate_gradient(
        lambda v: v[:2], torch.ones(3), 3), V, "matvec"),
    Case("conjugate_gradient x0 of the wrong shape", lambda c: lambda: mb.conjugate_gradient(
        lambda v: v, torch.ones(3), 3, torch.zeros(2)), V, "x0"),
    # a (T1, T2, P) b was solved without a word, though the docstring promises (P,) or (T, P)
    Case("conjugate_gradient 3-D b", lambda c: lambda: mb.conjugate_gradient(
        lambda v: v, torch.ones(2, 3, 4), 3), V, "b must be (P,) or (T, P), got shape (2, 3, 4)"),
    # torch.cat's error for the first ("expected a non-empty list"), a dimension error for the second
    Case("flatten_params of nothing", lambda c: lambda: mb.flatten_params({}), V,
         "params must hold at least one tensor"),
    Case("flatten_params of θ with batch_dims=1", lambda c: lambda: mb.flatten_params(
        mb.parameters_of(mb.SinusoidMLP()), batch_dims=1), V, "first batch_dims=1 dimensions, got shapes [(40, 1)"),
    # --- devices: a name that is no device, or CUDA where there is none (torch's errors name neither)
    Case("meta_train device 'tpu'", lambda c: lambda: train(c, device="tpu"), V, "device"),
    Case("SinusoidTasks.sample device 'tpu'", lambda c: lambda: mb.SinusoidTasks().sample(
        2, 3, 4, generator=torch.Generator(), device="tpu"), V, "device"),
    Case("TaskBatch.to device 'tpu'", lambda c: lambda: c.tasks.to("tpu"), V, "device"),
    Case("sinusoid_test_tasks device of a number", lambda c: lambda: mb.protocol.sinusoid_test_tasks(device=1.5), V,
         "device"),
    Case("top_eigenvalue device 'tpu'", lambda c: lambda: mb.solvers.top_eigenvalue(lambda v: v, 3, device="tpu"), V,
         "device"),
    Case("meta_train device 'meta' (no data)", lambda c: lambda: train(c, device="meta"), V, "cpu, cuda"),
    Case("get_device 'cpu:5' (torch ignores a CPU index)", lambda c: lambda: mb.get_device("cpu:5"), V,
         "no device index"),
    Case("get_device empty", lambda c: lambda: mb.get_device(""), V, "is not a torch device"),
    Case("describe_device None", lambda c: lambda: mb.describe_device(None), V, "device"),
    Case("seed_everything beyond 64 bits", lambda c: lambda: mb.seed_everything(2**64), V, "2**64 - 1"),
    # --- what used to be ignored or broadcast silently (a bad-input review, 2026-12-06)
    Case("TrainingSettings lr_schedule out of order", lambda c: lambda: mb.TrainingSettings(
        iterations=10, lr_schedule=((5, 0.1), (1, 0.5))), V, "increase strictly"),
    Case("TrainingSettings lr_schedule iteration twice", lambda c: lambda: mb.TrainingSettings(
        iterations=10, lr_schedule=((1, 0.5), (1, 0.2))), V, "increase strictly"),
    Case("ClassificationTasks float images in 0..255", lambda c: lambda: mb.ClassificationTasks(
        255 * torch.rand(3, 2, 4, 4), ways=2), V, "must be in [0, 1]"),
    Case("ClassificationTasks float images negative", lambda c: lambda: mb.ClassificationTasks(
        torch.rand(3, 2, 4, 4) - 0.5, ways=2), V, "must be in [0, 1]"),
    Case("ClassificationTasks.sample dtype as a string", lambda c: lambda: mb.ClassificationTasks(
        torch.rand(3, 2, 4, 4), ways=2).sample(1, 1, 1, generator=torch.Generator(), dtype="float32"), T, "dtype"),
    Case("Alphabets.select an alphabet not in the set", lambda c: lambda: mb.tasks.omniglot_shipped.load_minimal(
        "small1").select(["Nope"]), V, "are not in this set"),
    Case("Alphabets.select a bare string", lambda c: lambda: mb.tasks.omniglot_shipped.load_minimal(
        "small1").select("Greek"), T, "list of alphabet names"),
    Case("recipes.evaluate a sinusoid recipe", lambda c: lambda: mb.recipes.evaluate("sinusoid_maml", c.model), V,
         "sinusoid recipe"),
    Case("load_checkpoint a directory", lambda c: lambda: mb.load_checkpoint(c.tmp, c.model), FNF, "is a directory"),
    Case("adapted_predictions diverging", lambda c: lambda: mb.adapted_predictions(
        c.model, c.theta, c.tasks, c.tasks.x_query, inner_lr=1e30, steps=[3]), D, "diverged"),
    Case("adapted_logits unknown method", lambda c: lambda: logits(method="nope"), V, "method"),
    Case("adapted_logits an option the method does not take", lambda c: lambda: logits(method_options={"lam": 1.0}),
         V, "'lam'"),
    Case("adapted_logits chunk 0", lambda c: lambda: logits(chunk=0), V, "chunk"),
    Case("TaskBatch int32 class labels", lambda c: lambda: batch(c, y_support=torch.zeros(2, 3, dtype=torch.int32),
         y_query=torch.zeros(2, 4, dtype=torch.int32)), T, "y_support"),  # cross-entropy failed inside torch
    Case("adapted_logits task-batched params", lambda c: lambda: mb.protocol.adapted_logits(
        (net := mb.ConvNet(ways=5, filters=4)), mb.batch_parameters(mb.detached(mb.parameters_of(net)), 2),
        mb.protocol.held_out_tasks(1, num_tasks=2), method="maml", inner_lr=0.4, steps=1), V, "pass θ itself"),
    Case("adapted_logits meta_sgd without its wrapper", lambda c: lambda: logits(method="meta_sgd"), T, "MetaSGDNet"),
    # proximal_adapt (exported) checked nothing: inner_lr < 0 quietly took 0 steps, lam < 0 was accepted
    Case("proximal_adapt inner_lr < 0", lambda c: lambda: prox(c, inner_lr=-0.01), V, "inner_lr"),
    Case("proximal_adapt lam < 0", lambda c: lambda: prox(c, lam=-1.0), V, "lam"),
    Case("proximal_adapt unbatched anchor", lambda c: lambda: prox(c, anchor=c.theta), V, "batch_parameters"),
    Case("proximal_adapt frozen model", lambda c: (frozen(c), lambda: prox(c))[1], V, "frozen"),
    # adapted_logits checked the labels on MAML's path only (ANIL, iMAML: IndexError inside torch; protonet with a
    # class missing from a support set: NaN logits scored as 0.2; a query label out of range: scored as wrong)
    Case("adapted_logits anil label beyond the outputs", lambda c: lambda: logits(
        method="anil", tasks=mb.protocol.held_out_tasks(1, num_tasks=1, ways=3)), V, "tasks.y_support"),
    Case("adapted_logits imaml label beyond the outputs", lambda c: lambda: logits(
        method="imaml", tasks=mb.protocol.held_out_tasks(1, num_tasks=1, ways=3)), V, "tasks.y_support"),
    Case("adapted_logits anil float labels", lambda c: lambda: logits(method="anil", tasks=float_labels(two_way())), T,
         "tasks.y_support"),
    Case("adapted_logits query label beyond the outputs", lambda c: lambda: logits(tasks=two_way(query=5)), V,
         "tasks.y_query"),
    Case("adapted_logits protonet class missing from a support set", lambda c: lambda: logits(
        method="protonet", steps=0, tasks=two_way(support=2, ways=3)), V, "no image of class 1"),
    Case("adapted_logits imaml lam = 0", lambda c: lambda: logits(method="imaml", method_options={"lam": 0.0}), V,
         "lam"),
    Case("adapted_logits maml loss_fn option", lambda c: lambda: logits(
        method_options={"loss_fn": mb.mse_per_task}), V, "loss_fn"),
    # a network with more outputs than the tasks' classes trained and scored (its largest logit a class no task has)
    Case("adapted_logits 5 outputs on 2-way tasks", lambda c: lambda: mb.protocol.adapted_logits(
        (net := mb.ConvNet(ways=5, filters=4)), mb.detached(mb.parameters_of(net)), two_way(), method="maml",
        inner_lr=0.4, steps=1), V, "has 5 outputs, but the tasks' support sets hold 2 classes"),
    Case("meta_train a 10-way network on 5-way tasks", lambda c: lambda: mb.meta_train(
        mb.ConvNet(ways=10, filters=4), mb.ClassificationTasks(torch.rand(6, 3, 28, 28), ways=5), iterations=1,
        generator=torch.Generator(), progress=False), V, "ways=10 outputs, but family samples 5-way tasks"),
    Case("adapted_logits overflowing logits", lambda c: lambda: mb.protocol.adapted_logits(
        (net := mb.ConvNet(ways=2, filters=4)), {k: v.detach() * 1e30 for k, v in mb.parameters_of(net).items()},
        two_way(), method="maml", inner_lr=0.4, steps=0), D, "NaN/inf"),
    Case("accuracy_per_task NaN logits", lambda c: lambda: mb.accuracy_per_task(
        torch.full((1, 5, 5), float("nan")), torch.arange(5).view(1, 5)), V, "NaN"),
    # a label 5 of 5 classes is never the argmax: it scored 0 without a word; float labels, refused
    # by cross-entropy, were taken here
    Case("accuracy_per_task float labels", lambda c: lambda: mb.accuracy_per_task(
        torch.zeros(1, 5, 5), torch.arange(5.0).view(1, 5)), T, "labels must hold integer class labels"),
    Case("accuracy_per_task label = ways", lambda c: lambda: mb.accuracy_per_task(
        torch.zeros(1, 5, 5), torch.arange(1, 6).view(1, 5)), V, "labels must hold labels in [0, 4]"),
    # iMAML's own argument named, not its solver's (a version that checked inside the solver said anchor[...])
    Case("imaml NaN θ named as params", lambda c: lambda: call(c, "imaml", params=nan_at(c, "0.weight")), V,
         "params['0.weight']"),
    Case("held_out_tasks shots 0", lambda c: lambda: mb.protocol.held_out_tasks(0), V, "shots must"),  # said support_shots
    Case("held_out_tasks shots True", lambda c: lambda: mb.protocol.held_out_tasks(True), T, "shots must"),
    Case("held_out_tasks seed < 0", lambda c: lambda: mb.protocol.held_out_tasks(1, seed=-1), V, "seed"),
    # a model must be a function of its parameters alone: frozen ones were trained anyway, buffers not saved
    Case("maml model with a frozen parameter", lambda c: (frozen(c), lambda: call(c, "maml"))[1], V, "frozen"),
    Case("meta_train model with a frozen parameter", lambda c: (frozen(c), lambda: train(c))[1], V, "frozen"),
    Case("adaptation_curve model with a persistent buffer", lambda c: (buffered(c), lambda: curve(c))[1], V,
         "buffers"),
    Case("save_checkpoint model with a persistent buffer",
         lambda c: (buffered(c), lambda: mb.save_checkpoint(c.tmp / "x.pt", c.model))[1], V, "buffers"),
    Case("maml model with BatchNorm running statistics", lambda c: lambda: call(
        c, "maml", model=(net := batchnorm_net()), params=mb.detached(mb.parameters_of(net))), V,
         "track_running_stats"),
    # a meta-step under no_grad failed inside autograd ("element 0 of tensors does not require grad")
    Case("maml under torch.no_grad", lambda c: lambda: under(torch.no_grad, lambda: call(c, "maml")), RuntimeError,
         "no_grad"),
    Case("reptile under torch.inference_mode", lambda c: lambda: under(
        torch.inference_mode, lambda: call(c, "reptile")), RuntimeError, "inference_mode"),
    Case("adaptation_curve under torch.inference_mode", lambda c: lambda: under(torch.inference_mode, lambda: curve(c)),
         RuntimeError, "inference_mode"),
    Case("adapted_logits inner_lr < 0", lambda c: lambda: logits(inner_lr=-0.4), V, "inner_lr"),
    *([] if torch.cuda.is_available() else [  # bad only on a machine without CUDA
        Case("meta_train device 'cuda' without CUDA", lambda c: lambda: train(c, device="cuda"), V, "CUDA"),
        Case("SinusoidTasks.sample device 'cuda' without CUDA", lambda c: lambda: mb.SinusoidTasks().sample(
            2, 3, 4, generator=torch.Generator(), device="cuda"), V, "CUDA"),
        Case("omniglot held-out tasks device 'cuda' without CUDA", lambda c: lambda: mb.protocol.held_out_tasks(
            1, num_tasks=2, device="cuda"), V, "device"),
    ]),
]


def snapshot(c: Ctx) -> dict:
    """Everything a failed call must leave as it was: tensors (values) and the files in the case's folder."""
    tensors = {f"model.{k}": v.detach().clone() for k, v in c.model.named_parameters()}
    tensors.update({f"theta.{k}": v.detach().clone() for k, v in c.theta.items()})
    tensors.update({f"tasks.{k}": getattr(c.tasks, k).clone() for k in ("x_support", "y_support", "x_query", "y_query")})
    files = {str(p.relative_to(c.tmp)): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(c.tmp.rglob("*")) if p.is_file()}
    return {"tensors": tensors, "files": files}


def same(before: dict, after: dict) -> bool:
    if before["files"] != after["files"] or before["tensors"].keys() != after["tensors"].keys():
        return False
    return all(torch.equal(v, after["tensors"][k]) or (v.is_floating_point() and torch.equal(v.isnan(), after["tensors"][k].isnan())
               and torch.equal(v.nan_to_num(), after["tensors"][k].nan_to_num())) for k, v in before["tensors"].items())


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_raises_a_clear_error_and_changes_nothing(tmp_path, case):
    c = make_ctx(tmp_path)
    thunk = case.make(c)
    before = snapshot(c)
    with pytest.raises(case.error) as info:
        thunk()
    assert case.word in str(info.value), str(info.value)
    after = snapshot(c)
    if case.trains:  # the iterations before the divergence trained the model; the diverging update was not applied
        assert after["files"] == before["files"]
        assert all(bool(torch.isfinite(p).all()) for p in c.model.parameters())
        return
    assert same(before, after), "the failed call changed its inputs or wrote a file"


def test_catalogue_is_large_enough():
    assert len(CASES) >= 150
    assert len({c.id for c in CASES}) == len(CASES)


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
    options = dict(iterations=30, generator=torch.Generator().manual_seed(0), meta_batch_size=2, progress=False)
    with pytest.raises(mb.DivergenceError) as info:
        mb.meta_train(mb.SinusoidMLP(hidden=(4, 4)), mb.SinusoidTasks(), method=method, inner_lr=inner_lr,
                      outer_lr=outer_lr, inner_steps=3, **options)
    message = str(info.value)
    assert "smaller" in message and bad in message, message


@pytest.mark.parametrize("method, inner_lr", [("maml", 30.0), ("anil", 100.0), ("reptile", 100.0)])
def test_a_finite_blow_up_stops_training_too(method, inner_lr):
    """An inner step far too large sends the meta-loss to 1e5-1e13 while it stays finite:
    training stops at once (more than LOSS_GROWTH_LIMIT times the support loss before
    adaptation), with advice, instead of saving a ruined checkpoint."""
    with pytest.raises(mb.DivergenceError) as info:
        mb.meta_train(mb.SinusoidMLP(), mb.SinusoidTasks(), method=method, inner_lr=inner_lr, iterations=20,
                      meta_batch_size=4, generator=torch.Generator().manual_seed(0), progress=False)
    message = str(info.value)
    assert "times the largest support loss before adaptation" in message and f"inner_lr (now {inner_lr})" in message
    assert f"at iteration {mb.train.GROWTH_CHECK_FROM} of" in message  # the first iteration checked


def test_a_growing_meta_loss_stops_training():
    """The outer update blowing up (no inner loop to blame): stopped against iteration 0's loss."""
    with pytest.raises(mb.DivergenceError) as info:
        mb.meta_train(mb.SinusoidMLP(), mb.SinusoidTasks(), method="pretrain", outer_lr=99.0, iterations=20,
                      meta_batch_size=4, generator=torch.Generator().manual_seed(0), progress=False)
    message = str(info.value)
    assert "at iteration 1 of pretrain" in message and "times iteration 0's loss" in message
    assert "outer_lr (now 99.0)" in message
    assert "inner_steps" not in message and "inner_lr" not in message  # pretrain has no inner loop


@pytest.mark.parametrize("method", ["imaml", "fomaml"])
def test_an_outer_update_that_blows_up_stops_training(method):
    """θ itself blowing up (outer_lr = 1): the support loss before adaptation grows with the
    meta-loss, so it is compared with iteration 0's loss, not with its own recent values
    (which a first version did, and let iMAML run on to a meta-loss of 5e6)."""
    with pytest.raises(mb.DivergenceError) as info:
        mb.meta_train(mb.SinusoidMLP(), mb.SinusoidTasks(), method=method, outer_lr=1.0, iterations=30,
                      meta_batch_size=4, generator=torch.Generator().manual_seed(0), progress=False)
    message = str(info.value)
    assert "the loss at θ (support loss before adaptation)" in message and "times iteration 0's loss" in message
    assert "outer_lr (now 1.0)" in message


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_training_on_one_point_of_one_task_is_not_stopped(seed):
    """One task of one support point per meta-step: its support loss before adaptation is
    now and then 1e-5 by chance while the meta-loss is 0.7 (a ratio of 2e4 at iteration 257
    of seed 0, which stopped this run when the check compared with the same iteration's
    support loss). Against the largest support loss so far, 600 iterations run through."""
    history = mb.meta_train(mb.SinusoidMLP(), mb.SinusoidTasks(), iterations=600, meta_batch_size=1,
                            support_shots=1, generator=torch.Generator().manual_seed(seed), progress=False)
    ratios = [loss / support for loss, support in zip(history.meta_loss, history.support_loss)]
    assert len(history.meta_loss) == 600
    if seed == 0:  # the case the per-iteration comparison stopped
        assert max(ratios) > mb.train.LOSS_GROWTH_LIMIT


@pytest.mark.parametrize("method", ["maml", "pretrain"])
def test_one_point_in_support_and_query_does_not_stop_training(method):
    """Iteration 0's reference is the larger of its meta-loss and its loss at θ, so one
    lucky point (a loss of 1e-5) does not make it tiny: 300 healthy iterations run
    through with one task of one support and one query point."""
    for seed in range(3):
        history = mb.meta_train(mb.SinusoidMLP(), mb.SinusoidTasks(), method=method, iterations=300,
                                meta_batch_size=1, support_shots=1, query_shots=1,
                                generator=torch.Generator().manual_seed(seed), progress=False)
        assert len(history.meta_loss) == 300


def test_imaml_divergence_advice_names_lam():
    with pytest.raises(mb.DivergenceError) as info:
        mb.meta_train(mb.SinusoidMLP(), mb.SinusoidTasks(), method="imaml", method_options={"lam": 1e-30},
                      iterations=5, generator=torch.Generator().manual_seed(0), progress=False)
    assert "another lam (now 1e-30" in str(info.value)


def test_an_unknown_method_name_suggests_the_closest():
    with pytest.raises(ValueError, match="got 'mamll'; did you mean 'maml'"):
        get_method("mamll")
    with pytest.raises(ValueError) as info:
        get_method("xyz")
    assert "did you mean" not in str(info.value) and "'reptile'" in str(info.value)

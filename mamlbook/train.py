"""The meta-training loop: sample a meta-batch, take a meta-step, update ``θ``.

Any registered method (`mamlbook.algorithms.method_names`) plugs in by name; the outer
optimizer is Adam, as in the MAML paper, or plain SGD (Reptile's ``θ ← θ + ε·mean(φ − θ)``
is SGD with learning rate ``ε`` on the direction ``θ − mean φ``).
"""
from __future__ import annotations

import functools
import inspect
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace

import torch
from torch import nn
from tqdm.auto import tqdm

from . import checks
from .device import check_device
from .algorithms import get_method
from .algorithms.base import check_method_options
from .algorithms.imaml import DEFAULT_LAM
from .functional import parameters_of

#: Methods without an inner loop: ``inner_steps`` must be 0 or left out.
NON_ADAPTIVE = ("pretrain", "protonet")
#: `meta_train` stops with a `DivergenceError` when a loss grows past this multiple of a
#: reference, finite or not (no training that is learning grows its loss
#: ten-thousandfold): the loss at θ (the support loss before adaptation; the meta-loss
#: for methods without an inner loop) against the larger of iteration 0's meta-loss and
#: loss at θ, from iteration 1 (an outer update that blows up); and for methods with an
#: inner loop the meta-loss against the largest support loss before adaptation of the
#: earlier iterations, from iteration `GROWTH_CHECK_FROM` (an inner loop that blows up,
#: 1e5-1e13 while still finite). Several iterations there, because one task of one
#: support point can have a support loss of 1e-5 by chance.
LOSS_GROWTH_LIMIT = 1e4
GROWTH_CHECK_FROM = 5


@dataclass(frozen=True)
class TrainingSettings:
    """How to meta-train: the one place the training settings are declared and checked.

    `meta_train`, the shipped recipes (`mamlbook.recipes`), the command line
    (``python -m mamlbook train``) and `mamlbook.performance.distributed` all take one.
    The defaults are the MAML paper's sinusoid settings (Finn et al. 2017, §5.1, and the
    meta-batch of its released code).

    Attributes
    ----------
    iterations : meta-steps (each on ``meta_batch_size`` fresh tasks).
    method : a registered method name (`mamlbook.algorithms.method_names`): ``"maml"``,
        ``"fomaml"``, ``"reptile"``, ``"imaml"``, ``"pretrain"``, ``"anil"``,
        ``"meta_sgd"`` and ``"mamlpp"`` (their ``model`` is a `MetaSGDNet` / `LSLRNet`
        wrapper, whose parameters include the learned step sizes), ``"protonet"``.
    meta_batch_size, support_shots, query_shots : tasks per meta-step; support and
        query examples per task (per class, for classification).
    inner_lr, inner_steps : ``α`` and ``k`` of the inner loop (eq. 2.2); ``inner_steps``
        ``None`` means 1, or 0 for ``"pretrain"`` and ``"protonet"`` (they do not
        adapt: only 0 is accepted for them).
    outer_lr, optimizer : the outer update, ``"adam"`` or ``"sgd"`` (Reptile's
        ``θ ← θ + ε·mean(φ − θ)`` is SGD with learning rate ``ε``).
    lr_schedule : ``(iteration, factor)`` pairs, iterations strictly increasing: from
        that iteration on the outer learning rate is ``outer_lr · factor`` (a pair from an
        iteration the training does not reach never applies, so that a recipe can be run
        shorter).
    method_options : further keyword options of the method (``{"lam": 5.0}`` for
        iMAML, ``{"loss_fn": mb.cross_entropy_per_task}``); an option the method does
        not take is refused (ValueError naming it), never dropped.
    """

    iterations: int
    method: str = "maml"
    meta_batch_size: int = 25
    support_shots: int = 10
    query_shots: int = 10
    inner_lr: float = 0.01
    inner_steps: int | None = None
    outer_lr: float = 1e-3
    optimizer: str = "adam"
    lr_schedule: tuple = ()
    method_options: dict = field(default_factory=dict)

    def __post_init__(self):
        get_method(self.method)  # fails early on an unknown name
        checks.positive_int("iterations", self.iterations)
        checks.positive_int("meta_batch_size", self.meta_batch_size)
        checks.positive_int("support_shots", self.support_shots)
        checks.positive_int("query_shots", self.query_shots)
        checks.positive_float("outer_lr", self.outer_lr)
        checks.positive_float("inner_lr", self.inner_lr)
        checks.one_of("optimizer", self.optimizer, {"adam", "sgd"})
        _check_schedule(self.lr_schedule)
        object.__setattr__(self, "lr_schedule", tuple(tuple(p) for p in self.lr_schedule))
        for key in self.method_options if isinstance(self.method_options, dict) else ():
            if key == "on_divergence":
                raise ValueError("method_options must not hold 'on_divergence': meta_train always stops with a "
                                 "DivergenceError when a meta-step is NaN/inf (θ would be ruined by the update)")
            if key in ("inner_lr", "inner_steps"):
                raise ValueError(f"method_options must not hold {key!r}; it is a training setting of its own")
        check_method_options(self.method, self.method_options)
        inner_steps = self.inner_steps
        if self.method in NON_ADAPTIVE:
            if inner_steps not in (None, 0):
                raise ValueError(f"inner_steps must be 0 or left out for method {self.method!r} (it does not adapt), "
                                 f"got {inner_steps!r}")
            inner_steps = 0
        elif inner_steps is None:
            inner_steps = 1
        else:  # every adaptive method takes at least one step (its own check, made here up front)
            checks.int_in_range("inner_steps", inner_steps, 1)
        checks.int_in_range("inner_steps", inner_steps, 0)
        object.__setattr__(self, "inner_steps", inner_steps)

    def outer_lr_at(self, iteration: int) -> float:
        """The outer learning rate at ``iteration`` (``lr_schedule`` applied)."""
        lr = self.outer_lr
        for start, factor in self.lr_schedule:
            if iteration >= start:
                lr = self.outer_lr * factor
        return lr

    def as_dict(self) -> dict:
        """The settings as plain values (JSON-able unless ``method_options`` holds a function)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _check_schedule(schedule) -> None:
    if not isinstance(schedule, (tuple, list)) or not all(
            isinstance(p, (tuple, list)) and len(p) == 2 and isinstance(p[0], int) and not isinstance(p[0], bool)
            and p[0] >= 0 and isinstance(p[1], (int, float)) and not isinstance(p[1], bool)
            and math.isfinite(p[1]) and p[1] > 0 for p in schedule):
        raise ValueError(f"lr_schedule must be a sequence of (iteration >= 0, factor > 0) pairs, got {schedule!r}")
    starts = [p[0] for p in schedule]
    if any(b <= a for a, b in zip(starts, starts[1:])):  # a later pair would silently override an earlier one
        raise ValueError(f"lr_schedule's iterations must increase strictly, got {starts}")


def settings_from(settings: TrainingSettings | None, keywords: dict) -> TrainingSettings:
    """``settings`` with ``keywords`` replacing fields, or new settings from ``keywords``."""
    if settings is not None and not isinstance(settings, TrainingSettings):
        raise TypeError(f"settings must be a TrainingSettings, got {type(settings).__name__}")
    names = {f.name for f in fields(TrainingSettings)}
    unknown = sorted(set(keywords) - names)
    if unknown:
        raise TypeError(f"meta_train got unknown setting(s) {unknown}; the training settings are {sorted(names)}")
    if keywords.get("method_options") is None:
        keywords.pop("method_options", None)
    if settings is None:
        if "iterations" not in keywords:
            raise TypeError("meta_train needs iterations= (or settings=TrainingSettings(iterations=...))")
        return TrainingSettings(**keywords)
    return replace(settings, **keywords) if keywords else settings


@dataclass
class History:
    """Meta-loss per iteration (mean query loss after adaptation), wall time, the settings."""

    method: str
    meta_loss: list[float] = field(default_factory=list)
    support_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    settings: TrainingSettings | None = None


#: ``callback(iteration, params, step, tasks)``, called after every meta-step, before the update
Callback = Callable[[int, dict, object, object], None]


def meta_train(model: nn.Module, family, settings: TrainingSettings | None = None, *, generator: torch.Generator,
               device=None, progress: bool = True, step_fn=None, compile: bool = False, task_threads: int = 1,
               callbacks: Sequence[Callback] = (), **setting_keywords) -> History:
    """Meta-train ``model``'s parameters in place; return the `History`.

    Parameters
    ----------
    family : a task family with ``sample(num_tasks, support_shots, query_shots, generator=, device=)``
        whose floating tensors are cast to the model's dtype (a float64 model trains on float64 tasks).
    settings : a `TrainingSettings`; its fields may also be given as keywords
        (``meta_train(model, family, iterations=100, method="fomaml", ...)``), which
        replace those of ``settings`` when both are given.
    generator : draws the tasks; seeded, it fixes the run.
    step_fn : computes the meta-step instead of ``get_method(method)``, with the same
        signature (`mamlbook.performance.distributed` passes one that shards the
        meta-batch).
    compile : run the meta-step compiled (`mamlbook.performance.compile_method`):
        faster after a first iteration that compiles; the numbers differ from eager in
        float rounding, so the book's checkpoints are trained eagerly.
    task_threads : split every meta-batch over this many threads, one intra-op thread
        each (`mamlbook.performance.threaded`): on a CPU the conv net's step runs
        faster (``benchmarks/conv_step.py``); equal to the plain step up to float
        rounding. In [1, meta_batch_size]; 1 (the default): the plain step.
    callbacks : functions called after every meta-step, before the update, as
        ``callback(iteration, params, step, tasks)``: the iteration (from 0), ``θ`` (the
        model's parameters, *not* to be modified), the `MetaStep` computed at that ``θ``
        and the meta-batch it used; e.g. `mamlbook.measure.AgreementProbe`, or an
        accuracy curve (at iteration ``i``, ``θ`` is the result of ``i`` updates). A
        callback that only reads leaves training unchanged; its time is not counted in
        ``History.seconds``.

    Raises
    ------
    DivergenceError : the meta-loss or the meta-gradient became NaN or inf, or a loss
        grew past `LOSS_GROWTH_LIMIT` times its early value (the message says what to
        lower). A NaN/inf step is not applied: the model keeps the parameters of the
        last finite iteration. A loss that grew is seen at the θ the previous update
        made, which the model then holds (to be inspected; retrain with the advice).
    """
    settings = settings_from(settings, setting_keywords)
    method = settings.method
    checks.module("model", model)
    if not callable(getattr(family, "sample", None)):
        raise TypeError(f"family must be a task family with a sample(num_tasks, support_shots, query_shots, "
                        f"generator=, device=) method, got {type(family).__name__}")
    for keyword in ("generator", "device"):
        if not _accepts_keyword(family.sample, keyword):
            raise TypeError(f"family.sample must take {keyword}= (sample(num_tasks, support_shots, query_shots, "
                            f"generator=, device=)); {type(family).__name__}.sample does not")
    net = getattr(model, "net", model)  # the network inside a step-size wrapper
    ways = getattr(family, "ways", None)  # (ProtoNets classify by distances: the head, and its ways, are unused)
    if method != "protonet" and ways is not None and getattr(net, "ways", ways) != ways:
        raise ValueError(f"model has ways={net.ways} outputs, but family samples {ways}-way tasks: use a "
                         f"{ways}-way network (e.g. ConvNet(ways={ways}, ...)) or family.ways={net.ways}")
    checks.flag("compile", compile)
    checks.flag("progress", progress)
    if compile and step_fn is not None:
        raise ValueError("compile=True cannot be combined with a step_fn; compile the step_fn yourself")
    checks.int_in_range("task_threads", task_threads, 1, settings.meta_batch_size)
    if task_threads > 1 and (compile or step_fn is not None):
        raise ValueError(f"task_threads={task_threads} cannot be combined with compile=True or a step_fn; "
                         "use task_threads=1")
    if step_fn is not None:
        checks.callable_("step_fn", step_fn)
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"callbacks must be a list or tuple of functions, got {type(callbacks).__name__}")
    for i, callback in enumerate(callbacks):
        checks.callable_(f"callbacks[{i}]", callback)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    check_device("device", device)
    options = dict(settings.method_options)
    inner_lr, inner_steps, outer_lr = settings.inner_lr, settings.inner_steps, settings.outer_lr
    params = parameters_of(model)
    checks.finite_params("model.named_parameters()", params)
    a_param = next(iter(params.values()))
    device = device if device is not None else a_param.device
    dtype = a_param.dtype  # the tasks' floating tensors are cast to it
    if compile:
        from .performance import compile_method  # the speed path, only when asked for

        compiled = compile_method(method, model, inner_lr=inner_lr, inner_steps=inner_steps,
                                  device_type=torch.device(device).type, **options)
        step_fn = lambda model, params, tasks, **_: compiled(params, tasks)  # noqa: E731
    # The method checks its own step (loss, gradients and θ in one reduction) and raises; a
    # step_fn (compiled, or the distributed one that all-reduces shards) hands a non-finite
    # result back and this loop raises, so every process of a distributed run stops at the
    # same iteration and none waits for the others.
    own_check = step_fn is None
    step_fn = step_fn if step_fn is not None else get_method(method)
    if task_threads > 1:  # the method's own step on each shard: it still checks itself
        from .performance.threaded import threaded_meta_step  # the speed path, only when asked for

        step_fn = functools.partial(threaded_meta_step, method, workers=task_threads)
    if not own_check and _accepts_keyword(step_fn, "on_divergence"):
        options["on_divergence"] = "keep"
    opt_cls = torch.optim.Adam if settings.optimizer == "adam" else torch.optim.SGD
    opt = opt_cls(params.values(), lr=outer_lr)
    history = History(method=method, settings=settings)
    advice = _training_advice(method, outer_lr, inner_lr, inner_steps, options)
    first, support_max = 0.0, 0.0  # the references of LOSS_GROWTH_LIMIT
    seconds = 0.0
    # delay: no bar before the first half second, so a setting refused by the first meta-step
    # (an option's value, checked by the method) is an error alone, with no bar stuck at 0%
    for it in tqdm(range(settings.iterations), desc=f"meta-train {method}", disable=not progress,
                   mininterval=1.0, delay=0.5):
        start = time.perf_counter()
        if settings.lr_schedule:
            for group in opt.param_groups:
                group["lr"] = settings.outer_lr_at(it)
        tasks = family.sample(settings.meta_batch_size, settings.support_shots, settings.query_shots,
                              generator=generator, device=device)
        if tasks.x_support.dtype != dtype:  # a float64 model (families sample float32 by default)
            tasks = tasks.to(dtype=dtype)
        try:
            step = step_fn(model, params, tasks, inner_lr=inner_lr, inner_steps=inner_steps, **options)
        except checks.DivergenceError as err:
            what = err.diagnosis or str(err)  # (the method's own advice and opt-out are not meta_train's)
            raise checks.DivergenceError(f"training diverged at iteration {it} of {method}: {what}. {advice}") from err
        except checks.NonFiniteError as err:
            if it == 0:
                raise
            raise checks.DivergenceError(f"training diverged at iteration {it} of {method}: the update of iteration "
                                         f"{it - 1} made θ non-finite ({err}). {advice}") from err
        except RuntimeError as err:  # (DivergenceError, a RuntimeError, was handled above)
            if (clear := checks.unused_parameter(err)) is None:
                raise
            raise clear from None
        _check_grads(step, model, params, f"iteration {it} of {method}")
        loss = float(step.meta_loss)
        if not math.isfinite(loss):
            raise checks.DivergenceError(
                f"meta-loss is {loss} at iteration {it} of {method}: training diverged. {advice}")
        # a step computed in shards reports the whole meta-batch's mean in its diagnostics
        support_before = float(step.diagnostics.get("support_loss_mean", step.support_loss.mean()))
        at_theta = support_before if inner_steps > 0 else loss
        where = f"at iteration {it} of {method}"
        if it >= 1:  # an outer update that blew up
            _check_growth(f"the loss at θ ({'support loss before adaptation' if inner_steps > 0 else 'meta-loss'})",
                          at_theta, "iteration 0's loss", first, where, advice)
        if inner_steps > 0 and it >= GROWTH_CHECK_FROM:  # an inner loop that blew up
            _check_growth("the meta-loss", loss, "the largest support loss before adaptation so far", support_max,
                          where, advice)
        first = max(loss, at_theta) if it == 0 else first
        support_max = max(support_max, support_before)
        if not own_check:
            checks.finite_step(f"training at iteration {it} of {method}", step.meta_loss, step.grads, "raise", advice,
                               mention_opt_out=False)
        measuring = time.perf_counter()
        for callback in callbacks:
            callback(it, params, step, tasks)
        start += time.perf_counter() - measuring  # History.seconds is training time, not measuring time
        for name, p in params.items():
            p.grad = step.grads[name]
        opt.step()
        history.meta_loss.append(loss)
        history.support_loss.append(support_before)
        seconds += time.perf_counter() - start
        history.seconds = seconds
    return history


def _check_grads(step, model: nn.Module, params: dict, where: str) -> None:
    """A clear error for a step whose ``grads`` do not match θ (a method of one's own)."""
    grads = getattr(step, "grads", None)
    if not isinstance(grads, dict):
        raise TypeError(f"{where}: the method returned a {type(step).__name__}, not a mamlbook.MetaStep with a dict "
                        "of grads")
    nones = [k for k, g in grads.items() if g is None]
    if nones:
        raise ValueError(f"{where}: MetaStep.grads has None for {nones}: not in the meta-loss's graph (a first-order "
                         "step that detached them?)")
    for name, value in params.items():  # one gradient per task, not yet reduced over the meta-batch
        g = grads.get(name)
        if isinstance(g, torch.Tensor) and g.dim() == value.dim() + 1 and g.shape[1:] == value.shape:
            raise ValueError(f"{where}: MetaStep.grads[{name!r}] has shape {tuple(g.shape)}, one gradient per task; "
                             f"a method returns their mean over the meta-batch, shaped like θ {tuple(value.shape)}")
    checks.params(f"{where}: MetaStep.grads", grads, model, finite=False, like=("θ", next(iter(params.values()))))


def _check_growth(what: str, value: float, of: str, reference: float, where: str, advice: str) -> None:
    """`DivergenceError` if ``value`` exceeds `LOSS_GROWTH_LIMIT` times ``reference``."""
    if reference > 0 and value > LOSS_GROWTH_LIMIT * reference:
        raise checks.DivergenceError(
            f"{what} is {value:.4g} {where}, {value / reference:.3g} times {of} ({reference:.4g}; the limit is "
            f"{LOSS_GROWTH_LIMIT:g} times): training diverged. {advice}")


def _training_advice(method: str, outer_lr: float, inner_lr: float, inner_steps: int, options: dict) -> str:
    """What to change when ``method``'s training diverges: the settings it actually uses."""
    knobs = [f"a smaller outer_lr (now {outer_lr})"]
    if inner_steps > 0:
        knobs += [f"a smaller inner_lr (now {inner_lr})", f"fewer inner_steps (now {inner_steps})"]
    if method == "imaml":
        lam = options.get("lam", DEFAULT_LAM)
        knobs.append(f"another lam (now {lam}: too small a lam makes the linear system indefinite or "
                     "ill-conditioned, too large a one overflows)")
    return "Try " + ", or ".join(knobs) + "."


def _accepts_keyword(fn, name: str) -> bool:
    """Whether ``fn`` takes the keyword ``name`` (by name or through ``**kwargs``)."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind == p.VAR_KEYWORD for p in parameters)

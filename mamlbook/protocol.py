"""The book's evaluation protocols: the test tasks, the divergence rule, the summary.

**Sinusoids.** Every sinusoid number in the book, in ``python -m mamlbook evaluate``
and in ``python -m mamlbook reproduce`` is measured this way (Finn et al. 2017, §5.1
and Appendix C, Table 2):

* **Test tasks** (`sinusoid_test_tasks`): 600 new sinusoids from their own generator
  (seed 2017, never used in training), ``K = 5`` support points and 100 query points
  each.
* **Test-time learner**: plain SGD (book eq. 2.2) with ``α = 0.01`` on the support
  set, the query MSE recorded after every step (`mamlbook.evaluate.adaptation_curve`).
* **Divergence rule** (`diverged`): test-time SGD *diverged* on a task if at some step
  of its curve the query loss is NaN/inf or more than `DIVERGENCE_FACTOR` (10) times
  its loss before adaptation. With a fixed step size, a task whose support loss is
  sharper than ``2/α`` blows up, and counting only non-finite values instead would
  average losses of 10³⁰ into a mean. It is a threshold, not a verdict: the two tasks
  it flags for the shipped MAML network run away (11 → 8·10⁶ and 9 → 4·10²⁶ in ten
  steps, after first dropping below 1), while a task it keeps rises to 9.1 times its
  loss before adaptation; a factor of 5 would flag 3 tasks, 3 would flag 10 (chapter
  09, its exercise varies the factor).
* **Summary** (`summarize`): for each number of steps, the mean over the tasks that did
  not diverge with its 95% interval (`mean_and_ci95`), their median, and the count of
  diverged tasks, always reported beside the mean and never folded into it. The kept
  tasks are the same for every column of a curve.

**Omniglot.** Few-shot classification is scored on fixed tasks from the three
alphabets that only the official minimal set "small 2" holds (Japanese katakana,
Sanskrit, Tagalog; `omniglot_tasks`, `held_out_tasks`), never seen in training; the
score is each task's query accuracy after the recipe's test-time adaptation
(`adapted_accuracy`), with its mean and 95% interval.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import torch
from torch import Tensor

from . import checks
from .algorithms.anil import adapt_head
from .algorithms.base import check_inputs, check_method_options
from .algorithms.imaml import DEFAULT_LAM
from .algorithms.maml_plus_plus import LSLRNet
from .algorithms.meta_sgd import scaled_sgd_steps
from .algorithms.protonet import check_labels, prototype_logits, prototypes
from .models import accuracy_per_task
from .functional import (
    adapt,
    batch_parameters,
    cross_entropy_per_task,
    detached,
    proximal_adapt_unchecked,
    task_forward,
)
from .tasks import SinusoidTasks, TaskBatch
from .tasks.classification import ClassificationTasks

TEST_TASKS = 600
SUPPORT_SHOTS = 5
QUERY_SHOTS = 100
TEST_SEED = 2017
TEST_INNER_LR = 0.01
STEPS = (1, 5, 10)
#: a task diverged if its query loss grows beyond this factor of its loss at step 0
DIVERGENCE_FACTOR = 10.0

#: Omniglot: fixed test tasks per recipe, their seed, tasks per point of a training curve
EVAL_TASKS = 600
EVAL_SEED = 2017
CURVE_TASKS = 500
#: How `adapted_logits` adapts a network trained by each method: plain SGD on every
#: parameter (eq. 2.2), iMAML's proximal solver, ANIL's head alone, the learned step sizes
#: its network carries (`MetaSGDNet`, `LSLRNet`), or class prototypes; a method not named
#: here (one registered outside the package) has no learner here and is refused.
TEST_TIME_LEARNER = {"maml": "sgd", "fomaml": "sgd", "reptile": "sgd", "pretrain": "sgd", "imaml": "proximal",
                     "anil": "head", "meta_sgd": "step sizes", "mamlpp": "step sizes", "protonet": "prototypes"}


def sinusoid_test_tasks(
    num_tasks: int = TEST_TASKS,
    *,
    support_shots: int = SUPPORT_SHOTS,
    query_shots: int = QUERY_SHOTS,
    seed: int = TEST_SEED,
    device=None,
) -> TaskBatch:
    """The book's sinusoid test tasks: ``num_tasks`` fresh tasks from generator ``seed``.

    Returns a `TaskBatch` with ``x_support (T, support_shots, 1)`` and
    ``x_query (T, query_shots, 1)``; the same call gives the same tasks on every run.
    """
    checks.positive_int("num_tasks", num_tasks)
    checks.int_in_range("seed", seed, 0)
    return SinusoidTasks().sample(
        num_tasks,
        support_shots,
        query_shots,
        generator=torch.Generator().manual_seed(seed),
        device=device,
    )


def diverged(curve: Tensor, factor: float = DIVERGENCE_FACTOR) -> Tensor:
    """Which tasks diverged: ``(T,)`` bool from a ``(T, steps + 1)`` loss curve.

    Task ``t`` diverged if some ``curve[t, i]`` is NaN/inf or exceeds
    ``factor · curve[t, 0]`` (its loss before adaptation).
    """
    _check_curve(curve)
    checks.positive_float("factor", factor)
    curve = curve.detach()
    return ~(curve <= factor * curve[:, :1]).all(dim=1)  # NaN compares False


class StepSummary(NamedTuple):
    """The protocol's numbers after one number of steps (losses of the kept tasks)."""

    mean: float | None  # None when fewer than 2 tasks were kept
    ci95: float | None  # half-width of the 95% interval of the mean
    median: float | None
    diverged: int
    num_tasks: int


def summarize(
    curve: Tensor, steps=STEPS, factor: float = DIVERGENCE_FACTOR
) -> dict[int, StepSummary]:
    """The summary of a ``(T, max_steps + 1)`` loss curve after each of ``steps`` steps.

    Tasks that diverged (`diverged`, anywhere on the curve) are counted, not averaged.
    """
    _check_curve(curve)
    steps = _check_steps(steps, curve.shape[1] - 1)
    gone = diverged(curve, factor)
    kept = curve.detach().double().cpu()[~gone.cpu()]
    out = {}
    for k in steps:
        if kept.shape[0] >= 2:
            mean, half = mean_and_ci95(kept[:, k])
            median = float(kept[:, k].median())
        else:
            mean = half = median = None
        out[k] = StepSummary(mean, half, median, int(gone.sum()), curve.shape[0])
    return out


class PairedStep(NamedTuple):
    """One pair ``a − b`` after one number of steps, over the kept tasks (`paired_differences`)."""

    mean: float  # mean difference
    ci95: float  # half-width of its 95% interval
    relative: float  # mean difference / mean of b
    lower: float  # share of the kept tasks on which a's loss is lower


class PairedDifferences(NamedTuple):
    """Task-by-task differences of loss curves (`paired_differences`)."""

    kept: Tensor  # (T,) bool: the tasks none of the curves diverged on
    cells: dict[str, dict[int, PairedStep]]  # {pair: {steps: PairedStep}}


def paired_differences(
    curves: dict[str, Tensor],
    pairs: dict[str, tuple[str, str]],
    steps=STEPS,
    factor: float = DIVERGENCE_FACTOR,
) -> PairedDifferences:
    """Differences of two runs on the same test tasks, task by task, with 95% intervals.

    ``curves`` maps a run's name to its ``(T, max_steps + 1)`` query losses on the same
    ``T`` tasks; ``pairs`` maps a label to two names ``(a, b)``, read as ``a − b``. A
    task counts only if none of the runs in ``curves`` diverged on it (`diverged`), so
    every pair and every column is over the same tasks. Pairing removes what the tasks
    share (some sinusoids are hard for every network): the interval of the mean
    difference is narrower than the two runs' unpaired intervals suggest. Beside each
    mean and interval: the mean difference relative to ``b``'s mean, and the share of
    the kept tasks on which ``a``'s loss is lower (a mean can be moved by a few tasks).
    """
    if not curves or not pairs:
        raise ValueError("curves and pairs must each name at least one entry")
    for name, curve in curves.items():
        try:
            _check_curve(curve)
        except (TypeError, ValueError) as err:  # name the entry
            raise type(err)(f"curves[{name!r}]: {err}") from None
    shapes = {name: tuple(c.shape) for name, c in curves.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"curves must all have one shape (the same tasks and steps), got {shapes}")
    for label, pair in pairs.items():
        if not (isinstance(pair, tuple) and len(pair) == 2 and all(p in curves for p in pair)):
            raise ValueError(f"pairs[{label!r}] must be a tuple (a, b) of two keys of curves "
                             f"({sorted(curves)}), got {pair!r}")
    steps = _check_steps(steps, next(iter(shapes.values()))[1] - 1)
    runs = {name: c.detach().double().cpu() for name, c in curves.items()}
    kept = torch.stack([~diverged(c, factor) for c in runs.values()]).all(dim=0)
    if int(kept.sum()) < 2:
        raise ValueError(f"only {int(kept.sum())} of {len(kept)} tasks are kept (no run diverged on "
                         "them); a paired interval needs at least 2")
    cells = {}
    for label, (a, b) in pairs.items():
        cells[label] = {}
        for k in steps:
            diff = runs[a][kept, k] - runs[b][kept, k]
            cells[label][k] = PairedStep(*mean_and_ci95(diff), float(diff.mean() / runs[b][kept, k].mean()),
                                         float((diff < 0).double().mean()))
    return PairedDifferences(kept, cells)


def _check_steps(steps, max_steps: int) -> tuple[int, ...]:
    """``steps`` as a tuple (any iterable: a generator would be used up by a check), each an
    int in ``[0, max_steps]`` (a curve's columns), at least one."""
    if isinstance(steps, int) or not hasattr(steps, "__iter__"):
        raise TypeError(f"steps must be a sequence of ints, got {steps!r}")
    steps = tuple(steps)
    if not all(isinstance(k, int) and not isinstance(k, bool) for k in steps):
        raise TypeError(f"steps must be a sequence of ints, got {steps!r}")
    if not steps or any(not 0 <= k <= max_steps for k in steps):
        raise ValueError(f"steps must be a non-empty sequence of ints in [0, {max_steps}] (the "
                         f"curve has {max_steps + 1} columns), got {list(steps)}")
    return steps


def format_cell(summary: StepSummary, digits: int = 3) -> str:
    """``"0.311 ± 0.021"``, plus ``" [n div.]"`` when tasks diverged; ``"[n div.]"`` alone
    when all ``n`` did, and ``"1 task kept [n div.]"`` when one did not (no mean or
    interval of a single task)."""
    if summary.mean is None:
        kept = summary.num_tasks - summary.diverged
        return (f"{kept} task kept " if kept else "") + f"[{summary.diverged} div.]"
    text = f"{summary.mean:.{digits}f} ± {summary.ci95:.{digits}f}"
    return text + (f" [{summary.diverged} div.]" if summary.diverged else "")


#: From this many values on, `mean_and_ci95` uses the normal quantile 1.96 (Student's
#: ``t₀.₉₇₅`` with ``n − 1 ≥ 99`` degrees of freedom is at most 1.2% larger: 1.984; with
#: the book's 200 to 1,000 tasks, at most 0.6%).
NORMAL_FROM = 100


@functools.lru_cache(maxsize=None)
def student_t_quantile(p: float, df: int) -> float:
    """The ``p``-quantile of Student's t with ``df`` degrees of freedom (``0.5 < p < 1``).

    Bisection on its distribution function. With ``t = √df·tan θ`` the density
    ``c·(1 + t²/df)^(−(df+1)/2) dt`` becomes ``c·√df·cos^(df−1) θ dθ``, smooth on
    ``[0, π/2)``, so ``F(t) = ½ + c·√df ∫₀^atan(t/√df) cos^(df−1) θ dθ`` by Simpson's rule
    on 2,000 intervals is accurate to about 10⁻¹² for every ``p`` and ``df`` (checked
    against the closed forms for 1 and 2 degrees of freedom and published tables).
    """
    checks.positive_int("df", df)
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0.5 < p < 1:
        raise ValueError(f"p must be a probability in (0.5, 1), got {p!r}")
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    scale, intervals = math.exp(log_c) * math.sqrt(df), 2000
    weights = torch.ones(intervals + 1, dtype=torch.float64)
    weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0

    def cdf_of_angle(angle: float) -> float:  # F(√df·tan(angle))
        theta = torch.linspace(0.0, angle, intervals + 1, dtype=torch.float64)
        return 0.5 + scale * float((weights * torch.cos(theta) ** (df - 1)).sum()) * angle / intervals / 3

    low, high = 0.0, math.pi / 2
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if cdf_of_angle(mid) < p else (low, mid)
    return math.sqrt(df) * math.tan((low + high) / 2)


def mean_and_ci95(values: Tensor) -> tuple[float, float]:
    """Mean and the half-width of its 95% interval, ``q·s/√n`` (``s`` the sample
    standard deviation): ``q`` Student's ``t₀.₉₇₅`` with ``n − 1`` degrees of freedom
    for fewer than `NORMAL_FROM` values (Lake's 20 runs: 2.093), the normal quantile
    1.96 from there on. ``values`` ``(n,)``, one per task (or run), ``n ≥ 2``."""
    if not isinstance(values, Tensor):
        raise TypeError(f"values must be a torch.Tensor, got {type(values).__name__}")
    if values.dim() != 1:  # a (T, Q) table pooled would count correlated values as independent
        raise ValueError(
            f"values must be 1-D, one value per task (n,), got shape {tuple(values.shape)}; "
            "reduce each task to one value first (e.g. .mean(1)), or .flatten() if the "
            "entries are independent"
        )
    values = values.detach().double()
    if not bool(torch.isfinite(values).all()):
        raise ValueError(
            f"values contains {int((~torch.isfinite(values)).sum())} NaN/inf entries; "
            "select the finite ones first and report how many were dropped"
        )
    if values.numel() < 2:
        raise ValueError(
            f"values needs at least 2 entries for an interval, got {values.numel()}"
        )
    n = values.numel()
    return float(values.mean()), float(ci95_quantile(n) * values.std(unbiased=True) / math.sqrt(n))


def ci95_quantile(n: int) -> float:
    """The ``q`` of `mean_and_ci95`'s interval ``q·s/√n`` for ``n ≥ 2`` values."""
    checks.int_in_range("n", n, 2)
    return 1.96 if n >= NORMAL_FROM else student_t_quantile(0.975, n - 1)


#: How `mean_and_ci95`'s interval is computed, in words (for results files).
INTERVAL = (f"mean ± q·s/√n over the n tasks kept: q = 1.96 from {NORMAL_FROM} tasks on, Student's t₀.₉₇₅ "
            f"with n − 1 degrees of freedom below")


def _check_curve(curve: Tensor) -> None:
    if not isinstance(curve, Tensor) or not curve.is_floating_point():
        raise TypeError(
            f"curve must be a floating-point torch.Tensor (T, steps + 1), got "
            f"{type(curve).__name__ if not isinstance(curve, Tensor) else curve.dtype}"
        )
    if curve.dim() != 2 or curve.shape[0] < 1 or curve.shape[1] < 1:
        raise ValueError(
            f"curve must have shape (T, steps + 1) with T >= 1, got {tuple(curve.shape)}"
        )


# ----------------------------------------------------------------------- Omniglot


def omniglot_tasks(
    split: str, ways: int = 5, *, rotations: bool = False, max_shift: int = 0
) -> ClassificationTasks:
    """N-way tasks from the shipped minimal sets: ``"train"`` (small 1, 136
    characters) or ``"test"`` (the 3 alphabets only in small 2, 106 characters);
    ``rotations`` and ``max_shift`` as in `ClassificationTasks`."""
    from .tasks.omniglot_shipped import minimal_split

    checks.one_of("split", split, {"train", "test"})
    train, test = minimal_split()
    chosen = train if split == "train" else test
    return ClassificationTasks(
        chosen.images,
        ways,
        rotations=rotations,
        max_shift=max_shift,
        name=f"omniglot[{split}]",
    )


def held_out_tasks(
    shots: int,
    *,
    num_tasks: int = EVAL_TASKS,
    query_shots: int | None = None,
    ways: int = 5,
    seed: int = EVAL_SEED,
    device=None,
) -> TaskBatch:
    """Fixed ``ways``-way ``shots``-shot tasks from the held-out alphabets (no
    rotations); ``query_shots`` per class, as many as ``shots`` by default. The tasks
    are drawn by a generator seeded with ``seed + 100·ways + shots`` (``seed ≥ 0``), so
    each setting has tasks of its own, the same in every call."""
    checks.int_in_range("shots", shots, 1)
    checks.int_in_range("seed", seed, 0)
    family = omniglot_tasks("test", ways)
    return family.sample(
        num_tasks,
        shots,
        shots if query_shots is None else query_shots,
        generator=torch.Generator().manual_seed(seed + 100 * ways + shots),
        device=device,
    )


def adapted_accuracy(
    model,
    params,
    tasks: TaskBatch,
    *,
    method: str,
    inner_lr: float,
    steps: int,
    method_options: dict | None = None,
    chunk: int = 10,
) -> Tensor:
    """Query accuracy ``(T,)`` of every task after adapting ``params`` on its support
    set: the fraction of each task's query images whose largest `adapted_logits` entry
    is their label (same arguments)."""
    logits = adapted_logits(model, params, tasks, method=method, inner_lr=inner_lr, steps=steps,
                            method_options=method_options, chunk=chunk)
    return accuracy_per_task(logits, tasks.y_query)


@checks.with_gradients  # test-time adaptation takes gradients, even under no_grad
def adapted_logits(
    model,
    params,
    tasks: TaskBatch,
    *,
    method: str,
    inner_lr: float,
    steps: int,
    method_options: dict | None = None,
    chunk: int = 10,
) -> Tensor:
    """Query logits ``(T, Q, ways)`` of every task after adapting ``params`` (θ as the
    model holds it, not task-batched) on its support set, with the cross-entropy loss.

    The test-time learner is ``steps`` SGD steps (book eq. 2.2) for MAML, first-order
    MAML and Reptile, and the proximal solver of iMAML (with its ``lam``) for iMAML.
    The wider map's methods adapt as they were trained: ANIL takes ``steps`` steps on
    the head only (eq. 10.1); Meta-SGD and MAML++ take ``steps`` steps with their
    learned step sizes, ``inner_lr · s`` (eqs. 10.2, 10.4; ``model`` is their wrapper,
    MAML++ needs ``steps`` = its number of steps); Prototypical Networks classify by the
    nearest class mean (eq. 10.6) and need ``steps = 0`` (`TEST_TIME_LEARNER`; a method
    registered outside the package has no learner here and is refused). ``method_options`` may be the
    training's (``loss_fn`` only if it is `mamlbook.cross_entropy_per_task`); the
    network's outputs must be the tasks' classes (a 5-way network for 5-way tasks).
    Tasks are processed ``chunk`` at a time, all of a chunk batched: ten tasks' activations
    stay within a CPU's cache, which on one thread makes 200 tasks 1.35× (32 filters) to
    1.9× (64) faster than chunks of 100, with the same logits (bit for bit where checked).
    """
    # the method's own options only (an unknown method is refused too); of them the
    # test-time learner reads iMAML's lam, the others are its training's
    options = dict(check_method_options(method, {} if method_options is None else method_options))
    learner = TEST_TIME_LEARNER.get(method)
    if learner is None:  # a method registered outside the package: its learner is not known here
        raise ValueError(f"method {method!r} has no test-time learner here (known: {sorted(TEST_TIME_LEARNER)}); "
                         "adapt with its own inner loop and score with mb.accuracy_per_task, or pass method='maml' "
                         "for plain SGD on every parameter")
    checks.int_in_range("steps", steps, 0)
    checks.positive_int("chunk", chunk)
    if options.get("loss_fn", cross_entropy_per_task) is not cross_entropy_per_task:
        raise ValueError("method_options has a 'loss_fn' other than mamlbook.cross_entropy_per_task: adapted_logits "
                         "adapts and scores with the cross-entropy, so it would be ignored; it is refused")
    if learner == "proximal":  # the one option the test-time learner reads
        checks.positive_float("method_options['lam']", options.get("lam", DEFAULT_LAM))
    # the methods' own checks (model, θ unbatched and finite, tasks, inner_lr), then the labels, on every path:
    # integers, protonet's classes its support set's (every class in every task), the others' the outputs'
    check_inputs(model, params, tasks, inner_lr, steps, min_steps=0, finite_now=True, loss_fn=cross_entropy_per_task)
    if learner == "step sizes" and not hasattr(model, "split"):
        raise TypeError(f"model must be the network wrapped with its learned step sizes for {method} "
                        f"(mamlbook.{'MetaSGDNet' if method == 'meta_sgd' else 'LSLRNet'}), got {type(model).__name__}")
    if learner == "prototypes":
        check_labels(tasks)
    else:
        _check_label_range(model, params, tasks, wrapped=learner == "step sizes")
    if learner == "prototypes" and steps != 0:
        raise ValueError(f"steps must be 0 for protonet (it does not adapt), got {steps}")
    out = []
    for part in tasks.split(max(1, -(-tasks.num_tasks // chunk))):
        anchor = batch_parameters(
            {k: v.detach() for k, v in params.items()}, part.num_tasks
        )
        if learner == "step sizes":
            out.append(
                _step_size_logits(model, anchor, part, inner_lr=inner_lr, steps=steps)
            )
            continue
        if learner == "prototypes":
            with torch.no_grad():
                support = model.features_with(anchor, part.x_support)
                centres = prototypes(
                    support, part.y_support, int(part.y_support.max()) + 1
                )
                logits = prototype_logits(
                    model.features_with(anchor, part.x_query), centres
                )
            out.append(logits)
            continue
        if learner == "head":
            head, _, _ = adapt_head(
                model,
                anchor,
                part.x_support,
                part.y_support,
                inner_lr=inner_lr,
                inner_steps=steps,
                loss_fn=cross_entropy_per_task,
                create_graph=False,
            )
            phi = {**anchor, **head}  # the body stays at θ
        elif learner == "proximal":
            phi, _, _ = proximal_adapt_unchecked(
                model,
                anchor,
                part.x_support,
                part.y_support,
                inner_lr=inner_lr,
                inner_steps=steps,
                lam=options.get("lam", DEFAULT_LAM),
                loss_fn=cross_entropy_per_task,
            )
        else:
            phi, _ = adapt(
                model,
                detached(anchor, requires_grad=True),
                part.x_support,
                part.y_support,
                inner_lr=inner_lr,
                inner_steps=steps,
                loss_fn=cross_entropy_per_task,
                create_graph=False,
            )
        with torch.no_grad():
            out.append(task_forward(model, phi, part.x_query))
    logits = torch.cat(out)
    if not checks.all_finite([logits]):  # (argmax of NaN logits would score as a plausible accuracy)
        bad = int((~torch.isfinite(logits.flatten(1))).any(1).sum())
        raise checks.DivergenceError(
            f"adapted_logits: the query logits of {bad} of {tasks.num_tasks} tasks are NaN/inf after {steps} "
            f"steps of {method} with inner_lr={inner_lr}; use a smaller inner_lr or fewer steps")
    return logits


def _check_label_range(model, params, tasks: TaskBatch, *, wrapped: bool) -> None:
    """Support and query labels, integers in ``[0, outputs)`` (ANIL's and iMAML's losses failed inside torch,
    and a query label out of range was scored as wrong)."""
    one = batch_parameters({k: v.detach() for k, v in params.items()}, 1)
    net, one = (model.net, model.split(one)[0]) if wrapped else (model, one)
    with torch.no_grad():
        outputs = task_forward(net, one, tasks.x_support[:1]).shape[-1]  # a whole support set: BatchNorm needs 2+
    for name in ("y_support", "y_query"):
        checks.class_labels(f"tasks.{name}", getattr(tasks, name), outputs)  # (ANIL's and iMAML's failed in torch)
    classes = int(tasks.y_support.max()) + 1
    if outputs > classes:  # the largest logit could be a class no task has: scores a little off, no error
        raise ValueError(f"the model has {outputs} outputs, but the tasks' support sets hold {classes} classes "
                         f"(labels 0 to {classes - 1}): score {classes}-way tasks with a {classes}-way network "
                         f"(e.g. ConvNet(ways={classes}, ...))")


def _step_size_logits(model, anchor, tasks: TaskBatch, *, inner_lr: float, steps: int) -> Tensor:
    """Query logits after ``steps`` steps with the wrapper's learned step sizes (Meta-SGD, MAML++)."""
    theta, sizes = model.split(anchor)
    t = tasks.num_tasks
    if isinstance(model, LSLRNet):
        if steps != model.steps:
            raise ValueError(
                f"steps must be {model.steps} for this MAML++ model (one learned rate per step), got {steps}"
            )
        rates = [
            {k: s[:, i].view(t, *[1] * (theta[k].ndim - 1)) for k, s in sizes.items()}
            for i in range(steps)
        ]
    else:
        rates = [sizes] * steps
    start = {k: v.detach().requires_grad_() for k, v in theta.items()}
    phi = start
    if steps:
        trajectory, _ = scaled_sgd_steps(
            lambda p, x: task_forward(model.net, p, x),
            start,
            rates,
            tasks.x_support,
            tasks.y_support,
            inner_lr=inner_lr,
            loss_fn=cross_entropy_per_task,
            first_order=True,
        )
        phi = trajectory[-1]
    with torch.no_grad():
        return task_forward(model.net, phi, tasks.x_query)

"""The book's few-shot classification checkpoints on real Omniglot: how each was trained and evaluated.

Every recipe meta-trains on the 136 characters of the official minimal set "small 1"
(90° rotations as new classes: 544 classes) and is scored on the 106 characters of
the three alphabets only in "small 2" (Japanese katakana, Sanskrit, Tagalog), which no
training task ever shows (`mamlbook.tasks.omniglot_shipped.minimal_split`). Retrain
one with::

    python -m mamlbook regenerate omniglot_maml_1shot

(CUDA is used when present; ``--device cpu`` forces the CPU.) A run records, every
``eval_every`` iterations, the accuracy on `CURVE_TASKS` fixed held-out tasks with the
training wall-clock (the accuracy curve), saving the checkpoint each time; at the end it
scores `EVAL_TASKS` other fixed held-out tasks and stores every task's accuracy in the
checkpoint, and writes the curve to ``pretrained/NAME.curve.json`` (`export_curve`).

The settings are scaled down from the MAML paper to fit a shared CPU (see `Recipe` and
chapter 08): 32 filters instead of 64, meta-batches of 4 tasks, one query drawing per
class, thousands of meta-iterations instead of 60,000; the 5-shot run continues from
the 1-shot one.
"""
from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from . import checkpoints, checks
from .algorithms import LSLRNet, MAMLPlusPlusSchedule, MetaSGDNet, adapt_head, get_method, proximal_adapt
from .algorithms.protonet import prototype_logits, prototypes
from .convnet import ConvNet, accuracy_per_task
from .device import get_device, seed_everything
from .functional import adapt, batch_parameters, cross_entropy_per_task, detached, task_forward
from .tasks import TaskBatch
from .tasks.classification import ClassificationTasks

EVAL_TASKS = 600
EVAL_SEED = 2017
CURVE_TASKS = 500


@dataclass(frozen=True)
class Recipe:
    """Settings of one meta-training run on N-way Omniglot tasks.

    ``inner_lr``/``inner_steps`` are the training inner loop; ``test_steps`` the number
    of adaptation steps at test time (same step size; iMAML adapts with its proximal
    solver and the same ``lam``). ``query_shots`` per class, in training and testing
    alike, equals ``shots`` (as in the MAML reference code). ``init_from`` names a
    recipe whose shipped checkpoint is the starting point (the 5-shot run continues
    from the 1-shot one); ``None`` starts from a random network. ``lr_schedule`` holds
    (iteration, factor) pairs: from that iteration on the outer learning rate is
    ``outer_lr · factor``; it depends on the iteration only, so a run stopped at
    iteration N is exactly the recipe with ``iterations=N``.
    """

    method: str
    shots: int
    iterations: int
    ways: int = 5
    filters: int = 32
    meta_batch_size: int = 4
    inner_lr: float = 0.4
    inner_steps: int = 1
    test_steps: int = 3
    outer_lr: float = 1e-3
    optimizer: str = "adam"
    method_options: dict = field(default_factory=dict)
    init_from: str | None = None
    rotations: bool = True
    seed: int = 0
    lr_schedule: tuple = ()
    eval_every: int = 1000
    curve_tasks: int | None = None  # held-out tasks per point of the accuracy curve (None: CURVE_TASKS)

    @property
    def query_shots(self) -> int:
        return self.shots


# The MAML paper's 5-way Omniglot settings (one inner step of 0.4 in training, three at
# test time, Adam 1e-3), scaled down as the module docstring says.
MAML = dict(inner_lr=0.4, inner_steps=1, test_steps=3)
RECIPES: dict[str, Recipe] = {
    # 5,000 iterations: where the shipped run was stopped (~63 min of one contended core);
    # the curve had not flattened (chapter 08).
    "omniglot_maml_1shot": Recipe("maml", 1, 5_000, eval_every=1000, **MAML),
    # 200 iterations: where the shipped continuation was stopped (~12 min of one contended core).
    "omniglot_maml_5shot": Recipe("maml", 5, 200, eval_every=100, curve_tasks=200, init_from="omniglot_maml_1shot",
                                  **MAML),
    # The wider map (chapter 10): short runs, each capped at about 10 minutes of a shared CPU, to be
    # compared with the MAML run's curve at the same iteration (its first point after 0 is at 1,000).
    # ANIL: MAML's settings, the inner loop on the head only (train and test).
    "omniglot_anil_1shot": Recipe("anil", 1, 1_000, eval_every=250, **MAML),
    # Prototypical Networks: no inner loop (inner_steps = test_steps = 0); inner_lr is unused.
    "omniglot_protonet_1shot": Recipe("protonet", 1, 1_000, eval_every=250, inner_lr=1.0,
                                      inner_steps=0, test_steps=0),
    # Meta-SGD: MAML's settings, the step sizes (initialised to 1, scale inner_lr = 0.4) learned with θ.
    "omniglot_meta_sgd_1shot": Recipe("meta_sgd", 1, 1_000, eval_every=250, **MAML),
    # MAML++: three inner steps in training as at test time (one learned rate per tensor and step),
    # the multi-step loss annealed over the run, first-order meta-gradients for the first 300
    # iterations (`MAMLPlusPlusSchedule`; "schedule" is not a method option, `_train` reads it).
    "omniglot_mamlpp_1shot": Recipe("mamlpp", 1, 1_000, eval_every=250, inner_lr=0.4, inner_steps=3, test_steps=3,
                                    method_options={"schedule": {"anneal_iterations": 1_000,
                                                                 "first_order_iterations": 300}}),
}

#: How each method adapts at test time (`adapted_accuracy`): the methods not listed use SGD on every
#: parameter (eq. 2.2). The wrapper methods keep their learned step sizes in the model (`build_model`).
WRAPPERS = ("meta_sgd", "mamlpp")


def build_model(recipe: Recipe, device=None) -> ConvNet:
    """The recipe's network: a `ConvNet`, wrapped with its learned step sizes for Meta-SGD and MAML++."""
    net = ConvNet(ways=recipe.ways, filters=recipe.filters)
    if recipe.method == "meta_sgd":
        net = MetaSGDNet(net)
    elif recipe.method == "mamlpp":
        net = LSLRNet(net, recipe.inner_steps)
    return net.to(get_device(device))


def omniglot_tasks(split: str, ways: int = 5, *, rotations: bool = False) -> ClassificationTasks:
    """N-way tasks from the shipped minimal sets: ``"train"`` (small 1) or ``"test"`` (the 3 held-out alphabets)."""
    from .tasks.omniglot_shipped import minimal_split

    checks.one_of("split", split, {"train", "test"})
    train, test = minimal_split()
    chosen = train if split == "train" else test
    return ClassificationTasks(chosen.images, ways, rotations=rotations, name=f"omniglot[{split}]")


def held_out_tasks(shots: int, *, num_tasks: int = EVAL_TASKS, query_shots: int | None = None, ways: int = 5,
                   seed: int = EVAL_SEED, device=None) -> TaskBatch:
    """Fixed ``ways``-way ``shots``-shot tasks from the held-out alphabets (no rotations); query as many as shots."""
    family = omniglot_tasks("test", ways)
    return family.sample(num_tasks, shots, shots if query_shots is None else query_shots,
                         generator=torch.Generator().manual_seed(seed + 100 * ways + shots), device=device)


def adapted_accuracy(model, params, tasks: TaskBatch, *, method: str, inner_lr: float, steps: int,
                     method_options: dict | None = None, chunk: int = 100) -> Tensor:
    """Query accuracy ``(T,)`` of every task after adapting ``params`` on its support set.

    The test-time learner is ``steps`` SGD steps (book eq. 2.2) for MAML, first-order
    MAML and Reptile, and the proximal solver of iMAML (with its ``lam``) for iMAML.
    The wider map's methods adapt as they were trained: ANIL takes ``steps`` steps on
    the head only (eq. 10.1); Meta-SGD and MAML++ take ``steps`` steps with their
    learned step sizes, ``inner_lr · s`` (eqs. 10.2, 10.4; ``model`` is their wrapper,
    MAML++ needs ``steps`` = its number of steps); Prototypical Networks classify by the
    nearest class mean (eq. 10.6) and need ``steps = 0``.
    Tasks are processed ``chunk`` at a time (memory), all of a chunk batched.
    """
    options = dict(method_options or {})
    if method == "protonet" and steps != 0:
        raise ValueError(f"steps must be 0 for protonet (it does not adapt), got {steps}")
    out = []
    for part in tasks.split(max(1, -(-tasks.num_tasks // chunk))):
        anchor = batch_parameters({k: v.detach() for k, v in params.items()}, part.num_tasks)
        if method in WRAPPERS:
            out.append(_step_size_accuracy(model, anchor, part, inner_lr=inner_lr, steps=steps))
            continue
        if method == "protonet":
            with torch.no_grad():
                support = model.features_with(anchor, part.x_support)
                centres = prototypes(support, part.y_support, int(part.y_support.max()) + 1)
                logits = prototype_logits(model.features_with(anchor, part.x_query), centres)
            out.append(accuracy_per_task(logits, part.y_query))
            continue
        if method == "anil":
            head, _, _ = adapt_head(model, anchor, part.x_support, part.y_support, inner_lr=inner_lr,
                                    inner_steps=steps, loss_fn=cross_entropy_per_task, create_graph=False)
            with torch.no_grad():
                out.append(accuracy_per_task(task_forward(model, {**anchor, **head}, part.x_query), part.y_query))
            continue
        if method == "imaml":
            phi, _, _ = proximal_adapt(model, anchor, part.x_support, part.y_support, inner_lr=inner_lr,
                                       inner_steps=steps, lam=options.get("lam", 2.0), loss_fn=cross_entropy_per_task)
        else:
            phi, _ = adapt(model, detached(anchor, requires_grad=True), part.x_support, part.y_support,
                           inner_lr=inner_lr, inner_steps=steps, loss_fn=cross_entropy_per_task, create_graph=False)
        with torch.no_grad():
            out.append(accuracy_per_task(task_forward(model, phi, part.x_query), part.y_query))
    return torch.cat(out)


def _step_size_accuracy(model, anchor, tasks: TaskBatch, *, inner_lr: float, steps: int) -> Tensor:
    """Query accuracy after ``steps`` steps with the wrapper's learned step sizes (Meta-SGD, MAML++)."""
    from .algorithms.meta_sgd import scaled_sgd_steps

    theta, sizes = model.split(anchor)
    t = tasks.num_tasks
    if isinstance(model, LSLRNet):
        if steps != model.steps:
            raise ValueError(f"steps must be {model.steps} for this MAML++ model (one learned rate per step), got {steps}")
        rates = [{k: s[:, i].view(t, *[1] * (theta[k].ndim - 1)) for k, s in sizes.items()} for i in range(steps)]
    else:
        rates = [sizes] * steps
    start = {k: v.detach().requires_grad_() for k, v in theta.items()}
    phi = start
    if steps:
        trajectory, _ = scaled_sgd_steps(lambda p, x: task_forward(model.net, p, x), start, rates, tasks.x_support,
                                         tasks.y_support, inner_lr=inner_lr, loss_fn=cross_entropy_per_task,
                                         first_order=True)
        phi = trajectory[-1]
    with torch.no_grad():
        return accuracy_per_task(task_forward(model.net, phi, tasks.x_query), tasks.y_query)


def evaluate_recipe(name: str, model, *, num_tasks: int = EVAL_TASKS, device=None) -> Tensor:
    """Accuracy ``(num_tasks,)`` of ``model`` on the first ``num_tasks`` fixed test tasks of recipe ``name``."""
    recipe = RECIPES[name]
    tasks = held_out_tasks(recipe.shots, num_tasks=num_tasks, ways=recipe.ways, query_shots=recipe.query_shots,
                           device=get_device(device))
    if num_tasks < tasks.num_tasks:
        tasks = TaskBatch(*(getattr(tasks, k)[:num_tasks] for k in ("x_support", "y_support", "x_query", "y_query")))
    params = dict(model.named_parameters())
    return adapted_accuracy(model, params, tasks, method=recipe.method, inner_lr=recipe.inner_lr,
                            steps=recipe.test_steps, method_options=recipe.method_options)


def regenerate(name: str, device=None, progress: bool = True, iterations: int | None = None,
               save: bool = True, eval_tasks: int = EVAL_TASKS) -> dict:
    """Train recipe ``name``, evaluate it on the 600 test tasks, save ``mamlbook/pretrained/NAME.pt`` (and its curve).

    ``iterations`` and ``eval_tasks`` override the recipe for a quick try (then keep
    ``save=False``: the shipped file should hold the recipe's run).
    """
    if name not in RECIPES:
        raise ValueError(f"name must be one of {sorted(RECIPES)}, got {name!r}")
    recipe = RECIPES[name]
    settings = asdict(recipe)
    if iterations is not None:
        settings["iterations"] = iterations
    device = get_device(device)
    generator = seed_everything(recipe.seed)
    model = build_model(recipe, device)
    init_seconds = 0.0
    if recipe.init_from is not None:
        _, init_meta = checkpoints.load_checkpoint(checkpoints.pretrained_path(recipe.init_from), model)
        init_seconds = float(init_meta.get("seconds_total", init_meta.get("seconds", 0.0)))
    return _train(name, recipe, settings, model, generator, device, init_seconds=init_seconds, progress=progress,
                  save=save, eval_tasks=eval_tasks)


def _train(name: str, recipe: Recipe, settings: dict, model, generator, device, *, init_seconds: float,
                    progress: bool, save: bool, eval_tasks: int) -> dict:
    """Meta-train on small 1 with the accuracy curve on held-out alphabets; save at every evaluation."""
    family = omniglot_tasks("train", recipe.ways, rotations=recipe.rotations)
    curve_set = held_out_tasks(recipe.shots, num_tasks=recipe.curve_tasks or CURVE_TASKS, ways=recipe.ways, query_shots=recipe.query_shots,
                               seed=EVAL_SEED + 1, device=device)
    options = dict(recipe.method_options, loss_fn=cross_entropy_per_task)
    schedule = options.pop("schedule", None)  # MAML++: its options scheduled by iteration
    step_fn = MAMLPlusPlusSchedule(**schedule) if schedule is not None else get_method(recipe.method)
    params = dict(model.named_parameters())
    opt_cls = torch.optim.Adam if recipe.optimizer == "adam" else torch.optim.SGD
    opt = opt_cls(params.values(), lr=recipe.outer_lr)
    iterations = settings["iterations"]
    curve: list[list[float]] = []  # [iteration, training seconds, held-out accuracy, mean meta-loss since last]
    losses: list[float] = []
    seconds = 0.0

    def record(it: int) -> None:
        acc = adapted_accuracy(model, params, curve_set, method=recipe.method, inner_lr=recipe.inner_lr,
                               steps=recipe.test_steps, method_options=recipe.method_options)
        window = losses[-recipe.eval_every:] if recipe.eval_every else losses
        curve.append([it, round(seconds, 2), round(float(acc.mean()), 5),
                      round(sum(window) / len(window), 5) if window else None])
        if progress:
            print(f"{name}: iteration {it}, {seconds:.0f} s, held-out accuracy {100 * float(acc.mean()):.2f}%",
                  flush=True)
        if save:
            checkpoints.save_checkpoint(checkpoints.PRETRAINED_DIR / f"{name}.pt", model,
                                        metadata=_metadata(name, settings, recipe, device, seconds, init_seconds,
                                                           losses, curve, None, 0.0))

    record(0)
    for it in range(iterations):
        lr = recipe.outer_lr
        for start, factor in recipe.lr_schedule:
            if it >= start:
                lr = recipe.outer_lr * factor
        for group in opt.param_groups:
            group["lr"] = lr
        begin = time.perf_counter()
        tasks = family.sample(recipe.meta_batch_size, recipe.shots, recipe.query_shots, generator=generator,
                              device=device)
        step = step_fn(model, params, tasks, inner_lr=recipe.inner_lr, inner_steps=recipe.inner_steps, **options)
        loss = float(step.meta_loss)
        if not math.isfinite(loss):
            raise checks.DivergenceError(f"meta-loss is {loss} at iteration {it} of {name}: training diverged")
        for k, p in params.items():
            p.grad = step.grads[k]
        opt.step()
        seconds += time.perf_counter() - begin
        losses.append(loss)
        if recipe.eval_every and (it + 1) % recipe.eval_every == 0 and it + 1 < iterations:
            record(it + 1)
    record(iterations)
    start = time.perf_counter()
    accuracy = evaluate_recipe(name, model, num_tasks=eval_tasks, device=device)
    eval_seconds = time.perf_counter() - start
    metadata = _metadata(name, settings, recipe, device, seconds, init_seconds, losses, curve, accuracy, eval_seconds)
    if save:
        checkpoints.save_checkpoint(checkpoints.PRETRAINED_DIR / f"{name}.pt", model, metadata=metadata)
        export_curve(name)
    return metadata


def export_curve(name: str) -> Path:
    """Write the accuracy curve stored in shipped checkpoint ``name`` to ``pretrained/NAME.curve.json``.

    (Training saves the checkpoint, curve included, at every evaluation; this writes
    the small JSON file the chapter reads, also for a run stopped before its end.)
    """
    model = build_model(RECIPES[name])
    _, meta = checkpoints.load_checkpoint(checkpoints.pretrained_path(name), model)
    path = checkpoints.PRETRAINED_DIR / f"{name}.curve.json"
    path.write_text(json.dumps(
        {"recipe": name, "columns": ["iteration", "train_seconds", "held_out_accuracy", "mean_meta_loss"],
         "curve_tasks": RECIPES[name].curve_tasks or CURVE_TASKS, "iterations_done": meta.get("iterations_done"), "threads": meta.get("threads"),
         "device": meta.get("device"), "init_from": meta.get("init_from"), "seconds": meta.get("seconds"),
         "seconds_total": meta.get("seconds_total"),
         "curve": [[None if isinstance(v, float) and math.isnan(v) else v for v in row] for row in meta.get("curve", [])]},
        indent=1) + "\n")
    return path


def finalize(name: str, device=None, eval_tasks: int = EVAL_TASKS) -> dict:
    """Score shipped checkpoint ``name`` on the `EVAL_TASKS` fixed test tasks, store them in it, export its curve.

    For a run stopped at one of its evaluations (its checkpoint holds the curve so far
    and no test accuracy): the result is what ``regenerate`` with
    ``iterations=metadata["iterations_done"]`` writes.
    """
    model = build_model(RECIPES[name], device)
    _, meta = checkpoints.load_checkpoint(checkpoints.pretrained_path(name), model)
    start = time.perf_counter()
    accuracy = evaluate_recipe(name, model, num_tasks=eval_tasks, device=device)
    meta.update(eval_seconds=time.perf_counter() - start, test_accuracy=[round(float(a), 6) for a in accuracy.cpu()])
    checkpoints.save_checkpoint(checkpoints.PRETRAINED_DIR / f"{name}.pt", model, metadata=meta)
    export_curve(name)
    return meta


def load_curve(name: str) -> dict:
    """The accuracy curve of shipped recipe ``name`` (see `export_curve`)."""
    return json.loads((checkpoints.PRETRAINED_DIR / f"{name}.curve.json").read_text())


def _metadata(name, settings, recipe, device, seconds, init_seconds, losses, curve, accuracy, eval_seconds) -> dict:
    window = min(100, len(losses)) or 1
    return {"recipe": name, "settings": json.dumps(settings), "init_from": recipe.init_from or "",
            "seconds": seconds, "seconds_total": seconds + init_seconds, "eval_seconds": eval_seconds,
            "device": str(device), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "created": time.strftime("%Y-%m-%d"), "iterations_done": len(losses),
            "final_meta_loss_mean_last_100": sum(losses[-window:]) / window if losses else float("nan"),
            "meta_loss_every_10": losses[::10], "curve": curve,
            "test_accuracy": [] if accuracy is None else [round(float(a), 6) for a in accuracy.cpu()]}


def load_recipe(name: str, device=None) -> tuple[ConvNet, dict]:
    """The shipped model for recipe ``name`` on ``device`` and its metadata."""
    if name not in RECIPES:
        raise ValueError(f"name must be one of {sorted(RECIPES)}, got {name!r}")
    model = build_model(RECIPES[name], device)
    _, metadata = checkpoints.load_checkpoint(checkpoints.pretrained_path(name), model)
    return model, metadata


def main(argv: list[str] | None = None) -> int:
    """``python -m mamlbook.classification_recipes regenerate ...`` = ``python -m mamlbook regenerate ...``."""
    from .__main__ import main as cli  # the one command line of the package

    return cli(argv)


if __name__ == "__main__":
    sys.exit(main())

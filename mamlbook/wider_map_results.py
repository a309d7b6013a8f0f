"""The measured results of chapter 10 (the wider map): feature reuse, cost per meta-step, accuracy.

* **Feature reuse** (Raghu et al. 2020): a shipped network is adapted on the fixed
  5-way 1-shot test tasks of chapter 08 (`mamlbook.protocol.held_out_tasks`)
  twice, all layers (eq. 2.2) or the head only (eq. 10.1), with the recipe's test-time
  steps and step size; the per-task accuracies are compared *paired*. Beside it, how
  much the body's features move when all layers adapt: the linear CKA (centred kernel
  alignment, 1 = the same features up to rotation and scale) between the body's
  features of the query images at ``θ`` and at ``φ``.
* **Cost per meta-step** of every registered method, on the same meta-batch: the
  chapter-08 training tasks (5-way 1-shot, one query drawing per class, 4 tasks, the
  32-filter `ConvNet`) and sinusoids (25 tasks, 10 + 10 points, the 1-40-40-1 network):
  the fastest of ``repeats`` timed calls (`mamlbook.measure.time_per_call`) and the
  peak bytes autograd kept for the backward (`mamlbook.measure.saved_tensor_memory`).
  Every adaptive method takes the same number of inner steps.
* **Accuracy** of the shipped 1-shot checkpoints: their stored scores on the 600 test
  tasks, and their accuracy curves (500 fixed held-out tasks, the same for every
  recipe) at the same iteration.

``python -m mamlbook.wider_map_results`` recomputes everything and writes
``mamlbook/results/wider_map.json`` (minutes on a CPU); the chapter reads it and
re-checks a sample live. ``--only feature_reuse accuracy`` recomputes those parts and
keeps the rest of the file (e.g. after a checkpoint is retrained, without timing the
costs again on a machine that is not idle).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch
from torch import Tensor

from . import checkpoints, checks, protocol, recipes
from .algorithms import LSLRNet, MetaSGDNet, get_method
from .cli_parser import ScriptParser, int_between
from .functional import (
    adapt,
    batch_parameters,
    cross_entropy_per_task,
    detached,
    mse_per_task,
    parameters_of,
)
from .measure import saved_tensor_memory, time_per_call
from .models import ConvNet, SinusoidMLP
from .protocol import mean_and_ci95
from .tasks import SinusoidTasks, TaskBatch

RESULTS_PATH = Path(__file__).resolve().parent / "results" / "wider_map.json"
#: The 1-shot checkpoints compared (chapter 08's MAML run and the chapter's short runs).
COMPARED = ["omniglot_maml_1shot", "omniglot_anil_1shot", "omniglot_protonet_1shot", "omniglot_meta_sgd_1shot",
            "omniglot_mamlpp_1shot"]
#: Every registered method, in the order of the chapter's table.
METHODS = ["maml", "fomaml", "reptile", "imaml", "anil", "meta_sgd", "mamlpp", "protonet", "pretrain"]
#: Head-only adaptation with more steps than the recipe's, to tell "slower" from "cannot".
MORE_HEAD_STEPS = 10
#: The meta-batches the costs are measured on: (family, inner steps of every adaptive method).
COST_SETTINGS = {"omniglot": 1, "sinusoid": 5}


def summary(values: Tensor) -> dict:
    mean, ci95 = mean_and_ci95(values.double().cpu())
    return {"mean": 100 * mean, "ci95": 100 * ci95, "n": int(values.numel())}


def linear_cka(a: Tensor, b: Tensor) -> Tensor:
    """Linear CKA of two sets of features of the same examples: ``(T, N, F)`` twice -> ``(T,)``.

    ``‖Bᵀ A‖²_F / (‖Aᵀ A‖_F ‖Bᵀ B‖_F)`` after centring each feature over the examples
    (Kornblith et al. 2019); 1 when the features agree up to a rotation and a scale.
    """
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    cross = (b.transpose(1, 2) @ a).square().sum((1, 2))
    return cross / ((a.transpose(1, 2) @ a).square().sum((1, 2)).sqrt()
                    * (b.transpose(1, 2) @ b).square().sum((1, 2)).sqrt())


def feature_reuse(name: str, tasks: TaskBatch) -> dict[str, Tensor]:
    """Per-task accuracy of checkpoint ``name`` adapted on all layers and on the head only, and the body's CKA.

    Both adapt with the recipe's ``test_steps`` steps of its ``inner_lr`` (a Meta-SGD
    network is read as its plain network here: step ``inner_lr`` for every parameter).
    Returns ``{"all": (T,), "head": (T,), "head_more_steps": (T,), "cka": (T,)}``, the
    third with `MORE_HEAD_STEPS` steps on the head (is the head only slower to adapt?).
    """
    recipe = recipes.RECIPES[name]
    model, _ = recipes.load(name, device="cpu")
    net = model.net if isinstance(model, (MetaSGDNet, LSLRNet)) else model
    theta = {k: v.detach() for k, v in parameters_of(net).items()}
    out = {"all": protocol.adapted_accuracy(net, theta, tasks, method="maml", inner_lr=recipe.training.inner_lr,
                                      steps=recipe.test_steps),
           "head": protocol.adapted_accuracy(net, theta, tasks, method="anil", inner_lr=recipe.training.inner_lr,
                                       steps=recipe.test_steps),
           "head_more_steps": protocol.adapted_accuracy(net, theta, tasks, method="anil", inner_lr=recipe.training.inner_lr,
                                                  steps=MORE_HEAD_STEPS)}
    ckas = []
    for part in tasks.split(max(1, -(-tasks.num_tasks // 100))):
        anchor = batch_parameters(theta, part.num_tasks)
        phi, _ = adapt(net, detached(anchor, requires_grad=True), part.x_support, part.y_support,
                       inner_lr=recipe.training.inner_lr, inner_steps=recipe.test_steps, loss_fn=cross_entropy_per_task,
                       create_graph=False)
        with torch.no_grad():
            ckas.append(linear_cka(net.features_with(anchor, part.x_query), net.features_with(phi, part.x_query)))
    out["cka"] = torch.cat(ckas)
    return out


def cost_setting(family: str, seed: int = 0):
    """``(model, θ, tasks, loss_fn)`` of the meta-batch the costs are measured on."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    if family == "omniglot":
        recipe = recipes.RECIPES["omniglot_maml_1shot"]
        model = ConvNet(ways=recipe.ways, filters=recipe.filters)
        tasks = protocol.omniglot_tasks("train", recipe.ways, rotations=True).sample(
            recipe.training.meta_batch_size, recipe.training.support_shots, recipe.training.query_shots,
            generator=generator)
        return model, tasks, cross_entropy_per_task
    model = SinusoidMLP()
    return model, SinusoidTasks().sample(25, 10, 10, generator=generator), mse_per_task


def method_call(method: str, family: str, steps: int):
    """A no-argument function taking one meta-step of ``method`` on the cost setting of ``family``, or None."""
    net, tasks, loss_fn = cost_setting(family)
    if method == "protonet" and family == "sinusoid":
        return None  # regression: no classes to average
    model = {"meta_sgd": lambda: MetaSGDNet(net), "mamlpp": lambda: LSLRNet(net, steps)}.get(method, lambda: net)()
    params = detached(parameters_of(model))
    options = {"inner_lr": 0.4 if family == "omniglot" else 0.01, "loss_fn": loss_fn,
               "inner_steps": 0 if method in ("pretrain", "protonet") else steps}
    if method == "mamlpp":
        options["step_weights"] = (1.0 / steps,) * steps  # the multi-step loss at the start of training
    fn = get_method(method)
    return lambda: fn(model, params, tasks, **options)


def method_costs(family: str, repeats: int = 5, methods=METHODS) -> dict:
    """``{method: {"ms": fastest of repeats, "peak_mib": saved-tensor peak}}`` on ``family``'s meta-batch."""
    steps = COST_SETTINGS[family]
    rows = {}
    for method in methods:
        call = method_call(method, family, steps)
        if call is None:
            continue
        seconds = time_per_call(call, repeats=repeats, warmup=1)
        _, stats = saved_tensor_memory(call)
        rows[method] = {"ms": 1e3 * seconds, "peak_mib": stats.peak_bytes / 2**20}
    return rows


def checkpoint_accuracy(name: str) -> dict:
    """The stored test accuracy (600 tasks) and the accuracy curve of a shipped checkpoint."""
    _, meta = recipes.load(name, device="cpu")
    curve = recipes.load_curve(name)
    return {"test": summary(torch.tensor(meta["test_accuracy"])), "iterations": meta["iterations_done"],
            "train_seconds": meta["seconds"], "curve": curve["curve"], "threads": meta.get("threads")}


#: The parts of the results file, each recomputed by `compute` with the keys it writes.
PARTS = {"feature_reuse": ("feature_reuse", "reuse_tasks", "more_head_steps"),
         "costs": ("costs", "cost_steps", "repeats", "threads", "loadavg"),
         "accuracy": ("accuracy",)}


def _shipped(name: str) -> bool:
    return (checkpoints.PRETRAINED_DIR / f"{name}.curve.json").is_file()


#: The command line's bounds (`compute` checks them too).
MAX_REPEATS, MAX_TASKS = 1_000, 10**6


def compute(repeats: int = 5, reuse_tasks: int = protocol.EVAL_TASKS, parts=tuple(PARTS)) -> dict:
    """The chapter's ``parts`` (default all; see the module docstring); missing checkpoints are left out."""
    for part in parts:
        checks.one_of("parts", part, set(PARTS))
    checks.int_in_range("repeats", repeats, 1, MAX_REPEATS)  # before minutes of the other parts
    checks.int_in_range("reuse_tasks", reuse_tasks, 2, MAX_TASKS)  # an interval needs two tasks
    result = {}
    if "feature_reuse" in parts:
        tasks = protocol.held_out_tasks(1, num_tasks=reuse_tasks)
        reuse = {}
        for name in filter(_shipped, ("omniglot_maml_1shot", "omniglot_anil_1shot")):
            r = feature_reuse(name, tasks)
            reuse[name] = {"all": summary(r["all"]), "head": summary(r["head"]),
                           "head_minus_all": summary(r["head"] - r["all"]),
                           "head_more_steps": summary(r["head_more_steps"]),
                           "head_more_steps_minus_all": summary(r["head_more_steps"] - r["all"]),
                           "cka": {"mean": float(r["cka"].mean()), "min": float(r["cka"].min())}}
        result.update(feature_reuse=reuse, reuse_tasks=reuse_tasks, more_head_steps=MORE_HEAD_STEPS)
    if "costs" in parts:
        result.update(costs={family: method_costs(family, repeats) for family in COST_SETTINGS},
                      cost_steps=COST_SETTINGS, repeats=repeats, threads=torch.get_num_threads(),
                      loadavg=os.getloadavg())  # what the timings were measured under
    if "accuracy" in parts:
        result["accuracy"] = {name: checkpoint_accuracy(name) for name in filter(_shipped, COMPARED)}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = ScriptParser(prog="python -m mamlbook.wider_map_results", description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int_between(1, MAX_REPEATS), default=5,
                        help=f"timed calls per method, 1 to {MAX_REPEATS:,} (the fastest is kept)")
    parser.add_argument("--tasks", type=int_between(2, MAX_TASKS), default=protocol.EVAL_TASKS,
                        help=f"test tasks of the feature-reuse check, 2 to {MAX_TASKS:,}")
    parser.add_argument("--only", nargs="+", choices=list(PARTS), metavar="PART",
                        help=f"recompute these parts ({', '.join(PARTS)}) and keep the others of --out")
    parser.add_argument("--out", default=str(RESULTS_PATH), help="where to write the JSON")
    args = parser.parse_args(argv)
    if args.only and not Path(args.out).is_file():
        parser.error(f"argument --only: keeps the other parts of --out, but {args.out} does not exist")
    start = time.perf_counter()
    result = compute(args.repeats, args.tasks, parts=args.only or tuple(PARTS))
    command = "python -m mamlbook.wider_map_results" + "".join(f" {a}" for a in (argv or sys.argv[1:]))
    if args.only:
        old = json.loads(Path(args.out).read_text())
        kept = {key: old[key] for part in PARTS if part not in args.only for key in PARTS[part]}
        result.update(kept, command=f"{old['command']}; {command}")
    else:
        result["command"] = command
    result.update(torch=torch.__version__, seconds=time.perf_counter() - start,
                  created=time.strftime("%Y-%m-%d %H:%M"))
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out} in {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

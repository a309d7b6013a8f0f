"""The real-Omniglot results table of chapter 08: shipped checkpoints against baselines.

Settings, all on characters the networks never saw (`mamlbook.tasks.omniglot_shipped`):

* ``5w1s``, ``5w5s``, ``20w1s``: fixed N-way K-shot tasks from the three alphabets only
  in the minimal set "small 2" (Japanese katakana, Sanskrit, Tagalog; 106 characters),
  one query drawing per class per shot as in training (``query_shots = shots``);
* ``lake20``: Lake et al.'s 20 runs (20-way one-shot *within* one evaluation alphabet,
  20 query drawings each, the official answer key).

Methods: each shipped checkpoint, adapted as in training (``test_steps`` SGD steps of
``inner_lr``, iMAML with its proximal solver); a 5-way network meets a 20-way task
with its head *widened*: every class row starts as the mean of the 5 trained rows, so
all classes start with equal logits and adaptation alone separates them (`widen_head`),
with `WIDE_TEST_STEPS` adaptation steps instead of the recipe's 3 (chosen on 20-way
tasks from the *training* alphabets: 70% after 3 steps, 80% after 6 or 10).
A 20-way network meets a 5-way task the same way (every one of its 5 rows the mean
of the 20 trained rows, `WIDE_TEST_STEPS` steps).
Beside them: the nearest neighbour in pixels (cosine similarity of the 28×28 images,
nearest support drawing; chance is 1/N).

``python -m mamlbook.omniglot_results`` recomputes the table and writes
``mamlbook/results/omniglot_results.json`` (minutes on a CPU); the chapter reads it
and re-checks a sample of tasks live.

``--wide-steps-probe`` writes ``omniglot_wide_steps.json`` instead: how a network's
widened head fares after 10 and 50 steps on 20-way tasks of the training alphabets,
and after 50 on the held-out 20-way settings (`wide_steps_probe`; chapter 08 uses it
for Reptile, whose steps of 0.1 move a widened head four times less than MAML's 0.4).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch import Tensor

from . import checkpoints, checks, protocol, recipes
from .models import ConvNet, accuracy_per_task
from .protocol import mean_and_ci95
from .tasks import TaskBatch
from .tasks.omniglot_shipped import load_runs, runs_as_tasks

RESULTS_PATH = Path(__file__).resolve().parent / "results" / "omniglot_results.json"
WIDE_STEPS_PATH = RESULTS_PATH.with_name("omniglot_wide_steps.json")
SETTINGS = {"5w1s": (5, 1), "5w5s": (5, 5), "20w1s": (20, 1)}
TABLE_TASKS = 1000
WIDE_TEST_STEPS = 10


def setting_tasks(setting: str, num_tasks: int = TABLE_TASKS) -> TaskBatch:
    """The fixed tasks of ``setting`` (``"5w1s"``, ``"5w5s"``, ``"20w1s"`` or ``"lake20"``;
    ``"train20w1s"``: 20-way 1-shot tasks of the *training* alphabets, where test-time
    settings are chosen)."""
    if setting == "lake20":
        return runs_as_tasks(load_runs())
    if setting == "train20w1s":
        family = protocol.omniglot_tasks("train", 20)
        return family.sample(num_tasks, 1, 1, generator=torch.Generator().manual_seed(protocol.EVAL_SEED + 1))
    ways, shots = SETTINGS[setting]
    return protocol.held_out_tasks(shots, num_tasks=num_tasks, ways=ways)


def pixel_nearest_neighbour(tasks: TaskBatch) -> Tensor:
    """Accuracy ``(T,)`` of labelling each query image as its most similar support image (cosine, pixels)."""
    s = torch.nn.functional.normalize(tasks.x_support.flatten(2), dim=-1)
    q = torch.nn.functional.normalize(tasks.x_query.flatten(2), dim=-1)
    nearest = (q @ s.transpose(1, 2)).argmax(-1)  # (T, Q) index into the support set
    predicted = torch.gather(tasks.y_support, 1, nearest)
    return (predicted == tasks.y_query).double().mean(1)


def widen_head(model: ConvNet, params: dict, ways: int) -> tuple[ConvNet, dict]:
    """A ``ways``-way copy of a network: body unchanged, every head row the mean of the trained rows."""
    if ways == model.ways:
        return model, params
    wide = ConvNet(ways, model.filters, model.blocks, model.channels, model.image_size, meta_batch=model.meta_batch)
    out = dict(params)
    out["head.weight"] = params["head.weight"].mean(0, keepdim=True).expand(ways, -1).clone()
    out["head.bias"] = params["head.bias"].mean().expand(ways).clone()
    return wide, out


def checkpoint_logits(name: str, tasks: TaskBatch, wide_steps: int = WIDE_TEST_STEPS) -> Tensor:
    """Query logits ``(T, Q, ways)`` of shipped recipe ``name`` on ``tasks`` after adapting
    on each support set (head widened to the tasks' ways, ``wide_steps`` steps then)."""
    checks.positive_int("wide_steps", wide_steps)
    recipe = recipes.recipe(name)
    model, _ = recipes.load(name, device="cpu")
    params = {k: v.detach() for k, v in model.named_parameters()}
    ways = int(tasks.y_support.max()) + 1
    steps = recipe.test_steps if ways == model.ways else max(recipe.test_steps, wide_steps)
    model, params = widen_head(model, params, ways)
    training = recipe.training
    return protocol.adapted_logits(model, params, tasks, method=training.method, inner_lr=training.inner_lr,
                                   steps=steps, method_options=training.method_options, chunk=50)


def checkpoint_accuracy(name: str, tasks: TaskBatch, wide_steps: int = WIDE_TEST_STEPS) -> Tensor:
    """Per-task accuracy ``(T,)`` of shipped recipe ``name`` on ``tasks`` (`checkpoint_logits`)."""
    return accuracy_per_task(checkpoint_logits(name, tasks, wide_steps), tasks.y_query).double()


def summary(values: Tensor) -> dict:
    mean, ci = mean_and_ci95(values)
    return {"mean": round(100 * mean, 2), "ci95": round(100 * ci, 2), "tasks": int(values.numel())}


def paired(a: Tensor, b: Tensor) -> dict:
    """Mean and 95% interval of ``a − b`` over the same tasks (percentage points)."""
    return summary(a - b)


def compute(names: list[str], num_tasks: int = TABLE_TASKS, settings=("5w1s", "5w5s", "20w1s", "lake20")) -> dict:
    """The table: ``{setting: {row: summary}}`` with rows the recipes and ``"pixel_nn"``."""
    table: dict = {"num_tasks": num_tasks, "created": time.strftime("%Y-%m-%d %H:%M"), "rows": {}, "paired_vs_nn": {}}
    for setting in settings:
        tasks = setting_tasks(setting, num_tasks)
        nn_acc = pixel_nearest_neighbour(tasks)
        table["rows"].setdefault("pixel_nn", {})[setting] = summary(nn_acc)
        for name in names:
            start = time.perf_counter()
            acc = checkpoint_accuracy(name, tasks)
            table["rows"].setdefault(name, {})[setting] = dict(summary(acc), seconds=round(time.perf_counter() - start, 1))
            table["paired_vs_nn"].setdefault(name, {})[setting] = paired(acc, nn_acc)
            print(f"{setting:>6} {name:<24} {100 * float(acc.mean()):6.2f}%  (pixel NN {100 * float(nn_acc.mean()):.2f}%)",
                  flush=True)
    return table


def wide_steps_probe(names: list[str], steps=(WIDE_TEST_STEPS, 50), num_tasks: int = TABLE_TASKS,
                     probe_tasks: int = 100) -> dict:
    """How many steps a widened head needs: each network on ``probe_tasks`` 20-way 1-shot
    tasks of the training alphabets after each number of ``steps`` (at its recipe's
    ``inner_lr``), then on the held-out 20-way settings after the largest number.
    ``{"rows": {name: {"train20w1s": {steps: summary}, "20w1s": summary, "lake20": summary}}}``."""
    out: dict = {"num_tasks": num_tasks, "probe_tasks": probe_tasks, "steps": list(steps), "rows": {}}
    probe = setting_tasks("train20w1s", probe_tasks)
    held_out = {s: setting_tasks(s, num_tasks) for s in ("20w1s", "lake20")}
    for name in names:
        row = out["rows"][name] = {"train20w1s": {}}
        for k in steps:
            row["train20w1s"][str(k)] = summary(checkpoint_accuracy(name, probe, k))
            print(f"train20w1s {name:<24} {k:>3} steps {row['train20w1s'][str(k)]['mean']:6.2f}%", flush=True)
        for setting, tasks in held_out.items():
            row[setting] = summary(checkpoint_accuracy(name, tasks, max(steps)))
            print(f"{setting:>10} {name:<24} {max(steps):>3} steps {row[setting]['mean']:6.2f}%", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    RECIPES = recipes.RECIPES
    parser = argparse.ArgumentParser(description="Recompute chapter 08's real-Omniglot table.")
    parser.add_argument("--tasks", type=int, default=TABLE_TASKS)
    parser.add_argument("--recipes", nargs="+", default=None)
    parser.add_argument("--out", default=str(RESULTS_PATH))
    parser.add_argument("--merge", action="store_true",
                        help="keep the rows of the existing --out file (same --tasks) and add or replace these recipes'")
    parser.add_argument("--wide-steps-probe", action="store_true",
                        help=f"instead of the table, write how many steps widened heads need ({WIDE_STEPS_PATH.name})")
    args = parser.parse_args(argv)
    if args.tasks < 1:
        parser.error(f"--tasks must be a positive integer, got {args.tasks}")
    unknown = [n for n in args.recipes or [] if n not in RECIPES]
    if unknown:
        parser.error(f"--recipes must name recipes of mamlbook.recipes.RECIPES (omniglot_...), got {unknown}")
    command = "python -m mamlbook.omniglot_results " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.wide_steps_probe:
        out = args.out if args.out != str(RESULTS_PATH) else str(WIDE_STEPS_PATH)
        result = wide_steps_probe(args.recipes or ["omniglot_reptile_1shot_train10_long"], num_tasks=args.tasks)
        merged_keys = ("rows",)
    else:
        # chapter 08's methods; chapter 10's (ANIL, Meta-SGD, ...) are compared by mamlbook.wider_map_results
        shipped = [n for n in RECIPES if (checkpoints.PRETRAINED_DIR / f"{n}.pt").is_file()
                   and RECIPES[n].training.method in ("maml", "fomaml", "reptile", "imaml")]
        out, result = args.out, compute(args.recipes or shipped, args.tasks)
        merged_keys = ("rows", "paired_vs_nn")
    if args.merge and Path(out).is_file():
        old = json.loads(Path(out).read_text())
        if old["num_tasks"] != args.tasks:
            raise SystemExit(f"--merge needs the same --tasks as {out} ({old['num_tasks']}), got {args.tasks}")
        for key in merged_keys:
            old[key].update(result[key])
        result, command = old, old["command"] + "; " + command
    result["command"] = command
    Path(out).write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

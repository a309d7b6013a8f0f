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
with `WIDE_TEST_STEPS` adaptation steps instead of the MAML recipes' 3, or the
recipe's own number where that is larger (iMAML's 16; `checkpoint_logits`). Ten was
chosen on 20-way tasks from the *training* alphabets (70% after 3 steps, 80% after 6
or 10).
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

``--test-steps-probe`` writes ``omniglot_test_steps.json``: MAML networks adapted by 3,
5, 10 and 20 test-time steps, on tasks of the training characters (where the number is
chosen) and on their 600 held-out test tasks (`test_steps_probe`; the MAML paper evaluates
its 5-way Omniglot networks after 3 steps, its code's test function after up to 10).

``--imaml-directions`` writes ``omniglot_imaml_directions.json``: where iMAML's
meta-gradient points on training tasks, against the exact solve, the first-order
direction and the implicit gradient at a better-solved inner problem
(`mamlbook.omniglot_imaml_directions`; chapter 08 uses it for iMAML's gap to MAML).

``--training-fit`` writes ``omniglot_training_fit.json``: how well 5-way MAML networks fit
the characters they were trained on (`training_fit`; chapter 08 reads it beside their
test accuracy, instead of adapting eight networks to 200 tasks each while it runs).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
from torch import Tensor

from . import checkpoints, checks, protocol, recipes
from .cli_parser import ScriptParser, int_between
from .models import ConvNet, accuracy_per_task
from .omniglot_imaml_directions import imaml_directions
from .protocol import mean_and_ci95
from .tasks import TaskBatch
from .tasks.omniglot_shipped import load_runs, runs_as_tasks

RESULTS_PATH = Path(__file__).resolve().parent / "results" / "omniglot_results.json"
WIDE_STEPS_PATH = RESULTS_PATH.with_name("omniglot_wide_steps.json")
TEST_STEPS_PATH = RESULTS_PATH.with_name("omniglot_test_steps.json")
IMAML_DIRECTIONS_PATH = RESULTS_PATH.with_name("omniglot_imaml_directions.json")
TRAINING_FIT_PATH = RESULTS_PATH.with_name("omniglot_training_fit.json")
#: The seed of `training_fit`'s tasks (chapter 08's first scores of the training characters used it).
FIT_SEED = 11
SETTINGS = {"5w1s": (5, 1), "5w5s": (5, 5), "20w1s": (20, 1)}
#: The table's columns: `SETTINGS` and Lake's 20 runs.
TABLE_SETTINGS = (*SETTINGS, "lake20")
TABLE_TASKS = 1000
WIDE_TEST_STEPS = 10


def setting_tasks(setting: str, num_tasks: int = TABLE_TASKS) -> TaskBatch:
    """The fixed tasks of ``setting`` (``"5w1s"``, ``"5w5s"``, ``"20w1s"`` or ``"lake20"``;
    ``"train20w1s"``: 20-way 1-shot tasks of the *training* alphabets, where test-time
    settings are chosen)."""
    if setting == "lake20":
        return runs_as_tasks(load_runs())
    if setting == "train20w1s":
        return training_tasks(20, 1, num_tasks)
    ways, shots = SETTINGS[setting]
    return protocol.held_out_tasks(shots, num_tasks=num_tasks, ways=ways)


def training_tasks(ways: int, shots: int, num_tasks: int, seed: int = protocol.EVAL_SEED + 1) -> TaskBatch:
    """Fixed ``ways``-way ``shots``-shot tasks of the *training* characters (unrotated,
    drawn from ``seed``; the default's are where test-time settings are chosen)."""
    family = protocol.omniglot_tasks("train", ways)
    return family.sample(num_tasks, shots, shots, generator=torch.Generator().manual_seed(seed))


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
    wide = ConvNet(**{**model.settings, "ways": ways})
    out = dict(params)
    out["head.weight"] = params["head.weight"].mean(0, keepdim=True).expand(ways, -1).clone()
    out["head.bias"] = params["head.bias"].mean().expand(ways).clone()
    return wide, out


def checkpoint_logits(name: str, tasks: TaskBatch, wide_steps: int = WIDE_TEST_STEPS, *,
                      steps: int | None = None) -> Tensor:
    """Query logits ``(T, Q, ways)`` of shipped recipe ``name`` on ``tasks`` after adapting
    on each support set: ``steps`` steps (None: the recipe's ``test_steps``), or with the
    head widened to the tasks' ways, ``wide_steps`` steps (at least the recipe's)."""
    checks.positive_int("wide_steps", wide_steps)
    recipe = recipes.recipe(name)
    model, _ = recipes.load(name, device="cpu")
    params = {k: v.detach() for k, v in model.named_parameters()}
    ways = int(tasks.y_support.max()) + 1
    if steps is not None:
        checks.positive_int("steps", steps)
        if ways != model.ways:
            raise ValueError(f"steps is for tasks of the network's own {model.ways} ways, got {ways}-way tasks "
                             "(a widened head takes wide_steps)")
    own_steps = recipe.test_steps if steps is None else steps
    steps = own_steps if ways == model.ways else max(recipe.test_steps, wide_steps)
    model, params = widen_head(model, params, ways)
    training = recipe.training
    return protocol.adapted_logits(model, params, tasks, method=training.method, inner_lr=training.inner_lr,
                                   steps=steps, method_options=training.method_options, chunk=50)


def checkpoint_accuracy(name: str, tasks: TaskBatch, wide_steps: int = WIDE_TEST_STEPS, *,
                        steps: int | None = None) -> Tensor:
    """Per-task accuracy ``(T,)`` of shipped recipe ``name`` on ``tasks`` (`checkpoint_logits`)."""
    return accuracy_per_task(checkpoint_logits(name, tasks, wide_steps, steps=steps), tasks.y_query).double()


def summary(values: Tensor) -> dict:
    mean, ci = mean_and_ci95(values)
    return {"mean": round(100 * mean, 2), "ci95": round(100 * ci, 2), "tasks": int(values.numel())}


def paired(a: Tensor, b: Tensor) -> dict:
    """Mean and 95% interval of ``a − b`` over the same tasks (percentage points)."""
    return summary(a - b)


def compute(names: list[str], num_tasks: int = TABLE_TASKS, settings=TABLE_SETTINGS) -> dict:
    """The table over ``settings`` (of `TABLE_SETTINGS`): ``{"rows": {row: {setting:
    summary}}, "paired_vs_nn": {recipe: {setting: summary}}}`` with rows the recipes and
    ``"pixel_nn"``, the paired summaries each recipe's difference with ``"pixel_nn"``."""
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


#: Chapter 08's headline rows: each method's last network from each training seed's
#: chain (seed 0's, then seed 1's; the 20-way network was trained from one seed), as
#: the chapter's sections leave them, and the pixel nearest neighbour.
HEADLINE = {
    "MAML, 1-shot": ("omniglot_maml_1shot_shift2_anneal_long", "omniglot_maml_1shot_seed1_shift2_anneal_long"),
    "MAML, 5-shot": ("omniglot_maml_5shot_shift2_long_anneal", "omniglot_maml_5shot_seed1_shift2_long_anneal"),
    "MAML, 20-way": ("omniglot_maml_20way_1shot_anneal",),
    "first-order MAML": ("omniglot_fomaml_1shot_anneal", "omniglot_fomaml_1shot_seed1_anneal"),
    "Reptile": ("omniglot_reptile_1shot_train10_long", "omniglot_reptile_1shot_train10_seed1_long"),
    "iMAML": ("omniglot_imaml_1shot_16steps_lam05_anneal", "omniglot_imaml_1shot_16steps_seed1_lam05_anneal"),
    "pixel nearest neighbour": ("pixel_nn",),
}


def headline(table: dict, settings=TABLE_SETTINGS) -> tuple[list[str], list[list[str]]]:
    """The `HEADLINE` rows of ``table`` (`compute`'s, as shipped) as a table's header and
    rows (`mamlbook.notebook.table` shows them): per setting, each seed's mean accuracy
    in %, seed 0 first (``"95.2, 94.9"``; a row of one network ``"67.2, –"``, so that its
    number stands under the others' seed 0); then ``"widest ±"``, the widest 95% interval
    of each column."""
    missing = sorted({name for names in HEADLINE.values() for name in names} - set(table["rows"]))
    if missing:
        raise KeyError(f"the table has no row for {', '.join(missing)}: recompute it with those recipes")
    unscored = [s for s in settings if any(s not in table["rows"][n] for names in HEADLINE.values() for n in names)]
    if unscored:
        raise KeyError(f"the table has no setting {', '.join(unscored)} for every headline row; its settings are "
                       f"{', '.join(table['rows']['pixel_nn'])}")
    seeds = max(map(len, HEADLINE.values()))
    rows = [[label, *(", ".join([*(f"{table['rows'][n][s]['mean']:.1f}" for n in names), *["–"] * (seeds - len(names))])
                      for s in settings)]
            for label, names in HEADLINE.items()]
    widest = [max(table["rows"][n][s]["ci95"] for names in HEADLINE.values() for n in names) for s in settings]
    rows.append(["widest ±", *(f"{w:.1f}" for w in widest)])
    return ["method", *settings], rows


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


TEST_STEPS_PROBED = (3, 5, 10, 20)
#: a number of test-time steps is chosen if the training characters' accuracy is within this many points of the best
TEST_STEPS_TOLERANCE = 0.1


def test_steps_probe(names: list[str], steps=TEST_STEPS_PROBED, probe_tasks: int = 200,
                     test_tasks: int = protocol.EVAL_TASKS) -> dict:
    """How many SGD steps at test time: each MAML network ``names`` adapted by each number
    of ``steps`` (of its recipe's ``inner_lr``), first on ``probe_tasks`` tasks of the
    *training* characters (its ways and shots, unrotated, seed ``EVAL_SEED + 1``), where
    the number is chosen, then on ``test_tasks`` held-out test tasks
    (`protocol.held_out_tasks`; the default 600 are those of `mamlbook.recipes.test_accuracy`).

    For each number of shots the chosen number is the smallest whose training-character
    accuracy, averaged over that shot count's networks, is within `TEST_STEPS_TOLERANCE`
    points of the best. Returns ``{"rows": {name: {"shots", "train": {steps: summary},
    "test": {steps: summary}, "test_correct": {steps: [correct query images per task]},
    "query_images"}}, "chosen": {shots: steps}, ...}``.
    """
    from .device import reproducible_cpu

    if not steps:
        raise ValueError("steps must hold at least one number of steps, got none")
    for k in steps:
        checks.positive_int("steps", k)
    checks.int_in_range("probe_tasks", probe_tasks, 2)  # an interval needs two tasks
    checks.int_in_range("test_tasks", test_tasks, 2)
    check_probe_names(names)  # all checked before minutes of scoring
    with reproducible_cpu(torch.device("cpu")):  # one thread, kernels capped: the shipped numbers
        out = _test_steps_rows(names, steps, probe_tasks, test_tasks)
    out["chosen"] = chosen_test_steps(out)
    out["created"] = time.strftime("%Y-%m-%d %H:%M")
    return out


def check_probe_names(names: list[str]) -> None:
    """`test_steps_probe`'s networks: shipped 5-way MAML Omniglot recipes (ValueError otherwise)."""
    for name in names:
        recipe = recipes.recipe(name)
        if recipe.family != "omniglot" or recipe.training.method != "maml" or recipe.ways != 5:
            raise ValueError(f"names must be 5-way MAML Omniglot recipes, got {name!r}")
        checkpoints.pretrained_path(name)


def chosen_test_steps(probe: dict) -> dict:
    """``{shots: steps}``: for each number of shots in a `test_steps_probe` result, the
    fewest steps whose training-character accuracy, averaged over that shot count's
    networks, is within ``probe["tolerance"]`` (`TEST_STEPS_TOLERANCE`) points of the best (accuracies are
    stored to 0.01 points; the comparison allows for the float error of the average)."""
    chosen = {}
    for shots in sorted({row["shots"] for row in probe["rows"].values()}):
        rows = [row for row in probe["rows"].values() if row["shots"] == shots]
        mean = {k: sum(r["train"][str(k)]["mean"] for r in rows) / len(rows) for k in probe["steps"]}
        best = max(mean.values())
        chosen[str(shots)] = min(k for k in probe["steps"] if mean[k] >= best - probe["tolerance"] - 1e-9)
    return chosen


def rescore_sample(name: str, steps: int, probe: dict, num_tasks: int = 20) -> int:
    """How many of a test-steps probe's first ``num_tasks`` test tasks recipe ``name``
    scores the same now: re-scored live (``steps`` test-time steps) and compared with
    ``probe``'s stored count of correct query images per task (`test_steps_probe`'s
    ``test_correct``, over all the probe's test tasks). All ``num_tasks`` when the
    probe's file holds what the shipped network computes on this machine."""
    rows = probe["rows"]
    if name not in rows:
        raise ValueError(f"name must be one of the probe's networks ({', '.join(rows)}), got {name!r}")
    stored = rows[name]["test_correct"].get(str(steps))
    if stored is None:
        raise ValueError(f"steps must be one the probe scored ({', '.join(rows[name]['test_correct'])}), got {steps}")
    checks.int_in_range("num_tasks", num_tasks, 1, len(stored))  # before drawing the tasks
    # the probe's tasks, all of them (a smaller draw is not their first tasks), then the first few
    return _agreeing(name, setting_tasks(f"5w{rows[name]['shots']}s", len(stored)), stored, num_tasks, steps)


def _agreeing(name: str, tasks: TaskBatch, stored: list[int], num_tasks: int, steps: int | None = None) -> int:
    """Of ``tasks``' first ``num_tasks`` (checked by the callers), how many recipe ``name`` gets as many query
    images right as ``stored`` says."""
    first = TaskBatch(*(t[:num_tasks] for t in (tasks.x_support, tasks.y_support, tasks.x_query, tasks.y_query)))
    correct = correct_per_task(checkpoint_accuracy(name, first, steps=steps), first)
    return sum(a == b for a, b in zip(correct, stored, strict=False))


def correct_per_task(accuracy: Tensor, tasks: TaskBatch) -> list[int]:
    """How many query images each task got right: its ``(T,)`` accuracy times its number of
    query images, as the whole number it is (what the result files store, to compare exactly)."""
    return [round(v) for v in (accuracy * tasks.y_query.shape[1]).tolist()]


def training_fit(names: list[str], num_tasks: int = 200) -> dict:
    """How well 5-way MAML networks ``names`` (1-shot or 5-shot) fit the characters they were
    trained on: each adapted by its recipe's ``test_steps`` steps to ``num_tasks`` 5-way
    1-shot tasks of the training characters, upright (`training_tasks`, seed `FIT_SEED`), on one CPU thread.
    Returns ``{"num_tasks", "seed", "rows": {name: {"fit": summary, "correct": [correct
    query images per task]}}}`` (`fit_sample` re-scores a few tasks against it)."""
    from .device import reproducible_cpu

    check_probe_names(names)
    checks.int_in_range("num_tasks", num_tasks, 2)  # an interval needs two tasks
    tasks, rows = training_tasks(5, 1, num_tasks, seed=FIT_SEED), {}
    with reproducible_cpu(torch.device("cpu")):
        for name in names:
            acc = checkpoint_accuracy(name, tasks)
            rows[name] = {"fit": summary(acc), "correct": correct_per_task(acc, tasks)}
            print(f"{name:<44} {rows[name]['fit']['mean']:6.2f}%", flush=True)
    return {"num_tasks": num_tasks, "seed": FIT_SEED, "rows": rows, "created": time.strftime("%Y-%m-%d %H:%M")}


def fit_sample(name: str, fit: dict, num_tasks: int = 20) -> int:
    """How many of a `training_fit` result's first ``num_tasks`` tasks network ``name`` scores
    the same when re-scored now (all of them when ``fit`` holds what it computes here)."""
    if name not in fit["rows"]:
        raise ValueError(f"name must be one of the file's networks ({', '.join(fit['rows'])}), got {name!r}")
    checks.int_in_range("num_tasks", num_tasks, 1, len(fit["rows"][name]["correct"]))  # before drawing the tasks
    return _agreeing(name, training_tasks(5, 1, fit["num_tasks"], seed=fit["seed"]), fit["rows"][name]["correct"],
                     num_tasks)


def _test_steps_rows(names, steps, probe_tasks, test_tasks) -> dict:
    out: dict = {"probe_tasks": probe_tasks, "steps": list(steps), "tolerance": TEST_STEPS_TOLERANCE, "rows": {}}
    for name in names:
        shots = recipes.recipe(name).shots
        train = training_tasks(5, shots, probe_tasks)
        test = setting_tasks(f"5w{shots}s", test_tasks)
        row = out["rows"][name] = {"shots": shots, "query_images": int(test.y_query.shape[1]), "train": {},
                                   "test": {}, "test_correct": {}}
        for label, tasks in (("train", train), ("test", test)):
            for k in steps:
                acc = checkpoint_accuracy(name, tasks, steps=k)
                row[label][str(k)] = summary(acc)
                if label == "test":
                    row["test_correct"][str(k)] = correct_per_task(acc, tasks)
                print(f"{label:>5} {name:<44} {k:>3} steps {row[label][str(k)]['mean']:6.2f}%", flush=True)
    return out


#: What the command line writes in each mode: the default file, and the keys ``--merge`` updates.
_MODES = {"table": (RESULTS_PATH, ("rows", "paired_vs_nn")), "imaml_directions": (IMAML_DIRECTIONS_PATH, ()),
          "test_steps_probe": (TEST_STEPS_PATH, ("rows",)), "wide_steps_probe": (WIDE_STEPS_PATH, ("rows",)),
          "training_fit": (TRAINING_FIT_PATH, ("rows",))}

#: The most tasks per setting the command line takes (the table uses `TABLE_TASKS`).
MAX_TASKS = 10_000


def main(argv: list[str] | None = None) -> int:
    """The command line; exit status 0 done, 2 an invalid argument, 130 interrupted."""
    RECIPES = recipes.RECIPES
    parser = ScriptParser(prog="python -m mamlbook.omniglot_results",
                          description="Recompute chapter 08's real-Omniglot table (or, with one of the probe flags, "
                                      "one of its probes), on the CPU as the shipped files were (MAMLBOOK_DEVICE is not "
                                      "read).")
    parser.add_argument("--tasks", type=int_between(2, MAX_TASKS), default=None,
                        help=f"tasks per setting, 2 to {MAX_TASKS} (default {TABLE_TASKS}; 128 training tasks with "
                             f"--imaml-directions, 200 with --test-steps-probe and --training-fit)")
    parser.add_argument("--recipes", nargs="+", default=None, metavar="NAME",
                        help="shipped Omniglot recipes (the table's default: every shipped one of MAML, first-order "
                             "MAML, Reptile and iMAML; --test-steps-probe and --training-fit need them named; "
                             "`python -m mamlbook list`)")
    parser.add_argument("--out", default=None,
                        help=f"the JSON file written (default: mamlbook/results/{RESULTS_PATH.name}, or the probe's "
                             f"file there)")
    parser.add_argument("--merge", action="store_true",
                        help="keep the rows of the existing --out file (same --tasks) and add or replace these recipes'")
    parser.add_argument("--settings", nargs="+", default=None, choices=TABLE_SETTINGS, metavar="SETTING",
                        help=f"the table's settings to compute ({', '.join(TABLE_SETTINGS)}; default all); with "
                             "--merge the recipes' other settings are kept")
    parser.add_argument("--wide-steps-probe", action="store_true",
                        help=f"instead of the table, write how many steps widened heads need ({WIDE_STEPS_PATH.name})")
    parser.add_argument("--imaml-directions", action="store_true",
                        help=f"instead of the table, write where iMAML's meta-gradient points "
                             f"({IMAML_DIRECTIONS_PATH.name}; --tasks 128 training tasks by default)")
    parser.add_argument("--test-steps-probe", action="store_true",
                        help=f"instead of the table, write how many test-time steps MAML networks need "
                             f"({TEST_STEPS_PATH.name}; --tasks training-character tasks, 200 by default)")
    parser.add_argument("--training-fit", action="store_true", help=f"instead of the table, write how well 5-way MAML "
                        f"networks fit their training characters, on 5-way 1-shot tasks of them "
                        f"({TRAINING_FIT_PATH.name}; --tasks 200 by default)")
    args = parser.parse_args(argv)
    if args.tasks is None:
        args.tasks = 128 if args.imaml_directions else 200 if args.test_steps_probe or args.training_fit else TABLE_TASKS
    probes = [f for f in _MODES if f != "table" and getattr(args, f)]
    if len(probes) > 1:
        parser.error(f"choose at most one of --imaml-directions, --test-steps-probe, --wide-steps-probe, "
                     f"--training-fit, got {', '.join('--' + p.replace('_', '-') for p in probes)}")
    if args.settings is not None and probes:
        parser.error(f"argument --settings: applies to the table, not to --{probes[0].replace('_', '-')}")
    partial = args.settings is not None and set(args.settings) != set(TABLE_SETTINGS)
    if partial and not args.merge:
        parser.error("argument --settings: some settings only would make a table without the others; add --merge "
                     "to replace them in the existing one")
    if partial and not args.recipes:
        parser.error("argument --settings: some settings only need --recipes, the rows whose settings to replace")
    for name in args.recipes or []:
        if name not in RECIPES or RECIPES[name].family != "omniglot":
            parser.error(f"argument --recipes: must name Omniglot recipes of mamlbook.recipes.RECIPES "
                         f"(omniglot_...; `python -m mamlbook list`), got {name!r}")
        try:
            checkpoints.pretrained_path(name)
        except FileNotFoundError:
            parser.error(f"argument --recipes: {name!r} has no shipped checkpoint (python -m mamlbook "
                         f"regenerate {name})")
    default_out, merged_keys = _MODES[probes[0] if probes else "table"]
    out = Path(args.out) if args.out is not None else default_out
    if out.is_dir() or not out.parent.is_dir():
        parser.error(f"argument --out: must be a file in an existing folder, got {str(out)!r}")
    if args.test_steps_probe or args.training_fit:
        if not args.recipes:
            parser.error(f"--{probes[0].replace('_', '-')} needs --recipes (MAML recipes)")
        try:
            check_probe_names(args.recipes)
        except ValueError as err:
            parser.error(f"argument --recipes: {err}")
    if args.imaml_directions:
        if args.merge or len(args.recipes or []) > 1:
            parser.error("--imaml-directions takes at most one recipe in --recipes and no --merge")
        training = RECIPES[args.recipes[0]].training if args.recipes else None
        if training is not None and (training.method != "imaml" or training.method_options.get("first_order")):
            parser.error(f"argument --recipes: --imaml-directions needs an iMAML recipe that solves its system "
                         f"(not first_order), got {args.recipes[0]!r}")
        if args.tasks % 16:
            parser.error(f"--tasks must be a multiple of 16 (the meta-batch) with --imaml-directions, got {args.tasks}")
    old = None
    if partial and not out.is_file():
        parser.error(f"argument --settings: some settings only are merged into an existing table; {out} does not exist")
    if args.merge and not out.is_file():
        print(f"--merge: {out} does not exist yet; writing it with these rows only", file=sys.stderr)
    if args.merge and out.is_file():  # read and checked before minutes of scoring
        tasks_key = "probe_tasks" if args.test_steps_probe else "num_tasks"
        try:
            old = json.loads(out.read_text())
            missing = [k for k in (tasks_key, *merged_keys) if k not in old]
        except (json.JSONDecodeError, TypeError) as err:
            parser.error(f"argument --merge: {out} is not a results file of this command ({err})")
        if missing:
            parser.error(f"argument --merge: {out} is not a results file of this command (no {missing})")
        if old[tasks_key] != args.tasks:
            parser.error(f"argument --merge: needs the same --tasks as {out} ({old[tasks_key]}), got {args.tasks}")
        others = [x for x in TABLE_SETTINGS if x not in (args.settings or TABLE_SETTINGS)]
        lacking = [n for n in [*(args.recipes or []), "pixel_nn"] if any(x not in old["rows"].get(n, {}) for x in others)]
        if lacking:  # a row with some settings only would break the chapter's table
            parser.error(f"argument --settings: {', '.join(lacking)} in {out} lack{'s' if len(lacking) == 1 else ''} "
                         f"{', '.join(others)}: compute their whole rows first (no --settings)")
        if args.training_fit and old.get("seed") != FIT_SEED:  # fit_sample re-scores every row on the file's seed
            parser.error(f"argument --merge: {out} was drawn with seed {old.get('seed')}, --training-fit draws with "
                         f"{FIT_SEED}")
        if args.test_steps_probe and old.get("steps") != list(TEST_STEPS_PROBED):
            parser.error(f"argument --merge: needs the same steps as {out} ({old.get('steps')}), "
                         f"got {list(TEST_STEPS_PROBED)}")
    command = "python -m mamlbook.omniglot_results " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        result = _run(args)
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130
    if old is not None:
        for key in merged_keys:  # a recipe's row: its settings replaced, any others kept
            for name, row in result[key].items():
                old[key].setdefault(name, {}).update(row)
        if args.test_steps_probe:  # the choice is over every network now in the file
            old["chosen"] = chosen_test_steps(old)
        result, command = old, old["command"] + "; " + command
    result["command"] = command
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")
    return 0


def _run(args) -> dict:
    """The computation `main` asked for (every argument checked by `main` first)."""
    if args.imaml_directions:
        return imaml_directions(*(args.recipes or []), num_tasks=args.tasks)
    if args.test_steps_probe:
        return test_steps_probe(args.recipes, probe_tasks=args.tasks)
    if args.training_fit:
        return training_fit(args.recipes, num_tasks=args.tasks)
    if args.wide_steps_probe:
        return wide_steps_probe(args.recipes or ["omniglot_reptile_1shot_train10_long"], num_tasks=args.tasks)
    # chapter 08's methods; chapter 10's (ANIL, Meta-SGD, ...) are compared by mamlbook.wider_map_results
    shipped = [n for n, r in recipes.RECIPES.items() if r.family == "omniglot"
               and (checkpoints.PRETRAINED_DIR / f"{n}.pt").is_file()
               and r.training.method in ("maml", "fomaml", "reptile", "imaml")]
    return compute(args.recipes or shipped, args.tasks, settings=tuple(args.settings or TABLE_SETTINGS))


if __name__ == "__main__":
    sys.exit(main())

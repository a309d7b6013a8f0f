"""Reproduce the MAML paper's sinusoid table (Finn et al. 2017, Appendix C, Table 2).

The paper's protocol: meta-train on sinusoid tasks (§5.1: 1-40-40-1 ReLU net, K = 10,
one inner step with α = 0.01, Adam with β = 10⁻³, meta-batches of 25, 70,000
iterations); then, on new tasks, take 1, 5 and 10 plain SGD steps (α = 0.01) on K = 5
support points and report the mean squared error on the task. The paper reports

    ========== ======= ======= ========
    steps         1       5       10
    MAML        0.67    0.38    0.35
    pretrained  2.41    2.23    2.19
    ========== ======= ======= ========

Here every row is the shipped checkpoint of a recipe (`mamlbook.recipes.RECIPES`; the
same settings for all methods except what each method needs, see `ROWS`), evaluated
on ``num_tasks`` fresh test tasks with 100 query points each, with the mean and its
95% interval over tasks. The test-time learner is the same for every row (SGD,
α = 0.01, the paper's), so the rows differ only in the initialisation θ, except two:

* "MAML, α = 0.001 (official code)": the recipe `EXTRA_RECIPES["sinusoid_maml_code"]`,
  MAML as the paper's released code trains it. Its sinusoid command (the usage notes
  of ``main.py`` in github.com/cbfinn/maml) does not set ``--update_lr``, whose
  default is ``1e-3``: the inner step is 0.001 there, in training and at test time,
  not the 0.01 the paper states. This row is trained and tested with 0.001.
* "iMAML, proximal learner": iMAML with the learner it was trained for (its proximal
  inner solver, `mamlbook.evaluate.proximal_adaptation_curve`, with its recipe's step
  size and λ).

``python -m mamlbook reproduce`` runs `reproduce` (training any checkpoint that is
missing; ``--retrain`` retrains all from their recipes first).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import checks, recipes
from .checkpoints import PRETRAINED_DIR, load_checkpoint, save_checkpoint
from .device import get_device, seed_everything
from .evaluate import adaptation_curve, mean_and_ci95, proximal_adaptation_curve
from .functional import parameters_of
from .models import SinusoidMLP
from .recipes import Recipe
from .tasks import SinusoidTasks
from .train import meta_train

#: Table 2 of Finn et al. (2017), 5-shot sinusoid MSE after 1, 5, 10 gradient steps.
PAPER_TABLE2 = {"MAML": {1: 0.67, 5: 0.38, 10: 0.35}, "pretrained": {1: 2.41, 5: 2.23, 10: 2.19}}

OFFICIAL_CODE_ROW = "MAML, α = 0.001 (official code)"

#: Recipes of the reproduction only (the chapters use `mamlbook.recipes.RECIPES`).
EXTRA_RECIPES = {"sinusoid_maml_code": Recipe("maml", inner_lr=0.001)}

#: Row label -> (recipe name, test-time learner, test-time step size or None for the
#: recipe's own inner_lr). The learner is "sgd" (book eq. 2.2) or "proximal" (iMAML's).
ROWS = {
    "MAML": ("sinusoid_maml", "sgd", 0.01),
    OFFICIAL_CODE_ROW: ("sinusoid_maml_code", "sgd", None),
    "pretrained": ("sinusoid_pretrain", "sgd", 0.01),
    "first-order MAML": ("sinusoid_fomaml", "sgd", 0.01),
    "Reptile": ("sinusoid_reptile", "sgd", 0.01),
    "iMAML": ("sinusoid_imaml", "sgd", 0.01),
    "iMAML, proximal learner": ("sinusoid_imaml", "proximal", None),
}

STEPS = (1, 5, 10)


def make_test_tasks(num_tasks: int = 600, support_shots: int = 5, query_shots: int = 100, seed: int = 2017, device=None):
    """The test tasks: fresh sinusoids from their own generator (``seed``), never seen in training."""
    checks.positive_int("num_tasks", num_tasks)
    return SinusoidTasks().sample(num_tasks, support_shots, query_shots, generator=torch.Generator().manual_seed(seed),
                                  device=device)


def load(name: str, device=None) -> tuple[SinusoidMLP, dict]:
    """The shipped model of a recipe of `mamlbook.recipes.RECIPES` or of `EXTRA_RECIPES`."""
    if name in recipes.RECIPES:
        return recipes.load_recipe(name, device=device)
    checks.one_of("name", name, set(recipes.RECIPES) | set(EXTRA_RECIPES))
    model = SinusoidMLP().to(get_device(device))
    _, metadata = load_checkpoint(PRETRAINED_DIR / f"{name}.pt", model)
    return model, metadata


def train(name: str, device=None, progress: bool = True, iterations: int | None = None, save: bool = True) -> dict:
    """Train a recipe and (if ``save``) write ``mamlbook/pretrained/NAME.pt`` (as `mamlbook.recipes.regenerate`).

    ``iterations`` overrides the recipe's (for a quick try; then keep ``save=False``).
    """
    if name in recipes.RECIPES:
        return recipes.regenerate(name, device=device, progress=progress, iterations=iterations, save=save)
    checks.one_of("name", name, set(recipes.RECIPES) | set(EXTRA_RECIPES))
    settings = asdict(EXTRA_RECIPES[name])
    if iterations is not None:
        settings["iterations"] = checks.positive_int("iterations", iterations)
    device = get_device(device)
    generator = seed_everything(settings["seed"])
    model = SinusoidMLP().to(device)
    history = meta_train(model, SinusoidTasks(), generator=generator, device=device, progress=progress,
                         **{k: v for k, v in settings.items() if k != "seed"})
    last = history.meta_loss[-1000:]
    metadata = {"recipe": name, "settings": json.dumps(settings), "seconds": history.seconds, "device": str(device),
                "torch": str(torch.__version__), "created": time.strftime("%Y-%m-%d"),
                "final_meta_loss_mean_last_1000": sum(last) / len(last), "meta_loss_every_100": history.meta_loss[::100]}
    if save:
        save_checkpoint(PRETRAINED_DIR / f"{name}.pt", model, metadata=metadata)
    return metadata


def evaluate_recipe(name: str, tasks, *, inner_lr: float | None = 0.01, steps=STEPS, learner: str = "sgd",
                    device=None) -> dict:
    """Query MSE after each of ``steps`` steps: mean and 95% half-interval, median, diverged tasks.

    ``learner="sgd"``: plain SGD with ``inner_lr``; ``"proximal"``: iMAML's proximal
    solver with the recipe's ``lam``. ``inner_lr=None``: the recipe's own step size.
    SGD can diverge on a task (its loss overflows to inf/NaN); such tasks are counted
    in ``diverged`` and left out of the mean, which is then over the others (the median
    is over all tasks).
    """
    checks.one_of("learner", learner, {"sgd", "proximal"})
    model, metadata = load(name, device=device)
    settings = json.loads(metadata.get("settings", "{}"))
    if inner_lr is None:
        inner_lr = settings["inner_lr"]
    if learner == "proximal":
        curve = proximal_adaptation_curve(model, parameters_of(model), tasks, inner_lr=inner_lr, max_steps=max(steps),
                                          lam=settings["method_options"]["lam"])
    else:
        curve = adaptation_curve(model, parameters_of(model), tasks, inner_lr=inner_lr, max_steps=max(steps),
                                 on_divergence="keep")
    curve = curve.cpu().double()
    out = {}
    for k in steps:
        finite = torch.isfinite(curve[:, k])
        mean, half = mean_and_ci95(curve[finite, k])
        median = float(curve[:, k].nan_to_num(nan=float("inf")).median())
        out[k] = {"mean": mean, "ci95": half, "median": median, "diverged": int((~finite).sum())}
    return {"recipe": name, "learner": learner, "test_inner_lr": inner_lr, "settings": settings,
            "train_seconds": metadata.get("seconds"), "trained_on": metadata.get("device"), "steps": out,
            "num_tasks": curve.shape[0]}


def reproduce(rows: list[str] | None = None, *, num_tasks: int = 600, retrain: bool = False, train_missing: bool = True,
              device=None, progress: bool = True) -> dict:
    """Evaluate every row of the table (training what is missing); return a JSON-able dict.

    ``rows``: labels of `ROWS` (default all). ``retrain``: retrain every checkpoint from
    its recipe first (the full paper setup; minutes per row). ``train_missing``: train
    the rows whose checkpoint is not shipped (else raise FileNotFoundError).
    """
    rows = list(ROWS) if rows is None else rows
    for row in rows:
        checks.one_of("rows", row, set(ROWS))
    device = get_device(device)
    trained = {}
    for name in dict.fromkeys(ROWS[row][0] for row in rows):  # each recipe once, in order
        if retrain or (train_missing and not (PRETRAINED_DIR / f"{name}.pt").is_file()):
            trained[name] = train(name, device=device, progress=progress)["seconds"]
    tasks = make_test_tasks(num_tasks, device=device)
    paper = {**PAPER_TABLE2, OFFICIAL_CODE_ROW: PAPER_TABLE2["MAML"]}
    results = {"paper": {r: {str(k): v for k, v in t.items()} for r, t in paper.items()},
               "protocol": {"test_tasks": num_tasks, "support_shots": 5, "query_shots": 100, "test_seed": 2017,
                            "inner_lr": 0.01, "steps": list(STEPS), "interval": "mean ± 1.96·s/√n over test tasks",
                            "diverged": "tasks whose loss is inf/NaN at that step, left out of the mean"},
               "rows": {}, "trained_now_seconds": trained, "device": str(device), "torch": torch.__version__,
               "date": time.strftime("%Y-%m-%d %H:%M")}
    for row in tqdm(rows, desc="evaluate", disable=not progress):
        name, learner, inner_lr = ROWS[row]
        r = evaluate_recipe(name, tasks, inner_lr=inner_lr, learner=learner, device=device)
        r["steps"] = {str(k): v for k, v in r["steps"].items()}
        results["rows"][row] = r
    return results


def format_table(results: dict) -> str:
    """The table as text: ours (mean ± 95% interval) beside the paper's numbers."""
    steps = results["protocol"]["steps"]
    head = f"{'method':<33}" + "".join(f" {f'{k} step' + ('s' if k > 1 else ''):>33}" for k in steps)
    lines = [head]
    for row, r in results["rows"].items():
        cells = []
        for k in steps:
            cell = r["steps"][str(k)]
            text = f"{cell['mean']:.3g} ± {cell['ci95']:.2g}" + (f" [{cell['diverged']} div.]" if cell["diverged"] else "")
            paper = results["paper"].get(row, {}).get(str(k))
            cells.append(f"{text}{f' ({paper:.2f})' if paper is not None else ''}")
        lines.append(f"{row:<33}" + "".join(f" {c:>33}" for c in cells))
    lines.append(f"(mean ± 95% interval over {results['protocol']['test_tasks']} test tasks, K = 5, SGD α = "
                 f"{results['protocol']['inner_lr']} unless the row says otherwise; the paper's values in parentheses; "
                 f"[n div.]: tasks on which SGD diverged, left out of the mean)")
    return "\n".join(lines)


def save(results: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1))
    return path

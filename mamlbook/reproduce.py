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
α = 0.01, the paper's), so the rows differ only in the initialisation θ; one extra
row scores iMAML with the learner it was trained for (its proximal inner solver,
`mamlbook.evaluate.proximal_adaptation_curve`, with the recipe's step size and λ).

``python -m mamlbook reproduce`` runs `reproduce` (training any checkpoint that is
missing; ``--retrain`` retrains all from their recipes first).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import checks, recipes
from .checkpoints import PRETRAINED_DIR
from .device import get_device
from .evaluate import adaptation_curve, mean_and_ci95, proximal_adaptation_curve
from .functional import parameters_of
from .tasks import SinusoidTasks

#: Table 2 of Finn et al. (2017), 5-shot sinusoid MSE after 1, 5, 10 gradient steps.
PAPER_TABLE2 = {"MAML": {1: 0.67, 5: 0.38, 10: 0.35}, "pretrained": {1: 2.41, 5: 2.23, 10: 2.19}}

#: Row label -> (recipe name, test-time learner). See `mamlbook.recipes.RECIPES` for the
#: settings of each recipe; the learner is "sgd" (the paper's, α = 0.01) or "proximal".
ROWS = {
    "MAML": ("sinusoid_maml", "sgd"),
    "pretrained": ("sinusoid_pretrain", "sgd"),
    "first-order MAML": ("sinusoid_fomaml", "sgd"),
    "Reptile": ("sinusoid_reptile", "sgd"),
    "iMAML": ("sinusoid_imaml", "sgd"),
    "iMAML, proximal learner": ("sinusoid_imaml", "proximal"),
}

STEPS = (1, 5, 10)


def make_test_tasks(num_tasks: int = 600, support_shots: int = 5, query_shots: int = 100, seed: int = 2017, device=None):
    """The test tasks: fresh sinusoids from their own generator (``seed``), never seen in training."""
    checks.positive_int("num_tasks", num_tasks)
    return SinusoidTasks().sample(num_tasks, support_shots, query_shots, generator=torch.Generator().manual_seed(seed),
                                  device=device)


def evaluate_recipe(name: str, tasks, *, inner_lr: float = 0.01, steps=STEPS, learner: str = "sgd",
                    device=None) -> dict:
    """Query MSE after each of ``steps`` steps: mean and 95% half-interval, median, diverged tasks.

    ``learner="sgd"``: plain SGD with ``inner_lr``; ``"proximal"``: iMAML's proximal
    solver with the recipe's own ``inner_lr`` and ``lam``. SGD can diverge on a task
    (its loss overflows to inf/NaN); such tasks are counted in ``diverged`` and left
    out of the mean, which is then over the others (the median is over all tasks).
    """
    checks.one_of("learner", learner, {"sgd", "proximal"})
    model, metadata = recipes.load_recipe(name, device=device)
    settings = json.loads(metadata.get("settings", "{}"))
    if learner == "proximal":
        inner_lr = settings["inner_lr"]
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
            meta = recipes.regenerate(name, device=device, progress=progress)
            trained[name] = meta["seconds"]
    tasks = make_test_tasks(num_tasks, device=device)
    results = {"paper": {r: {str(k): v for k, v in t.items()} for r, t in PAPER_TABLE2.items()},
               "protocol": {"test_tasks": num_tasks, "support_shots": 5, "query_shots": 100, "test_seed": 2017,
                            "inner_lr": 0.01, "steps": list(STEPS), "interval": "mean ± 1.96·s/√n over test tasks",
                            "diverged": "tasks whose loss is inf/NaN at that step, left out of the mean"},
               "rows": {}, "trained_now_seconds": trained, "device": str(device), "torch": torch.__version__,
               "date": time.strftime("%Y-%m-%d %H:%M")}
    for row in tqdm(rows, desc="evaluate", disable=not progress):
        name, learner = ROWS[row]
        r = evaluate_recipe(name, tasks, learner=learner, device=device)
        r["steps"] = {str(k): v for k, v in r["steps"].items()}
        results["rows"][row] = r
    return results


def format_table(results: dict) -> str:
    """The table as text: ours (mean ± 95% interval) beside the paper's numbers."""
    steps = results["protocol"]["steps"]
    head = f"{'method':<26}" + "".join(f"{f'{k} step' + ('s' if k > 1 else ''):>32}" for k in steps)
    lines = [head]
    for row, r in results["rows"].items():
        cells = []
        for k in steps:
            cell = r["steps"][str(k)]
            text = f"{cell['mean']:.3g} ± {cell['ci95']:.2g}" + (f" [{cell['diverged']} div.]" if cell["diverged"] else "")
            paper = results["paper"].get(row, {}).get(str(k))
            cells.append(f"{text}{f' ({paper:.2f})' if paper is not None else ''}")
        lines.append(f"{row:<26}" + "".join(f"{c:>32}" for c in cells))
    lines.append(f"(mean ± 95% interval over {results['protocol']['test_tasks']} test tasks, K = 5, SGD α = "
                 f"{results['protocol']['inner_lr']}; the paper's values in parentheses; [n div.]: tasks on which "
                 f"SGD diverged, left out of the mean)")
    return "\n".join(lines)


def save(results: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1))
    return path

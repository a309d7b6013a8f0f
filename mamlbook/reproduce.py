"""Reproduce the MAML paper's sinusoid table (Finn et al. 2017, Appendix C, Table 2).

The paper's protocol: meta-train on sinusoid tasks (§5.1: 1-40-40-1 ReLU net, K = 10,
one inner step with α = 0.01, Adam; its released code adds β = 10⁻³, meta-batches of
25 and 70,000 iterations); then, on new tasks, take 1, 5 and 10 plain SGD steps (α = 0.01) on K = 5
support points and report the mean squared error on the task. The paper reports

    ========== ======= ======= ========
    steps         1       5       10
    MAML        0.67    0.38    0.35
    pretrained  2.41    2.23    2.19
    ========== ======= ======= ========

Here every row is the shipped checkpoint of a recipe (`mamlbook.recipes.RECIPES`; the
same settings for all methods except what each method needs, see `ROWS`), evaluated
with the book's protocol (`mamlbook.protocol`: 600 fresh test tasks with 100 query
points each; the mean and its 95% interval over the tasks on which test-time SGD did
not diverge, the diverged ones counted beside it). The test-time learner is the same for every row (SGD,
α = 0.01, the paper's), so the rows differ only in the initialisation θ, except two:

* "MAML, α = 0.001 (official code)": the recipe ``sinusoid_maml_code``,
  MAML as the paper's released code trains it. Its sinusoid command (the usage notes
  of ``main.py`` in github.com/cbfinn/maml) does not set ``--update_lr``, whose
  default is ``1e-3``: the inner step is 0.001 there, in training and at test time,
  not the 0.01 the paper states. This row is trained and tested with 0.001.
* "iMAML, proximal learner": iMAML with the learner it was trained for (its proximal
  inner solver, `mamlbook.evaluate.proximal_adaptation_curve`, with its recipe's step
  size and λ).

``python -m mamlbook reproduce`` runs `reproduce` (training any checkpoint that is
missing; ``--retrain`` retrains all from their recipes first and scores those, leaving the
shipped files as they are).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import checks, protocol, recipes
from .checkpoints import PRETRAINED_DIR
from .device import get_device
from .evaluate import adaptation_curve, proximal_adaptation_curve
from .functional import parameters_of

#: Table 2 of Finn et al. (2017), 5-shot sinusoid MSE after 1, 5, 10 gradient steps.
PAPER_TABLE2 = {"MAML": {1: 0.67, 5: 0.38, 10: 0.35}, "pretrained": {1: 2.41, 5: 2.23, 10: 2.19}}

OFFICIAL_CODE_ROW = "MAML, α = 0.001 (official code)"

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

STEPS = protocol.STEPS


def evaluate_recipe(name: str, tasks, *, inner_lr: float | None = 0.01, steps=STEPS, learner: str = "sgd",
                    device=None, trained: dict | None = None) -> dict:
    """The protocol's summary of recipe ``name`` after each of ``steps`` steps.

    ``learner="sgd"``: plain SGD with ``inner_lr``; ``"proximal"``: iMAML's proximal
    solver with the recipe's ``lam``. ``inner_lr=None``: the recipe's own step size.
    Tasks on which the learner diverged (`mamlbook.protocol.diverged`) are counted in
    ``diverged`` and left out of the mean and the median. ``trained``: what
    `mamlbook.recipes.regenerate` returned for ``name`` (a network retrained, not saved),
    scored instead of the shipped file.
    """
    checks.one_of("learner", learner, {"sgd", "proximal"})
    if trained is None:
        model, metadata = recipes.load(name, device=device)
    else:
        model, metadata = recipes.build_model(name, device), trained
        model.load_state_dict(trained["state"])
    training = recipes.recipe(name).training
    if inner_lr is None:
        inner_lr = training.inner_lr
    if learner == "proximal":
        curve = proximal_adaptation_curve(model, parameters_of(model), tasks, inner_lr=inner_lr, max_steps=max(steps),
                                          lam=training.method_options["lam"])
    else:
        curve = adaptation_curve(model, parameters_of(model), tasks, inner_lr=inner_lr, max_steps=max(steps),
                                 on_divergence="keep")
    summary = protocol.summarize(curve, steps)
    return {"recipe": name, "learner": learner, "test_inner_lr": inner_lr,
            "settings": json.loads(metadata.get("settings", "{}")), "train_seconds": metadata.get("seconds"),
            "trained_on": metadata.get("device"), "steps": {k: s._asdict() for k, s in summary.items()},
            "num_tasks": curve.shape[0]}


def reproduce(rows: list[str] | None = None, *, num_tasks: int = 600, retrain: bool = False, train_missing: bool = True,
              device=None, progress: bool = True) -> dict:
    """Evaluate every row of the table (training what is missing); return a JSON-able dict.

    ``rows``: labels of `ROWS` (default all). ``retrain``: retrain every checkpoint from
    its recipe first (the full paper setup; minutes per row) and score those networks;
    the shipped files are left as they are. ``train_missing``: train the rows whose
    checkpoint is not shipped and write it (else raise FileNotFoundError).
    """
    rows = list(ROWS) if rows is None else rows
    for row in rows:
        checks.one_of("rows", row, set(ROWS))
    device = get_device(device)
    trained, retrained = {}, {}
    for name in dict.fromkeys(ROWS[row][0] for row in rows):  # each recipe once, in order
        if retrain:
            retrained[name] = recipes.regenerate(name, device=device, progress=progress, save=False)
            trained[name] = retrained[name]["seconds"]
        elif train_missing and not (PRETRAINED_DIR / f"{name}.pt").is_file():
            trained[name] = recipes.regenerate(name, device=device, progress=progress)["seconds"]
    tasks = protocol.sinusoid_test_tasks(num_tasks, device=device)
    paper = {**PAPER_TABLE2, OFFICIAL_CODE_ROW: PAPER_TABLE2["MAML"]}
    results = {"paper": {r: {str(k): v for k, v in t.items()} for r, t in paper.items()},
               "protocol": {"test_tasks": num_tasks, "support_shots": protocol.SUPPORT_SHOTS,
                            "query_shots": protocol.QUERY_SHOTS, "test_seed": protocol.TEST_SEED,
                            "inner_lr": protocol.TEST_INNER_LR, "steps": list(STEPS),
                            "interval": protocol.INTERVAL,
                            "diverged": f"tasks whose query loss became NaN/inf or grew beyond "
                                        f"{protocol.DIVERGENCE_FACTOR:g}× its value before adaptation at any "
                                        "step (mamlbook.protocol.diverged): counted, left out of mean and median"},
               "rows": {}, "trained_now_seconds": trained, "device": str(device), "torch": torch.__version__,
               "date": time.strftime("%Y-%m-%d %H:%M")}
    for row in tqdm(rows, desc="evaluate", disable=not progress):
        name, learner, inner_lr = ROWS[row]
        r = evaluate_recipe(name, tasks, inner_lr=inner_lr, learner=learner, device=device,
                            trained=retrained.get(name))
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
            cell = protocol.StepSummary(**r["steps"][str(k)])
            text = protocol.format_cell(cell)
            paper = results["paper"].get(row, {}).get(str(k))
            cells.append(f"{text}{f' ({paper:.2f})' if paper is not None else ''}")
        lines.append(f"{row:<33}" + "".join(f" {c:>33}" for c in cells))
    lines.append(f"(mean ± 95% interval over {results['protocol']['test_tasks']} test tasks, K = 5, SGD α = "
                 f"{results['protocol']['inner_lr']} unless the row says otherwise; the paper's values in parentheses; "
                 f"[n div.]: tasks on which SGD diverged (protocol.diverged), left out of the mean)")
    return "\n".join(lines)


def save(results: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1))
    return path

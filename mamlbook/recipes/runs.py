"""Retrain a recipe (`regenerate`), load its shipped checkpoint (`load`), read its curve.

Both families train with `mamlbook.meta_train` and the recipe's `TrainingSettings`; a
sinusoid run records its meta-loss, an Omniglot run also its held-out accuracy curve
(a `meta_train` callback that scores fixed held-out tasks every ``eval_every``
iterations and saves the checkpoint each time), then its accuracy on the
`mamlbook.protocol.EVAL_TASKS` test tasks.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from .. import __version__, checkpoints, checks, protocol
from ..algorithms import LSLRNet, MAMLPlusPlusSchedule, MetaSGDNet
from ..models import ConvNet
from ..device import cpu_name, get_device, reproducible_cpu, seed_everything
from ..functional import cross_entropy_per_task
from ..models import SinusoidMLP
from ..tasks import SinusoidTasks, TaskBatch
from ..tasks.omniglot_shipped import MINIMAL, SHA256, sha256sum
from ..train import meta_train
from .registry import RECIPES, Recipe


def recipe(name: str) -> Recipe:
    """``RECIPES[name]``, with an error that lists the names."""
    checks.one_of("name", name, set(RECIPES))
    return RECIPES[name]


def build_model(name: str, device=None) -> nn.Module:
    """A fresh network of recipe ``name``'s architecture on ``device``: the sinusoid
    regressor or a `ConvNet`, wrapped with its learned step sizes for Meta-SGD
    (`MetaSGDNet`) and MAML++ (`LSLRNet`)."""
    r = recipe(name)
    model = SinusoidMLP() if r.family == "sinusoid" else ConvNet(ways=r.ways, filters=r.filters)
    if r.training.method == "meta_sgd":
        model = MetaSGDNet(model)
    elif r.training.method == "mamlpp":
        model = LSLRNet(model, r.training.inner_steps)
    return model.to(get_device(device))


def load(name: str, device=None) -> tuple[nn.Module, dict]:
    """The shipped model of recipe ``name`` on ``device`` and its metadata."""
    model = build_model(name, device)
    _, metadata = checkpoints.load_checkpoint(checkpoints.pretrained_path(name), model)
    return model, metadata


def test_accuracy(name: str) -> torch.Tensor:
    """Accuracy ``(600,)`` of shipped Omniglot recipe ``name`` on each held-out test task
    (`protocol.held_out_tasks`, the same tasks for every recipe: pair them task by task)."""
    if recipe(name).family != "omniglot":
        raise ValueError(f"name must be an Omniglot recipe (only those are scored on test tasks), got {name!r}")
    return torch.tensor(load(name, device="cpu")[1]["test_accuracy"])


def load_curve(name: str) -> dict:
    """The held-out accuracy curve of shipped Omniglot recipe ``name`` (`export_curve`)."""
    if recipe(name).family != "omniglot":
        raise ValueError(f"name must be an Omniglot recipe (only those record an accuracy curve), got {name!r}")
    return json.loads((checkpoints.PRETRAINED_DIR / f"{name}.curve.json").read_text())


def lineage(name: str) -> list[str]:
    """Recipe ``name`` and the recipes it continues (``init_from`` followed back), the
    first trained first: ``lineage("omniglot_maml_1shot_anneal")`` is
    ``["omniglot_maml_1shot", "omniglot_maml_1shot_long", "omniglot_maml_1shot_anneal"]``."""
    recipe(name)  # an unknown name: the error lists the names
    names = [name]
    while RECIPES[names[0]].init_from is not None:
        names.insert(0, RECIPES[names[0]].init_from)
    return names


def chain_curve(name: str) -> dict:
    """The held-out accuracy curve of Omniglot recipe ``name`` joined to those of the runs
    it continues (`lineage`), on one axis of meta-iterations counted from the first run's
    start. Every run of the chain must train on the same ways and shots (its curve is
    scored on the same held-out tasks).

    Returns ``{"names": [...], "starts": [first iteration of each run], "iterations":
    [...], "accuracy": [... in 0-1], "seconds": total training time}``; a continuation's
    point at its iteration 0 is its parent's last point, so it appears once.
    """
    names = lineage(name)
    shape = {(RECIPES[n].ways, RECIPES[n].shots) for n in names}
    if len(shape) > 1:
        raise ValueError(f"name must be a recipe whose chain keeps its ways and shots, got {name!r}: "
                         f"its chain {names} trains on (ways, shots) {sorted(shape)}")
    joined = {"names": names, "starts": [], "iterations": [], "accuracy": [], "seconds": 0.0}
    for n in names:
        curve = load_curve(n)
        offset = joined["iterations"][-1] if joined["iterations"] else 0
        rows = curve["curve"][1:] if joined["iterations"] else curve["curve"]
        joined["starts"].append(offset)
        joined["iterations"] += [offset + row[0] for row in rows]
        joined["accuracy"] += [row[2] for row in rows]
        joined["seconds"] += curve["seconds"]
    return joined


def regenerate(name: str, device=None, progress: bool = True, iterations: int | None = None,
               save: bool = True, eval_tasks: int = protocol.EVAL_TASKS, task_threads: int = 1,
               out: str | os.PathLike | None = None) -> dict:
    """Train recipe ``name`` from its seed; if ``save``, write ``mamlbook/pretrained/NAME.pt``
    (or ``out/NAME.pt``, the shipped file left alone: an Omniglot recipe that continues
    another starts from ``out/PARENT.pt`` when that exists, else from the shipped parent).

    ``iterations`` (and, for Omniglot, ``eval_tasks``) override the recipe for a quick
    try; then keep ``save=False`` or give ``out``: a shipped file holds the recipe's own run.
    ``task_threads`` > 1 (Omniglot only): each meta-batch split over that many threads
    (`mamlbook.meta_train`'s switch): faster on a CPU, the same run up to float
    rounding (so not bit for bit the shipped file; the book's files use 1). On a CPU it
    trains under `mamlbook.device.reproducible_cpu` (one intra-op thread, oneDNN capped
    at AVX2), as the shipped files were. Returns the metadata stored with the
    checkpoint; ``metadata["state"]`` is the trained state dict (not stored on disk).
    """
    r = recipe(name)
    settings = r.training if iterations is None else replace(r.training, iterations=iterations)
    check_task_threads(name, task_threads)
    directory = output_folder(out)
    provenance = run_provenance(r.family)
    device = get_device(device)
    with reproducible_cpu(device):
        generator = seed_everything(r.seed)
        model = build_model(name, device)
        if r.family == "sinusoid":
            metadata = _train_sinusoid(name, r, settings, model, generator, device, progress, save, directory,
                                       provenance)
        else:
            metadata = _train_omniglot(name, r, settings, model, generator, device, progress, save, eval_tasks,
                                       task_threads, directory, provenance)
    metadata["state"] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return metadata


def output_folder(out: str | os.PathLike | None = None) -> Path:
    """Where `regenerate` writes its checkpoints: the shipped ones' folder, or ``out``."""
    return checkpoints.PRETRAINED_DIR if out is None else Path(out)


def check_task_threads(name: str, task_threads: int) -> int:
    """``task_threads`` for recipe ``name``: in [1, meta_batch_size], and 1 unless the
    recipe is an Omniglot one without a MAML++ schedule (the others do not split)."""
    r = recipe(name)
    checks.int_in_range("task_threads", task_threads, 1, r.training.meta_batch_size)
    if task_threads > 1 and (r.family != "omniglot" or r.schedule is not None):
        raise ValueError(f"task_threads must be 1 for recipe {name!r} (only Omniglot recipes without a MAML++ "
                         f"schedule split their meta-batches over threads), got {task_threads}")
    return task_threads


def verify(name: str, device="cpu", progress: bool = True) -> tuple[bool, float]:
    """Retrain recipe ``name`` (without saving) and compare with the shipped file.

    Returns (bit for bit equal, largest absolute difference of any parameter).
    """
    shipped, _ = load(name, device)
    fresh = regenerate(name, device=device, progress=progress, save=False)["state"]
    diff = max(float((fresh[k] - v.detach().cpu()).abs().max()) for k, v in shipped.state_dict().items())
    return all(torch.equal(fresh[k], v.detach().cpu()) for k, v in shipped.state_dict().items()), diff


def _common_metadata(name: str, r: Recipe, settings, device, seconds: float, provenance: dict) -> dict:
    return {"recipe": name, "settings": json.dumps({**r.as_dict(), "iterations": settings.iterations}),
            "seconds": seconds, "device": str(device), "threads": torch.get_num_threads(),
            "torch": str(torch.__version__), "created": time.strftime("%Y-%m-%d"), "cpu": cpu_name(),
            **provenance}


def run_provenance(family: str) -> dict:
    """What made a run, taken once before it starts (its own writes change nothing here):
    the package's version, its source's commit (`source_commit`) and, for ``family``
    ``"omniglot"``, the SHA-256 of the two minimal sets it reads (checked on every read).
    The recipes' runs and chapter 10's transfer baseline store it in their checkpoints."""
    data = {f: SHA256[f] for f in sorted(MINIMAL.values())} if family == "omniglot" else {}
    return {"mamlbook": __version__, "commit": source_commit(), "data_sha256": json.dumps(data)}


def source_commit(package: str | os.PathLike | None = None) -> str:
    """The git commit of the package's source (``package``: its folder, default this
    package's): ``"<sha>"``, or ``"<sha>+modified"`` when a tracked file of the package
    other than its shipped checkpoints, results and data differs from the commit (the
    code that ran is then not that commit's; a chapter or a retrained checkpoint does not
    count). ``""`` when the package is not in a git checkout of its own (installed from
    a wheel); ``"unknown: <reason>"`` when git is missing or refuses the checkout."""
    where = Path(package if package is not None else Path(__file__).resolve().parents[1]).resolve()

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()

    try:
        if Path(git("rev-parse", "--show-toplevel")).resolve() != where.parent:
            return ""  # the package sits inside some other repository (e.g. a virtualenv in one)
        sha = git("rev-parse", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no", "--", ".",
                      ":(exclude)pretrained", ":(exclude)results", ":(exclude)data")
        return sha + ("+modified" if changed else "")
    except FileNotFoundError:
        return "unknown: git not found"
    except subprocess.CalledProcessError as err:
        reason = (err.stderr or "").strip().splitlines()
        if reason and "not a git repository" in reason[0]:
            return ""
        return "unknown: " + (reason[0] if reason else f"git exited with {err.returncode}")
    except (OSError, subprocess.SubprocessError) as err:
        return f"unknown: {err}"


def _train_sinusoid(name, r, settings, model, generator, device, progress, save, directory: Path,
                    provenance: dict) -> dict:
    history = meta_train(model, SinusoidTasks(), settings, generator=generator, device=device, progress=progress)
    last = history.meta_loss[-1000:]
    metadata = {**_common_metadata(name, r, settings, device, history.seconds, provenance),
                "final_meta_loss_mean_last_1000": sum(last) / len(last),
                "meta_loss_every_100": history.meta_loss[::100]}
    if save:
        checkpoints.save_checkpoint(directory / f"{name}.pt", model, metadata=metadata)
    return metadata


class _AccuracyCurve:
    """A `meta_train` callback: held-out accuracy every ``r.eval_every`` iterations."""

    def __init__(self, name, r: Recipe, model, curve_set: TaskBatch, save, metadata_fn, progress, directory: Path):
        self.name, self.r, self.model, self.curve_set = name, r, model, curve_set
        self.save, self.metadata_fn, self.progress, self.directory = save, metadata_fn, progress, directory
        self.curve: list[list] = []  # [iteration, training seconds, held-out accuracy, mean meta-loss since last]
        self.losses: list[float] = []
        self.start = time.perf_counter()
        self.own = 0.0  # seconds spent in this callback (not training)

    def seconds(self) -> float:
        return time.perf_counter() - self.start - self.own

    def __call__(self, iteration: int, params, step, tasks) -> None:
        # Called before the update of `iteration`: θ is the result of `iteration` updates.
        if self.r.eval_every and iteration and iteration % self.r.eval_every == 0:
            self.record(iteration)
        self.losses.append(float(step.meta_loss))

    def record(self, done: int) -> None:
        begin = time.perf_counter()
        seconds = self.seconds()  # training time so far (this evaluation not counted)
        params = dict(self.model.named_parameters())
        acc = protocol.adapted_accuracy(self.model, params, self.curve_set, method=self.r.training.method,
                                        inner_lr=self.r.training.inner_lr, steps=self.r.test_steps,
                                        method_options=self.r.training.method_options)
        window = self.losses[-self.r.eval_every:] if self.r.eval_every else self.losses
        self.curve.append([done, round(seconds, 2), round(float(acc.mean()), 5),
                           round(sum(window) / len(window), 5) if window else None])
        if self.progress:
            print(f"{self.name}: iteration {done}, {seconds:.0f} s, held-out accuracy {100 * float(acc.mean()):.2f}%",
                  flush=True)
        if self.save:
            checkpoints.save_checkpoint(self.directory / f"{self.name}.pt", self.model,
                                        metadata=self.metadata_fn(self, None, 0.0))
        self.own += time.perf_counter() - begin


def _train_omniglot(name, r, settings, model, generator, device, progress, save, eval_tasks,
                    task_threads, directory: Path, provenance: dict) -> dict:
    init_seconds, init_file, init_sha256 = 0.0, "", ""
    if r.init_from is not None:
        parent = directory / f"{r.init_from}.pt"  # a parent retrained into the same directory, else the shipped one
        shipped = not parent.is_file()
        parent = checkpoints.pretrained_path(r.init_from) if shipped else parent
        _, init_meta = checkpoints.load_checkpoint(parent, model)
        init_file, init_sha256 = "shipped" if shipped else str(parent), sha256sum(parent)  # which parent it was
        if progress:
            print(f"{name}: starting from {'the shipped ' if shipped else ''}{parent}", flush=True)
        init_seconds = float(init_meta.get("seconds_total", init_meta.get("seconds", 0.0)))
    curve_set = protocol.held_out_tasks(r.shots, num_tasks=r.curve_tasks or protocol.CURVE_TASKS, ways=r.ways,
                                        query_shots=r.shots, seed=protocol.EVAL_SEED + 1,
                                        device=device)

    def metadata_fn(recorder: _AccuracyCurve, accuracy, eval_seconds: float) -> dict:
        losses, seconds = recorder.losses, recorder.seconds()
        window = min(100, len(losses)) or 1
        return {**_common_metadata(name, r, settings, device, seconds, provenance), "init_from": r.init_from or "",
                "init_file": init_file, "init_sha256": init_sha256,
                "seconds_total": seconds + init_seconds, "eval_seconds": eval_seconds, "task_threads": task_threads,
                "iterations_done": len(losses),
                "final_meta_loss_mean_last_100": sum(losses[-window:]) / window if losses else float("nan"),
                "meta_loss_every_10": losses[::10], "curve": recorder.curve,
                "test_accuracy": [] if accuracy is None else [round(float(a), 6) for a in accuracy.cpu()]}

    recorder = _AccuracyCurve(name, r, model, curve_set, save, metadata_fn, progress, directory)
    recorder.record(0)
    training = replace(settings, method_options={**settings.method_options, "loss_fn": cross_entropy_per_task})
    # MAML++'s options change with the iteration: its scheduled meta-step replaces the plain one
    step_fn = MAMLPlusPlusSchedule(**r.schedule) if r.schedule is not None else None
    family = protocol.omniglot_tasks("train", r.ways, rotations=r.rotations, max_shift=r.max_shift)
    meta_train(model, family, training, generator=generator, device=device, progress=False, callbacks=[recorder],
               step_fn=step_fn, task_threads=task_threads)
    recorder.record(settings.iterations)
    start = time.perf_counter()
    accuracy = evaluate(name, model, num_tasks=eval_tasks, device=device)
    metadata = metadata_fn(recorder, accuracy, time.perf_counter() - start)
    if save:
        checkpoints.save_checkpoint(directory / f"{name}.pt", model, metadata=metadata)
        export_curve(name, directory)
    return metadata


def evaluate(name: str, model, *, num_tasks: int = protocol.EVAL_TASKS, device=None) -> torch.Tensor:
    """Accuracy ``(num_tasks,)`` of Omniglot ``model`` on ``num_tasks`` test tasks of recipe ``name``'s
    protocol (`protocol.held_out_tasks`: the default 600 are those of the stored
    ``test_accuracy``; fewer are a sample of their own, not the first of those 600)."""
    r = recipe(name)
    if r.family != "omniglot":
        raise ValueError(f"name {name!r} is a {r.family} recipe; evaluate scores Omniglot recipes (score a sinusoid "
                         "network with mb.adaptation_curve on mb.protocol.sinusoid_test_tasks)")
    tasks = protocol.held_out_tasks(r.shots, num_tasks=num_tasks, ways=r.ways, query_shots=r.shots,
                                    device=get_device(device))
    return protocol.adapted_accuracy(model, dict(model.named_parameters()), tasks, method=r.training.method,
                                     inner_lr=r.training.inner_lr, steps=r.test_steps,
                                     method_options=r.training.method_options)


def export_curve(name: str, directory: str | os.PathLike | None = None) -> Path:
    """Write the accuracy curve stored in shipped checkpoint ``name`` to ``pretrained/NAME.curve.json``
    (``directory``: the checkpoint ``directory/NAME.pt`` to ``directory/NAME.curve.json``).

    (Training saves the checkpoint, curve included, at every evaluation; this writes
    the small JSON file the chapter reads, also for a run stopped before its end.)
    """
    r = recipe(name)
    directory = output_folder(directory)
    _, meta = checkpoints.load_checkpoint(directory / f"{name}.pt", build_model(name, "cpu"))
    path = directory / f"{name}.curve.json"
    path.write_text(json.dumps(
        {"recipe": name, "columns": ["iteration", "train_seconds", "held_out_accuracy", "mean_meta_loss"],
         "curve_tasks": r.curve_tasks or protocol.CURVE_TASKS, "iterations_done": meta.get("iterations_done"),
         "threads": meta.get("threads"), "device": meta.get("device"), "init_from": meta.get("init_from"),
         "seconds": meta.get("seconds"), "seconds_total": meta.get("seconds_total"),
         "curve": [[None if isinstance(v, float) and math.isnan(v) else v for v in row]
                   for row in meta.get("curve", [])]},
        indent=1) + "\n")
    return path


def finalize(name: str, device=None, eval_tasks: int = protocol.EVAL_TASKS) -> dict:
    """Score shipped Omniglot checkpoint ``name`` on its test tasks, store them in it, export its curve.

    For a run stopped at one of its evaluations (its checkpoint holds the curve so far
    and no test accuracy): the result is what ``regenerate`` with
    ``iterations=metadata["iterations_done"]`` writes.
    """
    model, meta = load(name, device)
    start = time.perf_counter()
    accuracy = evaluate(name, model, num_tasks=eval_tasks, device=device)
    meta.update(eval_seconds=time.perf_counter() - start, test_accuracy=[round(float(a), 6) for a in accuracy.cpu()])
    checkpoints.save_checkpoint(checkpoints.PRETRAINED_DIR / f"{name}.pt", model, metadata=meta)
    export_curve(name)
    return meta

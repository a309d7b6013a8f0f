"""Command line of the book's package.

    python -m mamlbook regenerate NAME|all        retrain a checkpoint shipped with the book (sinusoid or glyph)
    python -m mamlbook train --method maml ...    meta-train on sinusoids, save a checkpoint
    python -m mamlbook evaluate NAME|PATH ...     few-shot error after 0..N SGD steps, with 95% intervals
    python -m mamlbook reproduce                  the MAML paper's sinusoid table (Appendix C, Table 2)

Every command shows progress bars and writes its numbers to a JSON results file.
Multi-process training: ``torchrun --nproc_per_node 2 -m mamlbook train --distributed ...``;
compiled (one graph per meta-step, faster after the first iteration): ``train --compile``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import classification_recipes
from .recipes import RECIPES, Recipe, regenerate
from .reproduce import ROWS


def _option(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` with VALUE parsed as JSON when it can be (numbers, true/false), else a string."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--option must be KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1))
    print(f"results: {path}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mamlbook", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    regen = sub.add_parser("regenerate", help="retrain a checkpoint shipped with the book")
    regen.add_argument("name", choices=sorted(RECIPES) + sorted(classification_recipes.RECIPES) + ["all"])
    regen.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
    regen.add_argument("--iterations", type=int, default=None, help="override the recipe (for a quick try)")
    regen.add_argument("--no-save", action="store_true", help="train and evaluate, but do not write the checkpoint")

    train = sub.add_parser("train", help="meta-train the sinusoid network and save a checkpoint",
                           description="Meta-train the 1-40-40-1 sinusoid network. Defaults: the MAML paper's "
                                       "setup (70k iterations, meta-batch 25, K = 10, α = 0.01, Adam 1e-3), or "
                                       "a recipe's settings with --recipe; any flag overrides them.")
    train.add_argument("--recipe", choices=sorted(RECIPES), default=None, help="start from this recipe's settings")
    train.add_argument("--method", default=None, help="maml, fomaml, reptile, imaml, pretrain (default maml)")
    for flag, typ in (("iterations", int), ("meta-batch-size", int), ("support-shots", int), ("query-shots", int),
                      ("inner-lr", float), ("inner-steps", int), ("outer-lr", float), ("seed", int)):
        train.add_argument(f"--{flag}", type=typ, default=None)
    train.add_argument("--optimizer", choices=["adam", "sgd"], default=None)
    train.add_argument("--option", type=_option, action="append", default=[], metavar="KEY=VALUE",
                       help="method option, e.g. --option lam=2.0 --option cg_steps=5 (repeatable)")
    train.add_argument("--device", default=None)
    train.add_argument("--out", default=None, help="checkpoint path (default checkpoints/<method>.pt)")
    train.add_argument("--results", default=None, help="results JSON (default: the checkpoint path with .json)")
    train.add_argument("--distributed", action="store_true",
                       help="shard each meta-batch over the processes started by torchrun (gloo on CPU, NCCL on GPU)")
    train.add_argument("--backend", choices=["gloo", "nccl"], default=None, help="with --distributed")
    train.add_argument("--compile", action="store_true",
                       help="compile the meta-step (mamlbook.compile_method): faster after a first iteration "
                            "that compiles")
    train.add_argument("--no-progress", action="store_true")

    ev = sub.add_parser("evaluate", help="few-shot error of checkpoints after 0..N SGD steps")
    ev.add_argument("targets", nargs="+", metavar="NAME|PATH", help="recipe names (shipped checkpoints) or .pt files")
    ev.add_argument("--tasks", type=int, default=600, help="number of test tasks (default 600)")
    ev.add_argument("--shots", type=int, default=5, help="support points per task (default 5)")
    ev.add_argument("--query-shots", type=int, default=100)
    ev.add_argument("--max-steps", type=int, default=10)
    ev.add_argument("--inner-lr", type=float, default=0.01)
    ev.add_argument("--seed", type=int, default=2017, help="seed of the test tasks (default 2017)")
    ev.add_argument("--device", default=None)
    ev.add_argument("--results", default="evaluation.json")

    rep = sub.add_parser("reproduce", help="the MAML paper's sinusoid table (Appendix C, Table 2), all methods",
                         description="Evaluate the shipped MAML, pretrained, first-order MAML, Reptile and iMAML "
                                     "checkpoints on 5-shot sinusoid tasks after 1, 5, 10 SGD steps, beside the "
                                     "paper's numbers. Missing checkpoints are trained from their recipes.")
    rep.add_argument("--rows", nargs="+", default=None, help="subset of the rows (default all): " + ", ".join(repr(r) for r in ROWS))
    rep.add_argument("--tasks", type=int, default=600, help="number of test tasks (default 600)")
    rep.add_argument("--retrain", action="store_true", help="retrain every checkpoint from its recipe first")
    rep.add_argument("--no-train", action="store_true", help="fail instead of training a missing checkpoint")
    rep.add_argument("--device", default=None)
    rep.add_argument("--results", default="benchmarks/results/reproduction.json")
    return parser


def _train(args) -> int:
    from . import checkpoints
    from .device import get_device, seed_everything
    from .models import SinusoidMLP
    from .tasks import SinusoidTasks
    from .train import meta_train

    base = RECIPES[args.recipe] if args.recipe else Recipe(args.method or "maml")
    settings = asdict(base)
    for key in ("method", "iterations", "meta_batch_size", "support_shots", "query_shots", "inner_lr", "inner_steps",
                "outer_lr", "optimizer", "seed"):
        if getattr(args, key, None) is not None:
            settings[key] = getattr(args, key)
    settings["method_options"] = {**settings["method_options"], **dict(args.option)}
    if settings["method"] == "pretrain":
        settings["inner_steps"] = 0
    rank, world = 0, 1
    if args.distributed and args.compile:
        raise ValueError("--compile cannot be combined with --distributed (each process would compile its shard's "
                         "step); use one of them")
    if args.distributed:
        from . import distributed
        rank, world, device = distributed.init_from_environment(args.backend)
        if args.device is not None and torch.device(args.device) != device:
            raise ValueError(f"--device {args.device} conflicts with the distributed backend's device {device}")
        train_fn = distributed.meta_train
    else:
        device = get_device(args.device)
        train_fn = meta_train
    generator = seed_everything(settings["seed"])
    model = SinusoidMLP().to(device)
    options = {k: v for k, v in settings.items() if k != "seed"}
    extra = {"compile": True} if args.compile else {}
    history = train_fn(model, SinusoidTasks(), generator=generator, device=device, progress=not args.no_progress,
                       **options, **extra)
    if rank != 0:
        return 0
    out = Path(args.out or f"checkpoints/{settings['method']}.pt")
    last = history.meta_loss[-1000:]
    summary = {"command": "python -m mamlbook " + " ".join(args.argv), "settings": settings,
               "processes": world, "compiled": bool(args.compile), "device": str(device), "torch": torch.__version__,
               "seconds": history.seconds,
               "ms_per_iteration": 1e3 * history.seconds / len(history.meta_loss),
               "final_meta_loss_mean_last_1000": sum(last) / len(last), "meta_loss_every_100": history.meta_loss[::100],
               "checkpoint": str(out), "date": time.strftime("%Y-%m-%d %H:%M")}
    checkpoints.save_checkpoint(out, model, metadata={"settings": json.dumps(settings), "seconds": history.seconds,
                                                      "device": str(device), "processes": world,
                                                      "meta_loss_every_100": history.meta_loss[::100]})
    print(f"{settings['method']}: {len(history.meta_loss)} iterations in {history.seconds:.1f} s "
          f"({summary['ms_per_iteration']:.2f} ms each, {world} process{'es' if world > 1 else ''}), "
          f"final meta-loss {summary['final_meta_loss_mean_last_1000']:.4f}; checkpoint {out}")
    _write_json(Path(args.results) if args.results else out.with_suffix(".json"), summary)
    return 0


def _evaluate(args) -> int:
    from .checkpoints import load_checkpoint
    from .device import get_device
    from .evaluate import adaptation_curve, mean_and_ci95
    from .functional import parameters_of
    from .models import SinusoidMLP
    from .recipes import load_recipe
    from .tasks import SinusoidTasks

    device = get_device(args.device)
    tasks = SinusoidTasks().sample(args.tasks, args.shots, args.query_shots,
                                   generator=torch.Generator().manual_seed(args.seed), device=device)
    results = {"protocol": {"test_tasks": args.tasks, "support_shots": args.shots, "query_shots": args.query_shots,
                            "inner_lr": args.inner_lr, "test_seed": args.seed, "interval": "mean ± 1.96·s/√n"},
               "targets": {}}
    for target in tqdm(args.targets, desc="evaluate"):
        if target in RECIPES:
            model, _ = load_recipe(target, device=device)
        else:
            model = SinusoidMLP().to(device)
            load_checkpoint(target, model)
        curve = adaptation_curve(model, parameters_of(model), tasks, inner_lr=args.inner_lr, max_steps=args.max_steps)
        results["targets"][target] = [dict(zip(("mean", "ci95"), mean_and_ci95(curve[:, k].cpu())))
                                      for k in range(args.max_steps + 1)]
    shown = sorted({0, 1, min(5, args.max_steps), args.max_steps})
    print(f"query MSE after k SGD steps (α = {args.inner_lr}) on {args.tasks} tasks, K = {args.shots}:")
    print(f"{'checkpoint':<28}" + "".join(f"{f'k = {k}':>18}" for k in shown))
    for target, rows in results["targets"].items():
        print(f"{target:<28}" + "".join(f"{rows[k]['mean']:>10.3f} ± {rows[k]['ci95']:.3f}" for k in shown))
    _write_json(Path(args.results), results)
    return 0


def _reproduce(args) -> int:
    from . import reproduce

    results = reproduce.reproduce(args.rows, num_tasks=args.tasks, retrain=args.retrain, train_missing=not args.no_train,
                                  device=args.device)
    results["command"] = "python -m mamlbook " + " ".join(args.argv)
    print(reproduce.format_table(results))
    _write_json(Path(args.results), results)
    return 0


def _regenerate(args) -> int:
    glyphs = classification_recipes.RECIPES
    # "all": sinusoids, then the glyph 1-shot runs before the 5-shot runs that start from them.
    names = (sorted(RECIPES) + sorted(glyphs, key=lambda n: (glyphs[n].init_from is not None, n))
             if args.name == "all" else [args.name])
    for name in names:
        if name in RECIPES:
            meta = regenerate(name, device=args.device, iterations=args.iterations, save=not args.no_save)
            print(f"{name}: {meta['seconds']:.0f} s, final meta-loss {meta['final_meta_loss_mean_last_1000']:.4f}",
                  flush=True)
        else:
            meta = classification_recipes.regenerate(name, device=args.device, iterations=args.iterations,
                                                     save=not args.no_save)
            acc = torch.tensor(meta["test_accuracy"])
            print(f"{name}: trained {meta['seconds']:.0f} s, evaluated {meta['eval_seconds']:.0f} s, test accuracy "
                  f"{100 * acc.mean():.2f} ± {196 * acc.std() / len(acc) ** 0.5:.2f} %", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser().parse_args(argv)
    args.argv = argv
    if args.command == "regenerate":
        return _regenerate(args)
    return {"train": _train, "evaluate": _evaluate, "reproduce": _reproduce}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())

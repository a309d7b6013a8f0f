"""Command line of the book's package.

    python -m mamlbook list                       the shipped checkpoints' names (what regenerate and evaluate take)
    python -m mamlbook regenerate NAME|all        retrain a checkpoint shipped with the book (sinusoid or Omniglot)
    python -m mamlbook train --method maml ...    meta-train on sinusoids, save a checkpoint
    python -m mamlbook evaluate NAME|PATH ...     few-shot error after 0..N SGD steps, with 95% intervals
    python -m mamlbook reproduce                  the MAML paper's sinusoid table (Appendix C, Table 2)

Files are written only where a command says: `train` its checkpoint (--out) and a JSON
summary beside it, `regenerate` the shipped checkpoints in mamlbook/pretrained/ (unless
--no-save); `evaluate` and `reproduce` print their numbers and write JSON only with
--results PATH. Multi-process training: ``torchrun --nproc_per_node 2 -m mamlbook train
--distributed ...``; compiled (one graph per meta-step): ``train --compile``.

Exit status: 0 done; 2 an invalid argument, or a file named on the command line that is
not a valid checkpoint (one line on stderr says which and what is allowed); 1 the run
failed (training diverged, a file could not be read or written). MAMLBOOK_DEBUG=1 shows
the full traceback instead of the one line.
"""
# This module imports no torch at import time: `--help` and `--version` stay fast, and
# each command imports what it needs when it runs.
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from .cli_parser import (
    EVALUATE_SINUSOID_DEFAULTS,
    METHOD_OPTIONS,
    TRAIN_DEFAULTS,
    UsageError,
    build_parser,
    did_you_mean,
    one_line,
)

#: Methods whose model is the network wrapped with its learned step sizes (`mamlbook.MetaSGDNet`,
#: `mamlbook.LSLRNet`); `train` wraps the sinusoid network for them.
WRAPPED = {"meta_sgd": "MetaSGDNet", "mamlpp": "LSLRNet"}

def _cpu_hint(name: str) -> str:
    """Why a retrained checkpoint can differ with the same code: the CPU it ran on."""
    from . import recipes
    from .device import cpu_name

    trained_on = recipes.load(name, device="cpu")[1].get("cpu")
    return (f"; the bits depend on the CPU (README, 'Regenerating the shipped checkpoints'): it was trained on "
            f"{trained_on or 'a CPU it does not record (trained before 2026-12-06)'}, this is {cpu_name()}")


#: Test tasks an Omniglot checkpoint can be evaluated on (`mamlbook.protocol.EVAL_TASKS`).
OMNIGLOT_EVAL_TASKS = 600


# ---------------------------------------------------------------- checks that need the package (torch)

def _device(args):
    """``--device`` (or $MAMLBOOK_DEVICE) as a torch.device; a UsageError naming it if unusable."""
    import torch

    from .device import get_device

    try:
        return get_device(args.device)
    except ValueError as err:
        where = "argument --device: " if args.device is not None else ""  # get_device names $MAMLBOOK_DEVICE itself
        hint = ""
        if "CUDA" in str(err):
            hint = (f" (this torch, {torch.__version__}, is a CPU-only build)" if torch.version.cuda is None
                    else " (no GPU is visible)") + "; use --device cpu"
        raise UsageError(f"{where}{err}{hint}") from None


def shipped_names() -> dict[str, str]:
    """Every shipped checkpoint's name -> its task family (``"sinusoid"`` or ``"omniglot"``), in regeneration order.

    These are the names `regenerate` and `evaluate` take: `mamlbook.recipes.RECIPES`,
    each after the recipe it starts from.
    """
    from . import recipes

    return {name: recipes.RECIPES[name].family for name in recipes.regeneration_order()}


def _unknown_name(argument: str, value: str, names, listed: bool = False) -> UsageError:
    """``listed``: the names are the shipped checkpoints', which `list` shows a line each
    (a hundred of them would bury the suggestion); otherwise the error lists them."""
    names = list(names)
    choices = ("`python -m mamlbook list` shows every name" if listed
               else f"choose from {', '.join(map(repr, names))}")
    return UsageError(f"argument {argument}: unknown name {value!r};{did_you_mean(value, names)} "
                      f"({choices})".replace("; (", " ("))


def resolve_target(target: str) -> tuple[str, str]:
    """An `evaluate` target as ``(kind, target)``: kind ``"sinusoid"``/``"omniglot"`` for a shipped name, ``"path"`` for a file."""
    names = shipped_names()
    if target in names:
        return names[target], target
    path = Path(target)
    if path.is_file():
        return "path", target
    if path.is_dir():
        raise UsageError(f"argument NAME|PATH: {target!r} is a directory, not a checkpoint file")
    if path.suffix == ".pt" or os.sep in target or (os.altsep and os.altsep in target):
        raise UsageError(f"argument NAME|PATH: no such file {target!r}")
    raise _unknown_name("NAME|PATH", target, names, listed=True)


def _method_options(method: str, options: dict) -> None:
    allowed = METHOD_OPTIONS[method]
    for key in options:
        if key not in allowed:
            what = f"options of {method}: {', '.join(allowed)}" if allowed else f"{method} takes no options"
            raise UsageError(f"argument --option: {key!r} is not an option of {method};"
                             f"{did_you_mean(key, allowed)} ({what})".replace("; (", " ("))


def _check_output(argument: str, path: str | os.PathLike | None) -> None:
    """A file the command will write: refused at once, not after the work, if it is a
    directory or its folder cannot be written (`_check_writable`)."""
    if path is None:
        return
    from .checks import file_path  # (torch: when a command runs, not for --help)

    try:
        file_path(argument, path)
    except ValueError as err:
        raise UsageError(f"argument {err}") from None
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 writes (and tries)
        return
    _check_writable(argument, Path(path).parent)


def _check_writable(argument: str, folder: Path, hint: str = "") -> None:
    """Refuse ``folder`` unless a file can be created in it, by creating one (and the
    missing folders above it, as the command will) and removing the folders it made.
    Trying is the only sure test: permission bits do not bind root, and some file
    systems (/proc, a read-only mount) refuse writes whatever they say."""
    folder = Path(os.path.abspath(folder))
    created = []
    try:
        for above in [*reversed(folder.parents), folder]:
            if not above.exists():
                try:
                    above.mkdir()
                    created.append(above)
                except FileExistsError:  # made meanwhile by another process: it is there
                    pass
            if not above.is_dir():
                raise UsageError(f"argument {argument}: {str(above)!r} is a file, not a folder{hint}")
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise UsageError(f"argument {argument}: cannot write in {str(folder)!r} ({err.strerror or err}){hint}") from None
    finally:
        for made in reversed(created):
            try:
                made.rmdir()
            except OSError:  # another process wrote into it meanwhile: it stays
                pass


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (resolved: ``./x.pt`` and ``x.pt`` are the same)."""
    return os.path.realpath(a) == os.path.realpath(b)


def _check_train_flags(args) -> None:
    """The cross-flag checks of `train` that need no torch."""
    _check_output("--out", args.out)
    _check_output("--results", args.results)
    keys = [key for key, _ in args.option]
    for key in dict.fromkeys(keys):
        if keys.count(key) > 1:
            given = ", ".join(repr(v) for k, v in args.option if k == key)
            raise UsageError(f"argument --option: {key!r} is given {keys.count(key)} times ({given}); give it once")
    if args.distributed and args.compile:
        raise UsageError("argument --compile: cannot be combined with --distributed (each process would compile "
                         "its shard's step); use one of them")
    if args.backend is not None and not args.distributed:
        raise UsageError("argument --backend: only with --distributed")


# ---------------------------------------------------------------- the commands

def _write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1))
    print(f"results: {path}")


def _list(args) -> int:
    from .checkpoints import PRETRAINED_DIR

    names = shipped_names()
    width = max(map(len, names))
    for name, kind in names.items():
        there = "shipped" if (PRETRAINED_DIR / f"{name}.pt").is_file() else "missing (regenerate it)"
        print(f"{name:<{width}} {kind:<9} {there}")
    return 0


def _train(args) -> int:
    from dataclasses import replace

    import torch

    from . import checkpoints, recipes
    from .device import seed_everything
    from .models import SinusoidMLP
    from .tasks import SinusoidTasks
    from .train import NON_ADAPTIVE, TrainingSettings, meta_train

    if args.recipe in recipes.RECIPES and recipes.RECIPES[args.recipe].family != "sinusoid":
        raise UsageError(f"argument --recipe: {args.recipe!r} is an Omniglot recipe; train takes sinusoid "
                         f"recipes only (Omniglot ones are retrained with `regenerate {args.recipe} --no-save`)")
    if args.recipe is not None and args.recipe not in recipes.RECIPES:
        raise _unknown_name("--recipe", args.recipe,
                            sorted(n for n, r in recipes.RECIPES.items() if r.family == "sinusoid"))
    base = recipes.RECIPES[args.recipe] if args.recipe else None
    training = base.training if base else TrainingSettings(iterations=TRAIN_DEFAULTS["iterations"],
                                                           method=args.method or "maml")
    seed = args.seed if args.seed is not None else (base.seed if base else TRAIN_DEFAULTS["seed"])
    changes = {key: getattr(args, key) for key in ("method", "iterations", "meta_batch_size", "support_shots",
                                                   "query_shots", "inner_lr", "inner_steps", "outer_lr", "optimizer")
               if getattr(args, key, None) is not None}
    method = changes.get("method", training.method)
    if method in NON_ADAPTIVE:
        if args.inner_steps is not None:
            raise UsageError(f"argument --inner-steps: {method} takes no inner steps (it does not adapt)")
        changes["inner_steps"] = None  # it does not adapt
    if base is not None and method != base.training.method:
        foreign = sorted(set(base.training.method_options) - set(METHOD_OPTIONS[method]))
        if foreign:  # the recipe's options belong to its own method
            raise UsageError(f"argument --method: recipe {args.recipe!r} trains {base.training.method} with the "
                             f"options {base.training.method_options}, and {method} does not take "
                             f"{', '.join(map(repr, foreign))}; train {method} without --recipe, or from one of its "
                             "own recipes")
        if base.training.method in NON_ADAPTIVE and args.inner_steps is None:
            raise UsageError(f"argument --method: recipe {args.recipe!r} trains {base.training.method}, which takes "
                             f"no inner steps; give {method} its --inner-steps")
    options = {**training.method_options, **dict(args.option)}
    _method_options(method, options)
    changes["method_options"] = options
    training = replace(training, **changes)
    settings = {**training.as_dict(), "seed": seed}
    out = Path(args.out or f"checkpoints/{settings['method']}.pt")
    if args.out is None:  # a given path was checked with the other flags; the default one here
        _check_output("--out", out)
    results_path = Path(args.results) if args.results else out.with_suffix(".json")
    if _same_file(results_path, out):  # the summary would be written over the checkpoint
        raise UsageError(f"argument {'--results' if args.results else '--out'}: the checkpoint and the JSON summary "
                         f"would both be {str(out)!r}, the summary over the checkpoint; give --out a .pt path "
                         "or --results another file")
    rank, world = 0, 1
    if args.distributed:
        from .performance import distributed
        try:
            rank, world, device = distributed.init_from_environment(args.backend)
        except RuntimeError as err:
            if "torchrun" not in str(err):
                raise
            raise UsageError(f"argument --distributed: {err}") from None
        if args.device is not None and torch.device(args.device) != device:
            raise UsageError(f"argument --device: {args.device} conflicts with the distributed backend's device {device}")
        train_fn = distributed.meta_train
    else:
        device = _device(args)
        train_fn = meta_train
    generator = seed_everything(seed)
    model = SinusoidMLP().to(device)
    if training.method in WRAPPED:  # the step sizes are parameters of a wrapper around the network
        from . import algorithms

        wrapper = getattr(algorithms, WRAPPED[training.method])
        model = wrapper(model, training.inner_steps) if training.method == "mamlpp" else wrapper(model)
    extra = {"compile": True} if args.compile else {}
    try:
        history = train_fn(model, SinusoidTasks(), training, generator=generator, device=device,
                           progress=not args.no_progress, **extra)
    except (ValueError, TypeError) as err:  # the method checks its options on the first meta-step
        key = next((k for k in dict(args.option) if str(err).startswith(f"{k} ")), None)
        if key is None:
            raise
        raise UsageError(f"argument --option {key}: {err}") from None
    if rank != 0:
        return 0
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
    _write_json(results_path, summary)
    return 0


def _evaluate(args) -> int:
    from tqdm.auto import tqdm

    from . import protocol, recipes
    from .checkpoints import CheckpointError, load_checkpoint
    from .evaluate import adaptation_curve
    from .functional import parameters_of
    from .models import SinusoidMLP

    targets = {target: resolve_target(target)[0] for target in dict.fromkeys(args.targets)}
    _check_output("--results", args.results)
    for target, kind in targets.items():
        if args.results and kind == "path" and _same_file(Path(args.results), Path(target)):
            raise UsageError(f"argument --results: {args.results!r} is the checkpoint being evaluated; the results "
                             "would be written over it; give another file")
    for key, default in EVALUATE_SINUSOID_DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, default)
        elif set(targets.values()) == {"omniglot"}:
            raise UsageError(f"argument --{key.replace('_', '-')}: applies to sinusoid checkpoints only; Omniglot "
                             "checkpoints are scored with their recipe's own protocol (only --tasks and --device "
                             "apply to them)")
    if "omniglot" in targets.values() and args.tasks > OMNIGLOT_EVAL_TASKS:
        raise UsageError(f"argument --tasks: must be in [2, {OMNIGLOT_EVAL_TASKS}] for Omniglot checkpoints (their "
                         f"{OMNIGLOT_EVAL_TASKS} fixed test tasks), got {args.tasks}")
    device = _device(args)
    results = {"protocol": {"test_tasks": args.tasks, "support_shots": args.shots, "query_shots": args.query_shots,
                            "inner_lr": args.inner_lr, "test_seed": args.seed,
                            "interval": protocol.INTERVAL,
                            "diverged": "tasks whose query loss became NaN/inf or grew beyond "
                                        f"{protocol.DIVERGENCE_FACTOR:g}× its value before adaptation "
                                        "(mamlbook.protocol.diverged): counted, left out of mean and median"},
               "targets": {}, "omniglot_targets": {}}
    models = {}  # every checkpoint is loaded (and checked) before any evaluation starts
    for target, kind in targets.items():
        if kind == "path":
            models[target] = SinusoidMLP().to(device)
            try:
                load_checkpoint(target, models[target])
            except CheckpointError as err:
                saved_for = getattr(err, "saved_architecture", None)
                if saved_for is None:  # not a mismatch of networks: the checkpoint's own message
                    raise
                advice = ("evaluate a shipped Omniglot checkpoint by its name (`python -m mamlbook list`)"
                          if saved_for.startswith("ConvNet") else
                          f"`train` saves the network wrapped with its step sizes for {' and '.join(WRAPPED)}, "
                          "which evaluate does not take")
                raise UsageError(f"argument NAME|PATH: {target!r} holds a {saved_for}; a PATH must hold the "
                                 f"sinusoid network, {models[target].architecture}; {advice}") from None
        else:
            models[target], _ = recipes.load(target, device=device)
    tasks = None
    for target, kind in tqdm(targets.items(), desc="evaluate", disable=len(targets) < 2):
        model = models[target]
        if kind == "omniglot":
            recipe = recipes.RECIPES[target]
            accuracy = recipes.evaluate(target, model, num_tasks=args.tasks, device=device)
            mean, ci95 = protocol.mean_and_ci95(accuracy.cpu())
            results["omniglot_targets"][target] = {
                "accuracy": {"mean": mean, "ci95": ci95}, "ways": recipe.ways, "shots": recipe.shots,
                "test_steps": recipe.test_steps, "test_inner_lr": recipe.training.inner_lr,
                "test_tasks": int(accuracy.numel())}
            continue
        if tasks is None:
            tasks = protocol.sinusoid_test_tasks(args.tasks, support_shots=args.shots, query_shots=args.query_shots,
                                                 seed=args.seed, device=device)
        curve = adaptation_curve(model, parameters_of(model), tasks, inner_lr=args.inner_lr, max_steps=args.max_steps,
                                 on_divergence="keep").cpu()
        summary = protocol.summarize(curve, list(range(args.max_steps + 1)))
        results["targets"][target] = [s._asdict() for s in summary.values()]
    if results["targets"]:
        shown = sorted({k for k in (0, 1, 5, args.max_steps) if k <= args.max_steps})
        cells = {target: [protocol.format_cell(protocol.StepSummary(**rows[k])) for k in shown]
                 for target, rows in results["targets"].items()}
        width = max(18, 2 + max(len(c) for row in cells.values() for c in row))
        print(f"query MSE after k SGD steps (α = {args.inner_lr}) on {args.tasks} tasks, K = {args.shots}:")
        print(f"{'checkpoint':<28}" + "".join(f"{f'k = {k}':>{width}}" for k in shown))
        for target, row in cells.items():
            print(f"{target:<28}" + "".join(f"{c:>{width}}" for c in row))
        if any(rows[0]["diverged"] for rows in results["targets"].values()):
            print(f"[n div.]: tasks on which SGD diverged at some step up to k = {args.max_steps} (loss NaN/inf "
                  f"or {protocol.DIVERGENCE_FACTOR:g}× its value before adaptation), left out of every column, "
                  "k = 0 too, so that each averages the same tasks; a smaller --inner-lr avoids it")
    if results["omniglot_targets"]:
        print("test accuracy of Omniglot checkpoints (each with its recipe's protocol):")
        for target, row in results["omniglot_targets"].items():
            acc = row["accuracy"]
            print(f"{target:<28} {100 * acc['mean']:6.2f} ± {100 * acc['ci95']:.2f} %   ({row['ways']}-way "
                  f"{row['shots']}-shot, {row['test_steps']} steps, α = {row['test_inner_lr']}, "
                  f"{row['test_tasks']} tasks)")
    if args.results:
        _write_json(Path(args.results), results)
    return 0


def _reproduce(args) -> int:
    from . import reproduce

    for row in args.rows or []:
        if row not in reproduce.ROWS:
            raise _unknown_name("--rows", row, reproduce.ROWS)
    if args.retrain and args.no_train:
        raise UsageError("argument --no-train: cannot be combined with --retrain (which trains every checkpoint); "
                         "use one of them")
    _check_output("--results", args.results)
    results = reproduce.reproduce(args.rows, num_tasks=args.tasks, retrain=args.retrain, train_missing=not args.no_train,
                                  device=_device(args))
    results["command"] = "python -m mamlbook " + " ".join(args.argv)
    print(reproduce.format_table(results))
    if args.results:
        _write_json(Path(args.results), results)
    else:
        print("(not saved; --results PATH writes these numbers as JSON)")
    return 0


def _regenerate(args) -> int:
    import torch

    from . import protocol, recipes
    from .checkpoints import PRETRAINED_DIR
    from .device import cap_cpu_kernels

    try:  # before the process's first convolution and matrix product, or oneDNN and MKL ignore it
        cap_cpu_kernels()
    except ValueError as err:
        raise UsageError(str(err)) from None

    names = shipped_names()
    if args.name != "all" and args.name not in names:
        raise _unknown_name("NAME|all", args.name, [*names, "all"], listed=True)
    if args.iterations is not None and not args.no_save and not args.check and args.out is None:
        raise UsageError("argument --iterations: only with --no-save or --out DIR (a shipped checkpoint holds its "
                         "recipe's own run; a shortened one would replace it)")
    if args.check and (args.iterations is not None or args.no_save or args.task_threads != 1
                       or args.out is not None):
        raise UsageError("argument --check: retrains the recipe as it is and never saves; it takes neither "
                         "--iterations nor --no-save nor --task-threads nor --out")
    if args.out is not None and args.no_save:
        raise UsageError("argument --out: names where to write the checkpoint; --no-save writes none")
    if args.out is not None:
        if not args.out.strip():
            raise UsageError(f"argument --out: must be a folder path, got {args.out!r}")
        if Path(args.out).resolve() == PRETRAINED_DIR.resolve():
            raise UsageError(f"argument --out: {args.out!r} is the shipped checkpoints' folder (where regenerate "
                             "writes without --out); name another folder")
        _check_writable("--out", Path(args.out))
    elif not args.no_save and not args.check:
        _check_writable("NAME|all", PRETRAINED_DIR, hint="; regenerate writes the shipped checkpoints there: "
                        "use --out DIR or --no-save, or regenerate in a clone installed with `pip install -e`")
    for name in names if args.name == "all" else [args.name]:
        try:  # before any training: a wrong value stops the command, not the nth recipe
            recipes.runs.check_task_threads(name, args.task_threads)
        except ValueError as err:
            raise UsageError(f"argument --task-threads: {err}") from None
    device = _device(args)
    differ = []
    for name in names if args.name == "all" else [args.name]:
        if args.check:
            same, diff = recipes.verify(name, device=device)
            print(f"{name}: {'bit for bit equal to' if same else f'DIFFERS (max |Δ| = {diff:.3g}) from'} the "
                  f"shipped file{'' if same else _cpu_hint(name)}", flush=True)
            differ += [] if same else [name]
            continue
        written = "" if args.no_save else f"; wrote {recipes.runs.output_folder(args.out) / f'{name}.pt'}"
        meta = recipes.regenerate(name, device=device, iterations=args.iterations, save=not args.no_save,
                                  task_threads=args.task_threads, out=args.out)
        if names[name] == "sinusoid":
            print(f"{name}: {meta['seconds']:.0f} s, final meta-loss {meta['final_meta_loss_mean_last_1000']:.4f}"
                  f"{written}", flush=True)
        else:
            mean, ci95 = protocol.mean_and_ci95(torch.tensor(meta["test_accuracy"], dtype=torch.float64))
            print(f"{name}: trained {meta['seconds']:.0f} s, evaluated {meta['eval_seconds']:.0f} s, test accuracy "
                  f"{100 * mean:.2f} ± {100 * ci95:.2f} %{written}", flush=True)
    return 1 if differ else 0


def _parser():
    """The command line's parser (`mamlbook.cli_parser`), with this module's docstring as its help."""
    return build_parser(__doc__)


COMMANDS = {"list": _list, "regenerate": _regenerate, "train": _train, "evaluate": _evaluate, "reproduce": _reproduce}


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (0 done, 2 invalid argument, 1 failed run)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser()
    debug = os.environ.get("MAMLBOOK_DEBUG", "") not in ("", "0")
    try:
        try:
            args = parser.parse_args(argv)
        except UsageError as err:  # `mamlbook --verbose list`: argparse only says COMMAND is missing
            if argv and argv[0].startswith("-") and "required: COMMAND" in str(err):
                raise UsageError(f"unrecognized argument {argv[0]!r} before the command; options go after "
                                 f"it (`{parser.prog} COMMAND --help` lists them)") from None
            raise
        if args.command == "train":
            try:
                _check_train_flags(args)
            except UsageError as err:
                err.prog = err.prog or f"{parser.prog} train"
                raise
    except UsageError as err:
        print(f"{err.prog or parser.prog}: error: {one_line(err)}", file=sys.stderr)
        return 2
    except SystemExit as exit_:  # --help, --version
        return exit_.code if isinstance(exit_.code, int) else 0
    args.argv = argv
    prog = f"{parser.prog} {args.command}"
    try:
        return COMMANDS[args.command](args)
    except BrokenPipeError:  # `... | head` closed the pipe: no traceback, but the command did not finish
        try:  # stdout to nowhere, so that the interpreter's last flush at exit stays quiet too
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # not a file descriptor (a captured stdout)
            pass
        return 1
    except UsageError as err:
        if debug:
            raise
        print(f"{err.prog or prog}: error: {one_line(err)}", file=sys.stderr)
        return 2
    except Exception as err:
        from .checks import DivergenceError

        if debug:
            raise
        if isinstance(err, DivergenceError):
            print(f"{prog}: diverged: {one_line(err)}", file=sys.stderr)
            return 1
        if isinstance(err, (ValueError, TypeError)):  # the package's argument checks (CheckpointError is a ValueError)
            print(f"{prog}: error: {one_line(err)}", file=sys.stderr)
            return 2
        if isinstance(err, OSError):  # a missing shipped checkpoint, a file that cannot be written
            print(f"{prog}: error: {one_line(err)}", file=sys.stderr)
            return 1
        raise
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130

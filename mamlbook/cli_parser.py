"""The grammar of `mamlbook.cli`: its commands, their arguments and the allowed values.

Argument types check ranges while parsing (an integer in [low, high], a step size in
(0, 100]), so a wrong value stops the command in one line that names the argument,
before any work; `UsageError` is that line. No torch is imported here (``--help``
stays fast); the checks that need the package live in `mamlbook.cli`.
"""
from __future__ import annotations

import argparse
import difflib
import json
import math
import re
import sys
from pathlib import Path

from . import __version__

#: The registered methods (`mamlbook.method_names()`; tests/test_cli.py checks that the two agree).
METHODS = ("maml", "fomaml", "reptile", "imaml", "pretrain", "anil", "meta_sgd", "mamlpp", "protonet")

#: Those `train` meta-trains the sinusoid regressor with: not Prototypical Networks, a
#: classifier (class prototypes need class labels).
TRAIN_METHODS = tuple(m for m in METHODS if m != "protonet")

#: `evaluate`'s sinusoid-protocol flags and their defaults.
EVALUATE_SINUSOID_DEFAULTS = {"shots": 5, "query_shots": 100, "max_steps": 10, "inner_lr": 0.01, "seed": 2017}

#: The options each method takes with ``--option KEY=VALUE`` (its keyword arguments other than
#: ``inner_lr``, ``inner_steps`` and ``loss_fn``; tests/test_cli.py checks them against the signatures).
METHOD_OPTIONS = {"maml": ("first_order",), "fomaml": (), "reptile": ("inner_data", "gradient_weights"),
                  "imaml": ("lam", "cg_steps", "cg_damping", "inner_tol", "first_order"), "pretrain": (),
                  "anil": ("first_order",), "meta_sgd": ("first_order",), "mamlpp": ("step_weights", "first_order"),
                  "protonet": ()}

#: `mamlbook.train.TrainingSettings`' defaults (and the seed's), for `train --help` (tests/test_cli.py checks that they agree).
TRAIN_DEFAULTS = {"iterations": 70_000, "meta_batch_size": 25, "support_shots": 10, "query_shots": 10,
                  "inner_lr": 0.01, "inner_steps": 1, "outer_lr": 1e-3, "optimizer": "adam", "seed": 0}

class UsageError(Exception):
    """An invalid command line: printed as ``PROG: error: MESSAGE`` (one line), exit status 2."""

    def __init__(self, message: str, prog: str | None = None):
        super().__init__(message)
        self.prog = prog


def did_you_mean(value: str, names) -> str:
    """`` did you mean 'x'?`` for the name closest to ``value`` (case-insensitive), or ``""``."""
    names = [str(n) for n in names]
    lowered = {n.lower(): n for n in names}
    close = difflib.get_close_matches(str(value).lower(), list(lowered), n=1, cutoff=0.6)
    return f" did you mean {lowered[close[0]]!r}?" if close else ""


# ---------------------------------------------------------------- argument types (no torch)

def int_between(low: int, high: int):
    """An argparse type: an integer in [low, high] (the upper bound keeps a typo of many
    digits from overflowing torch or running for ever)."""
    allowed = f"an integer in [{low:_}, {high:_}]"

    def parse(text: str) -> int:
        # ASCII digits, grouped by three or not ("100_000", as the bounds are written): int() also
        # takes "5_0" (50) and other scripts' digits ("３")
        if not re.fullmatch(r"\s*[+-]?(?:[0-9]{1,3}(?:_[0-9]{3})+|[0-9]+)\s*", text):
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}")
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {value}")
        return value

    parse.__name__ = allowed
    return parse


#: The largest step size the command line takes (inner α or outer β); larger ones only diverge.
MAX_STEP_SIZE = 100.0


def _positive_float(text: str) -> float:
    """An argparse type: a step size in (0, MAX_STEP_SIZE]."""
    allowed = f"a number in (0, {MAX_STEP_SIZE:g}]"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}") from None
    if not math.isfinite(value) or not 0 < value <= MAX_STEP_SIZE:
        raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}")
    return value


#: Python's spellings of JSON's constants, refused with the JSON spelling (they would be strings).
_PYTHON_CONSTANTS = {"True": "true", "False": "false", "None": "null"}


def _option(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` with VALUE parsed as JSON when it can be (numbers, true/false, lists), else a string."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"must be KEY=VALUE (e.g. lam=2.0), got {text!r}")
    if value.strip() in _PYTHON_CONSTANTS:
        raise argparse.ArgumentTypeError(f"VALUE is read as JSON: write {key.strip()}="
                                         f"{_PYTHON_CONSTANTS[value.strip()]}, got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` after each option's help, except for unset defaults (None, False, [])."""

    def _get_help_string(self, action):
        if action.default in (None, False, []) or action.default is argparse.SUPPRESS \
                or "%(default)" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class _RawFormatter(_Formatter, argparse.RawDescriptionHelpFormatter):
    """The top level: this module's docstring as it is written."""


_INVALID_CHOICE = re.compile(r"invalid choice: (?P<value>.+?) \(choose from (?P<choices>.*)\)$", re.DOTALL)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage block), with a did-you-mean for choices."""

    def error(self, message: str):
        match = _INVALID_CHOICE.search(message)
        if match:
            strip = lambda s: s.strip().strip("'\"")
            value, choices = strip(match["value"]), [strip(c) for c in match["choices"].split(",")]
            message = (message[:match.start()] + f"invalid choice {value!r};{did_you_mean(value, choices)} "
                       f"(choose from {', '.join(choices)})").replace("; (", " (")
        raise UsageError(message, self.prog)


class ScriptParser(_Parser):
    """The parser of the package's other commands (``python -m mamlbook.omniglot_results``,
    ``.wider_map_results``): the same one-line errors, then exit status 2."""

    def error(self, message: str):
        try:
            super().error(message)
        except UsageError as err:
            self.exit(2, f"{self.prog}: error: {one_line(err)}\n")


def one_line(text) -> str:
    """An error message on one line (a message may hold a newline, e.g. from a check)."""
    return " ".join(str(text).split())


def build_parser(description: str) -> argparse.ArgumentParser:
    """The whole command line: its commands and their arguments (``description``: the top level's help)."""
    prog = "mamlbook" if Path(sys.argv[0]).name == "mamlbook" else "python -m mamlbook"
    parser = _Parser(prog=prog, description=description, formatter_class=_RawFormatter)
    parser.add_argument("--version", action="version", version=f"mamlbook {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    # upper bounds: far above any real use, low enough to fail here rather than in torch
    iterations, count, seed = int_between(1, 10**8), int_between(1, 10**5), int_between(0, 2**63 - 1)
    steps, tasks = int_between(0, 10**4), int_between(2, 10**6)

    sub.add_parser("list", formatter_class=_Formatter, help="the shipped checkpoints' names",
                   description="The names `regenerate` and `evaluate` take: every checkpoint shipped in "
                               "mamlbook/pretrained/, with its task family and whether its file is there.")

    regen = sub.add_parser("regenerate", formatter_class=_Formatter, help="retrain a checkpoint shipped with the book",
                           description="Retrain a shipped checkpoint from its recipe and WRITE it to "
                                       "mamlbook/pretrained/NAME.pt in the package (overwriting the shipped file; "
                                       "--out DIR to write elsewhere, --no-save to only train and evaluate). "
                                       "Names: `python -m mamlbook list`.")
    regen.add_argument("name", metavar="NAME|all", help="a shipped checkpoint's name, or all of them")
    regen.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: $MAMLBOOK_DEVICE, else "
                                                      "cuda if available, else cpu)")
    regen.add_argument("--iterations", type=iterations, default=None,
                       help="override the recipe's number of iterations (a quick try: only with --no-save or "
                            "--out DIR, so that the shipped file keeps the recipe's own run)")
    regen.add_argument("--no-save", action="store_true", help="train and evaluate, but do not write the checkpoint")
    regen.add_argument("--out", default=None, metavar="DIR",
                       help="write DIR/NAME.pt (and an Omniglot run's DIR/NAME.curve.json) instead, leaving the "
                            "shipped file alone; a recipe that continues another starts from DIR/PARENT.pt when "
                            "that exists (so `all --out DIR` retrains each chain from its own parents)")
    regen.add_argument("--task-threads", type=count, default=1,
                       help="Omniglot: split each meta-batch over this many threads (faster on a CPU; equal up to "
                            "float rounding, so not bit for bit the shipped file)")
    regen.add_argument("--check", action="store_true",
                       help="retrain without saving and compare with the shipped file, bit for bit (exit 1 if "
                            "they differ)")

    d = TRAIN_DEFAULTS
    train = sub.add_parser("train", formatter_class=_Formatter,
                           help="meta-train the sinusoid network and save a checkpoint",
                           description="Meta-train the 1-40-40-1 sinusoid network. Defaults: the MAML paper's "
                                       "setup, or a recipe's settings with --recipe; any flag overrides them. Writes "
                                       "the checkpoint (--out) and a JSON summary (--results), overwriting them.")
    train.add_argument("--recipe", default=None, help="start from this sinusoid recipe's settings "
                                                      "(names: `python -m mamlbook list`)")
    train.add_argument("--method", choices=TRAIN_METHODS, default=None, metavar="METHOD",
                       help=f"{', '.join(TRAIN_METHODS)} (default: maml, or the recipe's)")
    for flag, typ, what in (("iterations", iterations, "meta-steps"), ("meta-batch-size", count, "tasks per meta-step"),
                            ("support-shots", count, "support points per task"),
                            ("query-shots", count, "query points per task"),
                            ("inner-lr", _positive_float, "inner SGD step size α"),
                            ("inner-steps", int_between(1, 10**4), "inner SGD steps"),
                            ("outer-lr", _positive_float, "outer learning rate β"),
                            ("seed", seed, "seed of the initialisation and the tasks")):
        train.add_argument(f"--{flag}", type=typ, default=None,
                           help=f"{what} (default: {d[flag.replace('-', '_')]}, or the recipe's)")
    train.add_argument("--optimizer", choices=["adam", "sgd"], default=None,
                       help=f"outer optimizer (default: {d['optimizer']}, or the recipe's)")
    train.add_argument("--option", type=_option, action="append", default=[], metavar="KEY=VALUE",
                       help="method option, repeatable: " + "; ".join(
                           f"{m}: {', '.join(o)}" for m, o in METHOD_OPTIONS.items() if o)
                       + ". VALUE is read as JSON (true, false, 2.0, [0, 1]), anything else as a string "
                         "(e.g. --option lam=2.0 --option first_order=true)")
    train.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: $MAMLBOOK_DEVICE, else "
                                                      "cuda if available, else cpu)")
    train.add_argument("--out", default=None, help="checkpoint path (default: checkpoints/METHOD.pt)")
    train.add_argument("--results", default=None, help="JSON summary (default: the checkpoint path with .json)")
    train.add_argument("--distributed", action="store_true",
                       help="shard each meta-batch over the processes started by torchrun (gloo on CPU, NCCL on GPU)")
    train.add_argument("--backend", choices=["gloo", "nccl"], default=None,
                       help="with --distributed (default: nccl with CUDA, else gloo)")
    train.add_argument("--compile", action="store_true",
                       help="compile the meta-step (mamlbook.performance.compile_method): faster after a first iteration "
                            "that compiles")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")

    ev = sub.add_parser("evaluate", formatter_class=_Formatter,
                        help="few-shot error of checkpoints after 0..N SGD steps",
                        description="Sinusoid checkpoints (a recipe's name or a .pt file saved by `train`): query "
                                    "MSE after 0..--max-steps SGD steps on new tasks. Omniglot checkpoints (omniglot_*): "
                                    "test accuracy with their recipe's own protocol (ways, shots, test-time steps "
                                    "and learner); only --tasks and --device apply to them. Prints a table; writes "
                                    "JSON only with --results.")
    ev.add_argument("targets", nargs="+", metavar="NAME|PATH",
                    help="shipped checkpoints' names (`python -m mamlbook list`) or .pt files")
    ev.add_argument("--tasks", type=tasks, default=600, help="number of test tasks")
    # the sinusoid protocol's flags: None when not given, so that an Omniglot-only call can refuse them
    for flag, typ, what in (("shots", count, "support points per task"),
                            ("query-shots", count, "query points per task"),
                            ("max-steps", steps, "SGD steps at test time"),
                            ("inner-lr", _positive_float, "test-time SGD step size"),
                            ("seed", seed, "seed of the test tasks")):
        default = EVALUATE_SINUSOID_DEFAULTS[flag.replace("-", "_")]
        ev.add_argument(f"--{flag}", type=typ, default=None, help=f"sinusoid checkpoints: {what} (default: {default})")
    ev.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: $MAMLBOOK_DEVICE, else "
                                                   "cuda if available, else cpu)")
    ev.add_argument("--results", default=None, metavar="PATH", help="also write the numbers as JSON to PATH")

    rep = sub.add_parser("reproduce", formatter_class=_Formatter,
                         help="the MAML paper's sinusoid table (Appendix C, Table 2), all methods",
                         description="Evaluate the shipped MAML, pretrained, first-order MAML, Reptile and iMAML "
                                     "checkpoints on 5-shot sinusoid tasks after 1, 5, 10 SGD steps, beside the "
                                     "paper's numbers. Prints the table; writes JSON only with --results (the book's "
                                     "copy: --results mamlbook/results/reproduction.json). A checkpoint missing "
                                     "from mamlbook/pretrained/ is trained from its recipe and written there.")
    rep.add_argument("--rows", nargs="+", default=None, metavar="ROW",
                     help="subset of the rows (default: all): 'MAML', 'MAML, α = 0.001 (official code)', "
                          "'pretrained', 'first-order MAML', 'Reptile', 'iMAML', 'iMAML, proximal learner'")
    rep.add_argument("--tasks", type=tasks, default=600, help="number of test tasks")
    rep.add_argument("--retrain", action="store_true",
                     help="retrain every checkpoint from its recipe first (about 15 minutes on one CPU thread) and score "
                          "the retrained networks; the shipped files are not changed")
    rep.add_argument("--no-train", action="store_true", help="fail instead of training a missing checkpoint")
    rep.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: $MAMLBOOK_DEVICE, else "
                                                    "cuda if available, else cpu)")
    rep.add_argument("--results", default=None, metavar="PATH", help="also write the numbers as JSON to PATH")
    return parser

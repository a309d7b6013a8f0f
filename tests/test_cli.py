"""The command line (`python -m mamlbook ...`) and the Table 2 reproduction, on tiny settings."""
import json

import pytest
import torch

import mamlbook as mb
from mamlbook import reproduce
from mamlbook.__main__ import main


def test_train_then_evaluate_write_checkpoint_and_results(tmp_path, capsys):
    ckpt = tmp_path / "tiny.pt"
    assert main(["train", "--method", "fomaml", "--iterations", "3", "--meta-batch-size", "4", "--inner-steps", "2",
                 "--out", str(ckpt), "--no-progress"]) == 0
    summary = json.loads(ckpt.with_suffix(".json").read_text())
    assert summary["settings"]["method"] == "fomaml" and summary["settings"]["inner_steps"] == 2
    assert len(summary["meta_loss_every_100"]) == 1 and summary["processes"] == 1
    params, metadata = mb.load_checkpoint(ckpt, mb.SinusoidMLP())
    assert json.loads(metadata["settings"])["iterations"] == 3

    out = tmp_path / "eval.json"
    assert main(["evaluate", str(ckpt), "--tasks", "8", "--max-steps", "2", "--results", str(out)]) == 0
    rows = json.loads(out.read_text())["targets"][str(ckpt)]
    assert len(rows) == 3 and all(set(r) == {"mean", "ci95", "median", "diverged", "num_tasks"} for r in rows)
    assert "k = 2" in capsys.readouterr().out


def test_train_options_and_recipe_settings(tmp_path):
    ckpt = tmp_path / "imaml.pt"
    main(["train", "--recipe", "sinusoid_imaml", "--iterations", "2", "--meta-batch-size", "3", "--option", "cg_steps=2",
          "--out", str(ckpt), "--no-progress"])
    settings = json.loads(ckpt.with_suffix(".json").read_text())["settings"]
    recipe = mb.recipes.RECIPES["sinusoid_imaml"]
    assert settings["method"] == "imaml"
    assert settings["method_options"] == {**recipe.training.method_options, "cg_steps": 2}
    assert settings["inner_steps"] == recipe.training.inner_steps and settings["iterations"] == 2


def test_train_compiled(tmp_path):
    ckpt = tmp_path / "compiled.pt"
    assert main(["train", "--compile", "--iterations", "3", "--meta-batch-size", "5", "--out", str(ckpt),
                 "--no-progress"]) == 0
    summary = json.loads(ckpt.with_suffix(".json").read_text())
    assert summary["compiled"] is True and summary["settings"]["method"] == "maml"
    assert main(["train", "--compile", "--distributed", "--iterations", "1"]) == 2  # a usage error, see below


def test_bad_arguments_are_refused():
    assert main(["train", "--option", "no-equals-sign"]) == 2
    with pytest.raises(ValueError, match="rows"):
        reproduce.reproduce(["not a method"], num_tasks=10, progress=False)


def test_reproduce_reports_the_paper_beside_ours(tmp_path):
    results = reproduce.reproduce(["pretrained"], num_tasks=40, train_missing=False, progress=False)
    cell = results["rows"]["pretrained"]["steps"]["1"]
    assert set(cell) == {"mean", "ci95", "median", "diverged", "num_tasks"} and cell["diverged"] == 0
    assert results["paper"]["pretrained"]["1"] == 2.41 and results["protocol"]["test_tasks"] == 40
    table = reproduce.format_table(results)
    assert "(2.41)" in table and "pretrained" in table
    reproduce.save(results, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["rows"]["pretrained"]["recipe"] == "sinusoid_pretrain"


def test_reproduce_retrain_scores_the_retrained_network_and_leaves_the_shipped_file(monkeypatch):
    shipped = mb.checkpoints.pretrained_path("sinusoid_pretrain")
    before = shipped.read_bytes()
    # a short retraining (the recipe's 70,000 iterations take minutes), never saved
    real = mb.recipes.regenerate
    calls = []

    def short(name, **kwargs):
        calls.append(kwargs)
        return real(name, **{**kwargs, "iterations": 30})

    monkeypatch.setattr(mb.recipes, "regenerate", short)
    retrained = reproduce.reproduce(["pretrained"], num_tasks=40, retrain=True, progress=False)
    assert calls == [{"device": mb.get_device(None), "progress": False, "save": False}]
    assert shipped.read_bytes() == before
    assert retrained["trained_now_seconds"]["sinusoid_pretrain"] > 0
    ours = retrained["rows"]["pretrained"]["steps"]["1"]["mean"]
    as_shipped = reproduce.reproduce(["pretrained"], num_tasks=40, train_missing=False, progress=False)
    assert ours != as_shipped["rows"]["pretrained"]["steps"]["1"]["mean"]  # 30 iterations, not the shipped 70,000


def test_reproduce_counts_diverged_tasks_instead_of_averaging_infinity(monkeypatch):
    curve = torch.tensor([[1.0, 0.5, 0.4], [1.0, float("inf"), float("nan")], [1.0, 0.7, 0.6]])
    monkeypatch.setattr(reproduce, "adaptation_curve", lambda *args, **kwargs: curve)
    result = reproduce.evaluate_recipe("sinusoid_pretrain", None, steps=(1, 2))
    assert result["learner"] == "sgd" and result["test_inner_lr"] == 0.01
    assert result["steps"][1]["diverged"] == 1 and result["steps"][1]["mean"] == pytest.approx(0.6)
    # the diverged task is left out of the median too (torch's median: the lower middle value)
    assert result["steps"][2]["median"] == pytest.approx(0.4) and result["steps"][2]["mean"] == pytest.approx(0.5)


def test_regenerate_no_save_trains_without_touching_the_shipped_checkpoint(capsys):
    from mamlbook import checkpoints
    shipped = checkpoints.PRETRAINED_DIR / "sinusoid_maml.pt"
    before = shipped.read_bytes()
    assert main(["regenerate", "sinusoid_maml", "--iterations", "3", "--no-save", "--device", "cpu"]) == 0
    assert "sinusoid_maml:" in capsys.readouterr().out
    assert shipped.read_bytes() == before


def test_regenerate_out_writes_elsewhere_and_leaves_the_shipped_files(capsys, monkeypatch, tmp_path):
    """--out DIR: the checkpoint (and an Omniglot run's curve) in DIR; a continued recipe
    starts from DIR's parent when DIR holds it, else from the shipped parent."""
    import dataclasses
    import hashlib
    from mamlbook import checkpoints, recipes
    from mamlbook.recipes.registry import RECIPES
    def files():  # every shipped file, those in subfolders too
        return {p.relative_to(checkpoints.PRETRAINED_DIR): p.read_bytes()
                for p in checkpoints.PRETRAINED_DIR.rglob("*") if p.is_file()}

    shipped = files()
    short = RECIPES["sinusoid_fomaml"]
    monkeypatch.setitem(RECIPES, "sinusoid_fomaml", dataclasses.replace(
        short, training=dataclasses.replace(short.training, iterations=3)))
    assert main(["regenerate", "sinusoid_fomaml", "--out", str(tmp_path / "new"), "--device", "cpu"]) == 0
    assert f"wrote {tmp_path / 'new' / 'sinusoid_fomaml.pt'}" in capsys.readouterr().out
    # a shortened run may go to another folder (it replaces nothing shipped)
    assert main(["regenerate", "sinusoid_maml", "--out", str(tmp_path / "short"), "--iterations", "2",
                 "--device", "cpu"]) == 0
    assert (tmp_path / "short" / "sinusoid_maml.pt").is_file()
    model, metadata = recipes.load("sinusoid_fomaml", device="cpu")  # the shipped file, unchanged
    _, written = mb.load_checkpoint(tmp_path / "new" / "sinusoid_fomaml.pt", mb.SinusoidMLP())
    assert json.loads(written["settings"])["iterations"] == 3 != json.loads(metadata["settings"])["iterations"]
    # an Omniglot continuation, tiny: from the shipped parent, then from a parent in the folder
    monkeypatch.setattr(mb.protocol, "CURVE_TASKS", 3)
    child = next(n for n, r in RECIPES.items() if r.family == "omniglot" and r.init_from)
    parent = RECIPES[child].init_from
    starts = []
    original = checkpoints.load_checkpoint
    monkeypatch.setattr(checkpoints, "load_checkpoint", lambda path, *a, **k: starts.append(Path(path)) or
                        original(path, *a, **k))
    out = tmp_path / "chain"
    meta = recipes.regenerate(child, device="cpu", progress=True, iterations=1, eval_tasks=3, out=out)
    assert starts[0] == checkpoints.pretrained_path(parent) and meta["init_file"] == "shipped"
    assert meta["init_sha256"] == hashlib.sha256(checkpoints.pretrained_path(parent).read_bytes()).hexdigest()
    assert f"{child}: starting from the shipped {checkpoints.pretrained_path(parent)}" in capsys.readouterr().out
    assert (out / f"{child}.pt").is_file() and (out / f"{child}.curve.json").is_file()
    (out / f"{parent}.pt").write_bytes(checkpoints.pretrained_path(parent).read_bytes())
    starts.clear()
    meta = recipes.regenerate(child, device="cpu", progress=False, iterations=1, eval_tasks=3, out=out)
    assert starts[0] == out / f"{parent}.pt" and meta["init_file"] == str(out / f"{parent}.pt")
    assert files() == shipped


def test_regenerate_check_says_which_cpus_when_the_bits_differ(capsys, monkeypatch, tmp_path):
    """A retrained file that differs names the CPU it was trained on and this one (the bits depend on it)."""
    import dataclasses
    from mamlbook import checkpoints, device, recipes
    from mamlbook.recipes.registry import RECIPES
    monkeypatch.setattr(checkpoints, "PRETRAINED_DIR", tmp_path)
    short = RECIPES["sinusoid_fomaml"]
    monkeypatch.setitem(RECIPES, "sinusoid_fomaml", dataclasses.replace(
        short, training=dataclasses.replace(short.training, iterations=4)))
    metadata = recipes.regenerate("sinusoid_fomaml", device="cpu", progress=False)
    assert metadata["cpu"] == device.cpu_name() != ""  # recorded with every trained checkpoint
    assert main(["regenerate", "sinusoid_fomaml", "--check", "--device", "cpu"]) == 0
    assert "bit for bit equal" in capsys.readouterr().out
    model, metadata = recipes.load("sinusoid_fomaml", device="cpu")
    with torch.no_grad():
        next(model.parameters())[0, 0] += 1e-3
    mb.save_checkpoint(tmp_path / "sinusoid_fomaml.pt", model, metadata={**metadata, "cpu": "Some Other CPU"})
    assert main(["regenerate", "sinusoid_fomaml", "--check", "--device", "cpu"]) == 1
    out = capsys.readouterr().out
    assert "DIFFERS" in out and "trained on Some Other CPU, this is " + device.cpu_name() in out


# ---------------------------------------------------------------- the command line as users meet it (issue 12)

import inspect
import io
import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

from mamlbook import cli, cli_parser

ROOT = Path(__file__).parents[1]


def _run(argv, capsys):
    """``main(argv)``: its exit status, stdout and the lines of stderr."""
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err.splitlines()


BAD = {  # argv -> what the one line must say
    "unknown method": (["train", "--method", "mamll"], ["argument --method", "did you mean 'maml'?", "reptile"]),
    "zero iterations": (["train", "--iterations", "0"], ["argument --iterations", "[1, 100_000_000]", "got 0"]),
    "huge iterations": (["train", "--iterations", "9" * 20], ["argument --iterations", "[1, 100_000_000]"]),
    # int() reads "5_0" as 50 and "３" as 3
    "digits with an underscore": (["train", "--iterations", "5_0"], ["argument --iterations", "got '5_0'"]),
    "digits grouped wrongly": (["train", "--iterations", "1_00"], ["argument --iterations", "got '1_00'"]),
    "full-width digit": (["evaluate", "sinusoid_maml", "--tasks", "３"], ["argument --tasks", "got '３'"]),
    "huge seed": (["train", "--seed", "9" * 23], ["argument --seed", "[0, 9_223_372_036_854_775_807]"]),
    "huge step size": (["train", "--outer-lr", "1e300"], ["argument --outer-lr", "(0, 100]", "1e300"]),
    "protonet cannot train a regressor": (["train", "--method", "protonet"], ["argument --method", "'protonet'",
                                                                            "maml"]),
    "output is a directory": (["train", "--iterations", "1", "--out", "."], ["argument --out", "got '.', a directory"]),
    # "new/" would have been written as a file "new"
    "output ends with a slash": (["train", "--iterations", "1", "--out", "new/"], ["argument --out", "a directory"]),
    "output ends with a dot": (["train", "--iterations", "1", "--out", "new/."], ["argument --out", "a directory"]),
    "no CUDA": (["train", "--device", "cuda", "--iterations", "1"], ["argument --device", "CUDA is not available",
                                                                     "--device cpu"]),
    "unknown option": (["train", "--method", "imaml", "--option", "lamda=2"],
                       ["argument --option", "'lamda'", "did you mean 'lam'?", "cg_steps"]),
    "option of no method": (["train", "--method", "fomaml", "--option", "lam=2"], ["--option", "fomaml takes no options"]),
    "option without =": (["train", "--option", "no-equals-sign"], ["argument --option", "KEY=VALUE"]),
    "nan step size": (["train", "--inner-lr", "nan"], ["argument --inner-lr", "(0, 100]"]),
    "pretrain steps": (["train", "--method", "pretrain", "--inner-steps", "3"], ["argument --inner-steps", "pretrain"]),
    "compile and distributed": (["train", "--compile", "--distributed"], ["--compile", "--distributed"]),
    "recipe typo": (["train", "--recipe", "sinusoid_mam"], ["argument --recipe", "did you mean 'sinusoid_maml'?",
                                                           "choose from", "'sinusoid_reptile'"]),
    # the suggestion was buried in 3.7 kB of a hundred names; `list` shows them
    "checkpoint typo": (["evaluate", "sinusoid_mam"], ["argument NAME|PATH", "did you mean 'sinusoid_maml'?",
                                                       "`python -m mamlbook list` shows every name"]),
    "an Omniglot recipe to train": (["train", "--recipe", "omniglot_maml_1shot"],
                                    ["argument --recipe", "sinusoid recipes only", "regenerate omniglot_maml_1shot"]),
    "more Omniglot test tasks than there are": (["evaluate", "omniglot_maml_1shot", "--tasks", "601"],
                                                ["argument --tasks", "[2, 600]"]),
    "regenerate typo": (["regenerate", "omniglot_mam_1shot"], ["argument NAME|all", "did you mean 'omniglot_maml_1shot'?"]),
    "threads for a sinusoid": (["regenerate", "sinusoid_maml", "--task-threads", "2", "--no-save"],
                               ["argument --task-threads", "must be 1 for recipe 'sinusoid_maml'"]),
    "too many threads": (["regenerate", "omniglot_maml_1shot", "--task-threads", "5", "--no-save"],
                         ["argument --task-threads", "[1, 4]", "got 5"]),
    "zero threads": (["regenerate", "omniglot_maml_1shot", "--task-threads", "0"], ["argument --task-threads", "[1, 100_000]"]),
    "shortened run would replace the shipped file": (["regenerate", "sinusoid_maml", "--iterations", "5"],
                                                     ["argument --iterations", "only with --no-save"]),
    "out and no-save": (["regenerate", "sinusoid_maml", "--out", "x", "--no-save"], ["argument --out", "--no-save"]),
    "out and check": (["regenerate", "sinusoid_maml", "--out", "x", "--check"], ["argument --check", "--out"]),
    "out under a file": (["regenerate", "sinusoid_maml", "--out", "/dev/null/x"], ["argument --out", "not a folder"]),
    "empty out": (["regenerate", "sinusoid_maml", "--out", ""], ["argument --out", "must be a folder path", "''"]),
    "out is the shipped folder": (["regenerate", "sinusoid_maml", "--out", str(ROOT / "mamlbook" / "pretrained"),
                                   "--iterations", "5"], ["argument --out", "the shipped checkpoints' folder"]),
    "evaluate typo": (["evaluate", "sinusoid_reptil"], ["argument NAME|PATH", "did you mean 'sinusoid_reptile'?"]),
    "evaluate missing file": (["evaluate", "nowhere/model.pt"], ["argument NAME|PATH", "no such file"]),
    "one test task": (["evaluate", "sinusoid_maml", "--tasks", "1"], ["argument --tasks", "[2, 1_000_000]"]),
    "huge task count": (["evaluate", "sinusoid_maml", "--tasks", "9" * 20], ["argument --tasks", "[2, 1_000_000]"]),
    "evaluate a directory": (["evaluate", "."], ["argument NAME|PATH", "is a directory"]),
    "sinusoid flag for Omniglot": (["evaluate", "omniglot_maml_1shot", "--shots", "3"],
                                   ["argument --shots", "sinusoid checkpoints only"]),
    "results is a directory": (["evaluate", "sinusoid_maml", "--results", "."], ["argument --results",
                                                                                 "got '.', a directory"]),
    "results ends with a slash": (["evaluate", "sinusoid_maml", "--results", "new/"], ["argument --results",
                                                                                       "got 'new/', a directory"]),
    "retrain and no-train": (["reproduce", "--retrain", "--no-train"], ["argument --no-train", "--retrain"]),
    "unknown device": (["evaluate", "sinusoid_maml", "--device", "nope"], ["argument --device", "'nope'",
                                                                           "cpu, cuda or cuda:N"]),
    "too many glyph tasks": (["evaluate", "omniglot_maml_1shot", "--tasks", "601"], ["argument --tasks", "600"]),
    "row typo": (["reproduce", "--rows", "MAMl"], ["argument --rows", "did you mean 'MAML'?"]),
    "command typo": (["evalute", "sinusoid_maml"], ["argument COMMAND", "did you mean 'evaluate'?"]),
    "no command": ([], ["COMMAND", "required"]),
    "option before a missing command": (["--verbose"], ["'--verbose'", "before the command"]),
    "unknown option with a command": (["--verbose", "list"], ["unrecognized arguments: --verbose"]),
    "empty output path": (["train", "--out", ""], ["mamlbook train: error: argument --out", "must name a file"]),
    "output under a file": (["train", "--iterations", "1", "--out", "/dev/null/a.pt"],
                            ["argument --out", "'/dev/null' is a file, not a folder"]),
    "results under a file": (["evaluate", "sinusoid_maml", "--results", "/dev/null/r.json"],
                             ["argument --results", "'/dev/null' is a file"]),
    "backend alone": (["train", "--backend", "gloo"], ["mamlbook train: error: argument --backend"]),
    "Python's spelling of true": (["train", "--option", "first_order=True"],
                                  ["argument --option", "JSON", "first_order=true"]),
    # the summary written over the checkpoint (the default summary path is the checkpoint's with .json)
    "checkpoint path ending in .json": (["train", "--iterations", "1", "--out", "run.json"],
                                        ["argument --out", "would both be 'run.json'"]),
    "summary path = checkpoint path": (["train", "--iterations", "1", "--out", "run.pt", "--results", "./run.pt"],
                                       ["argument --results", "the summary over the checkpoint"]),
    "an option given twice": (["train", "--option", "first_order=true", "--option", "first_order=false"],
                              ["argument --option", "'first_order' is given 2 times (True, False)"]),
    "a recipe's options for another method": (["train", "--recipe", "sinusoid_imaml", "--method", "maml"],
                                              ["argument --method", "maml does not take 'cg_damping', 'cg_steps', 'lam'"]),
    "a recipe without inner steps for a method with them": (["train", "--recipe", "sinusoid_pretrain", "--method", "maml"],
                                                            ["argument --method", "give maml its --inner-steps"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_argument_is_one_line_and_exit_status_2(case, capsys, monkeypatch, tmp_path):
    argv, says = BAD[case]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    status, out, err = _run(argv, capsys)
    assert status == 2 and out == "" and len(err) == 1, err
    assert err[0].startswith("python -m mamlbook") and ": error: " in err[0]
    for text in says:
        assert text in err[0]
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_evaluate_refuses_to_write_its_results_over_the_checkpoint(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    checkpoint = tmp_path / "mine.pt"
    checkpoint.write_bytes(mb.checkpoints.pretrained_path("sinusoid_maml").read_bytes())
    before = checkpoint.read_bytes()
    status, out, err = _run(["evaluate", "mine.pt", "--results", str(checkpoint), "--tasks", "4"], capsys)
    assert status == 2 and out == "" and len(err) == 1
    assert "argument --results" in err[0] and "is the checkpoint being evaluated" in err[0]
    assert checkpoint.read_bytes() == before


def test_errors_raised_by_the_package_are_one_line(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    # the package's own validation (imaml's lam): exit 2
    status, _, err = _run(["train", "--method", "imaml", "--option", "lam=-1", "--iterations", "1", "--no-progress"],
                          capsys)
    assert status == 2 and len(err) == 1 and "argument --option lam: lam must be a positive" in err[0]
    # with the progress bar on: the error alone, no bar left at 0% above it (splitlines splits at "\r")
    status, _, err = _run(["train", "--method", "imaml", "--option", "lam=-1", "--iterations", "1"], capsys)
    assert status == 2 and len(err) == 1 and "argument --option lam: lam must be a positive" in err[0], err
    # a file that is not a checkpoint: exit 2, without torch's advice to load it unsafely
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    status, _, err = _run(["evaluate", "junk.pt", "--tasks", "4"], capsys)
    assert status == 2 and len(err) == 1 and "junk.pt" in err[0] and "weights_only` set to `False" not in err[0]
    # an Omniglot checkpoint given as a path: named, and how to evaluate it
    omniglot = tmp_path / "omni.pt"
    omniglot.write_bytes(mb.checkpoints.pretrained_path("omniglot_maml_1shot").read_bytes())
    status, _, err = _run(["evaluate", "omni.pt", "--tasks", "4"], capsys)
    assert status == 2 and len(err) == 1
    assert "argument NAME|PATH: 'omni.pt' holds a ConvNet(" in err[0] and "by its name" in err[0]
    omniglot.unlink()
    # training that diverges: exit 1
    def diverge(*args, **kwargs):
        raise mb.DivergenceError("meta-loss is nan at iteration 3 of maml: training diverged. Try a smaller outer_lr")
    monkeypatch.setattr("mamlbook.train.meta_train", diverge)
    status, _, err = _run(["train", "--iterations", "5", "--no-progress"], capsys)
    assert status == 1 and len(err) == 1 and ": diverged: " in err[0] and "outer_lr" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.pt"]
    # MAMLBOOK_DEBUG=1: the traceback instead
    monkeypatch.setenv("MAMLBOOK_DEBUG", "1")
    with pytest.raises(mb.DivergenceError):
        main(["train", "--iterations", "5", "--no-progress"])


def _python(*args, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=120, check=False, **kwargs)


def test_version_help_and_the_real_command_line_without_torch():
    done = _python("-m", "mamlbook", "--version")
    assert done.returncode == 0 and done.stdout.strip() == f"mamlbook {mb.__version__}"
    # python -m mamlbook --help, and every command's --help: torch is never imported
    script = ("import sys\nfrom mamlbook.cli import main\n"
              "for argv in (['--help'], ['--version'], ['list', '--help'], ['regenerate', '--help'], "
              "['train', '--help'], ['evaluate', '--help'], ['reproduce', '--help'], ['train', '--method', 'mamll'], "
              "['train', '--iterations', '0']):\n"
              "    main(argv)\n"
              "print('TORCH', 'torch' in sys.modules, file=sys.stderr)\n")
    done = _python("-c", script)
    assert done.returncode == 0 and "TORCH False" in done.stderr
    timed = _python("-X", "importtime", "-m", "mamlbook", "--help")
    assert timed.returncode == 0 and "usage: python -m mamlbook" in timed.stdout
    imported = [line.rsplit("|", 1)[-1].strip() for line in timed.stderr.splitlines() if line.startswith("import time:")]
    assert "mamlbook.cli" in imported and not [m for m in imported if m.split(".")[0] in ("torch", "numpy")]
    # a bad argument from the real command line: one line on stderr, exit status 2, no traceback
    done = _python("-m", "mamlbook", "train", "--method", "mamll")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [("python -m mamlbook train: error: argument --method: invalid choice 'mamll'; "
                                         "did you mean 'maml'? (choose from maml, fomaml, reptile, imaml, pretrain, "
                                         "anil, meta_sgd, mamlpp)")]


def test_help_shows_defaults(capsys):
    assert main(["evaluate", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "number of test tasks (default: 600)" in text and "(default: 2017)" in text
    assert main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "meta-steps (default: 70000, or the recipe's)" in text and "(default: None)" not in text


def test_the_cli_tables_agree_with_the_package():
    """The names and defaults the CLI knows without importing torch are the package's."""
    from mamlbook import recipes, reproduce
    assert sorted(cli_parser.METHODS) == mb.method_names()
    # the interface every method shares (on_divergence: issue 17), not per-method options
    shared = {"model", "params", "tasks", "inner_lr", "inner_steps", "loss_fn", "on_divergence"}
    for name in cli_parser.METHODS:
        method = mb.get_method(name)
        own = [p for p in inspect.signature(method).parameters if p not in shared]
        fixed = {"first_order"} if name == "fomaml" else set()  # registered with first_order=True
        assert set(own) - fixed == set(cli_parser.METHOD_OPTIONS[name]), name
    # --help states TrainingSettings' defaults (iterations and inner_steps as the MAML recipe resolves them)
    made = mb.TrainingSettings(iterations=recipes.RECIPES["sinusoid_maml"].training.iterations).as_dict()
    defaults = {key: made[key] for key in cli_parser.TRAIN_DEFAULTS if key in made}
    defaults["seed"] = next(f.default for f in fields(recipes.Recipe) if f.name == "seed")
    assert defaults == cli_parser.TRAIN_DEFAULTS
    help_text = " ".join(cli._parser()._subparsers._group_actions[0].choices["reproduce"].format_help().split())
    assert all(repr(row) in help_text for row in reproduce.ROWS)
    assert cli.OMNIGLOT_EVAL_TASKS == mb.protocol.EVAL_TASKS


def test_evaluate_takes_every_name_regenerate_takes(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    names = cli.shipped_names()
    shipped = {p.stem for p in mb.checkpoints.PRETRAINED_DIR.glob("*.pt")}
    assert set(names) == set(mb.recipes.RECIPES)
    assert shipped <= set(names)
    for name, kind in names.items():
        assert cli.resolve_target(name) == (kind, name)
    assert main(["list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == list(names)
    present = [n for n in ("omniglot_maml_1shot", "sinusoid_maml_code", "sinusoid_maml") if n in shipped]
    if not present:
        pytest.skip("shipped checkpoints not generated yet (python -m mamlbook regenerate all)")
    assert main(["evaluate", *present, "--tasks", "6", "--max-steps", "2", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in present)
    if "omniglot_maml_1shot" in present:
        assert "5-way 1-shot" in out and "%" in out
    assert list(tmp_path.iterdir()) == []  # no --results: no file
    assert main(["evaluate", present[-1], "--tasks", "6", "--max-steps", "0", "--results", "e.json"]) == 0
    assert json.loads((tmp_path / "e.json").read_text())


def test_reproduce_writes_only_with_results(tmp_path, monkeypatch, capsys):
    tracked = ROOT / "mamlbook" / "results" / "reproduction.json"
    before = tracked.read_bytes()
    monkeypatch.chdir(ROOT)  # where the old default would have overwritten the tracked file
    if not (mb.checkpoints.PRETRAINED_DIR / "sinusoid_pretrain.pt").is_file():
        pytest.skip("shipped checkpoints not generated yet")
    assert main(["reproduce", "--rows", "pretrained", "--tasks", "8", "--no-train", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "pretrained" in out and "--results PATH" in out
    assert tracked.read_bytes() == before
    out_file = tmp_path / "r.json"
    assert main(["reproduce", "--rows", "pretrained", "--tasks", "8", "--no-train", "--results", str(out_file)]) == 0
    assert json.loads(out_file.read_text())["rows"]["pretrained"]["num_tasks"] == 8
    assert tracked.read_bytes() == before


def test_regenerate_the_reproduction_recipe_without_saving(capsys):
    shipped = mb.checkpoints.PRETRAINED_DIR / "sinusoid_maml_code.pt"
    before = shipped.read_bytes() if shipped.is_file() else None
    assert main(["regenerate", "sinusoid_maml_code", "--iterations", "2", "--no-save", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("sinusoid_maml_code:") and "wrote" not in out
    assert (shipped.read_bytes() if shipped.is_file() else None) == before


def test_the_readme_command_lines_parse_and_name_real_checkpoints():
    """Every `python -m mamlbook ...` line of the README is a valid command line (parsed, not run)."""
    import re
    import shlex
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    lines = [line.split("#")[0] for block in blocks for line in block.splitlines() if "-m mamlbook " in line]
    assert len(lines) >= 8
    names = cli.shipped_names()
    for line in lines:
        argv = shlex.split(line)[3:]  # after `.venv/bin/python -m mamlbook`
        if argv == ["--version"]:
            continue
        args = cli._parser().parse_args(argv)
        for name in [getattr(args, "name", None), *getattr(args, "targets", [])]:
            assert name is None or name == "all" or name in names or name.endswith(".pt"), line


@pytest.mark.parametrize("method, extra", [("meta_sgd", []), ("mamlpp", ["--option", "step_weights=[0.5, 0.5]"]),
                                           ("anil", ["--option", "first_order=true"])])
def test_train_the_wider_map_methods(tmp_path, method, extra):
    """Meta-SGD and MAML++ train their wrapper (network + step sizes); ANIL the network itself."""
    ckpt = tmp_path / f"{method}.pt"
    assert main(["train", "--method", method, "--iterations", "2", "--meta-batch-size", "3", "--inner-steps", "2",
                 "--out", str(ckpt), "--no-progress", *extra]) == 0
    wrapper = {"meta_sgd": lambda: mb.MetaSGDNet(mb.SinusoidMLP()), "mamlpp": lambda: mb.LSLRNet(mb.SinusoidMLP(), 2),
               "anil": mb.SinusoidMLP}[method]()
    params, _ = mb.load_checkpoint(ckpt, wrapper)
    assert any(k.startswith("step_size.") for k in params) == (method != "anil")
    assert main(["train", "--method", "protonet", "--iterations", "1"]) == 2  # sinusoids have no classes


def test_regenerate_check_says_whether_the_shipped_file_is_the_recipes(monkeypatch, tmp_path, capsys):
    """`regenerate NAME --check` retrains without writing: exit 0 when the file is the
    recipe's run bit for bit, 1 (naming the largest difference) when it is not."""
    import dataclasses

    from mamlbook import checkpoints, recipes

    monkeypatch.setattr(checkpoints, "PRETRAINED_DIR", tmp_path)
    shipped = recipes.RECIPES["sinusoid_fomaml"]
    tiny = dataclasses.replace(shipped, training=dataclasses.replace(shipped.training, iterations=3))
    monkeypatch.setitem(recipes.RECIPES, "sinusoid_fomaml", tiny)
    assert main(["regenerate", "sinusoid_fomaml", "--device", "cpu"]) == 0
    written = (tmp_path / "sinusoid_fomaml.pt").read_bytes()
    assert main(["regenerate", "sinusoid_fomaml", "--check", "--device", "cpu"]) == 0
    assert "bit for bit equal" in capsys.readouterr().out
    assert (tmp_path / "sinusoid_fomaml.pt").read_bytes() == written  # --check never writes
    model, metadata = recipes.load("sinusoid_fomaml", device="cpu")
    with torch.no_grad():
        next(model.parameters()).add_(1e-4)
    checkpoints.save_checkpoint(tmp_path / "sinusoid_fomaml.pt", model, metadata=metadata)
    assert main(["regenerate", "sinusoid_fomaml", "--check", "--device", "cpu"]) == 1
    assert "DIFFERS" in capsys.readouterr().out
    assert main(["regenerate", "sinusoid_fomaml", "--check", "--iterations", "2"]) == 2  # a usage error


def test_a_closed_pipe_is_one_quiet_failure_not_a_traceback(monkeypatch, capsys):
    """`python -m mamlbook list | head -1`: the reader closes the pipe after the first line."""
    class ClosedAfterOneLine:
        lines = 0

        def write(self, text):
            if self.lines:
                raise BrokenPipeError(32, "Broken pipe")
            self.lines += text.count("\n")
            return len(text)

        def flush(self):
            pass

        def fileno(self):  # as a captured stream: no file descriptor behind it
            raise io.UnsupportedOperation("fileno")

    monkeypatch.setattr(sys, "stdout", ClosedAfterOneLine())
    assert main(["list"]) == 1
    assert capsys.readouterr().err == ""


def test_an_output_folder_is_tried_before_the_work_and_left_as_it_was(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    # the default checkpoint path's folder cannot be made (a file has its name): refused before training
    (tmp_path / "checkpoints").write_text("a file, not a folder")
    ran = []
    monkeypatch.setattr("mamlbook.train.meta_train", lambda *a, **k: ran.append(1))
    status, _, err = _run(["train", "--iterations", "1", "--no-progress"], capsys)
    assert status == 2 and ran == [] and "argument --out" in err[0] and "is a file, not a folder" in err[0]
    # a folder the command would create: tried (created, written in, removed), then left absent
    tried = []
    real = cli.tempfile.TemporaryFile

    def record(*args, dir, **kwargs):
        tried.append(Path(dir).is_dir())
        return real(*args, dir=dir, **kwargs)
    monkeypatch.setattr(cli.tempfile, "TemporaryFile", record)
    cli._check_writable("--out", tmp_path / "new" / "deeper")
    assert tried == [True] and not (tmp_path / "new").exists()
    # under torchrun, ranks other than 0 write nothing and try nothing
    monkeypatch.setenv("RANK", "1")
    cli._check_output("--out", str(tmp_path / "other" / "a.pt"))
    assert tried == [True] and not (tmp_path / "other").exists()
    monkeypatch.delenv("RANK")

    # a folder refusing writes (root ignores permission bits, so the write itself is refused here)
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(cli.tempfile, "TemporaryFile", refuse)
    with pytest.raises(cli_parser.UsageError, match=r"argument --results: cannot write in .*Permission denied"):
        cli._check_writable("--results", tmp_path / "made" / "here")
    assert not (tmp_path / "made").exists()
    # regenerate: a folder that refuses the write is refused before any training (which
    # would overwrite the shipped file if the check let it through), with what to do
    def never(*args, **kwargs):
        raise AssertionError("regenerate trained although its folder refused the write")
    monkeypatch.setattr("mamlbook.recipes.regenerate", never)
    status, _, err = _run(["regenerate", "sinusoid_maml"], capsys)
    assert status == 2 and "argument NAME|all: cannot write in" in err[0] and "--no-save" in err[0]


def test_evaluate_says_that_a_task_that_diverged_is_left_out_of_every_column(capsys):
    # "[2 div.]" at k = 0, where nothing has been adapted yet, read like a bug without it
    assert main(["evaluate", "sinusoid_maml", "--tasks", "600", "--max-steps", "10"]) == 0
    out = capsys.readouterr().out.splitlines()
    row = next(line for line in out if line.startswith("sinusoid_maml"))
    assert row.count("[2 div.]") == 4  # k = 0, 1, 5, 10: the same two tasks left out of each
    assert any(line.startswith("[n div.]: tasks on which SGD diverged at some step up to k = 10")
               and "left out of every column, k = 0 too" in line for line in out)


@pytest.mark.parametrize("text, value", [("7", 7), ("+5", 5), (" 7 ", 7), ("05", 5), ("100_000", 100_000),
                                         ("1_000_000", 1_000_000)])
def test_integer_arguments_take_digits_as_written_and_as_the_bounds_are(text, value):
    from mamlbook.cli_parser import int_between

    assert int_between(0, 10**6)(text) == value


def test_the_other_commands_parser_says_an_error_in_one_line(capsys):
    from mamlbook.cli_parser import ScriptParser

    with pytest.raises(SystemExit) as exit_:
        ScriptParser(prog="python -m mamlbook.x").error("argument --y: a message\nover two lines")
    assert exit_.value.code == 2
    assert capsys.readouterr().err == "python -m mamlbook.x: error: argument --y: a message over two lines\n"

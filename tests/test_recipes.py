"""One registry of recipes (mamlbook.recipes): every shipped checkpoint records its recipe,
retraining is deterministic, `verify` tells a shipped file from a different one."""

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import mamlbook as mb
from mamlbook import recipes
from mamlbook.recipes.registry import RECIPES, regeneration_order

SHIPPED = [
    n for n in sorted(RECIPES) if (mb.checkpoints.PRETRAINED_DIR / f"{n}.pt").is_file()
]


def test_every_shipped_checkpoint_has_a_recipe_and_every_recipe_a_checkpoint():
    files = {p.stem for p in mb.checkpoints.PRETRAINED_DIR.glob("*.pt")}
    assert files == set(RECIPES)


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_checkpoint_was_trained_with_its_recipe(name):
    """The settings stored in the file (written when it was trained) are the recipe's now:
    a recipe edited after its checkpoint was shipped fails here."""
    _, metadata = recipes.load(name, device="cpu")
    stored = _in_todays_fields(json.loads(metadata["settings"]), metadata)
    current = json.loads(json.dumps(RECIPES[name].as_dict()))  # tuples as lists
    differing = {
        k: (stored[k], current.get(k, "<missing>"))
        for k in stored
        if current.get(k, "<missing>") != stored[k]
    }
    # fields added to the registry after a file was written must hold their defaults
    added = {k: current[k] for k in set(current) - set(stored)}
    assert not differing, differing
    assert added.get("lr_schedule", []) == [] and added.get("curve_tasks") is None
    assert set(added) <= {"family", "lr_schedule", "curve_tasks"}


def _in_todays_fields(stored: dict, metadata: dict) -> dict:
    """Settings written by the Omniglot runs before the registries were merged, renamed:
    ``shots`` is support and query shots; MAML++'s ``schedule`` sat in method_options; a
    run stopped early planned more ``iterations`` than it did (a run stopped at N is the
    recipe with ``iterations=N``: its learning-rate schedule depends on the iteration only)."""
    stored = dict(stored)
    if "shots" in stored:
        stored["support_shots"] = stored["query_shots"] = stored.pop("shots")
    options = dict(stored.get("method_options", {}))
    if "schedule" in options:
        stored["schedule"] = options.pop("schedule")
        stored["method_options"] = options
    if "iterations_done" in metadata:
        stored["iterations"] = metadata["iterations_done"]
        # a learning-rate change planned after the stop never happened
        stored["lr_schedule"] = [
            p for p in stored.get("lr_schedule", []) if p[0] < stored["iterations"]
        ]
    # the procedural-glyph option, removed with the glyphs (the data was real Omniglot)
    assert stored.pop("data", "omniglot") == "omniglot"
    stored.pop("glyph_seed", None)
    return stored


def test_regeneration_order_puts_each_recipe_after_the_one_it_starts_from(monkeypatch):
    order = regeneration_order()
    assert sorted(order) == sorted(RECIPES)
    for name in order:
        parent = RECIPES[name].init_from
        assert parent is None or order.index(parent) < order.index(name)
    a = dataclasses.replace(
        RECIPES["omniglot_maml_5shot"], init_from="omniglot_maml_5shot"
    )
    monkeypatch.setitem(RECIPES, "omniglot_maml_5shot", a)
    with pytest.raises(ValueError, match="cycle"):
        regeneration_order()


@pytest.mark.parametrize(
    "name", ["sinusoid_maml", "sinusoid_imaml", "sinusoid_ablation_g2"]
)
def test_regenerating_is_deterministic_and_is_meta_train_with_the_recipe(name):
    """Twice the same parameters; and the same as a plain meta_train call from the seed
    with the recipe's settings (the registry adds nothing hidden)."""
    first = recipes.regenerate(
        name, device="cpu", progress=False, iterations=3, save=False
    )["state"]
    second = recipes.regenerate(
        name, device="cpu", progress=False, iterations=3, save=False
    )["state"]
    assert all(torch.equal(first[k], second[k]) for k in first)
    r = RECIPES[name]
    generator = mb.seed_everything(r.seed)
    model = mb.SinusoidMLP()
    settings = dataclasses.replace(r.training, iterations=3)
    mb.meta_train(
        model, mb.SinusoidTasks(), settings, generator=generator, progress=False
    )
    assert all(torch.equal(first[k], v) for k, v in model.state_dict().items())


def test_a_trained_checkpoint_records_what_made_it(monkeypatch, tmp_path):
    """The package's version and the commit of its source, taken once before the run (its
    own writes do not make it "+modified"); no data checksum for the sinusoids."""
    monkeypatch.setattr(mb.checkpoints, "PRETRAINED_DIR", tmp_path)
    calls = []
    monkeypatch.setattr(recipes.runs, "source_commit", lambda: calls.append(1) or "abc+modified")
    recipes.regenerate("sinusoid_fomaml", device="cpu", progress=False, iterations=2)
    _, metadata = recipes.load("sinusoid_fomaml", device="cpu")
    assert metadata["mamlbook"] == mb.__version__ and metadata["commit"] == "abc+modified" and calls == [1]
    assert json.loads(metadata["data_sha256"]) == {}


def test_source_commit_names_the_commit_and_changes_to_the_code_only(tmp_path):
    """In a checkout: the commit, "+modified" when the package's code changed, not when
    its shipped checkpoints, results or data did (a run writes those); outside one: ""."""
    def git(*args):
        return subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True,
                              text=True).stdout.strip()

    package = tmp_path / "mamlbook"
    for f in ("code.py", "pretrained/a.pt", "results/r.json", "data/d.zip"):
        (package / f).parent.mkdir(parents=True, exist_ok=True)
        (package / f).write_text("0")
    (tmp_path / "README.md").write_text("0")
    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "c")
    sha = git("rev-parse", "HEAD")
    source_commit = recipes.runs.source_commit
    assert source_commit(package) == sha
    for f in ("pretrained/a.pt", "results/r.json", "data/d.zip"):
        (package / f).write_text("1")  # what a run writes
    (tmp_path / "README.md").write_text("1")  # not the package
    (package / "new.py").write_text("1")  # untracked
    assert source_commit(package) == sha
    (package / "code.py").write_text("1")
    assert source_commit(package) == sha + "+modified"
    outside = tmp_path / "elsewhere" / "mamlbook"  # a package in a folder of another repository
    outside.mkdir(parents=True)
    assert source_commit(outside) == ""
    assert source_commit(Path("/")) == ""  # no repository at all (the root is not one)


def test_source_commit_says_when_it_cannot_tell(monkeypatch, tmp_path):
    def missing(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(recipes.runs.subprocess, "run", missing)
    assert recipes.runs.source_commit(tmp_path) == "unknown: git not found"

    def refused(args, **kwargs):
        raise subprocess.CalledProcessError(128, args, stderr="fatal: detected dubious ownership in repository\n")

    monkeypatch.setattr(recipes.runs.subprocess, "run", refused)
    assert recipes.runs.source_commit(tmp_path) == "unknown: fatal: detected dubious ownership in repository"


def test_verify_tells_the_recipes_file_from_another(monkeypatch, tmp_path):
    monkeypatch.setattr(mb.checkpoints, "PRETRAINED_DIR", tmp_path)
    tiny = dataclasses.replace(
        RECIPES["sinusoid_fomaml"],
        training=dataclasses.replace(RECIPES["sinusoid_fomaml"].training, iterations=4),
    )
    monkeypatch.setitem(RECIPES, "sinusoid_fomaml", tiny)
    recipes.regenerate("sinusoid_fomaml", device="cpu", progress=False)
    assert recipes.verify("sinusoid_fomaml", progress=False) == (True, 0.0)
    model, metadata = recipes.load("sinusoid_fomaml", device="cpu")
    with torch.no_grad():
        next(model.parameters())[0, 0] += 1e-3
    mb.save_checkpoint(tmp_path / "sinusoid_fomaml.pt", model, metadata=metadata)
    same, diff = recipes.verify("sinusoid_fomaml", progress=False)
    assert not same and diff == pytest.approx(1e-3, rel=1e-3)


def test_the_training_settings_are_checked_once_where_they_are_declared():
    with pytest.raises(ValueError, match="inner_steps"):
        mb.TrainingSettings(iterations=1, method="pretrain", inner_steps=2)
    assert mb.TrainingSettings(iterations=1, method="protonet").inner_steps == 0
    assert mb.TrainingSettings(iterations=1).inner_steps == 1
    s = mb.TrainingSettings(
        iterations=10, outer_lr=1e-3, lr_schedule=((5, 0.5), (8, 0.1))
    )
    assert [s.outer_lr_at(i) for i in (0, 5, 8)] == [1e-3, 5e-4, pytest.approx(1e-4)]
    with pytest.raises(ValueError, match="method_options has 'lam'"):
        mb.TrainingSettings(iterations=1, method="maml", method_options={"lam": 1.0})


def test_an_annealed_phase_with_larger_meta_batches_sees_as_many_tasks():
    from mamlbook.recipes.registry import _annealed

    base = _annealed("maml", 1, init_from="omniglot_maml_1shot_long", seed=2)
    wide = _annealed(
        "maml", 1, init_from="omniglot_maml_1shot_long", seed=2, meta_batch_size=32
    )
    assert (base.training.meta_batch_size, wide.training.meta_batch_size) == (16, 32)
    assert base.training.iterations * 16 == wide.training.iterations * 32 == 48_000
    assert base.eval_every * 16 == wide.eval_every * 32  # curve points at equal tasks
    assert RECIPES["omniglot_maml_1shot_shift2_anneal_mb32"].training.iterations == 1_500
    three = RECIPES["omniglot_maml_1shot_shift2_anneal_3steps"]
    assert (three.training.inner_steps, three.test_steps) == (3, 3)
    assert RECIPES["omniglot_maml_5shot_shift2_anneal_3steps"].training.inner_steps == 3
    for bad in (48, 0, -16):
        with pytest.raises(ValueError, match=f"meta_batch_size must be .*8,000.*got {bad}"):
            _annealed("maml", 1, init_from="x", seed=0, meta_batch_size=bad)


def test_lineage_follows_init_from_back_to_the_first_run():
    assert recipes.lineage("omniglot_maml_1shot") == ["omniglot_maml_1shot"]
    assert recipes.lineage("omniglot_maml_5shot_anneal") == [
        "omniglot_maml_1shot", "omniglot_maml_1shot_long", "omniglot_maml_1shot_anneal",
        "omniglot_maml_5shot_anneal"]
    with pytest.raises(ValueError, match="name must be one of"):
        recipes.lineage("omniglot_nope")


def test_chain_curve_joins_the_runs_curves_on_one_axis_of_iterations():
    names = recipes.lineage("omniglot_maml_1shot_anneal")
    curves = [recipes.load_curve(n) for n in names]
    joined = recipes.chain_curve("omniglot_maml_1shot_anneal")
    assert joined["names"] == names
    done = [c["iterations_done"] for c in curves]
    assert joined["starts"] == [0, done[0], done[0] + done[1]]
    assert joined["iterations"][-1] == sum(done)
    # each continuation's own point at 0 (its parent's network) is left out once
    assert len(joined["iterations"]) == sum(len(c["curve"]) for c in curves) - 2
    assert joined["iterations"] == sorted(set(joined["iterations"]))
    last = curves[-1]["curve"]
    assert joined["accuracy"][-len(last) + 1:] == [row[2] for row in last[1:]]
    assert joined["accuracy"][:len(curves[0]["curve"])] == [row[2] for row in curves[0]["curve"]]
    assert joined["seconds"] == pytest.approx(sum(c["seconds"] for c in curves))
    with pytest.raises(ValueError, match="name must be a recipe whose chain keeps its ways and shots"):
        recipes.chain_curve("omniglot_maml_5shot_anneal")  # 5-shot, continuing 1-shot runs


def test_test_accuracy_is_the_stored_score_of_every_test_task():
    name = "omniglot_maml_1shot_anneal"
    acc = recipes.test_accuracy(name)
    assert acc.shape == (mb.protocol.EVAL_TASKS,)
    assert acc.tolist() == pytest.approx(recipes.load(name)[1]["test_accuracy"])
    with pytest.raises(ValueError, match="name must be an Omniglot recipe"):
        recipes.test_accuracy("sinusoid_maml")


def test_reproducible_cpu_holds_one_thread_and_caps_onednn_and_mkl_then_restores(monkeypatch):
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("MKL_CBWR", raising=False)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)  # a machine with more cores
    seen = []
    monkeypatch.setattr(torch, "set_num_threads", seen.append)
    with mb.device.reproducible_cpu(torch.device("cpu")):
        assert seen == [1]
        assert os.environ["ONEDNN_MAX_CPU_ISA"] == "AVX2"
        assert os.environ["MKL_CBWR"] == "AVX2"
    assert seen == [1, 3]
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE")
    with pytest.raises(ValueError, match="ONEDNN_MAX_CPU_ISA must be unset or AVX2"):
        with mb.device.reproducible_cpu(torch.device("cpu")):
            pass
    assert seen == [1, 3]  # refused before touching the threads
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    monkeypatch.setenv("MKL_CBWR", "AUTO")
    with pytest.raises(ValueError, match="MKL_CBWR must be unset or AVX2"):
        with mb.device.reproducible_cpu(torch.device("cpu")):
            pass
    assert seen == [1, 3]


def test_regenerating_from_the_command_line_retraces_a_shipped_run():
    """In a fresh process with none of OMP_NUM_THREADS, ONEDNN_MAX_CPU_ISA and MKL_CBWR
    set (two threads and AVX-512 kernels where the machine has them), the first 250 iterations of
    the 1,000-iteration MAML recipe reach exactly the held-out accuracy its shipped curve
    recorded there: `regenerate` itself sets what the shipped runs were trained under."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR")}
    env.update(MAMLBOOK_DEVICE="cpu", PYTHONPATH=str(mb.checkpoints.PRETRAINED_DIR.parents[1]))
    run = subprocess.run([sys.executable, "-m", "mamlbook", "regenerate", "omniglot_maml_1shot_1k",
                          "--iterations", "250", "--no-save"], capture_output=True, text=True, env=env,
                         timeout=600, check=True)
    got = re.search(r"iteration 250, \d+ s, held-out accuracy ([\d.]+)%", run.stdout)
    stored = {row[0]: row[2] for row in recipes.load_curve("omniglot_maml_1shot_1k")["curve"]}
    assert got is not None, run.stdout
    assert float(got.group(1)) == pytest.approx(100 * stored[250], abs=1e-9)

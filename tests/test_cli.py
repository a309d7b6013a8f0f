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
    assert len(rows) == 3 and all(set(r) == {"mean", "ci95"} for r in rows)
    assert "k = 2" in capsys.readouterr().out


def test_train_options_and_recipe_settings(tmp_path):
    ckpt = tmp_path / "imaml.pt"
    main(["train", "--recipe", "sinusoid_imaml", "--iterations", "2", "--meta-batch-size", "3", "--option", "cg_steps=2",
          "--out", str(ckpt), "--no-progress"])
    settings = json.loads(ckpt.with_suffix(".json").read_text())["settings"]
    recipe = mb.recipes.RECIPES["sinusoid_imaml"]
    assert settings["method"] == "imaml" and settings["method_options"] == {**recipe.method_options, "cg_steps": 2}
    assert settings["inner_steps"] == recipe.inner_steps and settings["iterations"] == 2


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
    assert set(cell) == {"mean", "ci95", "median", "diverged"} and cell["diverged"] == 0
    assert results["paper"]["pretrained"]["1"] == 2.41 and results["protocol"]["test_tasks"] == 40
    table = reproduce.format_table(results)
    assert "(2.41)" in table and "pretrained" in table
    reproduce.save(results, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["rows"]["pretrained"]["recipe"] == "sinusoid_pretrain"


def test_reproduce_counts_diverged_tasks_instead_of_averaging_infinity(monkeypatch):
    curve = torch.tensor([[1.0, 0.5, 0.4], [1.0, float("inf"), float("nan")], [1.0, 0.7, 0.6]])
    monkeypatch.setattr(reproduce, "adaptation_curve", lambda *args, **kwargs: curve)
    result = reproduce.evaluate_recipe("sinusoid_pretrain", None, steps=(1, 2))
    assert result["learner"] == "sgd" and result["test_inner_lr"] == 0.01
    assert result["steps"][1]["diverged"] == 1 and result["steps"][1]["mean"] == pytest.approx(0.6)
    assert result["steps"][2]["median"] == pytest.approx(0.6)


def test_regenerate_no_save_trains_without_touching_the_shipped_checkpoint(capsys):
    from mamlbook import checkpoints
    shipped = checkpoints.PRETRAINED_DIR / "sinusoid_maml.pt"
    before = shipped.read_bytes()
    assert main(["regenerate", "sinusoid_maml", "--iterations", "3", "--no-save", "--device", "cpu"]) == 0
    assert "sinusoid_maml:" in capsys.readouterr().out
    assert shipped.read_bytes() == before

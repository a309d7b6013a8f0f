"""mamlbook.transfer_baseline: the training set, eq. (10.7) against a per-task loop, the shipped network."""
import dataclasses
import json

import numpy
import pytest
import torch

import mamlbook as mb
from mamlbook import transfer_baseline
from mamlbook.tasks.omniglot_shipped import minimal_split


def test_training_set_is_every_training_drawing_turned_four_ways():
    x, y = transfer_baseline.training_set()
    characters = minimal_split()[0].images
    assert x.shape == (4 * 136 * 20, 1, 28, 28) and y.shape == (4 * 136 * 20,)
    assert torch.equal(torch.bincount(y), torch.full((544,), 20))
    # class r·136 + c: character c turned by r quarter turns (checked with numpy's rot90 on two classes)
    for r, c in [(0, 5), (3, 100)]:
        expected = torch.from_numpy(numpy.rot90(characters[c].numpy(), r, axes=(1, 2)).copy())
        assert torch.equal(x[y == r * 136 + c].squeeze(1), expected.float() / 255)


def test_cosine_logits_match_a_per_task_loop():
    """Eq. (10.7) by hand: per task, normalised features, class means of them, cosine to the normalised means."""
    torch.manual_seed(0)
    model = mb.ConvNet(7, filters=8)
    tasks = mb.protocol.held_out_tasks(2, num_tasks=3, ways=4, query_shots=3)
    logits = transfer_baseline.cosine_logits(model, tasks)
    assert logits.shape == (3, 12, 4)
    body = torch.nn.Sequential(*model.features)
    for t in range(3):
        with torch.no_grad():
            support = torch.nn.functional.normalize(body(tasks.x_support[t]).flatten(1), dim=1)
            query = torch.nn.functional.normalize(body(tasks.x_query[t]).flatten(1), dim=1)
        for n in range(4):
            mean = support[tasks.y_support[t] == n].mean(0)
            expected = query @ (mean / mean.norm())
            assert torch.allclose(logits[t, :, n], expected, atol=1e-6)
    # accuracy: the argmax against the labels, whatever the chunk
    accuracy = transfer_baseline.accuracy(model, tasks, chunk=2)
    assert torch.equal(accuracy, (logits.argmax(-1) == tasks.y_query).float().mean(1))


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="epochs"):
        transfer_baseline.TransferRecipe(epochs=0)
    with pytest.raises(TypeError, match="recipe must be a TransferRecipe"):
        transfer_baseline.train({"epochs": 1})
    with pytest.raises(ValueError, match="chunk"):
        transfer_baseline.accuracy(mb.ConvNet(5, filters=4), mb.protocol.held_out_tasks(1, num_tasks=2), chunk=0)


def test_a_task_without_every_class_in_its_support_set_is_refused():
    tasks = mb.protocol.held_out_tasks(1, num_tasks=2, ways=3)
    tasks.y_support[0, 0] = 1  # task 0 has no support image of class 0: no class mean
    with pytest.raises(ValueError, match="task 0 has no image of class 0"):
        transfer_baseline.cosine_logits(mb.ConvNet(5, filters=4), tasks)


@pytest.mark.parametrize("argv, says", [(["--out", "/no/such/folder"], "argument --out: must be an existing folder"),
                                        (["--epochs", "3"], "unrecognized arguments: --epochs 3")])
def test_the_command_line_refuses_bad_arguments(argv, says, capsys):
    with pytest.raises(SystemExit) as exit_:  # before any training
        transfer_baseline.main(argv)
    err = capsys.readouterr().err.splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and says in err[0], err


def test_the_shipped_network_and_its_scores():
    from mamlbook import omniglot_results

    model, meta = transfer_baseline.load()
    assert meta["recipe"] == dataclasses.asdict(transfer_baseline.RECIPE)
    assert len(meta["loss"]) == transfer_baseline.RECIPE.epochs
    # what made it, as a recipe's checkpoint records it (the commit: a sha, not a modified tree)
    from mamlbook.recipes.runs import run_provenance

    provenance = run_provenance("omniglot")
    assert {k: meta[k] for k in provenance if k != "commit"} == {k: v for k, v in provenance.items() if k != "commit"}
    assert len(meta["commit"]) == 40 and "+modified" not in meta["commit"]
    results = json.loads(transfer_baseline.RESULTS_PATH.read_text())
    assert set(results["settings"]) == set(transfer_baseline.MAML_ROW_FOR)
    table = json.loads(omniglot_results.RESULTS_PATH.read_text())
    assert results["num_tasks"] == table["num_tasks"]  # chapter 10 shows chapter 08's pixel NN beside it
    for setting, stored in results["settings"].items():
        # the MAML side is chapter 08's headline network, scored as its table scored it
        assert stored["maml"] == transfer_baseline.maml_for(setting)
        row = {k: v for k, v in table["rows"][stored["maml"]][setting].items() if k != "seconds"}
        assert stored["maml_summary"] == row
        # the summaries are of the stored per-task counts
        queries = omniglot_results.setting_tasks(setting, results["num_tasks"]).y_query.shape[1]
        ours, theirs = (torch.tensor(stored[k], dtype=torch.float64) / queries
                        for k in ("transfer_correct", "maml_correct"))
        assert omniglot_results.summary(ours) == stored["transfer"]
        assert omniglot_results.paired(ours, theirs) == stored["paired"]
    # a sample re-scored: the first 20 5-way 1-shot tasks get as many images right as stored
    tasks = omniglot_results.setting_tasks("5w1s", results["num_tasks"]).split(results["num_tasks"] // 20)[0]
    live = omniglot_results.correct_per_task(transfer_baseline.accuracy(model, tasks), tasks)
    assert live == results["settings"]["5w1s"]["transfer_correct"][:tasks.num_tasks]


def test_packaged_with_the_wheel():
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(transfer_baseline.__file__).parents[1] / "pyproject.toml").read_text())
    data = pyproject["tool"]["setuptools"]["package-data"]["mamlbook"]
    assert "pretrained/transfer/*.pt" in data and "results/*.json" in data
    assert transfer_baseline.CHECKPOINT.relative_to(Path(transfer_baseline.__file__).parent).match("pretrained/transfer/*.pt")


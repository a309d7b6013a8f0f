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


def test_the_shipped_network_and_its_scores():
    model, meta = transfer_baseline.load()
    assert meta["recipe"] == dataclasses.asdict(transfer_baseline.RECIPE)
    assert len(meta["loss"]) == transfer_baseline.RECIPE.epochs
    results = json.loads(transfer_baseline.RESULTS_PATH.read_text())
    assert set(results["settings"]) == set(transfer_baseline.MAML_FOR)
    # a sample re-scored: the first 20 5-way 1-shot tasks give the stored per-task accuracies
    from mamlbook import omniglot_results

    tasks = omniglot_results.setting_tasks("5w1s", results["num_tasks"]).split(results["num_tasks"] // 20)[0]
    stored = results["settings"]["5w1s"]["transfer_per_task"][:tasks.num_tasks]
    assert [round(100 * float(a), 4) for a in transfer_baseline.accuracy(model, tasks)] == stored
    for setting in results["settings"].values():  # the paired summary is of the stored per-task lists
        difference = torch.tensor(setting["transfer_per_task"]) - torch.tensor(setting["maml_per_task"])
        assert abs(float(difference.mean()) - setting["paired"]["mean"]) < 0.006

"""Chapter 08's shipped results table against what it claims to be."""
import torch

import mamlbook as mb
from mamlbook import omniglot_results


def test_every_row_is_a_shipped_recipe_scored_on_every_setting():
    table = mb.results.load("omniglot_results")
    for row, values in table["rows"].items():
        assert row == "pixel_nn" or (mb.checkpoints.PRETRAINED_DIR / f"{row}.pt").is_file(), row
        assert set(values) == {"5w1s", "5w5s", "20w1s", "lake20"}, row
        assert all(v["tasks"] == (20 if s == "lake20" else table["num_tasks"]) for s, v in values.items())
    assert set(table["paired_vs_nn"]) == set(table["rows"]) - {"pixel_nn"}


def test_the_pixel_baseline_row_is_recomputed_on_the_same_tasks():
    table = mb.results.load("omniglot_results")
    for setting in ("5w1s", "20w1s", "lake20"):
        tasks = omniglot_results.setting_tasks(setting, table["num_tasks"])
        fresh = omniglot_results.summary(omniglot_results.pixel_nearest_neighbour(tasks))
        assert fresh == table["rows"]["pixel_nn"][setting], setting


def test_widened_head_starts_every_class_equal():
    torch.manual_seed(0)
    net = mb.ConvNet(ways=5, filters=8)
    params = {k: v.detach() for k, v in net.named_parameters()}
    wide, wide_params = omniglot_results.widen_head(net, params, 20)
    x = torch.rand(2, 20, 1, 28, 28)
    logits = mb.task_forward(wide, mb.batch_parameters(wide_params, 2), x)
    assert logits.shape == (2, 20, 20)
    assert torch.allclose(logits, logits[..., :1].expand_as(logits), atol=1e-5)

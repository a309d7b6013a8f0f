"""Chapter 10's shipped results: the new checkpoints reproduce their stored scores; CKA; the plots."""
import matplotlib
import pytest
import torch

import mamlbook as mb
from mamlbook import wider_map_results as wmr

NEW = ["omniglot_anil_1shot", "omniglot_protonet_1shot", "omniglot_meta_sgd_1shot", "omniglot_mamlpp_1shot"]


@pytest.mark.parametrize("name", NEW)
def test_a_shipped_checkpoint_reproduces_its_stored_test_accuracy(name):
    """The first 20 of the 600 test tasks, scored again with the recipe's own test-time learner."""
    model, meta = mb.recipes.load(name, device="cpu")  # (checksum verified on load)
    assert meta["iterations_done"] == mb.recipes.RECIPES[name].training.iterations
    stored = torch.tensor(meta["test_accuracy"][:20], dtype=torch.float64)
    recipe = mb.recipes.RECIPES[name]
    tasks = mb.protocol.held_out_tasks(recipe.shots, ways=recipe.ways).split(30)[0]  # the first 20 of the 600
    again = mb.protocol.adapted_accuracy(model, dict(model.named_parameters()), tasks,
                                         method=recipe.training.method, inner_lr=recipe.training.inner_lr,
                                         steps=recipe.test_steps).double()
    assert torch.allclose(again, stored, atol=1e-5, rtol=0)
    assert mb.recipes.load_curve(name)["curve"][-1][0] == mb.recipes.RECIPES[name].training.iterations


@pytest.mark.parametrize("name, kind", [("omniglot_meta_sgd_1shot", mb.MetaSGDNet),
                                        ("omniglot_mamlpp_1shot", mb.LSLRNet)])
def test_the_wrapped_recipes_keep_their_step_sizes(name, kind):
    model, _ = mb.recipes.load(name, device="cpu")
    assert isinstance(model, kind)
    sizes = torch.cat([s.detach().flatten() for s in model.step_size.values()])
    assert not torch.all(sizes == 1.0)  # meta-training moved them from their initial value


def test_linear_cka_is_one_for_the_same_features_up_to_rotation_and_scale():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3, 20, 6, generator=g, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))
    assert torch.allclose(wmr.linear_cka(a, 3.0 * a @ q + 1.0), torch.ones(3, dtype=torch.float64))
    b = torch.randn(3, 20, 6, generator=g, dtype=torch.float64)
    assert bool((wmr.linear_cka(a, b) < 0.9).all())


def test_the_chapter_plots_draw():
    matplotlib.use("Agg")
    fig, axes = mb.plotting.figure(ncols=2)
    mb.plotting.plot_taxonomy(axes[0, 0])
    mb.plotting.plot_accuracy_curves(axes[0, 1], {"maml": [[0, 0, 0.2], [10, 1, 0.5]], "anil": [[0, 0, 0.3]]},
                                     up_to=5)
    assert len(axes[0, 1].lines) == 2 and len(axes[0, 1].lines[0].get_xdata()) == 1
    assert "optimisation-based" in [t.get_text() for t in axes[0, 0].texts]

"""Chapter 10's shipped results: the new checkpoints reproduce their stored scores; CKA; the plots."""
import json

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


def test_linear_cka_is_the_hsic_ratio_of_the_example_gram_matrices():
    """Linear CKA (Kornblith et al. 2019, eq. 4): HSIC(K, L)/√(HSIC(K, K) HSIC(L, L)) with
    K = AAᵀ, L = BBᵀ the examples' Gram matrices and HSIC(K, L) = tr(KHLH), H = I − 11ᵀ/n
    the centring matrix: the feature-space form the package computes, against this one."""
    g = torch.Generator().manual_seed(1)
    a = torch.randn(4, 25, 7, generator=g, dtype=torch.float64)
    b = torch.randn(4, 25, 5, generator=g, dtype=torch.float64) + 0.5 * a[..., :5]  # related, not equal
    n = a.shape[1]
    centring = torch.eye(n, dtype=torch.float64) - torch.ones(n, n, dtype=torch.float64) / n
    for t in range(a.shape[0]):
        k, l = a[t] @ a[t].T, b[t] @ b[t].T
        hsic = lambda x, y: torch.trace(x @ centring @ y @ centring)  # noqa: E731
        expected = hsic(k, l) / torch.sqrt(hsic(k, k) * hsic(l, l))
        assert torch.allclose(wmr.linear_cka(a, b)[t], expected, rtol=1e-12, atol=0)
    assert 0.2 < float(wmr.linear_cka(a, b).min()) and float(wmr.linear_cka(a, b).max()) < 0.95


def test_the_chapter_plots_draw():
    matplotlib.use("Agg")
    fig, axes = mb.plotting.figure(ncols=2)
    mb.plotting.plot_taxonomy(axes[0, 0])
    mb.plotting.plot_accuracy_curves(axes[0, 1], {"maml": [[0, 0, 0.2], [10, 1, 0.5]], "anil": [[0, 0, 0.3]]},
                                     up_to=5)
    assert len(axes[0, 1].lines) == 2 and len(axes[0, 1].lines[0].get_xdata()) == 1
    assert "optimisation-based" in [t.get_text() for t in axes[0, 0].texts]


def test_only_recomputes_the_named_parts_and_keeps_the_others(tmp_path, monkeypatch):
    """``--only accuracy`` rewrites the accuracy part and keeps the costs (and what they were
    measured under) and the feature-reuse table of the file it updates."""
    out = tmp_path / "wider_map.json"
    shipped = json.loads(wmr.RESULTS_PATH.read_text())
    old = dict(shipped, accuracy={"stale": {}}, loadavg=[9.0, 9.0, 9.0])
    out.write_text(json.dumps(old))
    monkeypatch.setattr(wmr, "COMPARED", ["omniglot_anil_1shot"])
    assert wmr.main(["--only", "accuracy", "--out", str(out)]) == 0
    new = json.loads(out.read_text())
    assert list(new["accuracy"]) == ["omniglot_anil_1shot"]
    assert new["accuracy"]["omniglot_anil_1shot"] == json.loads(json.dumps(wmr.checkpoint_accuracy("omniglot_anil_1shot")))
    for key in ("costs", "cost_steps", "repeats", "threads", "loadavg", "feature_reuse", "reuse_tasks"):
        assert new[key] == old[key], key
    assert new["command"] == f"{old['command']}; python -m mamlbook.wider_map_results --only accuracy --out {out}"


def test_only_needs_a_file_to_keep_and_a_known_part(tmp_path, capsys):
    with pytest.raises(SystemExit):
        wmr.main(["--only", "accuracy", "--out", str(tmp_path / "missing.json")])
    assert "argument --only" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        wmr.main(["--only", "speed", "--out", str(tmp_path / "missing.json")])
    assert "invalid choice 'speed'" in capsys.readouterr().err
    for argv, says in ((["--repeats", "0"], "argument --repeats: must be an integer in [1, 1_000], got 0"),
                       (["--tasks", "-3"], "argument --tasks: must be an integer in [2, 1_000_000], got -3")):
        with pytest.raises(SystemExit) as exit_:  # both were taken as they came
            wmr.main([*argv, "--out", str(tmp_path / "r.json")])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and says in err and err.count("\n") == 1, err
    with pytest.raises(ValueError, match="parts must be one of"):
        wmr.compute(parts=("speed",))
    # refused before the feature-reuse part runs (minutes), not when the costs are timed
    for bad in ({"repeats": 0}, {"reuse_tasks": 1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            wmr.compute(**bad, parts=("feature_reuse", "costs"))

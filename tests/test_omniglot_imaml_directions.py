"""Where iMAML's meta-gradient points (mamlbook.omniglot_imaml_directions) and the shipped files of it."""
import pytest

import mamlbook as mb
from mamlbook.omniglot_imaml_directions import imaml_directions


def test_imaml_directions_compares_five_directions_at_the_same_adapted_parameters():
    result = imaml_directions(num_tasks=2, meta_batch_size=1, exact_cg_steps=2, long_inner_steps=17)
    d = result["directions"]
    assert list(d) == ["trained", "solved", "undamped", "first_order", "long_inner"]
    # the first three adapt with the recipe's 16 inner steps: the same query loss and proximal gradient
    for k in ("solved", "undamped", "first_order"):
        assert d[k]["query_loss"] == d["trained"]["query_loss"] and d[k]["prox_grad_norm"] == d["trained"]["prox_grad_norm"]
    assert d["long_inner"]["prox_grad_norm"] != d["trained"]["prox_grad_norm"]
    assert d["first_order"]["cg_relative_residual_max"] == 0 and d["first_order"]["cg_min_curvature"] is None
    assert result["settings"]["trained"] == {"inner_steps": 16, "cg_steps": 5, "cg_damping": 1.0}
    assert result["settings"]["solved"] == {"inner_steps": 16, "cg_steps": 2, "cg_damping": 1.0}
    for a in result["agreement"].values():
        assert -1 <= a["cosine"] <= 1 and a["norm_ratio"] > 0
    assert result["support_grad_norm"] > d["trained"]["prox_grad_norm"]  # the inner descent went downhill
    assert result["threads"] == 1
    for name in ("omniglot_maml_1shot", "omniglot_imaml_1shot_16steps_first_order"):
        with pytest.raises(ValueError, match="name must be an iMAML recipe that solves its system"):
            imaml_directions(name, num_tasks=1, meta_batch_size=1)
    with pytest.raises(ValueError, match="num_tasks must be a multiple of meta_batch_size"):
        imaml_directions(num_tasks=3, meta_batch_size=2)


@pytest.mark.parametrize("file", ["omniglot_imaml_directions", "omniglot_imaml_directions_lam05",
                                  "omniglot_imaml_directions_lam05_anneal"])
def test_shipped_imaml_directions_match_their_claims(file):
    result = mb.results.load(file)
    assert result["command"].startswith("python -m mamlbook.omniglot_results --imaml-directions")
    if file == "omniglot_imaml_directions":  # the default output path
        assert "--out" not in result["command"]
    else:
        assert result["command"].endswith(f"--out mamlbook/results/{file}.json")
    assert (mb.checkpoints.PRETRAINED_DIR / f"{result['recipe']}.pt").is_file()
    recipe = mb.recipes.RECIPES[result["recipe"]]
    assert result["settings"]["trained"]["inner_steps"] == recipe.training.inner_steps
    assert result["num_tasks"] % result["meta_batch_size"] == 0
    assert set(result["agreement"]) == {"solved vs trained", "undamped vs trained", "first_order vs trained",
                                        "long_inner vs trained", "first_order vs solved"}
    assert result["directions"]["solved"]["cg_relative_residual_max"] < 0.05  # the accurate solve is one
    assert result["directions"]["solved"]["cg_min_curvature"] > 0  # of a positive definite system
    if "lam05" in file:  # chapter 08: at λ = 0.5 CG meets no negative curvature even undamped
        assert recipe.training.method_options["lam"] == 0.5
        assert result["directions"]["undamped"]["cg_min_curvature"] > 0

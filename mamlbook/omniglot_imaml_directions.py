"""Where iMAML's meta-gradient points on real Omniglot: chapter 08's account of iMAML's
gap to MAML (``python -m mamlbook.omniglot_results --imaml-directions`` writes
``mamlbook/results/omniglot_imaml_directions.json`` with `imaml_directions`).

The trained implicit gradient is set beside the same system solved accurately, the
undamped system, the first-order direction (no solve) and the implicit gradient at a
better-solved inner problem, all on the same tasks.
"""
from __future__ import annotations

import time

import torch

from . import checks, protocol, recipes
from .algorithms import get_method
from .device import reproducible_cpu
from .functional import (
    batch_parameters,
    cross_entropy_per_task,
    detached,
    flatten_params,
    parameters_of,
    task_losses,
)
from .measure import gradient_agreement


def imaml_directions(name: str = "omniglot_imaml_1shot_16steps_longer", num_tasks: int = 128,
                     meta_batch_size: int = 16, exact_cg_steps: int = 20, long_inner_steps: int = 300,
                     seed: int = 7) -> dict:
    """Where iMAML's meta-gradient points: recipe ``name``'s network on ``num_tasks`` 5-way
    1-shot tasks of the *training* characters (meta-batches of ``meta_batch_size`` drawn
    from ``seed``: chapter 08's first-order MAML comparison uses seed 7 and 8 × 16), on
    the CPU with one thread (`mamlbook.device.reproducible_cpu`), five directions, each
    the mean over the same tasks of `mamlbook.algorithms.imaml` with

    * ``trained``: the recipe's settings (its inner steps, CG steps and damping);
    * ``solved``: the same, the (damped) system solved by ``exact_cg_steps`` CG steps;
    * ``undamped``: the same inner steps, the undamped system ``(I + ∇²L_support/λ) v =
      ∇L_query`` by ``exact_cg_steps`` CG steps (its ``cg_min_curvature`` ``≤ 0`` says
      the system is indefinite for some task, and CG's answer is not its solution);
    * ``first_order``: the same inner steps, no solve (``first_order=True``): the mean
      query gradient at the adapted parameters;
    * ``long_inner``: ``long_inner_steps`` inner steps, then as ``solved``: the implicit
      gradient at a better-solved inner problem.

    Returns ``{"directions": {k: {"query_loss", "prox_grad_norm", "cg_relative_residual_max",
    "cg_min_curvature", "norm"}}, "agreement": {"k vs trained": {"cosine", "norm_ratio"},
    "first_order vs solved": ...}, "support_grad_norm", "seconds", "threads", ...}``:
    ``query_loss`` (after the inner steps) and ``prox_grad_norm`` (0 at the exact
    minimiser) are means over tasks, ``cg_relative_residual_max`` the largest over tasks
    (0 without a solve), ``cg_min_curvature`` the smallest (``None`` without a solve),
    ``norm`` the length of the mean direction; ``support_grad_norm`` is the mean proximal
    gradient norm at ``θ``, where the inner descent starts (``∇L_support(θ)``).
    """
    for arg, value in (("num_tasks", num_tasks), ("meta_batch_size", meta_batch_size),
                       ("exact_cg_steps", exact_cg_steps), ("long_inner_steps", long_inner_steps)):
        checks.positive_int(arg, value)
    if num_tasks % meta_batch_size:
        raise ValueError(f"num_tasks must be a multiple of meta_batch_size ({meta_batch_size}), got {num_tasks}")
    recipe = recipes.RECIPES[name]
    if recipe.training.method != "imaml" or recipe.training.method_options.get("first_order"):
        raise ValueError(f"name must be an iMAML recipe that solves its system (not first_order), got {name!r}")
    model, _ = recipes.load(name, device="cpu")
    theta = detached(parameters_of(model))
    training, options = recipe.training, dict(recipe.training.method_options)
    common = {"inner_lr": training.inner_lr, "lam": options.pop("lam"), "loss_fn": cross_entropy_per_task}
    settings = {
        "trained": dict(inner_steps=training.inner_steps, **options),
        "solved": dict(inner_steps=training.inner_steps, **{**options, "cg_steps": exact_cg_steps}),
        "undamped": dict(inner_steps=training.inner_steps, **{**options, "cg_steps": exact_cg_steps,
                                                               "cg_damping": 0.0}),
        "first_order": dict(inner_steps=training.inner_steps, first_order=True,
                            **{k: v for k, v in options.items() if k not in ("cg_steps", "cg_damping")}),
        "long_inner": dict(inner_steps=long_inner_steps, **{**options, "cg_steps": exact_cg_steps}),
    }
    family = protocol.omniglot_tasks("train", 5, rotations=True)
    generator = torch.Generator().manual_seed(seed)
    batches = num_tasks // meta_batch_size
    sums: dict = {k: 0.0 for k in settings}
    stats: dict = {k: {"query_loss": [], "prox_grad_norm": [], "cg_relative_residual": [], "cg_min_curvature": []}
                   for k in settings}
    support_norms = []
    imaml = get_method("imaml")
    with reproducible_cpu(torch.device("cpu")):  # one thread, kernels capped: the shipped numbers
        threads = torch.get_num_threads()
        start = time.perf_counter()
        for _ in range(batches):
            tasks = family.sample(meta_batch_size, 1, 1, generator=generator)
            at_theta = detached(batch_parameters(theta, meta_batch_size), requires_grad=True)
            losses = task_losses(model, at_theta, tasks.x_support, tasks.y_support, cross_entropy_per_task)
            grads = torch.autograd.grad(losses.sum(), list(at_theta.values()))
            support_norms.append(flatten_params(dict(zip(at_theta, grads)), batch_dims=1).norm(dim=1))
            for k, extra in settings.items():
                step = imaml(model, theta, tasks, **common, **extra)
                sums[k] = sums[k] + flatten_params(step.grads) / batches
                stats[k]["query_loss"].append(step.query_loss)
                for d in ("prox_grad_norm", "cg_relative_residual", "cg_min_curvature"):
                    stats[k][d].append(step.diagnostics[d])
            print(f"imaml directions: {len(support_norms) * meta_batch_size} tasks, "
                  f"{time.perf_counter() - start:.0f} s", flush=True)
    directions = {}
    for k, st in stats.items():
        cat = {d: torch.cat(v).double() for d, v in st.items()}
        directions[k] = {"query_loss": round(float(cat["query_loss"].mean()), 4),
                         "prox_grad_norm": round(float(cat["prox_grad_norm"].mean()), 4),
                         "cg_relative_residual_max": round(float(cat["cg_relative_residual"].max()), 5),
                         # no CG system without a solve (first_order): inf, stored as null
                         "cg_min_curvature": (None if settings[k].get("first_order")
                                              else round(float(cat["cg_min_curvature"].min()), 4)),
                         "norm": round(float(sums[k].norm()), 5)}
    agreement = {}
    for k, reference in [*((k, "trained") for k in settings if k != "trained"), ("first_order", "solved")]:
        a = gradient_agreement(sums[reference], sums[k])
        agreement[f"{k} vs {reference}"] = {"cosine": round(a.cosine, 4), "norm_ratio": round(a.norm_ratio, 4)}
    return {"recipe": name, "num_tasks": num_tasks, "meta_batch_size": meta_batch_size, "seed": seed,
            "exact_cg_steps": exact_cg_steps, "long_inner_steps": long_inner_steps,
            "settings": settings,
            "support_grad_norm": round(float(torch.cat(support_norms).mean()), 4),
            "directions": directions, "agreement": agreement,
            "seconds": round(time.perf_counter() - start, 1), "threads": threads,
            "created": time.strftime("%Y-%m-%d %H:%M")}

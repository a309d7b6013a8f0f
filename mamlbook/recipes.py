"""The book's shipped checkpoints: how each was trained, and the code that retrains it.

``python -m mamlbook regenerate NAME`` (or ``all``) runs `regenerate`; chapters load
the results with `load_recipe`. Every recipe is fully determined by its seed.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field

import torch

from . import checkpoints
from .device import get_device, seed_everything
from .models import SinusoidMLP
from .tasks import SinusoidTasks
from .train import meta_train


@dataclass(frozen=True)
class Recipe:
    """Settings of one meta-training run on the sinusoid family (MAML paper §5.1 defaults)."""

    method: str
    iterations: int = 70_000
    meta_batch_size: int = 25
    support_shots: int = 10
    query_shots: int = 10
    inner_lr: float = 0.01
    inner_steps: int = 1
    outer_lr: float = 1e-3
    optimizer: str = "adam"
    method_options: dict = field(default_factory=dict)
    seed: int = 0


RECIPES: dict[str, Recipe] = {
    # Finn et al. 2017, §5.1 and their code's defaults.
    "sinusoid_maml": Recipe("maml"),
    "sinusoid_pretrain": Recipe("pretrain", inner_steps=0),
    "sinusoid_fomaml": Recipe("fomaml"),
    # Reptile needs several inner steps to differ from joint training (Nichol et al. 2018, §5).
    "sinusoid_reptile": Recipe("reptile", inner_steps=5),
    # iMAML (Rajeswaran et al. 2019) with 5 CG steps as in the paper. The paper's λ = 2 does
    # not work here: sinusoid support Hessians have eigenvalues down to about −19 at
    # initialisation, so I + H/λ is indefinite and CG fails. λ = 5 with cg_damping = 5
    # (CG solves (6I + H/5) v = g) keeps the system positive definite, and inner_lr = 0.005
    # keeps the proximal gradient descent stable. Fewer iterations: each costs ~10 MAML steps.
    "sinusoid_imaml": Recipe("imaml", iterations=15_000, inner_steps=16, inner_lr=0.005,
                             method_options={"lam": 5.0, "cg_steps": 5, "cg_damping": 5.0}),
    # Nichol et al. 2018, §6.2: which inner gradients make the meta-gradient. Two inner
    # steps, step i on the i-th half (5 points) of the support set; the direction keeps
    # g1 only (joint training), g2 only (first-order MAML, second half as query set) or
    # g1 + g2 (Reptile on two minibatches). The fourth is the book's Reptile with k = 2
    # (both steps on all 10 points). Same budget for all four, shorter than the others.
    "sinusoid_ablation_g1": Recipe("reptile", iterations=20_000, inner_steps=2, method_options={
        "inner_data": "minibatches", "gradient_weights": (1.0, 0.0)}),
    "sinusoid_ablation_g2": Recipe("reptile", iterations=20_000, inner_steps=2, method_options={
        "inner_data": "minibatches", "gradient_weights": (0.0, 1.0)}),
    "sinusoid_ablation_g1g2": Recipe("reptile", iterations=20_000, inner_steps=2, method_options={
        "inner_data": "minibatches", "gradient_weights": (1.0, 1.0)}),
    "sinusoid_ablation_reptile": Recipe("reptile", iterations=20_000, inner_steps=2),
    # g2 and g1 + g2 again from another seed: how much of their difference is the run.
    "sinusoid_ablation_g2_seed1": Recipe("reptile", iterations=20_000, inner_steps=2, seed=1, method_options={
        "inner_data": "minibatches", "gradient_weights": (0.0, 1.0)}),
    "sinusoid_ablation_g1g2_seed1": Recipe("reptile", iterations=20_000, inner_steps=2, seed=1, method_options={
        "inner_data": "minibatches", "gradient_weights": (1.0, 1.0)}),
}


def regenerate(name: str, device=None, progress: bool = True, iterations: int | None = None,
               save: bool = True) -> dict:
    """Train recipe ``name`` and (if ``save``) write ``mamlbook/pretrained/NAME.pt``; return its metadata."""
    if name not in RECIPES:
        raise ValueError(f"name must be one of {sorted(RECIPES)}, got {name!r}")
    recipe = RECIPES[name]
    settings = asdict(recipe)
    if iterations is not None:
        settings["iterations"] = iterations
    device = get_device(device)
    generator = seed_everything(recipe.seed)
    model = SinusoidMLP().to(device)
    options = {k: v for k, v in settings.items() if k not in ("seed",)}
    history = meta_train(model, SinusoidTasks(), generator=generator, device=device, progress=progress, **options)
    metadata = {"recipe": name, "settings": json.dumps(settings), "seconds": history.seconds,
                "device": str(device), "torch": str(torch.__version__), "created": time.strftime("%Y-%m-%d"),
                "final_meta_loss_mean_last_1000": sum(history.meta_loss[-1000:]) / len(history.meta_loss[-1000:]),
                "meta_loss_every_100": history.meta_loss[::100]}
    if save:
        checkpoints.save_checkpoint(checkpoints.PRETRAINED_DIR / f"{name}.pt", model, metadata=metadata)
    return metadata


def load_recipe(name: str, device=None) -> tuple[SinusoidMLP, dict]:
    """The shipped model for recipe ``name`` on ``device`` and its metadata."""
    model = SinusoidMLP().to(get_device(device))
    _, metadata = checkpoints.load_checkpoint(checkpoints.pretrained_path(name), model)
    return model, metadata

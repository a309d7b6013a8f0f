"""The book's shipped checkpoints: one registry of recipes, one way to retrain and load them.

::

    python -m mamlbook regenerate NAME      # or: all
    python -m mamlbook regenerate NAME --check  # equal to the shipped file?
    model, metadata = mb.recipes.load("sinusoid_maml")

`RECIPES` (`mamlbook.recipes.registry`) says how each checkpoint was trained: a
`Recipe` is the `mamlbook.train.TrainingSettings` plus the task family, the seed and,
for Omniglot, the network and the test protocol. `regenerate` (`mamlbook.recipes.runs`)
retrains an entry from its seed, bit for bit on CPU; `load` reads the shipped file.
"""

from .registry import RECIPES, Recipe, regeneration_order
from .runs import (build_model, chain_curve, evaluate, export_curve, finalize, lineage, load, load_curve, recipe,
                   regenerate, test_accuracy, verify)

__all__ = ["RECIPES", "Recipe", "regeneration_order", "recipe", "build_model", "load", "load_curve", "lineage", "chain_curve", "regenerate",
           "verify", "evaluate", "export_curve", "finalize", "test_accuracy"]

"""mamlbook: gradient-based meta-learning (MAML, FOMAML, Reptile, iMAML) for the book.

The public API, flat::

    from mamlbook import SinusoidTasks, SinusoidMLP, get_method, meta_train, adaptation_curve
"""
from .algorithms import MetaStep, get_method, method_names
from .checks import DivergenceError
from .checkpoints import load_checkpoint, pretrained_path, save_checkpoint
from .device import describe_device, get_device, seed_everything
from .evaluate import adaptation_curve, adapted_predictions, mean_and_ci95, proximal_adaptation_curve
from .functional import (adapt, batch_parameters, cross_entropy_per_task, detached, mse_per_task, parameters_of,
                         task_forward, task_losses)
from .models import SinusoidMLP, TaskLinear
from . import diagnostics, exercises, hessian, notebook, plotting, recipes
from .tasks import SinusoidTasks, TaskBatch
from .train import History, meta_train

__version__ = "0.1.0"
__all__ = [name for name in dir() if not name.startswith("_")]

# Reptile, iMAML, Hessian tools (issue 3)
from .algorithms import imaml, maml, reptile
from .functional import flatten_params, unflatten_params
from .hessian import (conjugate_gradient, full_hessian, gauss_newton_split, hessian_vector_product,
                      inner_loop_jacobian, inner_step_jacobian, loss_function, maml_gradient_by_matrices)

__all__ += ["imaml", "maml", "reptile", "flatten_params", "unflatten_params", "conjugate_gradient", "full_hessian",
            "gauss_newton_split", "hessian_vector_product", "inner_loop_jacobian", "inner_step_jacobian",
            "loss_function", "maml_gradient_by_matrices"]

# Few-shot classification (issue 6)
from .convnet import ConvNet, accuracy_per_task
from .tasks import ClassificationTasks, load_glyphs, load_omniglot

# (mamlbook.classification_recipes is imported on demand: it is also run with `python -m`.)
__all__ += ["ConvNet", "accuracy_per_task", "ClassificationTasks", "load_glyphs", "load_omniglot"]

# The compiled meta-step (issue 7)
from . import compiled
from .compiled import compile_method

__all__ += ["compiled", "compile_method"]

"""mamlbook: gradient-based meta-learning (MAML, FOMAML, Reptile, iMAML) for the book.

The public API, flat::

    from mamlbook import SinusoidTasks, SinusoidMLP, get_method, meta_train, adaptation_curve

Every name below is imported on first use (PEP 562), so that ``import mamlbook`` costs
nothing until it is used and ``python -m mamlbook --help`` never imports torch; ``mb.X``
and ``from mamlbook import X`` work as with eager imports.
"""
import importlib

__version__ = "0.1.0"  # the one source of the version (pyproject.toml reads it; `python -m mamlbook --version`)

# The public surface, grouped by the module that defines each name (one home per concept).
_EXPORTS = {
    # the methods and their interface; the networks with learned step sizes (chapter 10)
    "algorithms": ["MetaStep", "get_method", "method_names", "register", "MetaSGDNet", "LSLRNet", "MAMLPlusPlusSchedule"],
    # parameters as dicts, batched over tasks; the inner loops (eq. 2.2, iMAML's eq. 6.1)
    "functional": ["adapt", "proximal_adapt", "batch_parameters", "cross_entropy_per_task", "detached",
                   "mse_per_task", "parameters_of", "task_forward", "task_losses", "flatten_params",
                   "unflatten_params"],
    # models and tasks
    "models": ["SinusoidMLP", "TaskLinear", "ConvNet", "accuracy_per_task"],
    "tasks": ["SinusoidTasks", "TaskBatch", "ClassificationTasks", "load_image_folder", "load_omniglot",
              "minimal_split", "load_runs"],
    # meta-training and its settings
    "train": ["History", "TrainingSettings", "meta_train"],
    # evaluation: adaptation curves, and the book's protocol (test tasks, divergence rule, summary)
    "evaluate": ["adaptation_curve", "adapted_predictions", "proximal_adaptation_curve"],
    "protocol": ["mean_and_ci95", "sinusoid_test_tasks", "summarize"],
    # curvature (Hessians, Jacobians of the inner loop) and the linear solver iMAML uses
    "hessian": ["full_hessian", "gauss_newton_split", "hessian_vector_product", "inner_loop_jacobian",
                "inner_step_jacobian", "loss_function", "maml_gradient_by_matrices"],
    "solvers": ["conjugate_gradient"],
    # checkpoints, devices, errors
    "checkpoints": ["add_checksum", "load_checkpoint", "pretrained_path", "save_checkpoint"],
    "device": ["describe_device", "get_device", "seed_everything"],
    "checks": ["CheckpointError", "DivergenceError"],
}
_ORIGIN = {name: module for module, names in _EXPORTS.items() for name in names}
# submodules reached as attributes (``mb.recipes.load``, ``mb.protocol.diverged``)
_SUBMODULES = ["algorithms", "checkpoints", "checks", "cli", "demos", "device", "evaluate", "exercises",
               "functional", "hessian", "measure", "models", "notebook", "omniglot_imaml_directions",
               "omniglot_results", "performance", "plotting", "protocol", "recipes", "reproduce", "results",
               "solvers", "tasks", "taylor", "train", "transfer_baseline", "wider_map_results"]

__all__ = sorted(set(_ORIGIN) | set(_SUBMODULES))


def __getattr__(name: str):
    if name.startswith("_"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name in _ORIGIN:
        value = getattr(importlib.import_module(f".{_ORIGIN[name]}", __name__), name)
    else:
        try:
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))

"""mamlbook: gradient-based meta-learning (MAML, FOMAML, Reptile, iMAML) for the book.

The public API, flat::

    from mamlbook import SinusoidTasks, SinusoidMLP, get_method, meta_train, adaptation_curve

Every name below is imported on first use (PEP 562), so that ``import mamlbook`` costs
nothing until it is used and ``python -m mamlbook --help`` never imports torch; ``mb.X``
and ``from mamlbook import X`` work as with eager imports.
"""
import importlib

__version__ = "0.1.0"  # the one source of the version (pyproject.toml reads it; `python -m mamlbook --version`)

# submodule -> the public names it defines
_EXPORTS = {
    "algorithms": ["MetaStep", "get_method", "method_names", "imaml", "maml", "reptile",
                   # the wider map (issue 16)
                   "anil", "meta_sgd", "MetaSGDNet", "mamlpp", "LSLRNet", "MAMLPlusPlusSchedule", "protonet"],
    "checks": ["CheckpointError", "DivergenceError"],
    "checkpoints": ["add_checksum", "load_checkpoint", "pretrained_path", "save_checkpoint"],
    "device": ["describe_device", "get_device", "seed_everything"],
    "evaluate": ["adaptation_curve", "adapted_predictions", "mean_and_ci95", "proximal_adaptation_curve"],
    "functional": ["adapt", "batch_parameters", "cross_entropy_per_task", "detached", "mse_per_task", "parameters_of",
                   "task_forward", "task_losses", "flatten_params", "unflatten_params"],
    "models": ["SinusoidMLP", "TaskLinear"],
    "tasks": ["SinusoidTasks", "TaskBatch", "ClassificationTasks", "load_omniglot", "minimal_split", "load_runs"],
    "train": ["History", "meta_train"],
    # Reptile, iMAML, Hessian tools (issue 3)
    "hessian": ["full_hessian", "gauss_newton_split", "hessian_vector_product",
                "inner_loop_jacobian", "inner_step_jacobian", "loss_function", "maml_gradient_by_matrices"],
    "solvers": ["conjugate_gradient"],
    # Few-shot classification (issue 6); mamlbook.classification_recipes is imported on demand
    "convnet": ["ConvNet", "accuracy_per_task"],
    # The compiled meta-step (issue 7)
    "compiled": ["compile_method"],
}
_ORIGIN = {name: module for module, names in _EXPORTS.items() for name in names}
_SUBMODULES = ["algorithms", "checkpoints", "checks", "compiled", "device", "evaluate", "exercises", "functional",
               "hessian", "measure", "models", "notebook", "plotting", "recipes", "results", "solvers", "taylor",
               "tasks", "train"]

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

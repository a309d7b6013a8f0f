"""Argument validation: the one place errors are worded, so they all read the same.

Every check names the argument and the allowed range, and raises; nothing here clamps
a value or warns and carries on.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path
from typing import Any

import torch


def positive_float(name: str, value: Any, dtype: torch.dtype | None = None) -> float:
    """``value`` as a float in (0, inf); else ValueError/TypeError naming ``name``. With ``dtype`` (of the tensors
    ``value`` multiplies, a step size times float32 gradients), also at most its largest value: torch would
    otherwise fail inside an operation with "cannot be converted to type float without overflow"."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a positive number (0, inf), got {type(value).__name__} {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number (0, inf), got {value!r}")
    if dtype is not None and dtype.is_floating_point and value > (largest := torch.finfo(dtype).max):
        raise ValueError(f"{name} must be a positive number at most {largest:.4g}, the largest "
                         f"{str(dtype).removeprefix('torch.')} (the dtype it multiplies), got {value!r}")
    return float(value)


def nonnegative_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number in [0, inf), got {type(value).__name__} {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number in [0, inf), got {value!r}")
    return float(value)


def int_in_range(name: str, value: Any, low: int, high: int | None = None) -> int:
    """``value`` as an int in [low, high] (high=None: no upper bound)."""
    bounds = f"[{low}, {high if high is not None else 'inf'}]"
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int in {bounds}, got {type(value).__name__} {value!r}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be in {bounds}, got {value}")
    return value


def positive_int(name: str, value: Any) -> int:
    return int_in_range(name, value, 1)


def file_path(name: str, value: Any) -> Path:
    """``value`` as a Path if it names a file to write: not empty, not a directory, not
    ending in "/", "." or ".." (pathlib drops those: "x/" is "x", a file x would be written)."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a file path (str or os.PathLike), got {type(value).__name__} {value!r}")
    text = os.fspath(value)
    if not text.strip() or Path(text).is_dir() or os.path.basename(text) in ("", ".", ".."):
        raise ValueError(f"{name} must name a file, got {text!r}" + (", a directory" if text.strip() else ""))
    return Path(text)


def image_size(name: str, value: Any) -> tuple[int, int]:
    """``(height, width)`` from one side (square images) or a ``(height, width)`` pair."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be one side or (height, width), got {tuple(value)}")
        return positive_int(name, value[0]), positive_int(name, value[1])
    side = positive_int(name, value)
    return side, side


def float_in_range(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{name} must be a number in [{low}, {high}], got {type(value).__name__} {value!r}"
        )
    if not (low <= value <= high):
        raise ValueError(f"{name} must be in [{low}, {high}], got {value!r}")
    return float(value)


def one_of(name: str, value: Any, allowed) -> Any:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {sorted(allowed)}, got {value!r}")
    return value


def tensor(name: str, value: Any, ndim: int | None = None, finite: bool = True) -> torch.Tensor:
    """A tensor with ``ndim`` dimensions and (by default) only finite values."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(value.shape)}")
    # (Skipped while torch.compile traces: a data-dependent check cannot be compiled;
    # mamlbook.performance.compiled validates its inputs before they enter the graph.)
    if (
        finite
        and value.is_floating_point()
        and value.device.type != "meta"
        and not torch.compiler.is_compiling()
        and not bool(torch.isfinite(value).all())
    ):
        raise ValueError(f"{name} contains NaN or inf values")
    return value


def same_device_dtype(names_tensors: dict[str, torch.Tensor], reference_name: str) -> None:
    """Every tensor lives on the reference tensor's device and has its float dtype."""
    ref = names_tensors[reference_name]
    for name, t in names_tensors.items():
        if t.device != ref.device:
            raise ValueError(
                f"{name} is on {t.device} but {reference_name} is on {ref.device}; move them to one device"
            )
        if t.is_floating_point() and ref.is_floating_point() and t.dtype != ref.dtype:
            raise TypeError(
                f"{name} has dtype {t.dtype} but {reference_name} has {ref.dtype}; use one dtype"
            )


class DivergenceError(RuntimeError):
    """A meta-step, adaptation or training produced NaN/inf; the message says what to change.

    ``diagnosis`` (when set) is what became non-finite, without the advice.
    """

    diagnosis: str | None = None


# ----------------------------------------------------------------------------- flags, callables, errors


def flag(name: str, value: Any) -> bool:
    """``value`` if it is a bool (``True``/``False``); anything else (``'no'``, ``1``, ``None``) is a TypeError."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return value


def callable_(name: str, value: Any) -> Any:
    if not callable(value):
        raise TypeError(f"{name} must be a function, got {type(value).__name__} {value!r}")
    return value


def module(name: str, value: Any) -> torch.nn.Module:
    """``value``, a model that is a function of its parameters alone (every method adapts and meta-trains all of
    them, batched per task with `torch.func`; checkpoints hold parameters only): frozen parameters, which would be
    trained anyway, and persistent buffers (BatchNorm's running statistics), which would be neither adapted, nor
    batched, nor saved, are refused (ValueError naming ``name``)."""
    if not isinstance(value, torch.nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(value).__name__}")
    if frozen := [n for n, p in value.named_parameters() if not p.requires_grad]:
        raise ValueError(f"{name} has frozen parameters {frozen} (requires_grad=False): mamlbook adapts and "
                         "meta-trains every parameter of a model, so they would be trained anyway; unfreeze them, "
                         "or make a fixed tensor a buffer with register_buffer(..., persistent=False)")
    if any(True for _ in value.buffers()) and (saved := sorted(
            set(value.state_dict(keep_vars=True)) - {n for n, _ in value.named_parameters()})):
        raise ValueError(f"{name} has persistent buffers {saved}: mamlbook treats a model as a function of its "
                         "parameters alone, so they would be neither adapted, nor batched per task, nor saved in "
                         "checkpoints. For BatchNorm pass track_running_stats=False (it normalises each task's "
                         "batch, as mb.ConvNet does); a constant the constructor rebuilds can be "
                         "register_buffer(..., persistent=False)")
    return value


def gradients_enabled(what: str) -> None:
    """RuntimeError unless autograd records (``what`` takes gradients: an inner loop, a meta-gradient)."""
    if torch.compiler.is_compiling():  # torch.compile cannot trace the mode (compiled.py checks outside)
        return
    if torch.is_inference_mode_enabled() or not torch.is_grad_enabled():
        mode = "torch.inference_mode()" if torch.is_inference_mode_enabled() else "torch.no_grad()"
        raise RuntimeError(f"{what} takes gradients, and it was called under {mode}, where autograd records "
                           "nothing; call it outside (adapt and the evaluation functions also run under no_grad)")


def with_gradients(fn):
    """Run ``fn`` with autograd on, as `torch.func.grad` does under an outer ``no_grad`` (a test-time inner loop
    needs gradients, whatever the caller's mode); inference mode cannot be lifted: it is refused (RuntimeError)."""
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        if torch.compiler.is_compiling():  # traced inside a compiled step, which checked the mode outside
            return fn(*args, **kwargs)
        if torch.is_inference_mode_enabled():
            gradients_enabled(fn.__name__)
        try:
            with torch.enable_grad():
                return fn(*args, **kwargs)
        except RuntimeError as err:
            if (clear := unused_parameter(err)) is None:
                raise
            raise clear from None
    return wrapped


def unused_parameter(err: RuntimeError) -> ValueError | None:
    """torch's "differentiated Tensor ... appears to not have been used in the graph", told as what it means here."""
    if "appears to not have been used in the graph" not in str(err):
        return None
    return ValueError(f"a parameter does not reach the loss (torch: {str(err).split('.')[0]}): the model has a "
                      "parameter its forward does not use (a layer defined but not called; remove it, or make a "
                      "fixed tensor a buffer with register_buffer(..., persistent=False)), or loss_fn ignores the "
                      "predictions; every method differentiates with respect to every parameter")


ON_DIVERGENCE = ("raise", "keep")


def on_divergence(value: Any) -> str:
    """The ``on_divergence`` option: ``"raise"`` (`DivergenceError`) or ``"keep"`` (return the NaN/inf numbers)."""
    if value not in ON_DIVERGENCE:
        raise ValueError(
            f"on_divergence must be one of {list(ON_DIVERGENCE)}, got {value!r}"
        )
    return value


class NonFiniteError(ValueError):
    """An input holds NaN or inf (raised before anything is computed)."""


class CheckpointError(ValueError):
    """A checkpoint file cannot be used: truncated, corrupted, not a checkpoint, or made for another model.

    The message names the path and what is wrong.
    """


def _compiling() -> bool:
    return torch.compiler.is_compiling()


def all_finite(tensors) -> bool:
    """Whether every floating tensor of ``tensors`` is finite (one reduction for all of them)."""
    if _compiling():
        return True
    floats = [t for t in tensors if t.is_floating_point() and t.device.type != "meta"]
    if not floats:
        return True
    with torch.no_grad():
        # Fast path, two operations whatever the number of tensors: the sum of every entry is
        # NaN/inf whenever one entry is. It may also overflow for huge finite entries, so a
        # non-finite sum is confirmed entry by entry before anything is refused.
        try:
            total = torch._C._nn.flatten_dense_tensors(floats).sum()
        except (RuntimeError, TypeError):  # mixed dtypes or devices
            total = sum(t.sum().double().cpu() for t in floats)
        if math.isfinite(float(total)):
            return True
        return all(bool(torch.isfinite(t).all()) for t in floats)


# ----------------------------------------------------------------------------- θ against the model


def params(
    name: str,
    value: Any,
    model: torch.nn.Module,
    *,
    num_tasks: int | None = None,
    tasks_from: str = "the data",
    finite: bool = True,
    like: tuple[str, torch.Tensor] | None = None,
) -> dict:
    """``value``, a dict of floating tensors with exactly the model's parameter names and shapes.

    ``num_tasks=None``: unbatched, each ``params[k]`` shaped like the model's parameter.
    ``num_tasks=T``: task-batched, each ``(T, *shape)`` (see `mamlbook.batch_parameters`).
    ``like=(name, tensor)``: every tensor must also be on that tensor's device and have
    its floating dtype. Extra or missing names, other shapes, integer tensors and (if
    ``finite``) NaN/inf values are refused with an error naming ``name[key]``, the
    expected and the received shape. One pass over the model's parameters.
    """
    if not isinstance(value, dict) or not value:
        raise TypeError(
            f"{name} must be a non-empty dict of tensors named like model.named_parameters(), "
            f"got {type(value).__name__}"
            + (" (empty)" if isinstance(value, dict) else "")
        )
    seen = 0
    for k, own in model.named_parameters():
        v = value.get(k)
        if v is None:
            _names_error(name, value, model)
        seen += 1
        if not isinstance(v, torch.Tensor):
            raise TypeError(f"{name}[{k!r}] must be a torch.Tensor, got {type(v).__name__}")
        if not v.is_floating_point():
            raise TypeError(f"{name}[{k!r}] must be a floating-point tensor, got dtype {v.dtype}")
        if like is not None:
            if v.device != like[1].device:
                raise ValueError(
                    f"{name}[{k!r}] is on {v.device} but {like[0]} is on {like[1].device}; "
                    "move them to one device"
                )
            if like[1].is_floating_point() and v.dtype != like[1].dtype:
                raise TypeError(
                    f"{name}[{k!r}] has dtype {v.dtype} but {like[0]} has {like[1].dtype}; use one dtype"
                )
        if (
            (v.shape != own.shape)
            if num_tasks is None
            else (v.shape[:1] != (num_tasks,) or v.shape[1:] != own.shape)
        ):
            _shape_error(name, k, v, own, num_tasks, tasks_from)
    if seen != len(value):
        _names_error(name, value, model)
    if finite:
        finite_params(name, value)
    return value


def _names_error(name: str, value: dict, model: torch.nn.Module):
    own = [k for k, _ in model.named_parameters()]
    extra = [k for k in value if k not in own]
    missing = [k for k in own if k not in value]
    parts = ([f"has names the model does not have: {extra}"] if extra else []) + (
        [f"is missing the model's parameters {missing}"] if missing else []
    )
    raise ValueError(f"{name} {' and '.join(parts)}; the model's parameters are {own}")


def _shape_error(name: str, k: str, v: torch.Tensor, own: torch.Tensor, num_tasks: int | None, tasks_from: str):
    shape_k = tuple(own.shape)
    expected = shape_k if num_tasks is None else (num_tasks, *shape_k)
    if num_tasks is None and tuple(v.shape[1:]) == shape_k:
        hint = " (it looks task-batched; pass θ itself, one copy, not one per task)"
    elif num_tasks is not None and tuple(v.shape) == shape_k:
        hint = f" (it is not task-batched; use mamlbook.batch_parameters(params, {num_tasks}))"
    elif num_tasks is not None and tuple(v.shape[1:]) == shape_k:
        hint = f" (batched for {v.shape[0]} tasks, but {tasks_from} has {num_tasks})"
    else:
        hint = ""
    what = ("the model's parameter shape" if num_tasks is None
            else f"(tasks, *parameter shape) for the {num_tasks} tasks of {tasks_from}")
    raise ValueError(f"{name}[{k!r}] must have shape {expected}, {what}; got {tuple(v.shape)}{hint}")


def finite_params(name: str, value: dict) -> dict:
    """Refuse (`NonFiniteError`, a ValueError) a dict of tensors holding NaN or inf; one reduction when all is well."""
    if not all_finite(value.values()):
        bad = next(k for k, v in value.items() if v.is_floating_point() and not bool(torch.isfinite(v).all()))
        raise NonFiniteError(
            f"{name}[{bad!r}] contains NaN or inf values; θ must be finite "
            "(if it came out of training, training diverged: see mamlbook.DivergenceError)"
        )
    return value


# ----------------------------------------------------------------------------- data against the model


def model_input_shape(model: torch.nn.Module) -> tuple | None:
    """The trailing input shape one example must have for ``model``, if it can be known.

    ``model.input_shape`` when the model declares it (`SinusoidMLP`, `ConvNet`); for an
    ``nn.Sequential`` that starts with an ``nn.Linear``, ``(in_features,)``; else None.
    """
    declared = getattr(model, "input_shape", None)
    if declared is not None:
        return tuple(declared)
    if isinstance(model, torch.nn.Sequential) and len(model) and isinstance(model[0], torch.nn.Linear):
        return (model[0].in_features,)
    return None


def inputs(name: str, x: Any, model: torch.nn.Module, num_tasks: int | None = None, *,
           finite: bool = True) -> torch.Tensor:
    """Task-batched inputs ``(T, N, *input_shape)`` for ``model``: a (by default finite) floating tensor."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor shaped (tasks, shots, *input_shape), got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be floating point, got dtype {x.dtype}")
    expected = model_input_shape(model)
    if x.ndim < 2 or (expected is not None and tuple(x.shape[2:]) != expected):
        want = f"(tasks, shots, {', '.join(map(str, expected))})" if expected is not None else "(tasks, shots, ...)"
        raise ValueError(f"{name} must have shape {want} for this model, got {tuple(x.shape)}")
    if num_tasks is not None and x.shape[0] != num_tasks:
        raise ValueError(
            f"{name} has {x.shape[0]} tasks but the task-batched params have {num_tasks}; "
            f"expected shape ({num_tasks}, ...), got {tuple(x.shape)}"
        )
    if finite and not _compiling() and x.device.type != "meta" and not bool(torch.isfinite(x).all()):
        raise NonFiniteError(f"{name} contains NaN or inf values")
    return x


def targets(name: str, y: Any, x_name: str, x: torch.Tensor) -> torch.Tensor:
    """Task-batched targets ``(T, N, ...)`` matching the inputs' tasks and shots; finite, not bool/complex."""
    if not isinstance(y, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor shaped (tasks, shots, ...), got {type(y).__name__}"
        )
    if y.dtype == torch.bool or y.is_complex():
        raise TypeError(
            f"{name} must be floating point (regression) or integer (class labels), got dtype {y.dtype}"
        )
    if y.ndim < 2 or y.shape[:2] != x.shape[:2]:
        raise ValueError(
            f"{name} must have shape ({x.shape[0]}, {x.shape[1]}, ...) (the tasks and shots of "
            f"{x_name} {tuple(x.shape)}), got {tuple(y.shape)}"
        )
    if (
        y.is_floating_point()
        and not _compiling()
        and y.device.type != "meta"
        and not bool(torch.isfinite(y).all())
    ):
        raise NonFiniteError(f"{name} contains NaN or inf values")
    return y


# ----------------------------------------------------------------------------- the per-task loss contract

LOSS_CONTRACT = (
    "loss_fn(predictions, targets) must return the per-task losses, a floating tensor of shape (T,) "
    "(one loss per task: averaged over the shots, not over the tasks)"
)


def _check_known_loss(
    loss_fn, predictions: torch.Tensor, y: torch.Tensor, y_name: str
) -> None:
    """The stricter contract of the package's own losses (they declare ``targets``:
    `mamlbook.functional.mse_per_task`, `cross_entropy_per_task`), worded with the
    argument's name."""
    targets = getattr(loss_fn, "targets", None)
    if targets == "regression":
        if not y.is_floating_point():
            raise TypeError(
                f"{y_name} must be floating point for mse_per_task (regression targets), got dtype "
                f"{y.dtype}; class labels need loss_fn=mamlbook.cross_entropy_per_task"
            )
        if y.shape != predictions.shape:
            raise ValueError(
                f"{y_name} must have the shape of the model's predictions {tuple(predictions.shape)} "
                f"(no broadcasting), got {tuple(y.shape)}"
            )
    elif targets == "labels":
        if predictions.ndim != 3 or y.shape != predictions.shape[:2]:
            raise ValueError(
                f"{y_name} must have shape {tuple(predictions.shape[:2])} (one label per example of the "
                f"logits {tuple(predictions.shape)}), got {tuple(y.shape)}"
            )
        class_labels(y_name, y, predictions.shape[-1])


def class_labels(name: str, y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``y`` if it holds integer class labels (cross-entropy refuses floats) in ``[0,
    num_classes)`` (one out of range scores 0 or fails in torch); the range is not checked
    while compiling (it reads the values)."""
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    if not _compiling() and y.numel() and not 0 <= int(y.min()) <= int(y.max()) < num_classes:
        raise ValueError(f"{name} must hold labels in [0, {num_classes - 1}] (the model has {num_classes} outputs), "
                         f"got labels from {int(y.min())} to {int(y.max())}")
    return y


def check_loss_inputs(
    loss_fn, predictions: torch.Tensor, y: torch.Tensor, y_name: str
) -> None:
    """Before a first call of ``loss_fn``: targets with the predictions' tasks and shots (and, for the
    package's own losses, exactly their shape and dtype)."""
    if (
        isinstance(predictions, torch.Tensor)
        and predictions.ndim >= 2
        and predictions.shape[:2] != y.shape[:2]
    ):
        raise ValueError(
            f"{y_name} must have the tasks and shots of the model's predictions "
            f"{tuple(predictions.shape[:2])} (first two axes), got {tuple(y.shape)}"
        )
    _check_known_loss(loss_fn, predictions, y, y_name)


def check_loss_output(
    loss_fn, predictions: torch.Tensor, y: torch.Tensor, y_name: str, out: Any
) -> None:
    """After a first call of ``loss_fn``: the result is the per-task losses, ``(T,)``."""
    num_tasks = (
        predictions.shape[0]
        if isinstance(predictions, torch.Tensor) and predictions.ndim
        else None
    )
    if not isinstance(out, torch.Tensor):
        raise TypeError(
            f"loss_fn returned {type(out).__name__} {out!r} for {y_name}; {LOSS_CONTRACT}"
        )
    if not out.is_floating_point():
        raise TypeError(
            f"loss_fn returned a tensor of dtype {out.dtype} for {y_name}; {LOSS_CONTRACT}"
        )
    if tuple(out.shape) != (num_tasks,):
        what = (
            "a scalar (one number for the whole meta-batch)"
            if out.ndim == 0
            else f"shape {tuple(out.shape)}"
        )
        raise ValueError(
            f"loss_fn returned {what} for {y_name} with {num_tasks} tasks, expected shape ({num_tasks},); "
            f"{LOSS_CONTRACT}. E.g. torch.nn.functional.mse_loss averages over the tasks too: use "
            "mamlbook.mse_per_task"
        )


class PerTaskLoss:
    """``loss_fn`` with its contract checked on its first call for each target tensor.

    ``names`` maps target tensors (by identity) to the argument names used in errors,
    e.g. ``{id(tasks.y_support): "tasks.y_support"}``. After the first call for each,
    calls go straight through (the check costs nothing per inner step).
    """

    __slots__ = ("fn", "names", "pending")

    def __init__(self, fn, names: dict[int, str]):
        self.fn = fn
        self.names = names
        self.pending = set(names)

    def __call__(self, predictions: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if not self.pending or id(y) not in self.pending:
            return self.fn(predictions, y)
        name = self.names[id(y)]
        check_loss_inputs(self.fn, predictions, y, name)
        out = self.fn(predictions, y)
        check_loss_output(self.fn, predictions, y, name, out)
        self.pending.discard(id(y))
        return out


def per_task_loss(loss_fn: Any, **targets_by_name: torch.Tensor):
    """``loss_fn`` checked (see `PerTaskLoss`) on its first call for each of ``targets_by_name``.

    While ``torch.compile`` traces, every call is checked, with the targets named
    generically: shape checks cost nothing in a compiled graph, but a closure's state or
    a test of the targets' identity would become guards that recompile on every call.
    """
    callable_("loss_fn", loss_fn)
    if isinstance(loss_fn, PerTaskLoss):
        loss_fn = loss_fn.fn
    if _compiling():
        generic = f"the targets ({' or '.join(targets_by_name)})"

        def traced(predictions, y):
            check_loss_inputs(loss_fn, predictions, y, generic)
            out = loss_fn(predictions, y)
            check_loss_output(loss_fn, predictions, y, generic, out)
            return out

        return traced
    names = {id(y): name for name, y in targets_by_name.items()}
    return PerTaskLoss(loss_fn, names)


# ----------------------------------------------------------------------------- divergence


def finite_step(
    what: str,
    meta_loss: torch.Tensor,
    grads: dict,
    on_divergence: str,
    advice: str,
    *,
    params: dict | None = None,
    mention_opt_out: bool = True,
) -> None:
    """Raise `DivergenceError` if ``meta_loss`` or any gradient is NaN/inf (unless ``on_divergence="keep"``).

    With ``params`` (θ, not yet checked for NaN/inf), they are checked in the same single
    reduction; a non-finite θ raises `NonFiniteError` naming it (the input was bad: no
    divergence), exactly as an up-front check would, since a method changes nothing.
    """
    nones = [k for k, g in grads.items() if g is None]
    if nones:  # (a first-order step that detached θ's entries: not in the meta-loss's graph)
        raise ValueError(f"{what}: the gradient of {nones} is None: not in the meta-loss's graph")
    if on_divergence == "keep" or _compiling():
        return
    if all_finite(
        [meta_loss, *grads.values(), *(params.values() if params is not None else ())]
    ):
        return
    if params is not None:
        finite_params("params", params)
    bad = [k for k, g in grads.items() if not bool(torch.isfinite(g).all())]
    diagnosis = f"meta-loss {float(meta_loss.detach())}" + (
        f", non-finite gradient for {bad}" if bad else ""
    )
    opt_out = " (pass on_divergence='keep' to get the non-finite step back instead)" if mention_opt_out else ""
    err = DivergenceError(f"{what} diverged: {diagnosis}. {advice}{opt_out}")
    err.diagnosis = diagnosis
    raise err

"""Argument validation: the one place errors are worded, so they all read the same.

Every check names the argument and the allowed range, and raises; nothing here clamps
a value or warns and carries on.
"""
from __future__ import annotations

import math
from typing import Any

import torch


def positive_float(name: str, value: Any) -> float:
    """``value`` as a float in (0, inf); else ValueError/TypeError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a positive number (0, inf), got {type(value).__name__} {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number (0, inf), got {value!r}")
    return float(value)


def nonnegative_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number in [0, inf), got {type(value).__name__} {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number in [0, inf), got {value!r}")
    return float(value)


def int_in_range(name: str, value: Any, low: int, high: int | None = None) -> int:
    """``value`` as an int in [low, high] (high=None: no upper bound)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int in [{low}, {high if high is not None else 'inf'}], got {type(value).__name__} {value!r}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be in [{low}, {high if high is not None else 'inf'}], got {value}")
    return value


def positive_int(name: str, value: Any) -> int:
    return int_in_range(name, value, 1)


def float_in_range(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number in [{low}, {high}], got {type(value).__name__} {value!r}")
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
    # mamlbook.compiled validates its inputs before they enter the graph.)
    if finite and value.is_floating_point() and value.device.type != "meta" and not torch.compiler.is_compiling() \
            and not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} contains NaN or inf values")
    return value


def same_device_dtype(names_tensors: dict[str, torch.Tensor], reference_name: str) -> None:
    """Every tensor lives on the reference tensor's device and has its float dtype."""
    ref = names_tensors[reference_name]
    for name, t in names_tensors.items():
        if t.device != ref.device:
            raise ValueError(f"{name} is on {t.device} but {reference_name} is on {ref.device}; move them to one device")
        if t.is_floating_point() and ref.is_floating_point() and t.dtype != ref.dtype:
            raise TypeError(f"{name} has dtype {t.dtype} but {reference_name} has {ref.dtype}; use one dtype")


def finite_loss(name: str, value: torch.Tensor, advice: str) -> None:
    """Raise `DivergenceError` if a loss is NaN or inf."""
    if not bool(torch.isfinite(value).all()):
        raise DivergenceError(f"{name} is {value.detach().cpu().tolist()} (not finite). {advice}")


class DivergenceError(RuntimeError):
    """Training produced a NaN/inf loss; the message says what to change."""

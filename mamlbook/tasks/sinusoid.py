"""The sinusoid regression family of the MAML paper (Finn et al. 2017, §5.1).

A task is ``y = A sin(x − φ)`` with amplitude ``A ~ U[0.1, 5]``, phase ``φ ~ U[0, π]``,
and inputs ``x ~ U[−5, 5]``; the loss is the mean squared error.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .. import checks
from ..device import check_device
from .base import TaskBatch


class SinusoidTasks:
    """Sampler of sinusoid tasks; all randomness comes from a ``torch.Generator``.

    >>> family = SinusoidTasks()
    >>> generator = torch.Generator().manual_seed(0)
    >>> batch = family.sample(25, support_shots=10, query_shots=10, generator=generator)
    >>> batch.x_support.shape
    torch.Size([25, 10, 1])
    """

    def __init__(self, amplitude_range=(0.1, 5.0), phase_range=(0.0, math.pi), x_range=(-5.0, 5.0)):
        for name, bounds in (("amplitude_range", amplitude_range), ("phase_range", phase_range), ("x_range", x_range)):
            if not isinstance(bounds, (tuple, list)) or len(bounds) != 2 or \
                    any(isinstance(b, bool) or not isinstance(b, (int, float)) for b in bounds):
                raise TypeError(f"{name} must be a pair of numbers (low, high), got {bounds!r}")
            low, high = bounds
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise ValueError(f"{name} must be (low, high) with finite low < high, got {(low, high)!r}")
        self.amplitude_range = tuple(map(float, amplitude_range))
        self.phase_range = tuple(map(float, phase_range))
        self.x_range = tuple(map(float, x_range))

    @staticmethod
    def target(x: Tensor, amplitude: Tensor, phase: Tensor) -> Tensor:
        """``A sin(x − φ)``; ``amplitude``/``phase`` ``(T,)`` broadcast against ``x (T, N, 1)``."""
        return amplitude.view(-1, 1, 1) * torch.sin(x - phase.view(-1, 1, 1))

    def _uniform(self, shape, bounds, generator, dtype) -> Tensor:
        low, high = bounds
        return low + (high - low) * torch.rand(shape, generator=generator, dtype=dtype)

    def sample_inputs(self, num_tasks: int, shots: int, generator: torch.Generator, dtype=torch.float32) -> Tensor:
        return self._uniform((num_tasks, shots, 1), self.x_range, generator, dtype)

    def sample(self, num_tasks: int, support_shots: int, query_shots: int, *, generator: torch.Generator,
               device=None, dtype: torch.dtype = torch.float32) -> TaskBatch:
        """``num_tasks`` random tasks, each with its own support and query points.

        Returns a `TaskBatch` with ``x_* (T, shots, 1)``, ``y_* (T, shots, 1)`` and
        ``info = {"amplitude": (T,), "phase": (T,)}``.
        """
        checks.positive_int("num_tasks", num_tasks)
        checks.positive_int("support_shots", support_shots)
        checks.positive_int("query_shots", query_shots)
        check_device("device", device)
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
        amplitude = self._uniform((num_tasks,), self.amplitude_range, generator, dtype)
        phase = self._uniform((num_tasks,), self.phase_range, generator, dtype)
        return self.tasks_for(amplitude, phase, support_shots, query_shots, generator=generator, device=device)

    def tasks_for(self, amplitude: Tensor, phase: Tensor, support_shots: int, query_shots: int, *,
                  generator: torch.Generator, device=None) -> TaskBatch:
        """Tasks with given amplitudes and phases ``(T,)`` (e.g. chosen by a reader's sliders)."""
        checks.tensor("amplitude", amplitude, ndim=1)
        checks.tensor("phase", phase, ndim=1)
        check_device("device", device)
        if amplitude.shape != phase.shape:
            raise ValueError(f"amplitude and phase must have the same shape, got {tuple(amplitude.shape)} and {tuple(phase.shape)}")
        t, dtype = amplitude.shape[0], amplitude.dtype
        x_support = self.sample_inputs(t, support_shots, generator, dtype)
        x_query = self.sample_inputs(t, query_shots, generator, dtype)
        batch = TaskBatch(x_support, self.target(x_support, amplitude, phase),
                          x_query, self.target(x_query, amplitude, phase),
                          {"amplitude": amplitude, "phase": phase})
        return batch.to(device) if device is not None else batch

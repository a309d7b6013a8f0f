"""`TaskBatch`: a meta-batch of tasks as four tensors with a leading task dimension."""
from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch
from torch import Tensor

from .. import checks
from ..device import check_device


@dataclass(frozen=True)
class TaskBatch:
    """``T`` tasks, each with a support set (to adapt on) and a query set (to score).

    Shapes: ``x_support (T, K, *in)``, ``y_support (T, K, *out)``, ``x_query (T, Q, *in)``,
    ``y_query (T, Q, *out)``, with ``K`` and ``Q`` the examples of a task's support and
    query set (``N``-way classification: ``N·K`` and ``N·Q``, labels ``(T, N·K)``).
    ``info`` holds what generated the tasks (e.g. amplitude and phase), each ``(T,)``.
    Construction validates shapes, finiteness, dtype and device, and names the
    offending field.
    """

    x_support: Tensor
    y_support: Tensor
    x_query: Tensor
    y_query: Tensor
    info: dict[str, Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        named = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "info"}
        for name, value in named.items():
            checks.tensor(name, value)
            if name.startswith("x") and not value.is_floating_point():
                raise TypeError(f"{name} must be floating point (model inputs), got dtype {value.dtype}")
            if name.startswith("y") and (value.dtype == torch.bool or value.is_complex()):
                raise TypeError(f"{name} must be floating point (regression targets) or integer (class labels), "
                                f"got dtype {value.dtype}")
            if name.startswith("y") and not value.is_floating_point() and value.dtype != torch.long:
                raise TypeError(f"{name} holds class labels of dtype {value.dtype}; they must be int64 (torch.long), "
                                "as cross-entropy takes them: pass .long()")
            if value.ndim < 2:
                raise ValueError(f"{name} must be shaped (tasks, shots, ...), got shape {tuple(value.shape)}")
            if value.shape[1] == 0:
                raise ValueError(f"{name} has zero shots; shots must be in [1, inf)")
        t = self.x_support.shape[0]
        for name, value in named.items():
            if value.shape[0] != t:
                raise ValueError(f"{name} has {value.shape[0]} tasks but x_support has {t}; every tensor needs the same leading task dimension")
        for x, y in (("x_support", "y_support"), ("x_query", "y_query")):
            if named[x].shape[1] != named[y].shape[1]:
                raise ValueError(f"{x} has {named[x].shape[1]} shots but {y} has {named[y].shape[1]}")
        if self.x_support.shape[2:] != self.x_query.shape[2:]:
            raise ValueError(f"x_support and x_query have different input shapes {tuple(self.x_support.shape[2:])} vs {tuple(self.x_query.shape[2:])}")
        checks.same_device_dtype(named, "x_support")

    def __repr__(self) -> str:  # shapes, not every number (a meta-batch of images is millions of them)
        def shape(t: Tensor) -> str:
            return f"{tuple(t.shape)} {str(t.dtype).removeprefix('torch.')}"
        fields_ = ", ".join(f"{n}={shape(getattr(self, n))}" for n in ("x_support", "y_support", "x_query", "y_query"))
        info = f", info={{{', '.join(self.info)}}}" if self.info else ""
        return f"TaskBatch({fields_}{info}, device={self.x_support.device})"

    @property
    def num_tasks(self) -> int:
        """``T``, the number of tasks."""
        return self.x_support.shape[0]

    @property
    def support_shots(self) -> int:
        """``K``, support examples per task (for classification: ``ways × shots``)."""
        return self.x_support.shape[1]

    @property
    def query_shots(self) -> int:
        """``Q``, query examples per task."""
        return self.x_query.shape[1]

    def to(self, device=None, dtype: torch.dtype | None = None) -> "TaskBatch":
        """Move to a device and/or cast floating tensors to ``dtype``."""
        check_device("device", device)

        def move(t: Tensor) -> Tensor:
            return t.to(device=device, dtype=dtype if (dtype is not None and t.is_floating_point()) else None)

        return TaskBatch(move(self.x_support), move(self.y_support), move(self.x_query), move(self.y_query),
                         {k: move(v) for k, v in self.info.items()})

    def split(self, parts: int) -> list["TaskBatch"]:
        """Split along the task dimension into ``parts`` nearly equal shards."""
        checks.int_in_range("parts", parts, 1, self.num_tasks)
        chunks = [torch.tensor_split(getattr(self, n), parts) for n in ("x_support", "y_support", "x_query", "y_query")]
        infos = {k: torch.tensor_split(v, parts) for k, v in self.info.items()}
        return [TaskBatch(*(c[i] for c in chunks), {k: v[i] for k, v in infos.items()}) for i in range(parts)]

"""N-way K-shot classification tasks from a set of image classes (characters in the book).

A task picks ``N`` classes ("ways") at random, labels them ``0 … N−1`` in random order,
and takes ``K`` drawings of each as the support set and ``Q`` further drawings of each
as the query set (Vinyals et al. 2016; Finn et al. 2017, §5.2). With
``rotations=True`` every class also appears rotated by 90°, 180° and 270°, each
rotation counting as a class of its own, which quadruples the number of classes (the
augmentation of Santoro et al. 2016 used by the MAML paper on Omniglot). With
``max_shift = s > 0`` every drawing is also moved by its own random whole-pixel offset
in ``[−s, s]`` along each axis (the vacated border filled with background), so that
two drawings of a class differ in placement as well as in stroke: more variety from the
same drawings, meant for training tasks (chapter 08).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import checks
from ..device import check_device
from .base import TaskBatch


class ClassificationTasks:
    """Sampler of N-way K-shot tasks from ``images (classes, drawings, [channels,] height, width)``.

    ``images`` may be ``uint8`` (0–255, ink bright) or floating point in [0, 1], the
    same number of drawings (examples) per class: grey ``(classes, drawings, height,
    width)`` or with channels ``(classes, drawings, channels, height, width)`` (colour:
    3). Tasks come out as floating point images ``(T, N·K, C, H, W)`` (``C`` = 1 for grey)
    with labels ``(T, N·K)`` (``int64``), ordered class by class: labels
    ``[0]*K + [1]*K + …``; `mamlbook.ConvNet` takes ``channels`` and ``image_size``.
    ``rotations``: each class also rotated by 90°, 180° and 270° as three new classes;
    ``max_shift``: each drawing moved by its own random offset of at most this many
    pixels along each axis (0: not moved; at most the image side − 1); the vacated border
    is filled with 0, the background of ink-bright images (black in a photograph).

    >>> from mamlbook.tasks.omniglot_shipped import minimal_split
    >>> family = ClassificationTasks(minimal_split()[0].images, ways=5)
    >>> batch = family.sample(16, 1, 5, generator=torch.Generator().manual_seed(0))
    >>> batch.x_support.shape, batch.y_query.shape
    (torch.Size([16, 5, 1, 28, 28]), torch.Size([16, 25]))
    """

    def __init__(self, images: Tensor, ways: int = 5, *, rotations: bool = False, max_shift: int = 0,
                 name: str = "images"):
        checks.tensor(name, images)
        checks.flag("rotations", rotations)
        if images.ndim not in (4, 5):
            raise ValueError(f"{name} must be shaped (classes, drawings, height, width), or (classes, drawings, "
                             f"channels, height, width) with channels, got shape {tuple(images.shape)}")
        if images.ndim == 5 and images.shape[2] < 1:
            raise ValueError(f"{name} must have at least one channel, got shape {tuple(images.shape)}")
        if images.ndim == 5 and images.shape[-1] <= 4 < images.shape[2]:  # (..., height, width, channels)?
            raise ValueError(f"{name} of shape {tuple(images.shape)} reads as {images.shape[2]} channels of "
                             f"{images.shape[3]}×{images.shape[4]} pixels: channels come before height and width; "
                             f"pass images.permute(0, 1, 4, 2, 3) for channels-last images")
        if images.shape[0] < 1 or images.shape[1] < 1:
            raise ValueError(f"{name} must hold at least one class with one drawing, got shape {tuple(images.shape)}")
        if not (images.dtype == torch.uint8 or images.is_floating_point()):
            raise TypeError(f"{name} must be uint8 or floating point, got {images.dtype}")
        if images.is_floating_point() and images.numel():
            low, high = float(images.min()), float(images.max())  # also NaN: comparisons fail
            if not (0.0 <= low and high <= 1.0):
                raise ValueError(f"{name} is floating point with values in [{low:g}, {high:g}]; floating-point "
                                 "images must be in [0, 1] (pass uint8 0-255 images as they are, or divide by 255)")
        if rotations and images.shape[-2] != images.shape[-1]:
            raise ValueError(f"rotations need square images, got height × width {tuple(images.shape[-2:])}")
        checks.int_in_range("max_shift", max_shift, 0, min(images.shape[-2:]) - 1)
        self.images = images
        self.rotations = bool(rotations)
        self.max_shift = max_shift
        self.base_classes = images.shape[0]
        self.drawings = images.shape[1]
        self.channels = images.shape[2] if images.ndim == 5 else 1
        self.num_classes = self.base_classes * (4 if self.rotations else 1)
        self.ways = checks.positive_int("ways", ways)
        if ways > self.num_classes:
            raise ValueError(f"ways must be in [1, {self.num_classes}] (the number of classes"
                             f"{', rotations included' if rotations else ''}), got {ways}")

    def __repr__(self) -> str:
        return (f"ClassificationTasks({self.base_classes} classes × {self.drawings} drawings"
                f"{f' of {self.channels} channels' if self.images.ndim == 5 else ''}"
                f"{' × 4 rotations' if self.rotations else ''}"
                f"{f', shifts up to ±{self.max_shift} px' if self.max_shift else ''}, {self.ways}-way)")

    def sample(self, num_tasks: int, support_shots: int, query_shots: int, *, generator: torch.Generator,
               device=None, dtype: torch.dtype = torch.float32) -> TaskBatch:
        """``num_tasks`` random ``ways``-way tasks with ``support_shots`` (K) and ``query_shots`` drawings per class.

        Returns a `TaskBatch`: ``x_support (T, N·K, C, H, W)``, ``y_support (T, N·K)``,
        ``x_query (T, N·Q, C, H, W)``, ``y_query (T, N·Q)``, and ``info`` with
        ``classes (T, N)`` (base class index), ``rotations (T, N)`` (quarter turns) and
        ``drawings (T, N, K+Q)``, and with ``max_shift`` > 0 ``shifts (T, N, K+Q, 2)``
        (rows down, columns right). Classes within a task are distinct; so are the drawings
        of a class (support and query never share a drawing).
        """
        checks.positive_int("num_tasks", num_tasks)
        checks.positive_int("support_shots", support_shots)
        checks.positive_int("query_shots", query_shots)
        check_device("device", device)
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating-point torch.dtype (torch.float32, ...), got {dtype!r}")
        per_class = support_shots + query_shots
        if per_class > self.drawings:
            raise ValueError(f"support_shots + query_shots must be at most the {self.drawings} drawings per class, "
                             f"got {support_shots} + {query_shots} = {per_class}")
        t, n = num_tasks, self.ways
        # Distinct classes per task, distinct drawings per class: the first entries of random permutations.
        picked = torch.rand(t, self.num_classes, generator=generator).argsort(dim=1)[:, :n]  # (T, N)
        classes, turns = picked % self.base_classes, picked // self.base_classes
        drawings = torch.rand(t, n, self.drawings, generator=generator).argsort(dim=2)[:, :, :per_class]
        x = self.images[classes.unsqueeze(-1), drawings]  # (T, N, K+Q, H, W) or (T, N, K+Q, C, H, W)
        x = x.to(dtype) / 255 if self.images.dtype == torch.uint8 else x.to(dtype)
        if self.rotations:
            for k in (1, 2, 3):
                sel = turns == k
                if bool(sel.any()):
                    x[sel] = torch.rot90(x[sel], k, dims=(-2, -1))
        info = {"classes": classes, "rotations": turns, "drawings": drawings}
        if self.max_shift:
            # Drawn only when asked for, so recipes without shifts keep their stream of tasks.
            info["shifts"] = torch.randint(-self.max_shift, self.max_shift + 1, (t, n, per_class, 2),
                                           generator=generator)
            shifts = info["shifts"]  # every channel of a drawing moves together
            x = shift_images(x, shifts if x.ndim == 5 else shifts.unsqueeze(3).expand(*x.shape[:4], 2))
        c, (h, w) = self.channels, x.shape[-2:]
        labels = torch.arange(n).view(1, n, 1)
        x_support = x[:, :, :support_shots].reshape(t, n * support_shots, c, h, w)
        x_query = x[:, :, support_shots:].reshape(t, n * query_shots, c, h, w)
        y_support = labels.expand(t, n, support_shots).reshape(t, n * support_shots)
        y_query = labels.expand(t, n, query_shots).reshape(t, n * query_shots)
        batch = TaskBatch(x_support, y_support.contiguous(), x_query, y_query.contiguous(), info)
        return batch.to(device) if device is not None else batch


def shift_images(images: Tensor, shifts: Tensor) -> Tensor:
    """Each image ``(..., H, W)`` moved by whole pixels ``shifts (..., 2)`` (rows down,
    columns right; each at most the image's side − 1 in size), the vacated border 0."""
    if shifts.dtype.is_floating_point or shifts.dtype.is_complex or shifts.dtype == torch.bool:
        raise TypeError(f"shifts must be an integer tensor (whole pixels), got {shifts.dtype}")
    if shifts.shape != images.shape[:-2] + (2,):
        raise ValueError(f"shifts must be shaped {tuple(images.shape[:-2]) + (2,)} (one (rows, columns) pair per "
                         f"image), got {tuple(shifts.shape)}")
    h, w = images.shape[-2:]
    s = int(shifts.abs().max()) if shifts.numel() else 0
    if s >= min(h, w):
        worst = int(shifts.flatten()[shifts.abs().flatten().argmax()])
        raise ValueError(f"shifts must be in [{1 - min(h, w)}, {min(h, w) - 1}] for {h}×{w} images, got {worst}")
    flat = F.pad(images.reshape(-1, h, w), (s, s, s, s))  # (B, H+2s, W+2s)
    d = shifts.reshape(-1, 2).to(images.device)
    rows = torch.arange(h, device=images.device) + s - d[:, :1]  # (B, H): output row i reads padded row i + s − dy
    cols = torch.arange(w, device=images.device) + s - d[:, 1:]
    batch = torch.arange(flat.shape[0], device=images.device)
    out = flat[batch[:, None, None], rows[:, :, None], cols[:, None, :]]
    return out.reshape(images.shape)

"""Procedural glyphs: an Omniglot-like alphabet generated on the spot, offline.

Omniglot (Lake et al. 2015) has 1,623 handwritten characters with 20 drawings each,
split 964 / 659 into *background* (meta-training) and *evaluation* classes. This
module generates a data set with the same shape from a seed:

* a **character class** is 2–4 random strokes, each a cubic Bézier curve; a stroke
  starts either at a random point or, half the time, on an earlier stroke (characters
  are mostly connected);
* a **drawing** of a class perturbs every control point (σ = 0.12 of the half-width),
  applies a random affine map (rotation ±15°, scale 0.7–1.15 per axis, shear ±0.25,
  shift ±20% of the half-width) and a random pen width (1.0–2.6 px). These ranges
  were tuned so that a nearest-neighbour classifier on raw pixels is about as weak as
  on Omniglot (≈ 50% on 5-way 1-shot tasks here, 42% reported for Omniglot by
  Vinyals et al. 2016): a drawing differs from its class's other drawings about as
  much as different people's drawings of one Omniglot character do;
* strokes are rendered anti-aliased into 28×28 grayscale (ink 1, paper 0) from the
  distance of each pixel centre to the curve:
  intensity ``clip(width/2 + 1/2 − distance, 0, 1)``, i.e. the pen's coverage of the
  pixel (distances to 96 samples per curve, at most about 0.6 px apart).

All randomness is drawn from one ``torch.Generator`` before rendering, so the images
are a function of the seed alone (stored as ``uint8``). Rendering is vectorised; the
whole set takes seconds and is cached under the user cache directory
(``$MAMLBOOK_CACHE``, else ``$XDG_CACHE_HOME/mamlbook``, else ``~/.cache/mamlbook``).
"""
from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import torch
from torch import Tensor

from .. import checks

BACKGROUND_CLASSES = 964
EVALUATION_CLASSES = 659
DRAWINGS = 20
IMAGE_SIZE = 28
FORMAT_VERSION = 2  # bump when the generator changes: cached files of another version are ignored

_MAX_STROKES = 4
_SAMPLES_PER_STROKE = 96  # spacing ≤ ~0.6 px even for the longest strokes


def cache_dir() -> Path:
    """Where generated data sets are cached (not inside the repository)."""
    if os.environ.get("MAMLBOOK_CACHE"):
        return Path(os.environ["MAMLBOOK_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache")
    return Path(base) / "mamlbook"


def _class_strokes(num_classes: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
    """Control points ``(C, S, 4, 2)`` in [−0.8, 0.8]² and stroke mask ``(C, S)``."""
    c, s = num_classes, _MAX_STROKES
    counts = torch.randint(2, _MAX_STROKES + 1, (c,), generator=g)
    mask = torch.arange(s).view(1, s) < counts.view(c, 1)
    start = torch.rand(c, s, 2, generator=g) * 1.4 - 0.7
    # Each later stroke starts, with probability 1/2, at a point on the previous stroke.
    attach = torch.rand(c, s, generator=g) < 0.5
    attach_t = torch.rand(c, s, generator=g)
    # Three further control points by random steps of length 0.25–0.7 in random directions,
    # each direction turning by at most ±1.5 rad from the previous: smooth, pen-like curves.
    heading = torch.rand(c, s, 1, generator=g) * 2 * math.pi
    turns = (torch.rand(c, s, 3, generator=g) - 0.5) * 3.0
    angles = heading + torch.cumsum(turns, dim=2)
    lengths = 0.25 + 0.45 * torch.rand(c, s, 3, generator=g)
    steps = torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1) * lengths.unsqueeze(-1)
    points = torch.empty(c, s, 4, 2)
    for k in range(s):  # a stroke may attach to the one before it, so strokes go in order
        p0 = start[:, k]
        if k > 0:
            prev = points[:, k - 1]
            t = attach_t[:, k].view(c, 1)
            on_prev = ((1 - t) ** 3 * prev[:, 0] + 3 * (1 - t) ** 2 * t * prev[:, 1]
                       + 3 * (1 - t) * t ** 2 * prev[:, 2] + t ** 3 * prev[:, 3])
            p0 = torch.where(attach[:, k].view(c, 1), on_prev, p0)
        points[:, k, 0] = p0
        points[:, k, 1:] = p0.unsqueeze(1) + torch.cumsum(steps[:, k], dim=1)
    # Fit every character into the box [−0.8, 0.8]² (centred, aspect kept).
    big = torch.where(mask.view(c, s, 1, 1), points, torch.nan)
    low = torch.stack([big[..., 0].flatten(1).nan_to_num(torch.inf).amin(1), big[..., 1].flatten(1).nan_to_num(torch.inf).amin(1)], 1)
    high = torch.stack([big[..., 0].flatten(1).nan_to_num(-torch.inf).amax(1), big[..., 1].flatten(1).nan_to_num(-torch.inf).amax(1)], 1)
    centre = (low + high) / 2
    half = ((high - low) / 2).amax(1).clamp_min(1e-3)
    zoom = (0.8 / half).clamp_max(1.6)  # small characters stay smallish: strokes never get long
    points = (points - centre.view(c, 1, 1, 2)) * zoom.view(c, 1, 1, 1)
    return points, mask


def _drawing_noise(num_classes: int, drawings: int, g: torch.Generator) -> dict[str, Tensor]:
    c, d = num_classes, drawings
    return {
        "jitter": 0.12 * torch.randn(c, d, _MAX_STROKES, 4, 2, generator=g),
        "rotation": (torch.rand(c, d, generator=g) - 0.5) * (2 * math.radians(15)),
        "scale": 0.7 + 0.45 * torch.rand(c, d, 2, generator=g),
        "shear": (torch.rand(c, d, generator=g) - 0.5) * 0.5,
        "shift": (torch.rand(c, d, 2, generator=g) - 0.5) * 0.4,
        "width": 1.0 + 1.6 * torch.rand(c, d, generator=g),
    }


def _render(points: Tensor, mask: Tensor, width: Tensor, size: int) -> Tensor:
    """Anti-aliased strokes: points ``(B, S, 4, 2)`` in [−1, 1]², mask ``(B, S)``, width ``(B,)`` px -> ``(B, size, size)``.

    Each Bézier curve is sampled densely (spacing at most about 0.6 px) and every sample
    stamps a disc of the pen's width on the 4×4 pixels around it: a pixel gets
    ``clip(width/2 + 1/2 − distance to the nearest sample, 0, 1)``, the pen's coverage.
    Only ``16 · samples`` pixel–sample pairs per drawing are evaluated, not
    ``pixels · samples``: that is what makes the whole data set take seconds.
    """
    b, s = mask.shape
    t = torch.linspace(0, 1, _SAMPLES_PER_STROKE).view(1, 1, -1, 1)
    p = points.unsqueeze(3)  # (B, S, 4, 1, 2)
    curve = ((1 - t) ** 3 * p[:, :, 0] + 3 * (1 - t) ** 2 * t * p[:, :, 1]
             + 3 * (1 - t) * t ** 2 * p[:, :, 2] + t ** 3 * p[:, :, 3])  # (B, S, P, 2)
    curve = ((curve + 1) * (size / 2)).reshape(b, -1, 2)  # pixel units; pixel i's centre is at i + 1/2
    base = torch.floor(curve - 0.5).to(torch.long)  # (B, N, 2)
    offsets = torch.arange(-1, 3)
    ix = base[..., 0:1] + offsets  # (B, N, 4)
    iy = base[..., 1:2] + offsets
    dx2 = (ix + 0.5 - curve[..., 0:1]).square()
    dy2 = (iy + 0.5 - curve[..., 1:2]).square()
    dist = (dy2.unsqueeze(-1) + dx2.unsqueeze(-2)).sqrt()  # (B, N, 4 rows, 4 cols)
    ink = (width.view(b, 1, 1, 1) / 2 + 0.5 - dist).clamp(0, 1)
    sample_mask = mask.repeat_interleave(_SAMPLES_PER_STROKE, dim=1).view(b, -1, 1, 1)
    inside = (iy >= 0).unsqueeze(-1) & (iy < size).unsqueeze(-1) & (ix >= 0).unsqueeze(-2) & (ix < size).unsqueeze(-2)
    index = iy.clamp(0, size - 1).unsqueeze(-1) * size + ix.clamp(0, size - 1).unsqueeze(-2)
    ink = torch.where(inside & sample_mask, ink, 0.0)
    out = torch.zeros(b, size * size, dtype=points.dtype)
    out.scatter_reduce_(1, index.reshape(b, -1), ink.reshape(b, -1), reduce="amax")
    return out.view(b, size, size)


def generate_glyphs(num_classes: int = BACKGROUND_CLASSES + EVALUATION_CLASSES, drawings: int = DRAWINGS, *,
                    seed: int = 0, size: int = IMAGE_SIZE, chunk: int = 512) -> Tensor:
    """Generate the glyph data set: ``uint8`` images ``(num_classes, drawings, size, size)``, ink 255.

    Deterministic: the same ``seed`` (and sizes) gives the same bytes, whatever ``chunk``
    (how many drawings are rendered at once; it only trades memory for speed).
    """
    checks.positive_int("num_classes", num_classes)
    checks.positive_int("drawings", drawings)
    checks.int_in_range("size", size, 8)
    checks.int_in_range("seed", seed, 0)
    checks.positive_int("chunk", chunk)
    g = torch.Generator().manual_seed(seed)
    strokes, mask = _class_strokes(num_classes, g)
    noise = _drawing_noise(num_classes, drawings, g)
    # Per-drawing control points, then the affine map x ↦ R · Shear · diag(scale) · x + shift.
    pts = strokes.unsqueeze(1) + noise["jitter"]  # (C, D, S, 4, 2)
    cos, sin = torch.cos(noise["rotation"]), torch.sin(noise["rotation"])
    rot = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # (C, D, 2, 2)
    shear = torch.zeros(num_classes, drawings, 2, 2)
    shear[..., 0, 0] = shear[..., 1, 1] = 1
    shear[..., 0, 1] = noise["shear"]
    affine = rot @ shear @ torch.diag_embed(noise["scale"])
    pts = torch.einsum("cdij,cdskj->cdski", affine, pts) + noise["shift"].view(num_classes, drawings, 1, 1, 2)
    flat_pts = pts.reshape(-1, _MAX_STROKES, 4, 2)
    flat_mask = mask.unsqueeze(1).expand(num_classes, drawings, _MAX_STROKES).reshape(-1, _MAX_STROKES)
    flat_width = noise["width"].reshape(-1) * (size / IMAGE_SIZE)
    out = torch.empty(num_classes * drawings, size, size, dtype=torch.uint8)
    for i in range(0, out.shape[0], chunk):
        ink = _render(flat_pts[i:i + chunk], flat_mask[i:i + chunk], flat_width[i:i + chunk], size)
        out[i:i + chunk] = (ink * 255).round().to(torch.uint8)
    return out.view(num_classes, drawings, size, size)


def _cache_file(seed: int, num_classes: int, drawings: int, size: int) -> Path:
    return cache_dir() / f"glyphs-v{FORMAT_VERSION}-seed{seed}-{num_classes}x{drawings}-{size}px.pt"


def glyph_dataset(seed: int = 0, *, cache: bool = True) -> Tensor:
    """All 1,623 glyph classes × 20 drawings, ``uint8 (1623, 20, 28, 28)``; cached on disk if ``cache``.

    A cached file is used only if its name matches the generator version, seed and sizes
    and its contents have the expected shape and dtype; otherwise it is regenerated.
    """
    checks.int_in_range("seed", seed, 0)
    shape = (BACKGROUND_CLASSES + EVALUATION_CLASSES, DRAWINGS, IMAGE_SIZE, IMAGE_SIZE)
    path = _cache_file(seed, shape[0], shape[1], shape[2])
    if cache and path.is_file():
        try:
            data = torch.load(path, weights_only=True)
            if isinstance(data, Tensor) and data.dtype == torch.uint8 and tuple(data.shape) == shape:
                return data
        except Exception:  # noqa: BLE001 - a damaged cache file, of any kind, is regenerated below
            pass
    data = generate_glyphs(shape[0], shape[1], seed=seed, size=shape[2])
    if cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    torch.save(data, f)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError:
            pass  # a read-only home directory only costs the regeneration next time
    return data


def load_glyphs(split: str = "background", seed: int = 0, *, cache: bool = True) -> Tensor:
    """One split of the glyph data set as ``uint8 (classes, 20, 28, 28)``.

    ``split``: ``"background"`` (the first 964 classes, for meta-training),
    ``"evaluation"`` (the other 659, for testing) or ``"all"``. The two splits share no
    class.
    """
    checks.one_of("split", split, {"background", "evaluation", "all"})
    data = glyph_dataset(seed, cache=cache)
    if split == "background":
        return data[:BACKGROUND_CLASSES]
    if split == "evaluation":
        return data[BACKGROUND_CLASSES:]
    return data

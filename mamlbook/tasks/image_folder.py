"""Images of one's own, one folder per class, as the tensor `ClassificationTasks` samples.

Layout (the usual one of image classification data sets, e.g. mini-ImageNet's
classes extracted into folders)::

    ROOT/CLASS/*.png|jpg|jpeg|jfif|bmp|gif|tif|tiff|webp

Every class becomes a row of ``images (classes, examples, channels, height, width)``,
``uint8`` (``(classes, examples, height, width)`` with ``channels=1``), classes in the
order of their folder names, images in the order of their file names. Each image is
decoded by Pillow (10.3 or later, which opens 16-bit grey PNGs as 16-bit), turned
upright as a viewer shows it (the EXIF orientation of phone photos), converted to RGB or
grey (16-bit images scaled to 8 bits; transparency dropped, so a transparent pixel keeps
its stored colour, often black) and resized to ``size`` with the Lanczos filter, as the
MAML code prepares mini-ImageNet (84×84; ``data/miniImagenet/proc_images.py`` in
github.com/cbfinn/maml); an image of another aspect ratio is stretched, not cropped.
The values are kept as they are (no inversion: Omniglot's loaders turn black ink on
white into bright ink; a photograph stays a photograph).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from .. import checks
from .omniglot import DatasetError

#: File endings read as images (any case). Hidden files (a leading "."), the folder files
#: Windows writes and the __MACOSX/ of a zip made on a Mac (`SKIPPED`) are skipped; any
#: other file, a sub-folder or a broken link in a class folder is refused, not ignored.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".jfif", ".bmp", ".gif", ".tif", ".tiff", ".webp")
SKIPPED = ("thumbs.db", "desktop.ini", "__macosx")


def load_image_folder(root: str | os.PathLike, *, size: int | tuple[int, int], channels: int = 3,
                      per_class: int | None = None, progress: bool = True) -> tuple[Tensor, list[str]]:
    """``ROOT/CLASS/*.png`` (and other image files) as ``uint8 (classes, examples, channels,
    height, width)``, and the class names (the folders' names).

    Parameters
    ----------
    size : the side of the square images returned, or ``(height, width)``.
    channels : 3 (RGB; grey and palette images are converted) or 1 (grey: the result
        is ``(classes, examples, height, width)``, as Omniglot's).
    per_class : examples taken from each class, the first in file-name order; ``None``
        (the default): every image, and every class must hold the same number.
    progress : a progress bar over the classes.

    Raises
    ------
    FileNotFoundError : ``root`` is not a folder.
    DatasetError (a ValueError) : no class folders, a class folder without images, a file
        that is not an image, a sub-folder or a broken link in a class folder (its name),
        an image that cannot be decoded or whose 32-bit pixels have no known range,
        classes with different numbers of images (``per_class=None``), or a class with
        fewer than ``per_class``.

    >>> images, names = load_image_folder("mini_imagenet/train", size=84)  # doctest: +SKIP
    >>> images.shape  # 64 classes of 600 images
    torch.Size([64, 600, 3, 84, 84])
    """
    height, width = checks.image_size("size", size)
    checks.one_of("channels", channels, {1, 3})
    if per_class is not None:
        checks.positive_int("per_class", per_class)
    checks.flag("progress", progress)
    folder = Path(root)
    if not folder.is_dir():
        raise FileNotFoundError(f"root {str(folder)!r} is not a folder; expected ROOT/CLASS/*.png (one folder of "
                                "images per class)")
    classes = sorted(p for p in folder.iterdir()
                     if p.is_dir() and not p.name.startswith(".") and p.name.lower() not in SKIPPED)
    if not classes:
        raise DatasetError(f"{str(folder)!r} has no class folders; expected ROOT/CLASS/*.png (one folder of "
                           "images per class)")
    files = [_image_files(c) for c in classes]
    counts = [len(f) for f in files]
    if per_class is None and len(set(counts)) > 1:
        fewest = counts.index(min(counts))
        raise DatasetError(f"the classes of {str(folder)!r} hold different numbers of images ({min(counts)} to "
                           f"{max(counts)}; {str(classes[fewest])!r} has {counts[fewest]}): pass per_class=N to "
                           f"take the first N of each (at most {min(counts)})")
    if per_class is not None and min(counts) < per_class:
        fewest = counts.index(min(counts))
        raise DatasetError(f"per_class={per_class}, but {str(classes[fewest])!r} has {counts[fewest]} images; "
                           f"per_class must be in [1, {min(counts)}] for {str(folder)!r}")
    examples = per_class or counts[0]
    out = torch.empty(len(classes), examples, channels, height, width, dtype=torch.uint8)
    for c, paths in enumerate(tqdm(files, desc="classes", disable=not progress)):
        for e, path in enumerate(paths[:examples]):
            out[c, e] = _read(path, channels, height, width)
    return (out[:, :, 0] if channels == 1 else out), [c.name for c in classes]


def _image_files(folder: Path) -> list[Path]:
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.name.lower() not in SKIPPED)
    others = [p for p in entries if not (p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)]
    if others:
        other = others[0]
        if other.is_dir():
            what = ("is a folder; a class folder holds images, not sub-folders"
                    + (" (is root one level too high?)" if all(p.is_dir() for p in entries) else ""))
        elif other.is_symlink() and not other.exists():
            what = "is a link to nothing (its target is missing)"
        else:
            what = f"is not an image file; a class folder holds images only ({', '.join(IMAGE_SUFFIXES)})"
        count = f"{len(others)} entr{'y' if len(others) == 1 else 'ies'} of {str(folder)!r} not an image"
        raise DatasetError(f"{str(other)!r} {what} ({count})")
    if not entries:
        raise DatasetError(f"class folder {str(folder)!r} has no images")
    return entries


def _read(path: Path, channels: int, height: int, width: int) -> Tensor:
    """One image as ``uint8 (channels, height, width)``."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as stored:
            image = ImageOps.exif_transpose(stored)  # upright, as a viewer shows it
            if image.mode in ("I", "F"):  # convert() would clip them to 0-255: white or black images
                raise DatasetError(f"{str(path)!r} has 32-bit {'floating-point' if image.mode == 'F' else 'integer'} "
                                   f"pixels (Pillow mode {image.mode!r}) whose range is not known; save it with 8 or "
                                   "16 bits per channel")
            if image.mode.startswith("I;16"):  # 16-bit grey: 0-65535 onto 0-255 (65535 / 257 = 255)
                image = Image.fromarray(np.rint(np.asarray(image, dtype=np.float64) / 257).astype(np.uint8))  # mode "L"
            image = image.convert("RGB" if channels == 3 else "L")
            if image.size != (width, height):
                image = image.resize((width, height), Image.Resampling.LANCZOS)
            pixels = np.asarray(image, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as err:
        if isinstance(err, DatasetError):
            raise
        raise DatasetError(f"cannot read {str(path)!r} as an image: {err}") from err
    pixels = pixels.reshape(height, width, channels)
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1)

"""The real Omniglot (Lake, Salakhutdinov, Tenenbaum 2015), for readers who have it.

Layout (as in the official zips of github.com/brendenlake/omniglot, ``python/``)::

    ROOT/images_background/ALPHABET/characterNN/*.png   964 characters (30 alphabets)
    ROOT/images_evaluation/ALPHABET/characterNN/*.png   659 characters (20 alphabets)

with 20 drawings of 105×105 pixels per character. `load_omniglot` returns one split
as ``uint8 (characters, drawings, 28, 28)`` with ink bright (255), like the shipped
minimal sets (`mamlbook.tasks.omniglot_shipped`), so `ClassificationTasks` takes either. Images are read with
matplotlib (no Pillow needed) and shrunk by area averaging.

`download` fetches the official zips for readers who are online: it checks each
file's MD5 against the published value, extracts it into a temporary folder beside
the destination (refusing absolute paths, ``..`` and links, which could write outside
it), and only then renames the folder into place, atomically. A failed or interrupted
download therefore leaves either nothing or a complete split, never a partial one that
a later `load_omniglot` would accept. Nothing in the book or its tests downloads.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from torch import Tensor

from .. import checks

SPLITS = {"background": "images_background", "evaluation": "images_evaluation"}
URL = "https://github.com/brendenlake/omniglot/raw/master/python/{folder}.zip"
MD5 = {"images_background": "68d2efa1b9178cc56df9314c21c6e718",
       "images_evaluation": "6b91aef0f799c5bb55b94e3f2daec811"}
EXPECTED_CHARACTERS = {"images_background": 964, "images_evaluation": 659}


class DatasetError(ValueError):
    """The data set folder is missing, incomplete or malformed (the message names the path)."""


def _character_folders(split_dir: Path) -> list[Path]:
    if not split_dir.is_dir():
        raise FileNotFoundError(
            f"Omniglot folder {str(split_dir)!r} does not exist; expected ROOT/{split_dir.name}/ALPHABET/CHARACTER/*.png "
            f"(the official {split_dir.name}.zip extracted into ROOT; mamlbook.tasks.omniglot.download(ROOT) fetches it)")
    alphabets = sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not alphabets:
        raise DatasetError(f"Omniglot folder {str(split_dir)!r} has no alphabet folders; expected ALPHABET/CHARACTER/*.png inside it")
    characters = []
    for alphabet in alphabets:
        found = sorted(p for p in alphabet.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not found:
            raise DatasetError(f"alphabet folder {str(alphabet)!r} has no character folders")
        characters += found
    return characters


def _read_png(path, where: Path | None = None) -> Tensor:
    """A PNG (a path or a binary file) as a float ``(H, W)`` tensor, ink 1 on paper 0.

    Omniglot stores black ink on white. ``where`` names the image in error messages
    (default: ``path``).
    """
    import matplotlib.image as mpimg

    where = path if where is None else where
    try:
        image = mpimg.imread(path, format="png")
    except Exception as err:  # matplotlib raises several types for a bad file
        raise DatasetError(f"cannot read {str(where)!r} as a PNG image: {err}") from err
    t = torch.as_tensor(np.asarray(image, dtype=np.float32))
    if np.asarray(image).dtype == np.uint8:
        t = t / 255
    if t.ndim == 3:  # RGB(A): drop alpha, average colours
        t = t[..., :3].mean(-1)
    if t.ndim != 2:
        raise DatasetError(f"{str(where)!r} is not a 2-D image (shape {tuple(image.shape)})")
    return 1 - t


def load_omniglot(root: str | os.PathLike, split: str = "background", *, size: int = 28) -> tuple[Tensor, list[str]]:
    """One split of Omniglot as ``uint8 (characters, drawings, size, size)`` (ink 255), and the character names.

    Characters are ordered by alphabet, then character folder; names read
    ``"Alphabet/characterNN"``. Every character must have the same number of drawings.

    Raises
    ------
    FileNotFoundError : ``ROOT/images_<split>`` does not exist (the message shows the
        expected layout and how to download).
    DatasetError (a ValueError) : no alphabets or characters, a character without PNG
        files, characters with different numbers of drawings, or an unreadable image.
    """
    checks.one_of("split", split, set(SPLITS))
    checks.int_in_range("size", size, 1)
    split_dir = Path(root) / SPLITS[split]
    characters = _character_folders(split_dir)
    files = []
    for folder in characters:
        pngs = sorted(folder.glob("*.png"))
        if not pngs:
            raise DatasetError(f"character folder {str(folder)!r} has no .png drawings")
        files.append(pngs)
    counts = {len(f) for f in files}
    if len(counts) != 1:
        fewest = min(range(len(files)), key=lambda i: len(files[i]))
        raise DatasetError(f"characters in {str(split_dir)!r} have different numbers of drawings ({sorted(counts)}); "
                           f"e.g. {str(characters[fewest])!r} has {len(files[fewest])}: the folder looks incomplete")
    drawings = counts.pop()
    out = torch.empty(len(characters), drawings, size, size, dtype=torch.uint8)
    for c, pngs in enumerate(files):
        images = torch.stack([_resize(_read_png(p), size, p) for p in pngs])
        out[c] = (images * 255).round().clamp(0, 255).to(torch.uint8)
    names = [f"{f.parent.name}/{f.name}" for f in characters]
    return out, names


def _resize(image: Tensor, size: int, path: Path) -> Tensor:
    if image.shape[0] != image.shape[1]:
        raise DatasetError(f"{str(path)!r} is not square (shape {tuple(image.shape)}); Omniglot drawings are 105×105")
    if image.shape[0] == size:
        return image
    return torch.nn.functional.interpolate(image[None, None], size=(size, size), mode="area")[0, 0]


# ----------------------------------------------------------------------------- download


def _fetch(url: str, destination: Path) -> None:
    """Download ``url`` to ``destination`` (tests replace this function; nothing else downloads)."""
    with urllib.request.urlopen(url, timeout=60) as response, open(destination, "wb") as f:  # noqa: S310 (fixed https URL)
        shutil.copyfileobj(response, f)


def md5sum(path: str | os.PathLike) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def safe_extract(archive: str | os.PathLike, destination: str | os.PathLike) -> None:
    """Extract a zip into ``destination``, refusing any member that could land outside it.

    Rejected (``DatasetError``, before anything is written): absolute paths, drive
    letters, ``..`` components, backslashes, and symbolic links.
    """
    destination = Path(destination).resolve()
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        for info in members:
            name = info.filename
            parts = PurePosixPath(name).parts
            mode = info.external_attr >> 16
            if (name.startswith("/") or "\\" in name or (parts and ":" in parts[0]) or ".." in parts
                    or stat.S_ISLNK(mode)):
                raise DatasetError(f"refusing to extract {name!r} from {str(archive)!r}: it would escape "
                                   f"the destination folder (absolute path, '..', or a link)")
            target = (destination / name).resolve()
            if target != destination and destination not in target.parents:
                raise DatasetError(f"refusing to extract {name!r} from {str(archive)!r}: it resolves outside {str(destination)!r}")
        for info in members:
            zf.extract(info, destination)


def download(root: str | os.PathLike, splits: tuple[str, ...] = ("background", "evaluation")) -> Path:
    """Fetch, verify and extract the official Omniglot zips into ``root`` (skips splits already there).

    Each split is downloaded into a temporary folder inside ``root``, its MD5 checked
    against `MD5`, extracted safely (`safe_extract`), checked to contain its folder,
    and renamed into place in one step. On any failure the temporary folder is
    removed and the error re-raised: ``root`` then holds only what it held before.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for split in splits:
        checks.one_of("split", split, set(SPLITS))
        folder = SPLITS[split]
        final = root / folder
        if final.is_dir():
            continue
        work = Path(tempfile.mkdtemp(prefix=f".{folder}-", dir=root))
        try:
            archive = work / f"{folder}.zip"
            _fetch(URL.format(folder=folder), archive)
            digest = md5sum(archive)
            if digest != MD5[folder]:
                raise DatasetError(f"checksum mismatch for {folder}.zip: MD5 {digest}, expected {MD5[folder]}; "
                                   "the download is corrupt or incomplete (nothing was extracted)")
            extracted = work / "extracted"
            safe_extract(archive, extracted)
            if not (extracted / folder).is_dir():
                raise DatasetError(f"{folder}.zip does not contain the folder {folder!r}")
            os.replace(extracted / folder, final)  # atomic on one file system
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return root

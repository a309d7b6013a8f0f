"""The Omniglot files shipped with the package: two minimal background sets and Lake's 20 runs.

``mamlbook/data/omniglot/`` holds three zips copied unchanged from the official
repository (github.com/brendenlake/omniglot, ``python/``, MIT licence, kept beside
them), read straight from the zips; nothing is extracted and nothing is downloaded.

* ``images_background_small1.zip`` / ``images_background_small2.zip``: the "minimal"
  background sets of Lake et al. (2015, 2019), 5 alphabets each. Greek and Latin are
  in both, byte for byte, so together they hold 242 distinct characters from 8
  alphabets. `minimal_split` deduplicates them and splits by alphabet: train on small 1
  (136 characters), test on the three alphabets only in small 2 (Japanese katakana,
  Sanskrit, Tagalog: 106 characters), so no test alphabet is seen in training.
* ``all_runs.zip``: the 20 runs of Lake et al.'s 20-way *within-alphabet* one-shot
  benchmark, `load_runs`. A run is a given task: one drawing of each of 20 characters
  (the support set), 20 further drawings (the query set), and the answer key.

Every read checks the file's SHA-256 against `SHA256` first; a missing, truncated,
replaced or corrupted file raises `DatasetError` (a ``ValueError``) naming its path.
Images come out like `mamlbook.tasks.omniglot.load_omniglot`'s: ``uint8``, ink bright
(255), shrunk from 105×105 by area averaging.
"""
from __future__ import annotations

import functools
import hashlib
import io
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import torch
from torch import Tensor

from .. import checks
from .omniglot import DatasetError, _read_png, _resize

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "omniglot"
SHA256 = {
    "images_background_small1.zip": "f38eb80f801274ac2b4dff5b24289016bfaba4a7d5bb50deebf27104ad6cb8a4",
    "images_background_small2.zip": "3ccaa407515a8778e5d0861875af38b17e418f301ad5bb3b5a6b65d901a41c7f",
    "all_runs.zip": "437c1eeab0af8484112e1b4cc0f3d541ec727f7c47b9b202da738af9dfd6c325",
}
MINIMAL = {"small1": "images_background_small1.zip", "small2": "images_background_small2.zip"}
HELD_OUT_ALPHABETS = ("Japanese_(katakana)", "Sanskrit", "Tagalog")


def sha256sum(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified_zip(name: str, data_dir: str | os.PathLike | None = None) -> zipfile.ZipFile:
    """The shipped zip ``name``, opened after its SHA-256 matched `SHA256` (else `DatasetError`)."""
    checks.one_of("name", name, set(SHA256))
    path = Path(data_dir) if data_dir is not None else DATA_DIR
    path = path / name
    if not path.is_file():
        raise DatasetError(f"Omniglot file {str(path)!r} is missing; it ships with mamlbook "
                           f"(mamlbook/data/omniglot/, copied unchanged from github.com/brendenlake/omniglot)")
    digest = sha256sum(path)
    if digest != SHA256[name]:
        raise DatasetError(f"Omniglot file {str(path)!r} has SHA-256 {digest}, expected {SHA256[name]}: "
                           "it is corrupted, truncated or another file; restore the original from the package")
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile as err:  # cannot happen with the right checksum; kept for a clear message
        raise DatasetError(f"Omniglot file {str(path)!r} is not a zip archive: {err}") from err


def _image(zf: zipfile.ZipFile, member: str, size: int) -> Tensor:
    where = Path(f"{zf.filename}:{member}")
    return _resize(_read_png(io.BytesIO(zf.read(member)), where), size, where)


def _to_uint8(images: Tensor) -> Tensor:
    return (images * 255).round().clamp(0, 255).to(torch.uint8)


@dataclass(frozen=True)
class Alphabets:
    """Characters of one or more alphabets: ``images uint8 (characters, 20, size, size)``.

    ``names[i]`` is ``"Alphabet/characterNN"``; ``alphabets`` the alphabets in order.
    """

    images: Tensor
    names: tuple[str, ...]

    @property
    def alphabets(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(n.split("/")[0] for n in self.names))

    def select(self, alphabets) -> "Alphabets":
        """The characters of the named ``alphabets`` (a list of names; each must be here)."""
        if isinstance(alphabets, str) or not all(isinstance(a, str) for a in alphabets):
            raise TypeError(f"alphabets must be a list of alphabet names, got {alphabets!r}")
        here = sorted({n.split("/")[0] for n in self.names})
        missing = [a for a in alphabets if a not in here]
        if missing:
            raise ValueError(f"alphabets {missing} are not in this set; it has {here}")
        keep = [i for i, n in enumerate(self.names) if n.split("/")[0] in set(alphabets)]
        return Alphabets(self.images[keep], tuple(self.names[i] for i in keep))

    def __len__(self) -> int:
        return len(self.names)


@functools.lru_cache(maxsize=8)
def _minimal_cached(which: str, size: int, data_dir: str | None) -> tuple[Alphabets, tuple[tuple[str, str], ...]]:
    name = MINIMAL[which]
    top = name.removesuffix(".zip")
    with verified_zip(name, data_dir) as zf:
        members = sorted(m for m in zf.namelist() if m.endswith(".png"))
        by_character: dict[str, list[str]] = {}
        for m in members:
            parts = PurePosixPath(m).parts
            if len(parts) != 4 or parts[0] != top:
                raise DatasetError(f"unexpected member {m!r} in {zf.filename!r}; expected {top}/ALPHABET/CHARACTER/*.png")
            by_character.setdefault(f"{parts[1]}/{parts[2]}", []).append(m)
        counts = {len(v) for v in by_character.values()}
        if counts != {20}:
            raise DatasetError(f"{zf.filename!r}: every character should have 20 drawings, found {sorted(counts)}")
        images = torch.empty(len(by_character), 20, size, size, dtype=torch.uint8)
        digests = []
        for c, (character, files) in enumerate(by_character.items()):
            images[c] = _to_uint8(torch.stack([_image(zf, m, size) for m in files]))
            digest = hashlib.sha256(b"".join(zf.read(m) for m in files)).hexdigest()
            digests.append((character, digest))
    return Alphabets(images, tuple(by_character)), tuple(digests)


def load_minimal(which: str = "small1", *, size: int = 28, data_dir: str | os.PathLike | None = None) -> Alphabets:
    """One minimal background set, ``"small1"`` (136 characters) or ``"small2"`` (156), from its zip.

    Characters are ordered by alphabet, then character folder. Cached per process.
    """
    checks.one_of("which", which, set(MINIMAL))
    checks.int_in_range("size", size, 1)
    return _minimal_cached(which, size, None if data_dir is None else str(data_dir))[0]


def load_minimal_union(*, size: int = 28, data_dir: str | os.PathLike | None = None) -> Alphabets:
    """Both minimal sets, deduplicated: 242 characters of 8 alphabets.

    An alphabet in both sets (Greek, Latin) is kept once, after checking that its
    drawings are byte-identical in the two zips (`DatasetError` otherwise).
    """
    d = None if data_dir is None else str(data_dir)
    one, one_digests = _minimal_cached("small1", size, d)
    two, two_digests = _minimal_cached("small2", size, d)
    known = dict(one_digests)
    keep = []
    for i, (character, digest) in enumerate(two_digests):
        if character in known:
            if known[character] != digest:
                raise DatasetError(f"character {character!r} is in both minimal sets with different drawings")
        else:
            keep.append(i)
    shared = {n.split("/")[0] for n in two.names} & {n.split("/")[0] for n in one.names}
    for alphabet in shared:  # an alphabet in both sets must be the same set of characters
        if {n for n in one.names if n.startswith(alphabet + "/")} != {n for n in two.names if n.startswith(alphabet + "/")}:
            raise DatasetError(f"alphabet {alphabet!r} has different characters in the two minimal sets")
    return Alphabets(torch.cat([one.images, two.images[keep]]), one.names + tuple(two.names[i] for i in keep))


def minimal_split(*, size: int = 28, data_dir: str | os.PathLike | None = None) -> tuple[Alphabets, Alphabets]:
    """``(train, test)``: the 136 characters of small 1, and the 106 of the three alphabets only in small 2.

    Greek and Latin (in both sets) are training alphabets; the test alphabets
    (`HELD_OUT_ALPHABETS`) never appear in training.
    """
    train = load_minimal("small1", size=size, data_dir=data_dir)
    test = load_minimal_union(size=size, data_dir=data_dir).select(HELD_OUT_ALPHABETS)
    return train, test


@dataclass(frozen=True)
class Run:
    """One of Lake et al.'s 20 runs: 20-way one-shot classification within one alphabet.

    ``support uint8 (20, size, size)``: ``support[j]`` is the only drawing of class
    ``j`` (``trainingJJ``, ``JJ = j + 1``); ``query uint8 (20, size, size)``:
    ``query[i]`` is ``testII``; ``answers int64 (20,)``: the class of each query image
    (from ``class_labels.txt``).
    """

    name: str
    support: Tensor
    query: Tensor
    answers: Tensor


_LABEL_LINE = re.compile(r"^(run\d\d)/test/item(\d\d)\.png\s+(run\d\d)/training/class(\d\d)\.png$")


@functools.lru_cache(maxsize=4)
def _runs_cached(size: int, data_dir: str | None) -> tuple[Run, ...]:
    runs = []
    with verified_zip("all_runs.zip", data_dir) as zf:
        names = sorted({PurePosixPath(m).parts[0] for m in zf.namelist() if m.startswith("run")})
        for run in names:
            support = torch.stack([_image(zf, f"{run}/training/class{j:02d}.png", size) for j in range(1, 21)])
            query = torch.stack([_image(zf, f"{run}/test/item{i:02d}.png", size) for i in range(1, 21)])
            answers = torch.full((20,), -1, dtype=torch.long)
            for line in zf.read(f"{run}/class_labels.txt").decode().split("\n"):
                if not line.strip():
                    continue
                match = _LABEL_LINE.match(line.strip())
                if match is None or match[1] != run or match[3] != run:
                    raise DatasetError(f"{zf.filename!r}: cannot parse {run}/class_labels.txt line {line!r}")
                answers[int(match[2]) - 1] = int(match[4]) - 1
            if (answers < 0).any():
                raise DatasetError(f"{zf.filename!r}: {run}/class_labels.txt does not answer every test item")
            runs.append(Run(run, _to_uint8(support), _to_uint8(query), answers))
    return tuple(runs)


def load_runs(*, size: int = 28, data_dir: str | os.PathLike | None = None) -> list[Run]:
    """The 20 runs (``run01`` … ``run20``) of the 20-way one-shot benchmark, from ``all_runs.zip``."""
    checks.int_in_range("size", size, 1)
    return list(_runs_cached(size, None if data_dir is None else str(data_dir)))


def runs_as_tasks(runs: list[Run], dtype: torch.dtype = torch.float32):
    """The runs as a `TaskBatch` (20 tasks, 20-way): support labels ``0…19``, query labels the answers."""
    from .base import TaskBatch

    x_s = torch.stack([r.support for r in runs]).to(dtype).div(255).unsqueeze(2)
    x_q = torch.stack([r.query for r in runs]).to(dtype).div(255).unsqueeze(2)
    y_s = torch.arange(20).expand(len(runs), 20).contiguous()
    y_q = torch.stack([r.answers for r in runs])
    return TaskBatch(x_s, y_s, x_q, y_q)

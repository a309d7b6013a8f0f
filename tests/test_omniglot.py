"""The Omniglot loader on a tiny tree made here, and the download's safety (nothing is fetched)."""
import hashlib
import io
import stat
import zipfile

import matplotlib.image as mpimg
import numpy as np
import pytest
import torch

from mamlbook.tasks import omniglot
from mamlbook.tasks.classification import ClassificationTasks


def drawing(seed, size=14):
    """Black ink on white paper, like Omniglot's PNGs."""
    rng = np.random.default_rng(seed)
    img = np.ones((size, size))
    r = rng.integers(2, size - 2)
    img[r, 2:size - 2] = 0.0  # a horizontal stroke at a seed-dependent row
    return img


def make_tree(root, folder="images_background", alphabets=("Alpha", "Beta"), characters=2, drawings=3, size=14):
    for a in alphabets:
        for c in range(1, characters + 1):
            d = root / folder / a / f"character{c:02d}"
            d.mkdir(parents=True)
            for k in range(drawings):
                mpimg.imsave(d / f"{c:02d}_{k:02d}.png", drawing(hash((a, c, k)) % 1000, size), cmap="gray", vmin=0, vmax=1)
    return root


def test_loads_a_tiny_tree(tmp_path):
    make_tree(tmp_path)
    images, names = omniglot.load_omniglot(tmp_path, "background", size=7)
    assert images.dtype == torch.uint8 and images.shape == (4, 3, 7, 7)
    assert names == ["Alpha/character01", "Alpha/character02", "Beta/character01", "Beta/character02"]
    # ink is bright after loading: each image has a bright row and mostly dark paper
    assert images.float().mean() < 0.35 * 255 and images.amax(dim=(2, 3)).min() > 100
    full, _ = omniglot.load_omniglot(tmp_path, "background", size=14)
    row = full[0, 0].float().mean(1).argmax()
    assert full[0, 0, row, 2:12].min() == 255 and full[0, 0, 0].max() == 0
    tasks = ClassificationTasks(images, ways=3, rotations=True).sample(2, 1, 2, generator=torch.Generator().manual_seed(0))
    assert tasks.x_support.shape == (2, 3, 1, 7, 7)


def test_missing_folder_says_what_is_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"images_evaluation.*ALPHABET/CHARACTER/\*\.png.*download"):
        omniglot.load_omniglot(tmp_path, "evaluation")
    with pytest.raises(ValueError, match="split must be one of"):
        omniglot.load_omniglot(tmp_path, "train")


@pytest.mark.parametrize("damage, message", [
    ("empty", "has no alphabet folders"),
    ("no_characters", "has no character folders"),
    ("no_png", "has no .png drawings"),
    ("uneven", "different numbers of drawings"),
    ("corrupt", "cannot read"),
])
def test_malformed_trees_are_refused(tmp_path, damage, message):
    split = tmp_path / "images_background"
    if damage == "empty":
        split.mkdir()
    elif damage == "no_characters":
        (split / "Alpha").mkdir(parents=True)
    else:
        make_tree(tmp_path)
        victim = split / "Beta" / "character02"
        pngs = sorted(victim.glob("*.png"))
        if damage == "no_png":
            for p in pngs:
                p.unlink()
        elif damage == "uneven":
            pngs[0].unlink()
        elif damage == "corrupt":
            pngs[0].write_bytes(b"\x89PNG but not really")
    with pytest.raises(omniglot.DatasetError, match=message):
        omniglot.load_omniglot(tmp_path, "background")


def zip_bytes(entries):
    """entries: {name: bytes} or {name: (bytes, unix mode)}."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name)
            if isinstance(data, tuple):
                data, mode = data
                info.external_attr = mode << 16
            zf.writestr(info, data)
    return buf.getvalue()


def png_bytes(seed):
    buf = io.BytesIO()
    mpimg.imsave(buf, drawing(seed), cmap="gray", vmin=0, vmax=1, format="png")
    return buf.getvalue()


def good_zip():
    return zip_bytes({f"images_background/Alpha/character{c:02d}/{k}.png": png_bytes(10 * c + k)
                      for c in (1, 2) for k in range(2)})


def fake_fetch(monkeypatch, payload, calls=None):
    def fetch(url, destination):
        if calls is not None:
            calls.append(url)
        destination.write_bytes(payload)
    monkeypatch.setattr(omniglot, "_fetch", fetch)
    monkeypatch.setitem(omniglot.MD5, "images_background", hashlib.md5(payload).hexdigest())


def leftovers(root):
    return sorted(p.name for p in root.iterdir())


def test_download_verifies_extracts_and_loads(monkeypatch, tmp_path):
    calls = []
    fake_fetch(monkeypatch, good_zip(), calls)
    omniglot.download(tmp_path, ("background",))
    assert leftovers(tmp_path) == ["images_background"], "no temporary files remain"
    images, names = omniglot.load_omniglot(tmp_path, "background", size=7)
    assert images.shape == (2, 2, 7, 7) and calls == [omniglot.URL.format(folder="images_background")]
    omniglot.download(tmp_path, ("background",))
    assert len(calls) == 1, "a split already present is not fetched again"


def test_failed_checksum_leaves_nothing_behind(monkeypatch, tmp_path):
    fake_fetch(monkeypatch, good_zip())
    monkeypatch.setitem(omniglot.MD5, "images_background", "0" * 32)
    with pytest.raises(omniglot.DatasetError, match="checksum mismatch"):
        omniglot.download(tmp_path, ("background",))
    assert leftovers(tmp_path) == []
    with pytest.raises(FileNotFoundError):
        omniglot.load_omniglot(tmp_path, "background")


def test_interrupted_download_leaves_nothing_behind(monkeypatch, tmp_path):
    def broken_fetch(url, destination):
        destination.write_bytes(good_zip()[:100])
        raise ConnectionError("connection reset")
    monkeypatch.setattr(omniglot, "_fetch", broken_fetch)
    with pytest.raises(ConnectionError):
        omniglot.download(tmp_path, ("background",))
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("evil", ["../escape.txt", "images_background/../../escape.txt", "/tmp/escape.txt",
                                  "C:/escape.txt", "images_background\\..\\..\\escape.txt"])
def test_path_escapes_are_refused_before_writing_anything(monkeypatch, tmp_path, evil):
    dest = tmp_path / "root"
    payload = zip_bytes({"images_background/Alpha/character01/0.png": png_bytes(1), evil: b"owned"})
    fake_fetch(monkeypatch, payload)
    with pytest.raises(omniglot.DatasetError, match="refusing to extract"):
        omniglot.download(dest, ("background",))
    assert leftovers(dest) == []
    assert not list(tmp_path.rglob("escape.txt"))


def test_symlink_members_are_refused(tmp_path):
    archive = tmp_path / "a.zip"
    archive.write_bytes(zip_bytes({"images_background/link": (b"/etc/passwd", stat.S_IFLNK | 0o777)}))
    with pytest.raises(omniglot.DatasetError, match="refusing to extract"):
        omniglot.safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_archive_without_the_split_folder_is_refused(monkeypatch, tmp_path):
    fake_fetch(monkeypatch, zip_bytes({"something_else/a.png": png_bytes(0)}))
    with pytest.raises(omniglot.DatasetError, match="does not contain the folder"):
        omniglot.download(tmp_path, ("background",))
    assert leftovers(tmp_path) == []


# ------------------------------------------------------- the files shipped with the package

from mamlbook.tasks import omniglot_shipped as shipped  # noqa: E402


def test_shipped_files_match_their_checksums():
    for name, digest in shipped.SHA256.items():
        assert shipped.sha256sum(shipped.DATA_DIR / name) == digest
    assert (shipped.DATA_DIR / "LICENSE").read_text().startswith("The MIT License")


def test_minimal_sets_shapes_and_deduplication():
    one = shipped.load_minimal("small1")
    two = shipped.load_minimal("small2")
    assert one.images.shape == (136, 20, 28, 28) and one.images.dtype == torch.uint8
    assert two.images.shape == (156, 20, 28, 28)
    assert one.alphabets == ("Balinese", "Early_Aramaic", "Greek", "Korean", "Latin")
    union = shipped.load_minimal_union()
    assert len(union) == 242 and len(union.alphabets) == 8, "Greek and Latin counted once"
    assert len(set(union.names)) == 242
    # ink is bright and sparse: most pixels are paper
    assert 0.03 < float(union.images.float().mean() / 255) < 0.15
    greek_in_one = one.select(["Greek"]).images
    assert torch.equal(greek_in_one, two.select(["Greek"]).images), "the shared alphabets are identical"


def test_held_out_split_shares_no_alphabet():
    train, test = shipped.minimal_split()
    assert len(train) == 136 and len(test) == 106
    assert test.alphabets == shipped.HELD_OUT_ALPHABETS
    assert not set(train.alphabets) & set(test.alphabets)


def test_runs_are_parsed_with_their_answer_key():
    runs = shipped.load_runs()
    assert [r.name for r in runs] == [f"run{i:02d}" for i in range(1, 21)]
    for r in runs:
        assert r.support.shape == (20, 28, 28) and r.query.shape == (20, 28, 28)
        assert sorted(r.answers.tolist()) == list(range(20)), "each class is asked once"
    # run01/class_labels.txt begins: item01 -> class08, item02 -> class09, item03 -> class02
    assert runs[0].answers[:3].tolist() == [7, 8, 1]
    tasks = shipped.runs_as_tasks(runs)
    assert tasks.x_support.shape == (20, 20, 1, 28, 28) and tasks.y_query.shape == (20, 20)
    # the answer key is right: a query drawing is nearer (in pixels) to its answer than chance
    nearest = torch.cdist(tasks.x_query.flatten(2), tasks.x_support.flatten(2)).argmin(-1)
    assert (nearest == tasks.y_query).float().mean() > 0.15


@pytest.mark.parametrize("damage", ["corrupt", "truncated", "missing", "swapped"])
def test_a_damaged_copy_is_refused_naming_its_path(tmp_path, damage):
    for name in shipped.SHA256:
        (tmp_path / name).write_bytes((shipped.DATA_DIR / name).read_bytes())
    victim = tmp_path / "images_background_small1.zip"
    data = bytearray(victim.read_bytes())
    if damage == "corrupt":
        data[len(data) // 2] ^= 0xFF
        victim.write_bytes(bytes(data))
    elif damage == "truncated":
        victim.write_bytes(bytes(data[:1000]))
    elif damage == "missing":
        victim.unlink()
    else:
        victim.write_bytes((tmp_path / "all_runs.zip").read_bytes())
    message = "is missing" if damage == "missing" else "SHA-256 .* expected"
    with pytest.raises(omniglot.DatasetError, match=message) as err:
        shipped.load_minimal("small1", data_dir=tmp_path)
    assert str(victim) in str(err.value)
    shipped.load_runs(data_dir=tmp_path)  # the intact files still load


def test_full_loader_reads_the_shipped_set_extracted(tmp_path):
    """The loader of the full Omniglot folders, on small 1 extracted as a 'background' split."""
    with shipped.verified_zip("images_background_small1.zip") as zf:
        omniglot.safe_extract(zf.filename, tmp_path / "x")
    (tmp_path / "x" / "images_background_small1").rename(tmp_path / "images_background")
    images, names = omniglot.load_omniglot(tmp_path, "background")
    one = shipped.load_minimal("small1")
    assert tuple(names) == one.names and torch.equal(images, one.images)

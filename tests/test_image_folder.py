"""Images of one's own, one folder per class: what is read, in which order, and what is refused."""
import numpy as np
import pytest
import torch
from PIL import Image

import mamlbook as mb
from mamlbook.tasks.image_folder import load_image_folder
from mamlbook.tasks.omniglot import DatasetError


def write(path, pixels, dtype=np.uint8, **save_options):
    """(H, W) grey or (H, W, 3) RGB pixels, saved in the format of the file's ending."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(pixels, dtype=dtype)).save(path, **save_options)


@pytest.fixture
def folder(tmp_path):
    """3 classes × 4 RGB PNGs of 6×5 pixels (height 6, width 5), every pixel known."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(3, 4, 6, 5, 3))
    for c, name in enumerate(["cat", "ant", "bee"]):
        for e in range(4):
            write(tmp_path / "root" / name / f"{e:02d}.png", pixels[c, e])
    (tmp_path / "root" / ".hidden").mkdir()  # hidden: not a class
    (tmp_path / "root" / "ant" / ".DS_Store").write_bytes(b"x")  # hidden: not an image
    return tmp_path / "root", pixels


def test_images_are_read_exactly_class_by_class_in_name_order(folder):
    root, pixels = folder
    images, names = load_image_folder(root, size=(6, 5), progress=False)
    assert names == ["ant", "bee", "cat"] and images.dtype == torch.uint8 and images.shape == (3, 4, 3, 6, 5)
    order = [1, 2, 0]  # ant, bee, cat were written as classes 1, 2, 0
    assert torch.equal(images, torch.from_numpy(pixels[order]).to(torch.uint8).permute(0, 1, 4, 2, 3))
    first, _ = load_image_folder(root, size=(6, 5), per_class=2, progress=False)
    assert torch.equal(first, images[:, :2])


def test_grey_and_resized_images(folder, tmp_path):
    root, pixels = folder
    grey, _ = load_image_folder(root, size=(6, 5), channels=1, progress=False)
    assert grey.shape == (3, 4, 6, 5)  # as Omniglot's: (classes, examples, height, width)
    # ITU-R 601-2 luma, Pillow's "L" conversion: L = (299 R + 587 G + 114 B) / 1000, rounded
    r, g, b = (pixels[1, 0, ..., i].astype(np.int64) for i in range(3))
    assert np.abs(grey[0, 0].numpy() - (299 * r + 587 * g + 114 * b) / 1000).max() <= 0.5
    # resizing: a plain colour stays that colour; the side is as asked
    for e in range(2):
        write(tmp_path / "flat" / "red" / f"{e}.png", np.tile([200, 10, 30], (40, 60, 1)))
        write(tmp_path / "flat" / "grey" / f"{e}.png", np.full((9, 9), 77))
    images, names = load_image_folder(tmp_path / "flat", size=8, progress=False)
    assert images.shape == (2, 2, 3, 8, 8) and names == ["grey", "red"]
    assert (images[1] == torch.tensor([200, 10, 30]).view(3, 1, 1)).all(), "stretched, same colour"
    assert (images[0] == 77).all(), "a grey image in every channel"
    tasks = mb.ClassificationTasks(images, ways=2).sample(3, 1, 1, generator=torch.Generator().manual_seed(0))
    assert tasks.x_support.shape == (3, 2, 3, 8, 8)


def test_what_is_refused_is_named(folder, tmp_path):
    root, _ = folder
    with pytest.raises(FileNotFoundError, match="ROOT/CLASS"):
        load_image_folder(tmp_path / "nowhere", size=8)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no class folders"):
        load_image_folder(tmp_path / "empty", size=8)
    with pytest.raises(ValueError, match=r"channels must be one of"):
        load_image_folder(root, size=8, channels=4)
    with pytest.raises(ValueError, match=r"size must be one side or \(height, width\)"):
        load_image_folder(root, size=(8, 8, 3))
    with pytest.raises(ValueError, match="size"):
        load_image_folder(root, size=0)
    with pytest.raises(DatasetError, match=r"per_class must be in \[1, 4\]"):
        load_image_folder(root, size=8, per_class=5, progress=False)
    write(root / "bee" / "99.png", np.zeros((6, 5, 3)))
    with pytest.raises(DatasetError, match=r"different numbers of images \(4 to 5.*per_class=N"):
        load_image_folder(root, size=8, progress=False)
    assert load_image_folder(root, size=8, per_class=4, progress=False)[0].shape == (3, 4, 3, 8, 8)
    (root / "cat" / "notes.txt").write_text("not an image")
    with pytest.raises(DatasetError, match=r"notes.txt' is not an image file"):
        load_image_folder(root, size=8, per_class=4, progress=False)
    (root / "cat" / "notes.txt").unlink()
    (root / "cat" / "00.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"cannot read .*00.png' as an image"):
        load_image_folder(root, size=8, per_class=4, progress=False)
    (root / "dog").mkdir()
    with pytest.raises(DatasetError, match="class folder .*dog' has no images"):
        load_image_folder(root, size=8, per_class=4, progress=False)


def test_sixteen_bit_and_rotated_images_are_read_as_shown(tmp_path):
    ramp = np.arange(0, 256, dtype=np.int64).reshape(16, 16)
    write(tmp_path / "a" / "ramp" / "8bit.png", ramp)
    write(tmp_path / "a" / "ramp" / "16bit.png", ramp * 257, dtype=np.uint16)  # 0-65535
    images, _ = load_image_folder(tmp_path / "a", size=16, channels=1, progress=False)
    assert torch.equal(images[0, 0], images[0, 1]), "16 bits scaled onto 0-255, not clipped to white"
    assert torch.equal(images[0, 0], torch.from_numpy(ramp).to(torch.uint8))
    # a phone photo stored sideways with EXIF orientation 6 ("rotate 90° clockwise to view")
    pixels = np.random.default_rng(1).integers(0, 256, size=(2, 3, 3))  # 2 rows, 3 columns
    exif = Image.Exif()
    exif[0x0112] = 6
    write(tmp_path / "b" / "photo" / "0.png", pixels, exif=exif)
    upright, _ = load_image_folder(tmp_path / "b", size=(3, 2), progress=False)  # 3 rows, 2 columns
    expected = np.rot90(pixels, k=-1)  # clockwise
    assert torch.equal(upright[0, 0], torch.from_numpy(expected.copy()).to(torch.uint8).permute(2, 0, 1))
    for name, pixels, dtype in (("float.tiff", ramp / 255, np.float32), ("int32.tiff", ramp * 257, np.int32)):
        write(tmp_path / "c" / "ramp" / name, pixels, dtype=dtype)
        with pytest.raises(DatasetError, match=f"{name}' has 32-bit .* whose range is not known"):
            load_image_folder(tmp_path / "c", size=16, progress=False)
        (tmp_path / "c" / "ramp" / name).unlink()


def test_folders_as_they_come_from_other_machines(tmp_path, monkeypatch):
    write(tmp_path / "r" / "cat" / "0.jfif", np.full((4, 4, 3), 90), format="JPEG")
    (tmp_path / "r" / "cat" / "Thumbs.db").write_bytes(b"windows")  # Windows' folder file: skipped
    (tmp_path / "r" / "cat" / "desktop.ini").write_text("[.ShellClassInfo]")
    (tmp_path / "r" / "__MACOSX" / "cat").mkdir(parents=True)  # a zip made on a Mac: not a class
    assert load_image_folder(tmp_path / "r", size=4, progress=False)[0].shape == (1, 1, 3, 4, 4)
    with pytest.raises(DatasetError, match=r"r/cat' is a folder.*not sub-folders \(is root one level too high\?\) \(1 entry of"):
        load_image_folder(tmp_path, size=4, progress=False)
    (tmp_path / "r" / "cat" / "more").mkdir()
    with pytest.raises(DatasetError, match=r"more' is a folder; a class folder holds images, not sub-folders \("):
        load_image_folder(tmp_path / "r", size=4, progress=False)
    (tmp_path / "r" / "cat" / "more").rmdir()
    (tmp_path / "r" / "cat" / "1.png").symlink_to(tmp_path / "gone.png")
    with pytest.raises(DatasetError, match=r"1.png' is a link to nothing"):
        load_image_folder(tmp_path / "r", size=4, progress=False)
    (tmp_path / "r" / "cat" / "1.png").unlink()
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 4)  # 16 pixels: more than twice as many, a "bomb"
    with pytest.raises(DatasetError, match=r"cannot read .*0.jfif' as an image: .*exceeds limit"):
        load_image_folder(tmp_path / "r", size=4, progress=False)

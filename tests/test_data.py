import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from photos import colourful, png_bomb, write_cifar_batches, write_folder, write_tar
from PIL import Image

from colorcli import data


def test_folder_uses_train_and_val_subfolders(tmp_path):
    records = data.find_records([write_folder(tmp_path / "photos", 6, 3)])
    assert sorted(r.split for r in records) == ["train"] * 6 + ["val"] * 3


def test_tar_is_read_in_place_and_test_folder_validates(tmp_path):
    archive = write_tar(tmp_path / "set.tar.gz", 5, 2)
    records = data.find_records([archive])
    assert [r.split for r in records].count("val") == 2
    assert all(isinstance(r.payload, bytes) for r in records)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set.tar.gz"]  # nothing unpacked
    np.testing.assert_array_equal(np.asarray(records[0].open()), colourful(0, 48))


def test_a_large_jpeg_is_decoded_only_as_large_as_training_needs(tmp_path):
    Image.fromarray(colourful(0, 64)).resize((1600, 1200)).save(tmp_path / "big.jpg")
    record = data.Record("big.jpg", "train", str(tmp_path / "big.jpg"))
    assert record.open().size == (1600, 1200)
    assert record.open(draft=100).size == (200, 150)  # the smallest DCT scale keeping 100 px
    assert data._inspect(record) is None
    crops = data.ColourDataset([record], 64, augment=True, crop_scale=0.5)
    assert crops[0][0].shape[-2:] == (64, 64)


def test_a_folder_inside_an_archive_is_read_alone_in_place(tmp_path):
    archive = write_tar(tmp_path / "set.tar.gz", 5, 2)
    records = data.find_records([archive / "set" / "test"])
    assert [r.split for r in records] == ["val", "val"]
    assert all(r.key.startswith("set.tar.gz:set/test/c/") for r in records)
    with pytest.raises(data.DataError, match="holds no images under set/tes/"):
        data.find_records([archive / "set" / "tes"])  # a prefix of a name is not its folder


def test_an_image_two_data_paths_name_is_taken_once(tmp_path):
    # twice, photos/val's images would be hashed into training by the second path while the
    # first validates on them
    root = write_folder(tmp_path / "photos", 6, 3)
    records = data.find_records([root / "train", root])
    assert len(records) == 9
    assert len({Path(r.payload).resolve() for r in records}) == 9
    (tmp_path / "link").symlink_to(root)
    archive = write_tar(tmp_path / "set.tar.gz", 5, 2)
    for again in ([root, root / "val"], [root, tmp_path / "link"], [archive, archive / "set" / "test"]):
        with pytest.raises(
            data.DataError, match=f"--data {again[1]}: each of its images is already in an earlier"
        ):
            data.find_records(again)
    assert len(data.find_records([archive / "set" / "test", archive])) == 7


def test_cifar_python_batches(tmp_path):
    records = data.find_records([write_cifar_batches(tmp_path / "cifar-10-batches-py", 6, 4)])
    assert [r.split for r in records] == ["train"] * 6 + ["val"] * 4
    np.testing.assert_array_equal(np.asarray(records[0].open()), colourful(0, 32))
    # each image's class is its label's name, in training and validation alike (--class-weight)
    assert [data.class_of(r.key) for r in records] == ["airplane", "automobile"] * 5


def test_cifar_batches_given_one_level_up_or_still_packed_say_what_to_pass(tmp_path):
    batches = write_cifar_batches(tmp_path / "download" / "cifar-10-batches-py")
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz") as tf:
        tf.add(batches, arcname="cifar-10-batches-py")
    with pytest.raises(data.DataError, match=f"CIFAR-10's batches are in {batches}: pass that folder"):
        data.find_records([tmp_path / "download"])
    with pytest.raises(
        data.DataError, match="python archive: unpack it and pass its cifar-10-batches-py folder"
    ):
        data.find_records([tmp_path / "cifar-10-python.tar.gz"])


def test_hash_split_without_split_folders_is_deterministic(tmp_path):
    for i in range(60):
        Image.fromarray(colourful(i, 16)).save(tmp_path / f"{i}.png")
    first = [r.split for r in data.find_records([tmp_path], val_fraction=0.2)]
    again = [r.split for r in data.find_records([tmp_path], val_fraction=0.2)]
    assert first == again and 3 <= first.count("val") <= 25


def test_a_few_photos_with_none_hashed_to_validation_lend_it_one(tmp_path):
    for i, name in enumerate(("astronaut", "coffee", "chelsea", "rocket")):
        Image.fromarray(colourful(i, 16)).save(tmp_path / f"{name}.png")
    records = data.find_records([tmp_path])
    assert all(r.split == "train" for r in records)  # 5 % of four: none
    warnings: list[str] = []
    train, val, summary = data.select(records, warn=warnings.append)
    assert (len(train), len(val), summary.train, summary.val) == (3, 1, 3, 1)
    assert data.select(records, warn=warnings.append)[1] == val  # the same one every run
    assert warnings[0].startswith(f"no validation images; validating on {val[0].key}")
    assert data.select(records[:1], warn=warnings.append)[:2] == (records[:1], [])  # nothing to lend


def test_hidden_files_and_folders_are_passed_over_in_folders_and_archives(tmp_path):
    root = tmp_path / "photos"
    (root / ".thumbnails").mkdir(parents=True)
    Image.fromarray(colourful(0, 16)).save(root / "a.png")
    Image.fromarray(colourful(0, 8)).save(root / ".thumbnails" / "a.png")  # a viewer's small copy
    (root / "._a.png").write_bytes(b"\x00\x05\x16\x07 macOS resource fork")
    with tarfile.open(tmp_path / "photos.tar", "w") as tf:
        tf.add(root, arcname="photos")
    assert [r.key for r in data.find_records([root])] == ["photos/a.png"]
    assert [r.key for r in data.find_records([tmp_path / "photos.tar"])] == ["photos.tar:photos/a.png"]


def test_corrupt_and_grey_images_are_skipped_and_counted(tmp_path):
    root = write_folder(tmp_path / "photos", 4, 2)
    (root / "train" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "train" / "empty.png").write_bytes(b"")
    grey = np.repeat(colourful(7, 48).mean(-1, keepdims=True), 3, -1).astype(np.uint8)
    Image.fromarray(grey).save(root / "train" / "grey.png")
    warnings: list[str] = []
    train, val, summary = data.select(data.find_records([root]), warn=warnings.append)
    assert (len(train), len(val), summary.grey, summary.corrupt) == (4, 2, 1, 2)
    assert any("broken.jpg" in w for w in warnings) and any("empty.png" in w for w in warnings)


def test_modes_and_exif_orientation_become_upright_rgb(tmp_path):
    rgb = colourful(3, 40)[:, :30]  # 40 high, 30 wide
    im = Image.fromarray(rgb)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: viewers turn it 90° clockwise
    im.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "rot.jpg", exif=exif, quality=95)
    upright = data.to_rgb(Image.open(tmp_path / "rot.jpg"))
    assert upright.size == (30, 40)
    for mode in ("CMYK", "P", "L", "LA", "RGBA", "I;16"):
        src = im.convert("L") if mode in ("LA", "I;16") else im
        converted = data.to_rgb(src.convert(mode) if mode != "I;16" else _to_16bit(src))
        assert converted.mode == "RGB" and converted.size == (30, 40)


def _to_16bit(im: Image.Image) -> Image.Image:
    return Image.fromarray(np.asarray(im, dtype=np.uint16) * 257)


def test_dataset_crops_are_deterministic_per_epoch(tmp_path):
    records = data.find_records([write_folder(tmp_path / "p", 4, 1)])
    ds = data.ColourDataset(records, 24, augment=True, seed=3)
    first = ds[0]
    assert first.shape == (3, 24, 24) and first.dtype == torch.uint8
    assert torch.equal(first, ds[0])
    ds.set_epoch(1)
    assert not torch.equal(first, ds[0])


@pytest.mark.parametrize("bad", ["missing", "empty", "not-an-archive"])
def test_bad_data_paths(tmp_path, bad):
    path = tmp_path / bad
    if bad == "empty":
        path.mkdir()
    elif bad == "not-an-archive":
        path.write_text("hello")
    with pytest.raises(data.DataError, match=str(path)):
        data.find_records([path])


def test_truncated_archive_is_an_error(tmp_path):
    archive = write_tar(tmp_path / "set.tar.gz")
    (tmp_path / "cut.tar.gz").write_bytes(archive.read_bytes()[:-400])
    with pytest.raises(data.DataError, match="cannot read"):
        data.find_records([tmp_path / "cut.tar.gz"])


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("imagenette160.tar.gz:imagenette160/train/n01440764_10043.jpg", "n01440764"),
        ("cifar10-train.tar.gz:cifar10/train/automobile/ambulance_s_000240.webp", "automobile"),
        ("photos/val/buildings_10014.jpg", "buildings"),
        ("scans/1950/harbour_03.tif", "1950"),
        ("photos/train/portrait.jpg", "portrait"),
    ],
)
def test_a_photos_class_is_its_folder_or_else_its_name_before_the_first_underscore(key, name):
    assert data.class_of(key) == name


def test_a_decompression_bomb_is_skipped_before_it_is_decoded(tmp_path):
    bomb = png_bomb(tmp_path / "bomb.png")  # 400 megapixels in a small file
    reason = data._inspect(data.Record("bomb", "train", str(bomb)))
    assert reason is not None and reason.startswith("unreadable (ImageError: 20000×20000 = 400 megapixels")

"""Unit tests for the data half of unet_helpers: generator, loader errors, split, pictures."""

import hashlib

import numpy as np
import pytest
from PIL import Image

import unet_helpers as uh
import unet_support as us


def write_pair(root, stem, image, mask, image_suffix=".png", mask_suffix=".png"):
    """Save an image array and a mask array as images/<stem> and masks/<stem> under root."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(
        root / "images" / f"{stem}{image_suffix}"
    )
    Image.fromarray(np.asarray(mask, dtype=np.uint8)).save(root / "masks" / f"{stem}{mask_suffix}")


def rgb(height=16, width=16, value=100):
    return np.full((height, width, 3), value, np.uint8)


def square_mask(height=16, width=16, value=1):
    mask = np.zeros((height, width), np.uint8)
    mask[height // 4 : height // 2, width // 4 : width // 2] = value
    return mask


def folder_hashes(root):
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*.png"))
    }


# Loader: the happy paths ------------------------------------------------------------------------


def test_load_pairs_by_stem_sorted_with_dtypes_and_shapes(tmp_path):
    write_pair(tmp_path, "b", rgb(value=200), square_mask())
    write_pair(
        tmp_path,
        "a",
        np.tile(np.arange(16, dtype=np.uint8) * 10, (16, 1))[..., None].repeat(3, axis=-1),
        np.zeros((16, 16)),
        image_suffix=".jpg",
    )
    images, masks, stems = uh.load_dataset(tmp_path, image_size=16)
    assert stems == ["a", "b"]
    assert images.shape == (2, 16, 16, 3) and images.dtype == np.float32
    assert masks.shape == (2, 16, 16, 1) and masks.dtype == np.uint8
    # Each image is scaled between its own percentiles: a ramp spans 0..1, a flat image is 0.
    assert images[0].min() == 0 and images[0].max() == 1 and images[1].max() == 0
    assert masks[0].max() == 0 and masks[1].sum() == 16


def test_binary_masks_stored_as_0_255_become_0_1(tmp_path):
    write_pair(tmp_path, "a", rgb(), square_mask(value=255))
    write_pair(tmp_path, "b", rgb(), square_mask(value=1))
    _, masks, _ = uh.load_dataset(tmp_path, image_size=16)
    assert set(np.unique(masks).tolist()) == {0, 1}
    assert masks[0].sum() == masks[1].sum() == 16


def test_mixed_sizes_are_cut_into_tiles_never_resized(tmp_path):
    cols = np.tile(np.arange(100), (80, 1))
    write_pair(tmp_path, "wide", rgb(80, 100), (cols // 34).astype(np.uint8))  # ids 0, 1, 2
    write_pair(tmp_path, "big", rgb(200, 200), square_mask(200, 200, 2))
    write_pair(tmp_path, "small", rgb(40, 50), square_mask(40, 50, 1))
    images, masks, stems = uh.load_dataset(tmp_path, image_size=64, n_classes=3)
    # big: 4 x 4 tiles (the last row and column overlap), small: 1 padded tile, wide: 2 x 2.
    assert stems == ["big"] * 16 + ["small"] + ["wide"] * 4
    assert images.shape == (21, 64, 64, 3) and masks.shape == (21, 64, 64, 1)
    # At full resolution the tiles hold exactly the file's pixels.
    np.testing.assert_array_equal(masks[17:, :, :, 0][3], (cols // 34)[16:80, 36:100])
    np.testing.assert_array_equal(masks[0, :, :, 0], square_mask(200, 200, 2)[:64, :64])
    # The small image is reflect-padded, not stretched: its mask's square is still 10 x 12.
    assert np.array_equal(masks[16, :40, :50, 0], square_mask(40, 50, 1))
    assert set(np.unique(masks).tolist()) == {0, 1, 2}


@pytest.mark.parametrize("mode", ["L", "RGBA"])
@pytest.mark.parametrize("channels", [1, 3])
def test_grayscale_and_rgba_images_convert_to_requested_channels(tmp_path, mode, channels):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    bands = 1 if mode == "L" else 4
    array = np.full((20, 24, bands), 128, np.uint8)
    Image.fromarray(array[..., 0] if bands == 1 else array).save(tmp_path / "images/a.png")
    assert Image.open(tmp_path / "images/a.png").mode == mode
    Image.fromarray(square_mask(20, 24)).save(tmp_path / "masks/a.png")
    array[:, :12] = 30  # two grey levels: normalised to 0 and 1
    Image.fromarray(array[..., 0] if bands == 1 else array).save(tmp_path / "images/a.png")
    images, masks, _ = uh.load_dataset(tmp_path, image_size=32, channels=channels)
    assert images.shape == (1, 32, 32, channels)
    assert set(np.unique(images).tolist()) == {0.0, 1.0}
    assert set(np.unique(masks).tolist()) == {0, 1}


def test_hidden_files_are_ignored(tmp_path):
    write_pair(tmp_path, "a", rgb(), square_mask())
    (tmp_path / "images" / ".DS_Store").write_bytes(b"\x00\x01")
    (tmp_path / "masks" / ".ipynb_checkpoints").mkdir()
    assert uh.load_dataset(tmp_path, image_size=16)[2] == ["a"]


def test_every_loader_pairs_files_by_the_same_rule(tmp_path, monkeypatch, capsys):
    write_pair(tmp_path / "set", "a", rgb(), square_mask(), mask_suffix="_mask.tif")
    write_pair(tmp_path / "set", "b", rgb(), np.zeros((16, 16)), image_suffix=".jpg")
    write_pair(tmp_path / "set", "c_mask", rgb(), square_mask(), image_suffix=".tif")
    monkeypatch.chdir(tmp_path)
    stems = ["a", "b", "c_mask"]
    assert uh.load_dataset("set", image_size=16)[2] == stems
    images, masks, found = uh.load_images("set")
    assert found == stems and [mask.sum() for mask in masks] == [16, 0, 16]
    assert list(uh.image_files("set")) == stems
    assert [label.max() for label in uh.load_labels("set", stems, masks)] == [1, 0, 1]
    uh.ensure_dataset("set", "binary", n_images=3)
    assert capsys.readouterr().out == "Found 3 image/mask pairs in set\n"


def test_equal_channel_rgb_mask_is_accepted_as_grayscale(tmp_path):
    write_pair(tmp_path, "a", rgb(), np.repeat(square_mask(value=255)[..., None], 3, axis=-1))
    _, masks, _ = uh.load_dataset(tmp_path, image_size=16)
    assert masks.sum() == 16


def test_masks_named_stem_mask_pair_with_their_image(tmp_path):
    write_pair(tmp_path, "a", rgb(), square_mask(), mask_suffix="_mask.png")
    write_pair(tmp_path, "b", rgb(), np.zeros((16, 16)), image_suffix=".jpg")  # plain naming too
    write_pair(tmp_path, "c_mask", rgb(), square_mask())  # an image whose own stem ends in _mask
    images, masks, stems = uh.load_dataset(tmp_path, image_size=16)
    assert stems == ["a", "b", "c_mask"] and images.shape == (3, 16, 16, 3)
    assert masks[0].sum() == 16 and masks[1].sum() == 0 and masks[2].sum() == 16


def test_stem_mask_and_stem_both_present_is_refused(tmp_path):
    write_pair(tmp_path, "a", rgb(), square_mask())
    Image.fromarray(square_mask()).save(tmp_path / "masks" / "a_mask.png")
    with pytest.raises(ValueError, match=r"two masks for images/a.png: masks/a.png and masks/a_m"):
        uh.load_dataset(tmp_path, image_size=16)


# Loader: every error names the problem and the fix ----------------------------------------------


def test_two_images_with_one_stem_are_refused(tmp_path):
    write_pair(tmp_path, "a", rgb(), square_mask())
    Image.fromarray(rgb()).save(tmp_path / "images" / "a.jpg")
    with pytest.raises(ValueError, match=r"two files share a stem: images/a.jpg and images/a.png"):
        uh.load_dataset(tmp_path, image_size=16)


@pytest.mark.parametrize("kind", ["uint16 png", "float tiff"])
def test_16_bit_and_float_images_are_scaled_to_0_1(tmp_path, kind):
    ramp = np.tile(np.linspace(0, 1, 16), (16, 1))
    write_pair(tmp_path, "a", rgb(), square_mask())
    (tmp_path / "images" / "a.png").unlink()
    if kind == "uint16 png":
        Image.fromarray((ramp * 40000 + 500).astype(np.uint16)).save(tmp_path / "images" / "a.png")
    else:
        Image.fromarray(ramp.astype(np.float32) * 7 - 3).save(tmp_path / "images" / "a.tif")
    images, masks, _ = uh.load_dataset(tmp_path, image_size=16, channels=1)
    assert images.dtype == np.float32 and images.min() == 0 and images.max() == 1
    np.testing.assert_allclose(images[0, 5, :, 0], images[0, 9, :, 0])  # the ramp, not noise
    assert masks.sum() == 16


@pytest.mark.parametrize("mode", ["CMYK", "LA", "P"])
def test_masks_in_other_picture_modes_keep_their_ids(tmp_path, mode):
    write_pair(tmp_path, "a", rgb(), square_mask(value=2))
    picture = Image.fromarray(square_mask(value=2)).convert(mode if mode != "P" else "L")
    if mode == "P":
        picture = picture.convert("P")  # palette indices are the class ids
    (tmp_path / "masks" / "a.png").unlink()
    picture.save(tmp_path / "masks" / "a.tif")
    _, masks, _ = uh.load_dataset(tmp_path, image_size=16, n_classes=3)
    np.testing.assert_array_equal(masks[0, ..., 0], square_mask(value=2))


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere not found.*expected layout"):
        uh.load_dataset(tmp_path / "nowhere")


def test_missing_masks_subfolder(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(FileNotFoundError, match=r"masks is missing.*expected layout"):
        uh.load_dataset(tmp_path)


def test_empty_folder(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(ValueError, match=r"no images in .*expected layout"):
        uh.load_dataset(tmp_path)


def test_image_without_mask_names_every_unpaired_file(tmp_path):
    write_pair(tmp_path, "paired", rgb(), square_mask())
    for stem in ("x1", "x2", "x3"):
        Image.fromarray(rgb()).save(tmp_path / "images" / f"{stem}.png")
    with pytest.raises(ValueError, match=r"3 image\(s\) without a mask") as error:
        uh.load_dataset(tmp_path, image_size=16)
    message = str(error.value)
    assert all(f"images/{stem}.png" in message for stem in ("x1", "x2", "x3"))
    assert "paired" not in message.split("without a mask")[1].split(".")[0]


@pytest.mark.parametrize("orphan", ["orphan", "b_mask"])  # b_mask: the _mask naming, no image b
def test_mask_without_image(tmp_path, orphan):
    write_pair(tmp_path, "paired", rgb(), square_mask())
    Image.fromarray(square_mask()).save(tmp_path / "masks" / f"{orphan}.png")
    with pytest.raises(ValueError, match=rf"1 mask\(s\) without an image: masks/{orphan}.png"):
        uh.load_dataset(tmp_path, image_size=16)


def test_many_unpaired_files_are_capped(tmp_path):
    write_pair(tmp_path, "paired", rgb(), square_mask())
    for index in range(25):
        Image.fromarray(rgb()).save(tmp_path / "images" / f"lonely_{index:02d}.png")
    with pytest.raises(ValueError, match=r"lonely_19.png and 5 more") as error:
        uh.load_dataset(tmp_path, image_size=16)
    assert "lonely_20" not in str(error.value)


def test_image_mask_size_mismatch_names_stem_and_sizes(tmp_path):
    write_pair(tmp_path, "a", rgb(16, 20), square_mask(16, 18))
    with pytest.raises(ValueError, match=r"'a' \(images/a.png 20x16, masks/a.png 18x16\)"):
        uh.load_dataset(tmp_path, image_size=16)


def with_pixel(mask, value):
    """``mask`` with its top-left pixel set to ``value``."""
    mask = mask.copy()
    mask[0, 0] = value
    return mask


def red_square():
    colour = np.zeros((16, 16, 3), np.uint8)
    colour[4:8, 4:8] = (255, 0, 0)
    return colour


# Masks whose values do not fit: {stem: mask} written as pairs, n_classes, what the error says.
MASK_ERRORS = {
    "out of range, values and files listed": (
        {
            "a": square_mask(value=7),
            "b": square_mask(value=7) + (square_mask(value=1) == 0),
            "c": square_mask(value=2),
        },
        3,
        r"mask values \{0, 1, 2, 7\} do not fit n_classes=3 \(allowed 0..2\): "
        r"value 7 in masks/a.png, masks/b.png\. Pass n_classes=8",
    ),
    "binary with in-between values": (
        {"soft": with_pixel(square_mask(value=255), 128)},
        1,
        r"\{0, 128, 255\} do not fit n_classes=1.*masks/soft.png",
    ),
    "binary using both 1 and 255": (
        {"mixed": with_pixel(square_mask(value=255), 1)},
        1,
        r"both 1 and 255 in masks/mixed.png",
    ),
    "0/255 with multiclass suggests binary": (
        {"a": square_mask(value=255)},
        4,
        r"look like 0/255 binary masks: pass n_classes=1",
    ),
    "RGB colour mask explains conversion": (
        {"a": red_square()},
        2,
        r"colour mask\(s\) masks/a.png.*ONE channel.*each colour",
    ),
}


@pytest.mark.parametrize("masks, n_classes, expected", MASK_ERRORS.values(), ids=MASK_ERRORS)
def test_mask_values_that_do_not_fit_name_the_files_and_the_fix(
    tmp_path, masks, n_classes, expected
):
    for stem, mask in masks.items():
        write_pair(tmp_path, stem, rgb(), mask)
    with pytest.raises(ValueError, match=expected):
        uh.load_dataset(tmp_path, image_size=16, n_classes=n_classes)


def test_corrupt_image_file_is_named(tmp_path):
    write_pair(tmp_path, "good", rgb(), square_mask())
    Image.fromarray(square_mask()).save(tmp_path / "masks" / "broken.png")
    (tmp_path / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    with pytest.raises(ValueError, match=r"cannot read images/broken.png: .*corrupt"):
        uh.load_dataset(tmp_path, image_size=16)


def test_non_image_file_is_named_with_the_fix(tmp_path):
    write_pair(tmp_path, "a", rgb(), square_mask())
    (tmp_path / "images" / "notes.txt").write_text("to do")
    with pytest.raises(ValueError, match=r"not an image file in images/: images/notes.txt\. Move"):
        uh.load_dataset(tmp_path, image_size=16)


def test_jpeg_mask_is_refused_because_it_is_lossy(tmp_path):
    write_pair(tmp_path, "a", rgb(), square_mask(value=255), mask_suffix=".jpg")
    with pytest.raises(ValueError, match=r"JPEG masks found: masks/a.jpg.*lossless"):
        uh.load_dataset(tmp_path, image_size=16)


def test_wrong_channels_argument(tmp_path):
    with pytest.raises(ValueError, match=r"channels must be 1 .* or 3"):
        uh.load_dataset(tmp_path, channels=4)


# Synthetic generator and ensure_dataset ---------------------------------------------------------


def test_generator_is_deterministic_per_seed(tmp_path):
    first = us.make_synthetic_dataset(tmp_path / "a", "multiclass", n_images=6, image_size=64)
    second = us.make_synthetic_dataset(tmp_path / "b", "multiclass", n_images=6, image_size=64)
    other = us.make_synthetic_dataset(tmp_path / "c", "multiclass", 6, image_size=64, seed=1)
    hashes = folder_hashes(first)
    assert len(hashes) == 12 and "images/sample_0000.png" in hashes
    assert hashes == folder_hashes(second)
    assert all(hashes[name] != digest for name, digest in folder_hashes(other).items())


def test_generator_writes_rgb_images_and_binary_masks_as_0_255(tmp_path):
    root = us.make_synthetic_dataset(tmp_path, "binary", n_images=20, image_size=64)
    image = Image.open(root / "images" / "sample_0000.png")
    assert image.mode == "RGB" and image.size == (64, 64)
    values = set()
    for path in (root / "masks").glob("*.png"):
        values |= set(np.unique(np.asarray(Image.open(path))).tolist())
    assert values == {0, 255}


def test_generator_refuses_a_non_empty_folder_unless_overwrite(tmp_path):
    root = us.make_synthetic_dataset(tmp_path / "set", n_images=3, image_size=32)
    with pytest.raises(FileExistsError, match=r"set is not empty: pass overwrite=True"):
        us.make_synthetic_dataset(root, n_images=3, image_size=32, seed=5)
    before = folder_hashes(root)
    us.make_synthetic_dataset(root, n_images=2, image_size=32, seed=5, overwrite=True)
    after = folder_hashes(root)
    assert sorted(after) == ["images/sample_0000.png", "images/sample_0001.png"] + [
        "masks/sample_0000.png",
        "masks/sample_0001.png",
    ]
    assert after["images/sample_0000.png"] != before["images/sample_0000.png"]


def test_ensure_dataset_generates_then_finds(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    result = uh.ensure_dataset("data/shapes", "multiclass", n_images=4, image_size=32)
    assert capsys.readouterr().out == (
        "Generated 4 synthetic multiclass image/mask pairs in data/shapes\n"
    )
    assert len(list((tmp_path / "data/shapes/masks").glob("*.png"))) == 4
    before = folder_hashes(result)
    uh.ensure_dataset("data/shapes", "multiclass", n_images=3, image_size=32)
    assert capsys.readouterr().out == "Found 4 image/mask pairs in data/shapes\n"
    assert folder_hashes(result) == before


def test_ensure_dataset_adds_the_missing_synthetic_images_and_keeps_the_others(tmp_path, capsys):
    uh.ensure_dataset(tmp_path / "few", n_images=3, image_size=32)
    before = folder_hashes(tmp_path / "few")
    uh.ensure_dataset(tmp_path / "few", n_images=5, image_size=32)
    assert capsys.readouterr().out.splitlines()[-1].endswith("; added synthetic pairs 3 to 4")
    after = folder_hashes(tmp_path / "few")
    assert len(after) == 10 and all(after[name] == digest for name, digest in before.items())
    us.make_synthetic_dataset(tmp_path / "all", n_images=5, image_size=32)
    assert folder_hashes(tmp_path / "all") == after  # the same set as generated in one go
    write_pair(tmp_path / "own", "sample_0000", rgb(), square_mask())  # named like it, not it
    write_pair(tmp_path / "mine", "cell_0", rgb(), square_mask())
    for folder in ("own", "mine"):
        uh.ensure_dataset(tmp_path / folder, n_images=5, image_size=32)
        assert len(folder_hashes(tmp_path / folder)) == 2  # a student's folder is left alone


def test_ensure_dataset_fills_an_empty_images_folder(tmp_path, capsys):
    (tmp_path / "images").mkdir()
    uh.ensure_dataset(tmp_path, n_images=2, image_size=32)
    assert capsys.readouterr().out.startswith("Generated 2 synthetic binary")


@pytest.mark.parametrize(
    "task, n_classes, low, high",
    [("binary", 1, [0.05], [0.15]), ("multiclass", 4, [0.06, 0.03, 0.01], [0.14, 0.09, 0.03])],
)
def test_synthetic_class_fractions(tmp_path, task, n_classes, low, high):
    us.make_synthetic_dataset(tmp_path, task, n_images=200, image_size=128)
    images, masks, _ = uh.load_dataset(tmp_path, image_size=128, n_classes=n_classes)
    fractions = uh.class_pixel_fractions(masks, n_classes)[1:]
    assert np.all(fractions >= low) and np.all(fractions <= high), fractions
    empty = (masks.reshape(len(masks), -1).max(axis=1) == 0).mean()
    assert 0.01 <= empty <= 0.12
    assert images.min() >= 0 and images.max() <= 1 and images.std() > 0.05


def test_class_pixel_fractions():
    masks = np.array([0, 0, 1, 3]).reshape(1, 2, 2, 1)
    np.testing.assert_allclose(uh.class_pixel_fractions(masks, 4), [0.5, 0.25, 0, 0.25])
    np.testing.assert_allclose(uh.class_pixel_fractions(masks[..., :1] * 0, 1), [1.0, 0.0])


# Split --------------------------------------------------------------------------------------------


def test_split_is_deterministic_disjoint_and_complete():
    images = np.arange(40, dtype=np.float32).reshape(40, 1, 1, 1)
    masks = np.arange(40).reshape(40, 1, 1, 1)
    splits = uh.split_dataset(images, masks, 0.15, 0.15, seed=3)
    ids = {name: part[0][:, 0, 0, 0] for name, part in splits.items()}
    assert {name: len(ids[name]) for name in ids} == {"train": 28, "validation": 6, "test": 6}
    assert sorted(np.concatenate(list(ids.values())).tolist()) == list(range(40))
    for part_images, part_masks in splits.values():
        np.testing.assert_array_equal(part_images[:, 0, 0, 0], part_masks[:, 0, 0, 0])
    again = uh.split_dataset(images, masks, 0.15, 0.15, seed=3)
    np.testing.assert_array_equal(again["test"][0], splits["test"][0])
    other = uh.split_dataset(images, masks, 0.15, 0.15, seed=4)
    assert not np.array_equal(other["test"][0], splits["test"][0])


def test_split_keeps_every_part_non_empty_and_refuses_too_few():
    images = np.zeros((3, 2, 2, 1))
    splits = uh.split_dataset(images, images, 0.1, 0.1)
    assert [len(part[0]) for part in splits.values()] == [1, 1, 1]
    with pytest.raises(ValueError, match=r"need at least 3 images"):
        uh.split_dataset(images[:2], images[:2])


# Pictures -----------------------------------------------------------------------------------------


def test_colorize_mask_uses_fixed_distinct_colours():
    mask = np.array([[0, 1], [2, 3]], np.uint8)[..., None]
    picture = uh.colorize_mask(mask, 4)
    assert picture.shape == (2, 2, 3)
    np.testing.assert_array_equal(picture[0, 0], [0, 0, 0])
    assert len({tuple(colour) for colour in picture.reshape(-1, 3)}) == 4
    np.testing.assert_array_equal(uh.colorize_mask(mask[:1, 1:], 1)[0, 0], [1, 1, 1])


@pytest.mark.parametrize("n_classes", [1, 4])
def test_show_examples_layout(n_classes):
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    images = rng.random((5, 16, 16, 3), dtype=np.float32)
    masks = rng.integers(0, max(n_classes, 2), (5, 16, 16, 1)).astype(np.uint8)
    figure = uh.show_examples(images, masks, n_classes=n_classes, count=3)
    assert len(figure.axes) == 3 * 3
    predictions = np.eye(n_classes)[masks[..., 0]] if n_classes > 1 else masks * 0.9
    figure = uh.show_examples(images, masks, predictions, n_classes=n_classes, count=2)
    assert len(figure.axes) == 2 * 5
    assert "IoU 1.00" in figure.axes[2].get_title()
    assert len(figure.legends) == (1 if n_classes > 1 else 0)
    width, height = figure.get_size_inches()
    assert width <= 2.3 * 5 and height <= 2.3 * 2 + 0.5
    plt.close("all")


# Saving and loading a model ---------------------------------------------------------------------


@pytest.mark.parametrize("n_classes", [2, 3])
def test_multiclass_generator_keeps_the_first_classes(tmp_path, n_classes):
    us.make_synthetic_dataset(
        tmp_path / "set", "multiclass", n_images=12, image_size=64, n_classes=n_classes
    )
    _, masks, _ = uh.load_dataset(tmp_path / "set", image_size=64, n_classes=n_classes)
    assert set(np.unique(masks).tolist()) == set(range(n_classes))
    with pytest.raises(ValueError, match="2 to 4 classes"):
        us.make_synthetic_dataset(tmp_path / "other", "multiclass", n_images=2, n_classes=5)


def test_show_examples_refuses_too_few_class_names():
    masks = np.zeros((1, 8, 8, 1), np.uint8)
    with pytest.raises(ValueError, match="got 2 class_names for n_classes=3"):
        uh.show_examples(np.zeros((1, 8, 8, 3)), masks, n_classes=3, class_names=["a", "b"])

"""Masks that code their classes by grey levels (33, 65, 201, 231...), as annotation tools export.

The loader recognises K distinct values for K classes, names them and the fix, and
``mask_values`` (or ``us.map_mask_values`` on arrays) maps the k-th value to class id k.
"""

import numpy as np
import pytest
from PIL import Image

import unet_helpers as uh
import unet_support as us

GREY_LEVELS = (33, 65, 201, 231)  # the 4 classes of the sandstone masks of the seed tutorial


def write_pair(root, stem, mask):
    """Save a flat grey image and ``mask`` (uint8) as images/<stem>.png and masks/<stem>.png."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(mask.shape, 100, np.uint8)).save(root / "images" / f"{stem}.png")
    Image.fromarray(np.asarray(mask, np.uint8)).save(root / "masks" / f"{stem}.png")


def quarters(values, size=16):
    """A (size, size) mask whose four quarters hold the four ``values`` (top-left, top-right...)."""
    mask = np.empty((size, size), np.uint8)
    half = size // 2
    mask[:half, :half], mask[:half, half:] = values[0], values[1]
    mask[half:, :half], mask[half:, half:] = values[2], values[3]
    return mask


def test_grey_level_masks_error_names_the_values_and_the_fix(tmp_path):
    write_pair(tmp_path, "a", quarters(GREY_LEVELS))
    write_pair(tmp_path, "b", quarters((33, 33, 201, 231)))
    with pytest.raises(ValueError) as caught:
        uh.load_dataset(tmp_path, image_size=16, n_classes=4)
    message = str(caught.value)
    assert "mask values {33, 65, 201, 231} do not fit n_classes=4" in message
    assert "exactly 4 distinct values, one per class" in message
    assert "mask_values=[33, 65, 201, 231]" in message
    assert "n_classes=232" not in message  # the old advice: 232 classes


def test_mask_values_map_grey_levels_to_class_ids(tmp_path):
    write_pair(tmp_path, "a", quarters(GREY_LEVELS))
    images, masks, stems = uh.load_dataset(
        tmp_path, image_size=16, n_classes=4, mask_values=GREY_LEVELS
    )
    assert stems == ["a"] and images.shape == (1, 16, 16, 3)
    assert masks.dtype == np.uint8 and masks.shape == (1, 16, 16, 1)
    np.testing.assert_array_equal(masks[0, ..., 0], quarters((0, 1, 2, 3)))


def test_the_order_of_mask_values_sets_the_class_ids(tmp_path):
    write_pair(tmp_path, "a", quarters(GREY_LEVELS))
    _, masks, _ = uh.load_dataset(
        tmp_path, image_size=16, n_classes=4, mask_values=(201, 33, 65, 231)
    )
    np.testing.assert_array_equal(masks[0, ..., 0], quarters((1, 2, 0, 3)))


def test_load_images_takes_mask_values_too(tmp_path):
    write_pair(tmp_path, "a", quarters(GREY_LEVELS, size=24))
    _, masks, _ = uh.load_images(tmp_path, n_classes=4, mask_values=GREY_LEVELS)
    np.testing.assert_array_equal(masks[0][..., 0], quarters((0, 1, 2, 3), size=24))


def test_a_value_missing_from_mask_values_is_named_with_its_file(tmp_path):
    write_pair(tmp_path, "a", quarters(GREY_LEVELS))
    write_pair(tmp_path, "b", quarters((33, 99, 201, 231)))
    expected = r"mask values \{33, 65, 99, 201, 231\}.*value 99 in masks/b\.png"
    with pytest.raises(ValueError, match=expected) as caught:
        uh.load_dataset(tmp_path, image_size=16, n_classes=4, mask_values=GREY_LEVELS)
    assert "mask_values=[33, 65, 201, 231]" in str(caught.value)


@pytest.mark.parametrize("mask_values", [(33, 65, 201), (33, 65, 201, 231, 240), (33, 33, 65, 231)])
def test_mask_values_need_one_different_value_per_class(tmp_path, mask_values):
    write_pair(tmp_path, "a", quarters(GREY_LEVELS))
    with pytest.raises(ValueError, match=r"must list 4 different values for n_classes=4"):
        uh.load_dataset(tmp_path, image_size=16, n_classes=4, mask_values=mask_values)


def test_binary_masks_with_two_grey_levels(tmp_path):
    write_pair(tmp_path, "a", quarters((0, 128, 0, 128)))
    with pytest.raises(ValueError, match=r"exactly 2 distinct values.*mask_values=\[0, 128\]"):
        uh.load_dataset(tmp_path, image_size=16, n_classes=1)
    _, masks, _ = uh.load_dataset(tmp_path, image_size=16, n_classes=1, mask_values=(0, 128))
    np.testing.assert_array_equal(masks[0, ..., 0], quarters((0, 1, 0, 1)))


def test_labels_1_to_k_are_recognised_as_k_values(tmp_path):
    # Masks numbered 1..4 instead of 0..3 (the sandstone patches of the seed's tutorial 119).
    write_pair(tmp_path, "a", quarters((1, 2, 3, 4)))
    with pytest.raises(ValueError, match=r"mask_values=\[1, 2, 3, 4\]"):
        uh.load_dataset(tmp_path, image_size=16, n_classes=4)


def test_other_errors_keep_their_advice(tmp_path):
    # More values than classes: not grey levels of K classes, so the old advice stays.
    write_pair(tmp_path, "a", quarters((0, 1, 2, 7)))
    write_pair(tmp_path, "b", quarters((0, 1, 2, 5)))
    with pytest.raises(ValueError, match=r"Pass n_classes=8") as caught:
        uh.load_dataset(tmp_path, image_size=16, n_classes=4)
    assert "mask_values" not in str(caught.value)


def test_map_mask_values_on_arrays():
    ids = us.map_mask_values(np.array([[33, 231], [65, 201]]), GREY_LEVELS)
    assert ids.dtype == np.uint8
    np.testing.assert_array_equal(ids, [[0, 3], [1, 2]])
    with pytest.raises(ValueError, match=r"mask values \{7\} are not in mask_values"):
        us.map_mask_values(np.array([[33, 7]]), GREY_LEVELS)
    with pytest.raises(ValueError, match=r"different values"):
        us.map_mask_values(np.array([[33]]), (33, 33))

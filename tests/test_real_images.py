"""Tests of the real-image helpers: reading, normalising, patches, augmentation, tiles, counts."""

import keras
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

import unet_helpers as uh
import unet_support


def pass_through_model(tile_size=32, channels=1):
    """A 'model' whose output is its input: what goes in must come out, seams or not."""
    inputs = keras.Input((tile_size, tile_size, channels))
    return keras.Model(inputs, keras.layers.Activation("linear")(inputs))


def disc(shape, center, radius):
    rows, cols = np.indices(shape)
    return (rows - center[0]) ** 2 + (cols - center[1]) ** 2 <= radius**2


# Reading and normalising --------------------------------------------------------------------------


def test_read_image_keeps_size_and_stored_values(tmp_path):
    deep = (np.arange(30 * 50).reshape(30, 50) * 40).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    array = uh.read_image(tmp_path / "deep.png")
    assert array.shape == (30, 50) and array.max() == deep.max()
    rgba = np.zeros((7, 9, 4), np.uint8)
    rgba[..., 0] = 200
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    assert uh.read_image(tmp_path / "rgba.png").shape == (7, 9, 3)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png.*corrupt"):
        uh.read_image(tmp_path / "broken.png")


def test_normalize_makes_dim_and_bright_copies_equal():
    rng = np.random.default_rng(0)
    scene = rng.random((40, 60))
    dim = (scene * 30 + 2).astype(np.float32)  # a dark 8-bit exposure
    bright = (scene * 40000 + 900).astype(np.uint16)  # the same scene on a 16-bit camera
    a, b = uh.normalize_image(dim), uh.normalize_image(bright)
    assert a.shape == (40, 60, 1) and a.dtype == np.float32
    np.testing.assert_allclose(a, b, atol=2e-3)
    assert a.min() == 0 and a.max() == 1
    assert np.mean(a == 1) == pytest.approx(0.002, abs=0.002)  # the top 0.2 % is clipped


def test_normalize_converts_channels_and_refuses_bad_shapes():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert uh.normalize_image(gray, channels=3).shape == (3, 4, 3)
    rgba = np.dstack([gray, gray, gray, np.full_like(gray, 255)])
    np.testing.assert_allclose(uh.normalize_image(rgba, channels=1), uh.normalize_image(gray))
    assert not uh.normalize_image(np.full((5, 5), 7)).any()  # flat: nothing to scale
    with pytest.raises(ValueError, match="1, 3 or 4 channels"):
        uh.normalize_image(np.zeros((4, 4, 2)))
    with pytest.raises(ValueError, match="channels must be 1"):
        uh.normalize_image(gray, channels=2)


def test_dark_objects_on_a_bright_background_keep_their_polarity_everywhere():
    objects = disc((48, 48), (20, 24), 8)
    bright_field = np.where(objects, 40, 220).astype(np.uint8)  # dark nucleus, bright background
    fluorescence = np.where(objects, 220, 40).astype(np.uint8)
    assert uh.bright_background(bright_field) and not uh.bright_background(fluorescence)
    dark, bright = uh.normalize_image(bright_field), uh.normalize_image(fluorescence)
    np.testing.assert_array_equal(dark, 1 - bright)  # scaled alike, never inverted
    assert not dark[objects].any() and dark[~objects].all()
    colour = np.dstack([bright_field, fluorescence, fluorescence])
    assert not uh.bright_background(colour)
    np.testing.assert_array_equal(  # a colour image's channels are scaled as a gray image is
        uh.normalize_image(colour)[..., 1], uh.normalize_image(fluorescence)[..., 0]
    )
    # predict_tiled normalises the same way: what comes out of a pass-through model stays dark.
    seen = uh.predict_tiled(pass_through_model(32), bright_field)[..., 0]
    assert seen[objects].max() < 0.1 and seen[~objects].min() > 0.9


def test_split_by_strata_tests_a_rare_kind_of_image():
    kinds = np.array(["dark"] * 4 + ["bright"] * 36)
    images = np.arange(len(kinds)).reshape(-1, 1, 1, 1)
    splits = uh.split_dataset(images, images, 0.15, 0.15, seed=0, strata=kinds)
    found = {name: kinds[part[0].ravel()].tolist().count("dark") for name, part in splits.items()}
    assert found == {"train": 2, "validation": 1, "test": 1}
    assert sum(len(part[0]) for part in splits.values()) == 40
    few = uh.split_dataset(images[:38], images[:38], seed=0, strata=kinds[2:])  # 2 dark images
    assert kinds[2:][few["test"][0].ravel()].tolist().count("dark") == 0  # both trained on


def test_load_images_keeps_full_resolution(tmp_path):
    for stem, (height, width) in {"a": (30, 70), "b": (90, 20)}.items():
        (tmp_path / "images").mkdir(exist_ok=True)
        (tmp_path / "masks").mkdir(exist_ok=True)
        Image.fromarray(np.full((height, width), 9, np.uint8)).save(tmp_path / f"images/{stem}.png")
        mask = np.zeros((height, width), np.uint8)
        mask[:5, :5] = 255
        Image.fromarray(mask).save(tmp_path / f"masks/{stem}.png")
    images, masks, stems = uh.load_images(tmp_path, n_classes=1, channels=1)
    assert stems == ["a", "b"]
    assert [image.shape for image in images] == [(30, 70, 1), (90, 20, 1)]
    assert [mask.shape for mask in masks] == [(30, 70, 1), (90, 20, 1)]
    assert all(mask.sum() == 25 for mask in masks)


def test_split_by_groups_keeps_each_picture_in_one_split():
    groups = np.repeat(
        ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"], [3, 1, 4, 2, 2, 1, 5, 1, 1, 2]
    )
    images = np.arange(len(groups)).reshape(-1, 1, 1, 1)
    splits = uh.split_dataset(images, images, 0.2, 0.2, seed=1, groups=groups)
    seen = [set(groups[part[0].ravel()]) for part in splits.values()]
    assert sum(len(names) for names in seen) == 10 and not set.intersection(*seen)
    assert [len(names) for names in seen] == [6, 2, 2]
    assert sorted(np.concatenate([part[0].ravel() for part in splits.values()])) == list(
        range(len(groups))
    )
    as_lists = uh.split_dataset(list(images), list(images), 0.2, 0.2, seed=1, groups=groups)
    assert isinstance(as_lists["train"][0], list)
    with pytest.raises(ValueError, match="groups"):
        uh.split_dataset(images, images, groups=groups[:-1])


# Tiles --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "length, expected", [(10, [0]), (64, [0]), (100, [0, 36]), (150, [0, 64, 86])]
)
def test_tile_starts_cover_without_gaps(length, expected):
    starts = uh.support.tile_starts(length, 64, 64)
    assert starts == expected
    covered = np.zeros(max(length, 64), bool)
    for start in starts:
        covered[start : start + 64] = True
    assert covered.all()


# Patches and augmentation -------------------------------------------------------------------------


def test_patch_dataset_batches_are_seeded_and_sized():
    rng = np.random.default_rng(0)
    images = []
    for shape in ((300, 200), (20, 50)):  # smooth, so a rotated edge moves by under a pixel
        field = ndimage.gaussian_filter(rng.random(shape), 4)
        field = (field - field.min()) / (field.max() - field.min())
        images.append(field[..., None].astype(np.float32))
    masks = [(image > 0.5).astype(np.uint8) for image in images]
    batches = [uh.PatchDataset(images, masks, 32, 8, 20, seed=3) for _ in range(2)]
    assert len(batches[0]) == 3
    first, again = ([data[i] for i in range(3)] for data in batches)  # fit reads them in order
    x, y = first[2]
    assert x.shape == (4, 32, 32, 1) and x.dtype == np.float32  # 20 = 8 + 8 + 4
    assert y.shape == (4, 32, 32, 1) and y.dtype == np.uint8
    for (x_first, y_first), (x_again, y_again) in zip(first, again, strict=True):
        np.testing.assert_array_equal(x_first, x_again)
        np.testing.assert_array_equal(y_first, y_again)
    # The mask still matches its image after the moves alone (same draw for both, nearest masks);
    # the contrast and noise change the images only.
    moved = uh.PatchDataset(images, masks, 32, 8, 20, seed=3, noise=0)
    moved.augmentation = uh.augmentation(contrast=0, seed=3)
    for index, (_, y_first) in enumerate(first):
        x, y = moved[index]
        np.testing.assert_array_equal(y, y_first)
        assert np.mean(y == (x > 0.5)) > 0.97
    batches[0].on_epoch_end()
    assert not np.array_equal(batches[0][0][1], first[0][1])  # a new epoch draws new patches


def test_tensorflow_feeds_the_same_batches_without_the_tf_data_autotuner():
    """unet_support.tf_data_without_autotune: Keras' tf.data pipelines (PyDataset, arrays) run
    with the autotuner off (it held up epoch ends: README), and give the same batches."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("a fix for TensorFlow's tf.data")
    from keras.src.trainers.data_adapters import get_data_adapter

    images = [np.random.default_rng(2).random((60, 70, 1)).astype(np.float32)]
    masks = [(images[0] > 0.5).astype(np.uint8)]
    arrays = get_data_adapter(images[0][None], masks[0][None], batch_size=1)
    fed = []
    for use_fix in (True, False):
        adapter = get_data_adapter(uh.PatchDataset(images, masks, 32, 4, 12, seed=1))
        build = type(adapter).get_tf_dataset
        dataset = build(adapter) if use_fix else build.__wrapped__(adapter)
        assert dataset.options().autotune.enabled is (False if use_fix else None)  # None: on
        fed.append([[keras.ops.convert_to_numpy(part) for part in batch] for batch in dataset])
    assert arrays.get_tf_dataset().options().autotune.enabled is False
    assert len(fed[0]) == len(fed[1]) == 3
    for with_fix, without in zip(*fed, strict=True):
        for part_with, part_without in zip(with_fix, without, strict=True):
            np.testing.assert_array_equal(part_with, part_without)


def test_patch_dataset_stretches_and_speckles_images_but_never_their_masks():
    rng = np.random.default_rng(1)
    field = ndimage.gaussian_filter(rng.random((200, 200)), 3)
    images = [((field - field.min()) / (field.max() - field.min()))[..., None].astype(np.float32)]
    masks = [(images[0] > 0.5).astype(np.uint8)]
    varied = uh.PatchDataset(images, masks, 32, 8, 96, seed=5)
    plain = uh.PatchDataset(images, masks, 32, 8, 96, seed=5, noise=0)
    plain.augmentation = uh.augmentation(contrast=0, seed=5)
    speckled, spreads = [], []
    for index in range(len(varied)):
        (x, y), (x_plain, y_plain) = varied[index], plain[index]
        np.testing.assert_array_equal(y, y_plain)  # the same patches, moved alike
        assert x.min() >= 0 and x.max() <= 1
        for patch, patch_plain in zip(x, x_plain, strict=True):
            speckled.append(len(np.unique(patch)) <= 129)  # 24-128 grey levels (0 to levels)
            if not speckled[-1]:  # contrast only: stretched around the mean, clipped to 0-1
                spreads.append(patch.std() / patch_plain.std())
    assert 0.3 < np.mean(speckled) < 0.7  # about half the patches
    assert min(spreads) > 0.99 and max(spreads) > 1.3  # raised (times 1 to 1.6), never lowered


def test_patch_dataset_draws_every_image_equally_and_pads_small_images():
    images = [np.zeros((400, 400, 1), np.float32), np.ones((10, 12, 1), np.float32)]
    masks = [np.zeros((400, 400, 1), np.uint8), np.ones((10, 12, 1), np.uint8)]
    data = uh.PatchDataset(images, masks, 16, batch_size=64, patches_per_epoch=640, augment=False)
    share = np.mean([data[i][1].reshape(64, -1).max(axis=1) for i in range(len(data))])
    assert share == pytest.approx(0.5, abs=0.06)  # the small image is picked as often as the big
    assert data.images[1].shape == (16, 16, 1)
    np.testing.assert_array_equal(data[0][0].max(axis=(1, 2, 3)), data[0][1].max(axis=(1, 2, 3)))


def test_augmentation_draws_all_eight_flips_and_turns_and_every_angle():
    mirrored, angles = uh.augmentation_outcomes(uh.augmentation(seed=0), count=400)
    nearest = np.rint(angles / 90).astype(int) % 4  # the nearest quarter-turn
    counts = np.bincount(mirrored * 4 + nearest, minlength=8)
    assert counts.min() >= 400 / 8 / 2, counts  # all 8 of the square's symmetries, about evenly
    assert 0.4 < mirrored.mean() < 0.6
    assert angles.min() < -150 and angles.max() > 150  # the whole circle, both ways


def test_a_prebuilt_pipeline_draws_what_keras_own_build_draws():
    # unet_support.prebuilt skips Keras' tracing build (13 s for 400 draws on PyTorch), not a draw.
    def pipeline():
        flip = keras.layers.RandomFlip("horizontal", seed=1)
        return keras.layers.Pipeline([flip, uh.RandomRotation(0.5, fill_mode="reflect", seed=2)])

    pictures = np.random.default_rng(0).random((8, 16, 16, 1)).astype(np.float32)
    ours, keras_built = unet_support.prebuilt(pipeline(), pictures.shape), pipeline()
    assert all(layer.built for layer in ours.layers)
    assert not any(layer.built for layer in keras_built.layers)
    for _ in range(2):  # the first call (Keras' build) and the next
        moved = [
            keras.ops.convert_to_numpy(augment({"images": pictures}, training=True)["images"])
            for augment in (ours, keras_built)
        ]
        np.testing.assert_array_equal(*moved)


def test_keras_flip_of_both_axes_never_mirrors():
    # Why uh.augmentation flips each axis with its own layer: Keras 3.15.1's RandomFlip draws one
    # coin for both axes, so "horizontal_and_vertical" is identity or a 180-degree turn.
    both = keras.layers.RandomFlip("horizontal_and_vertical", seed=0)
    mirrored, angles = uh.augmentation_outcomes(both, count=100)
    assert not mirrored.any()
    assert set(np.rint(np.abs(angles)).astype(int).tolist()) == {0, 180}


def test_flips_and_quarter_turns_keep_an_image_equal_to_its_mask():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, (6, 24, 24, 1)).astype(np.float32)
    flipped = uh.augmentation(rotation=False, contrast=0, seed=2)(
        {"images": labels, "segmentation_masks": labels.copy()}, training=True
    )
    images = keras.ops.convert_to_numpy(flipped["images"])
    np.testing.assert_array_equal(images, keras.ops.convert_to_numpy(flipped["segmentation_masks"]))
    assert not np.array_equal(images, labels)  # something was flipped
    turn = uh.RandomRotation((0.25, 0.25), fill_mode="reflect")
    turned = turn({"images": labels, "segmentation_masks": labels.copy()}, training=True)
    masks = keras.ops.convert_to_numpy(turned["segmentation_masks"])
    np.testing.assert_array_equal(masks, np.rot90(labels, 1, axes=(1, 2)))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(turned["images"]), masks, atol=1e-4)


@pytest.mark.parametrize(
    "layer",
    [
        uh.RandomRotation((0.08, 0.08), fill_mode="reflect"),  # about 29 degrees
        keras.layers.RandomZoom((-0.3, -0.3), fill_mode="reflect"),
    ],
    ids=["rotation", "zoom"],
)
def test_interpolating_transforms_keep_class_ids_and_alignment(layer):
    mask = np.zeros((64, 64), np.float32)
    mask[disc(mask.shape, (20, 22), 9)] = 1
    mask[disc(mask.shape, (42, 40), 12)] = 2
    image = mask[None, ..., None] / 2  # brightness follows the class: 0, 0.5, 1
    out = layer({"images": image, "segmentation_masks": mask[None, ..., None]}, training=True)
    moved_mask = keras.ops.convert_to_numpy(out["segmentation_masks"])[0, ..., 0]
    moved_image = keras.ops.convert_to_numpy(out["images"])[0, ..., 0]
    assert set(np.unique(moved_mask).tolist()) == {0.0, 1.0, 2.0}  # nearest: no new ids
    assert not np.array_equal(moved_mask, mask)
    # Aligned within a pixel: where the image's class disagrees, the mask changes within 1 pixel.
    image_class = np.rint(moved_image * 2)
    edge = ndimage.grey_dilation(moved_mask, 3) != ndimage.grey_erosion(moved_mask, 3)
    assert np.all(edge[image_class != moved_mask])


# Tiled prediction ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(45, 77), (20, 9), (100, 100), (33, 130, 3)])
def test_predict_tiled_with_a_pass_through_model_returns_the_input(shape):
    image = (np.random.default_rng(1).random(shape) * 255).astype(np.uint8)
    channels = 3 if len(shape) == 3 else 1
    model = pass_through_model(32, channels)
    calls = []
    predict = model.predict_on_batch
    model.predict_on_batch = lambda tiles: calls.append(len(tiles)) or predict(tiles)
    result = uh.predict_tiled(model, image, batch_size=5)
    assert result.shape == shape[:2] + (channels,)
    np.testing.assert_allclose(result, uh.normalize_image(image, channels), atol=1e-5)
    assert set(calls) == {5}  # one input shape (JAX compiles once); memory bounded by the batch


def test_predict_tiled_thresholding_model_and_k_channels():
    inputs = keras.Input((16, 16, 1))
    foreground = keras.layers.Lambda(lambda x: keras.ops.cast(x > 0.5, "float32"))(inputs)
    two = keras.layers.Concatenate()([1 - foreground, foreground])
    model = keras.Model(inputs, two)
    image = np.zeros((37, 50), np.uint8)
    image[disc(image.shape, (18, 25), 10)] = 200
    probabilities = uh.predict_tiled(model, image, overlap=0.5)
    assert probabilities.shape == (37, 50, 2)
    np.testing.assert_array_equal(uh.predicted_classes(probabilities)[..., 0], image > 0)


def test_blended_tiles_have_smaller_seams_than_tiles_without_overlap():
    inputs = keras.Input((32, 32, 1))
    # A zero-padded blur: its output is wrong near tile edges, like a real network's.
    blur = keras.layers.Conv2D(1, 7, padding="same", use_bias=False, kernel_initializer="ones")
    model = keras.Model(inputs, blur(inputs) / 49.0)
    image = (np.random.default_rng(0).random((96, 96)) * 255).astype(np.uint8)
    ideal = ndimage.uniform_filter(uh.normalize_image(image)[..., 0], 7, mode="reflect")
    errors = {
        overlap: np.abs(uh.predict_tiled(model, image, overlap=overlap)[..., 0] - ideal).max()
        for overlap in (0.0, 0.5)
    }
    assert errors[0.5] < 0.5 * errors[0.0], errors


def test_predict_tiled_refuses_a_bad_overlap():
    with pytest.raises(ValueError, match="overlap"):
        uh.predict_tiled(pass_through_model(), np.zeros((8, 8)), overlap=1.0)


def test_full_image_validation_logs_pooled_iou():
    model = pass_through_model(16)
    image = np.zeros((40, 30), np.uint8)
    image[5:20, 5:20] = 255
    mask = (image > 0).astype(np.uint8)[..., None]
    other = mask.copy()
    other[5:20, 12:20] = 0  # half of the square is missing from the truth
    callback = uh.FullImageValidation([image, image], [mask, other])
    callback.set_model(model)
    logs = {}
    callback.on_epoch_end(0, logs)
    assert logs["val_iou"] == pytest.approx((225 + 105) / (225 + 225))


def test_refresh_batchnorm_sets_the_plain_average_of_the_batches():
    model = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization(momentum=0.9)])
    rng = np.random.default_rng(0)
    batches = [(rng.normal(k, k + 1, (64, 3)).astype("float32"), None) for k in range(3)]
    uh.refresh_batchnorm(model, batches, batches=2)  # the first two only
    norm = model.layers[0]
    inputs = [batch for batch, _ in batches[:2]]
    mean = keras.ops.convert_to_numpy(norm.moving_mean)
    variance = keras.ops.convert_to_numpy(norm.moving_variance)
    np.testing.assert_allclose(mean, np.mean([x.mean(0) for x in inputs], 0), rtol=1e-5)
    np.testing.assert_allclose(variance, np.mean([x.var(0) for x in inputs], 0), rtol=1e-4)
    assert norm.momentum == 0.9


# Counting -----------------------------------------------------------------------------------------


def test_count_objects_and_min_size():
    mask = np.zeros((40, 40), np.uint8)
    mask[2:10, 2:10] = 1
    mask[20:30, 20:35] = 1
    mask[38, 38] = 1  # a speck
    assert uh.count_objects(mask)[1] == 3
    labels, count = uh.count_objects(mask[..., None], min_size=5)
    assert count == 2 and set(np.unique(labels).tolist()) == {0, 1, 2}


def test_split_touching_cuts_two_overlapping_discs():
    mask = disc((60, 80), (30, 26), 14) | disc((60, 80), (30, 52), 14)
    assert uh.count_objects(mask)[1] == 1
    labels, count = uh.split_touching(mask, min_distance=5)
    assert count == 2
    assert labels[30, 26] != labels[30, 52] and labels[30, 26] > 0


def test_interior_boundary_mask_separates_touching_objects():
    labels = np.zeros((10, 12), np.int32)
    labels[2:8, 1:6] = 1
    labels[2:8, 6:11] = 2  # touches object 1
    mask = uh.interior_boundary_mask(labels)
    assert set(np.unique(mask).tolist()) == {0, 1, 2}
    assert (mask[2:8, 5] == 2).all() and (mask[2:8, 6] == 2).all()  # the shared border
    assert (mask[4, 2:5] == 1).all() and (mask[labels == 0] == 0).all()
    assert uh.count_objects(mask == 1)[1] == 2


def test_normalize_without_percentiles_keeps_absolute_brightness(tmp_path):
    dim = np.full((4, 5), 51, np.uint8)
    np.testing.assert_allclose(uh.normalize_image(dim, percentiles=None), 0.2)
    deep = np.full((4, 5), 13107, np.uint16)
    np.testing.assert_allclose(uh.normalize_image(deep, percentiles=None), 0.2)
    Image.fromarray(deep).save(tmp_path / "deep.png")  # Pillow reads it back as int32
    read_back = uh.read_image(tmp_path / "deep.png")
    np.testing.assert_allclose(uh.normalize_image(read_back, percentiles=None), 0.2)
    scaled = uh.normalize_image(np.array([[0.25, 2.0]]), percentiles=None)  # floats: clipped
    np.testing.assert_allclose(scaled[..., 0], [[0.25, 1.0]])


def test_normalize_auto_scales_grayscale_by_percentiles_and_keeps_colour():
    rng = np.random.default_rng(0)
    gray = (rng.random((20, 30)) * 40).astype(np.uint8)  # a dim exposure
    np.testing.assert_allclose(
        uh.normalize_image(gray, percentiles="auto"), uh.normalize_image(gray)
    )
    as_rgb = np.repeat(gray[..., None], 3, axis=-1)  # a gray picture saved as RGB is still gray
    np.testing.assert_allclose(
        uh.normalize_image(as_rgb, percentiles="auto"), uh.normalize_image(as_rgb)
    )
    colour = (rng.random((20, 30, 3)) * 40).astype(np.uint8)
    np.testing.assert_allclose(
        uh.normalize_image(colour, percentiles="auto"), uh.normalize_image(colour, percentiles=None)
    )
    with pytest.raises(ValueError, match="auto"):
        uh.normalize_image(gray, percentiles="automatic")


@pytest.mark.parametrize("rare", [[1, 0, 0, 0, 0], [0, 1, 1, 0, 0, 0, 0], [0, 0, 0], [1, 1]])
def test_patch_weights_give_the_rare_kind_its_share(rare):
    rare = np.array(rare, bool)
    weights = uh.patch_weights(rare, 0.25)
    if rare.all() or not rare.any():
        assert weights is None  # one kind: every image alike
        return
    np.testing.assert_allclose(weights[rare].sum() / weights.sum(), 0.25)
    assert len(set(weights[rare])) == 1 and len(set(weights[~rare])) == 1

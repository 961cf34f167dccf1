"""Tests of lesson 08's helpers: object matching, the ways to objects, predict_instances, export."""

import csv
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image
from scipy.optimize import linear_sum_assignment

import unet_helpers as uh


def disc(shape, center, radius):
    rows, cols = np.indices(shape)
    return (rows - center[0]) ** 2 + (cols - center[1]) ** 2 <= radius**2


def random_labels(rng, shape=(48, 64), count=8):
    """Discs of random size and place; later ones paint over earlier ones; ids not consecutive."""
    labels = np.zeros(shape, np.int32)
    for object_id in rng.choice(np.arange(1, 1000), count, replace=False):
        center = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        labels[disc(shape, center, rng.uniform(2, 9))] = object_id
    return labels


def brute_force(truth, predicted, threshold):
    """TP, FP, FN and the matched IoUs, one pair of objects at a time, the most matches kept."""
    true_ids, predicted_ids = np.unique(truth)[1:], np.unique(predicted)[1:]
    iou = np.zeros((len(true_ids), len(predicted_ids)))
    for row, t in enumerate(true_ids):
        for column, p in enumerate(predicted_ids):
            a, b = truth == t, predicted == p
            iou[row, column] = (a & b).sum() / (a | b).sum()
    match = iou > threshold
    rows, columns = linear_sum_assignment(match, maximize=True)  # largest set of matched pairs
    tp = int(match[rows, columns].sum())
    assert tp == match.sum(), "above 0.5 every object has at most one partner"
    return tp, len(predicted_ids) - tp, len(true_ids) - tp, iou[match]


# Matching -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_matching_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    truths = [random_labels(rng) for _ in range(3)]
    # Predictions: the truth shifted, eroded here and there, plus objects of their own.
    predictions = [
        np.where(random_labels(rng, count=3) > 0, random_labels(rng, count=3), np.roll(t, 2, 1))
        for t in truths
    ]
    for threshold in (0.5, 0.6, 0.75, 0.9):
        counts = [brute_force(t, p, threshold) for t, p in zip(truths, predictions, strict=True)]
        tp, fp, fn = (sum(c[i] for c in counts) for i in range(3))
        scores = uh.object_scores(truths, predictions, threshold)
        assert (scores["tp"], scores["fp"], scores["fn"]) == (tp, fp, fn)
        assert scores["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
        assert scores["ap"] == pytest.approx(tp / (tp + fp + fn))
        matched = sum(c[3].sum() for c in counts)
        assert scores["pq"] == pytest.approx(matched / (tp + fp / 2 + fn / 2))
    per_image = [
        np.mean([(lambda c: c[0] / sum(c[:3]))(brute_force(t, p, u)) for u in uh.DSB_THRESHOLDS])
        for t, p in zip(truths, predictions, strict=True)
    ]
    assert uh.object_scores(truths, predictions)["dsb"] == pytest.approx(np.mean(per_image))


def test_matching_edge_cases():
    empty = np.zeros((8, 8), np.int32)
    one = empty.copy()
    one[2:5, 2:5] = 7
    assert uh.object_scores([empty], [empty])["dsb"] == 1.0  # nothing to find, nothing found
    scores = uh.object_scores([one, empty], [one, one])
    assert (scores["tp"], scores["fp"], scores["fn"]) == (1, 1, 0)
    assert uh.DSB_THRESHOLDS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
    with pytest.raises(ValueError, match="unique"):
        uh.match_counts(uh.object_iou(one, one), threshold=0.3)
    with pytest.raises(ValueError, match="shape"):
        uh.object_iou(one, one[:4])


def test_object_errors_name_merge_split_miss_and_false_object():
    shape = (60, 100)
    truth = np.zeros(shape, np.int32)
    for object_id, center in enumerate([(15, 15), (15, 40), (15, 53), (45, 20), (45, 60)], 1):
        truth[disc(shape, center, 6)] = object_id  # 2 and 3 touch
    predicted = np.zeros(shape, np.int32)
    predicted[truth == 1] = 1  # found
    predicted[(truth == 2) | (truth == 3)] = 2  # 2 and 3 merged into one
    predicted[(truth == 4) & (np.indices(shape)[1] < 20)] = 3  # 4 split in two
    predicted[(truth == 4) & (np.indices(shape)[1] > 20)] = 4
    predicted[disc(shape, (45, 90), 4)] = 5  # 5 missed, a false object elsewhere
    errors = uh.object_errors(truth, predicted)
    kinds = [uh._ERROR_KINDS[code - 1] for code in errors["true_kind"]]
    assert kinds == ["found", "merged", "merged", "split", "missed"]
    assert errors["false"].tolist() == [False, False, False, False, True]
    assert errors["map"][45, 90] == 5 and errors["map"][45, 60] == 4
    assert errors["true_area"].tolist() == [np.sum(truth == i) for i in range(1, 6)]


# The ways to objects ------------------------------------------------------------------------------


def touching_pair(shape=(40, 60)):
    truth = np.zeros(shape, np.int32)
    truth[disc(shape, (20, 20), 9)] = 1
    truth[disc(shape, (20, 37), 9)] = 2  # overlaps the first: they touch along a line
    truth[disc(shape, (6, 52), 4)] = 3
    return truth


def test_interiors_grown_separate_what_components_merge():
    truth = touching_pair()
    three = uh.one_hot(uh.interior_boundary_mask(truth))
    grown = uh.instances_from_probabilities(three, seed_threshold=0.5, min_size=0)
    assert uh.object_scores([truth], [grown])["f1"] == 1.0
    assert uh.object_iou(truth, grown).max(axis=1).min() > 0.9
    merged = uh.instances_from_probabilities(three, min_size=0)  # no seeds: nucleus area only
    assert merged.max() == 2
    split = uh.instances_from_probabilities(three, min_size=0, min_distance=5)
    assert split.max() == 3


def test_seeds_cut_at_a_neck_where_the_boundary_was_not_learned():
    truth = touching_pair()
    three = uh.one_hot(uh.interior_boundary_mask(truth))
    three[..., 1] += three[..., 2] * (np.abs(np.indices(truth.shape)[1] - 28.5) < 2)  # no gap
    three[..., 2] *= 1 - three[..., 1]
    grown = uh.instances_from_probabilities(three, seed_threshold=0.5, min_size=0)
    assert grown.max() == 2  # the pair's interiors touch: one seed, one object
    cut = uh.instances_from_probabilities(three, seed_threshold=0.5, min_size=0, min_distance=5)
    assert uh.object_scores([truth], [cut])["f1"] == 1.0


def test_classical_baseline_finds_bright_discs():
    shape = (64, 80)
    truth = np.zeros(shape, np.int32)
    for object_id, center in enumerate([(15, 15), (40, 30), (20, 60), (50, 65)], 1):
        truth[disc(shape, center, 7)] = object_id
    rng = np.random.default_rng(0)
    image = (30 + 150 * (truth > 0) + rng.normal(0, 8, shape)).clip(0, 255).astype(np.uint8)
    found = uh.classical_instances(image)
    assert found.dtype == np.int32 and uh.object_scores([truth], [found])["f1"] == 1.0
    assert not uh.classical_instances(np.full(shape, 9, np.uint8)).any()


# predict_instances --------------------------------------------------------------------------------


def pixel_model(n_classes, tile_size=32):
    """A fixed, untrained 'network' that reads classes off normalised brightness, pixel by pixel:
    background 0, boundary about 0.5, interior 1 (3-class); nucleus above 0.25 (binary)."""
    inputs = keras.Input((tile_size, tile_size, 1))
    features = keras.layers.Concatenate()([inputs, keras.layers.Multiply()([inputs, inputs])])
    if n_classes == 1:
        head = keras.layers.Conv2D(1, 1, activation="sigmoid")
        head.build(features.shape)
        head.set_weights([np.array([[[[40.0], [0.0]]]]), np.array([-10.0])])
    else:  # logit of class c: -k (x - c_c)^2, centres 0, 1 and 0.5
        centres, k = np.array([0.0, 1.0, 0.5]), 60.0
        head = keras.layers.Conv2D(3, 1, activation="softmax")
        head.build(features.shape)
        kernel = np.stack([2 * k * centres, np.full(3, -k)])[None, None]
        head.set_weights([kernel, -k * centres**2])
    return keras.Model(inputs, head(features))


def picture_of(truth, dtype=np.uint8):
    """An image whose brightness tells background, nucleus boundary and interior apart."""
    top = 255 if dtype == np.uint8 else 40000
    return (np.array([0, top, top // 2])[uh.interior_boundary_mask(truth)]).astype(dtype)


def synthetic_truth(shape=(70, 90)):
    truth = np.zeros(shape, np.int32)
    centres = [(15, 15), (15, 32), (45, 20), (40, 60), (60, 80), (10, 75)]  # 1 and 2 touch
    for object_id, center in enumerate(centres, 1):
        truth[disc(shape, center, 8 if object_id < 3 else 6)] = object_id
    return truth


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_predict_instances_finds_known_objects(fresh_session, dtype):
    truth = synthetic_truth()
    labels = uh.predict_instances(pixel_model(3), picture_of(truth, dtype))
    assert labels.shape == truth.shape and labels.dtype == np.int32
    assert sorted(np.unique(labels).tolist()) == list(range(len(np.unique(truth))))
    assert uh.object_scores([truth], [labels])["f1"] == 1.0  # the touching pair stays apart


def test_predict_instances_with_a_binary_model(fresh_session):
    truth = synthetic_truth()
    model = pixel_model(1)
    assert uh.object_settings(model)["seed_threshold"] is None  # components by default
    labels = uh.predict_instances(model, picture_of(truth).astype(np.float32) / 255)
    assert labels.max() == truth.max() - 1  # the touching pair merges: no learned boundary
    scores = uh.object_scores([truth], [labels])
    assert (scores["tp"], scores["fp"], scores["fn"]) == (4, 1, 2)


def test_settings_are_saved_in_the_model_and_used_after_loading(fresh_session, tmp_path):
    truth = synthetic_truth()
    image = picture_of(truth)
    settings = dict(threshold=0.4, seed_threshold=np.float64(0.7), min_size=150, overlap=0.25)
    model = uh.with_object_settings(pixel_model(3), **settings)
    model = uh.with_object_settings(model, **settings)  # a second call replaces the layer
    assert sum(isinstance(layer, uh.ObjectSettings) for layer in model.layers) == 1
    labels = uh.predict_instances(model, image)
    assert labels.max() == 2  # min_size=150 drops the four smaller discs
    path = tmp_path / "objects.keras"
    model.save(path)
    np.save(tmp_path / "image.npy", image)
    script = (
        "import sys; import numpy as np; import keras; "
        f"import unet_helpers as uh; "
        f"model = keras.models.load_model({str(path)!r}); "
        f"image = np.load({str(tmp_path / 'image.npy')!r}); "
        f"np.save({str(tmp_path / 'labels.npy')!r}, uh.predict_instances(model, image)); "
        "print(uh.object_settings(model))"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    np.testing.assert_array_equal(np.load(tmp_path / "labels.npy"), labels)
    assert "'seed_threshold': 0.7" in run.stdout and "'min_size': 150," in run.stdout


# Data and export ----------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_label_image_round_trip(tmp_path, suffix):
    labels = np.zeros((20, 30), np.int32)
    labels[2:6, 3:9], labels[10:15, 10:20], labels[16:19, 25:28] = 1, 300, 65535
    uh.save_labels(tmp_path / f"labels{suffix}", labels)
    back = uh.read_image(tmp_path / f"labels{suffix}")
    assert back.shape == labels.shape
    np.testing.assert_array_equal(back, labels)
    with Image.open(tmp_path / f"labels{suffix}") as picture:
        assert picture.mode.startswith("I")  # 16 bit, not 8
    with pytest.raises(ValueError, match="65535"):
        uh.save_labels(tmp_path / f"bad{suffix}", labels + 1)


def test_object_table_csv(tmp_path):
    labels = synthetic_truth()
    image = np.random.default_rng(0).integers(0, 255, labels.shape).astype(np.uint8)
    columns = uh.save_object_table(tmp_path / "objects.csv", labels, image)
    with open(tmp_path / "objects.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert columns == ["id", "area", "centroid_row", "centroid_col", "mean_intensity"]
    assert list(rows[0]) == columns and len(rows) == labels.max()
    assert [int(float(row["id"])) for row in rows] == list(range(1, labels.max() + 1))
    assert sum(float(row["area"]) for row in rows) == np.sum(labels > 0)
    first = labels == 1
    assert float(rows[0]["mean_intensity"]) == pytest.approx(image[first].mean(), abs=1e-3)
    colour = np.stack([image, 255 - image, image // 2], axis=-1)
    columns = uh.save_object_table(tmp_path / "colour.csv", labels, colour)
    assert columns[4:] == ["mean_intensity_0", "mean_intensity_1", "mean_intensity_2"]


def test_data_dir_without_labels_takes_mask_regions(tmp_path):
    truth = synthetic_truth()
    for folder in ("images", "masks"):
        (tmp_path / folder).mkdir()
    Image.fromarray(picture_of(truth)).save(tmp_path / "images" / "a.png")
    Image.fromarray(((truth > 0) * 255).astype(np.uint8)).save(tmp_path / "masks" / "a.png")
    _, masks, stems = uh.load_images(tmp_path, n_classes=1, channels=1)
    from_masks = uh.load_labels(tmp_path, stems, masks)[0]
    assert from_masks.max() == truth.max() - 1  # the touching pair is one object
    assert np.array_equal(from_masks > 0, truth > 0)
    (tmp_path / "labels").mkdir()
    with pytest.raises(FileNotFoundError, match="a"):
        uh.load_labels(tmp_path, stems, masks)
    uh.save_labels(tmp_path / "labels" / "a.png", truth)
    np.testing.assert_array_equal(uh.load_labels(tmp_path, stems, masks)[0], truth)

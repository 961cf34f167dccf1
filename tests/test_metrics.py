"""Unit tests for the metrics half of unet_helpers: IoU/Dice vs sklearn and Keras, losses, plots."""

import re
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np
import pytest
from sklearn.metrics import f1_score, jaccard_score

import unet_helpers as uh
import unet_support as us


def random_cases(count=50, seed=0):
    """Seeded (y_true, y_pred, n_labels) cases of varied shapes, some with classes missing."""
    rng = np.random.default_rng(seed)
    shapes = [(1, 4, 4, 1), (2, 8, 8, 1), (3, 5, 7, 1), (16, 16), (2, 3, 3), (37,), (1, 1, 1, 1)]
    cases = []
    for index in range(count):
        n_labels = int(rng.integers(1, 7))
        shape = shapes[index % len(shapes)]
        true_labels = np.arange(n_labels)
        pred_labels = np.arange(n_labels)
        if n_labels > 1 and index % 3 == 0:  # a class missing from the truth
            true_labels = np.delete(true_labels, rng.integers(n_labels))
        if n_labels > 2 and index % 4 == 0:  # a class missing from both
            missing = rng.integers(n_labels)
            true_labels = true_labels[true_labels != missing]
            pred_labels = pred_labels[pred_labels != missing]
        y_true = rng.choice(true_labels, size=shape).astype(np.uint8)
        y_pred = rng.choice(pred_labels, size=shape)
        if index % 5 == 0:  # mostly correct, as a trained model would be
            keep = rng.random(shape) < 0.8
            y_pred = np.where(keep, y_true, y_pred)
        cases.append((y_true, y_pred.astype(np.int64), n_labels))
    return cases


CASES = random_cases()


def sklearn_scores(y_true, y_pred, n_labels):
    """sklearn's per-class IoU and Dice, NaN where the class is in neither mask (0/0)."""
    y_true, y_pred = y_true.ravel(), y_pred.ravel()
    kwargs = dict(labels=list(range(n_labels)), average=None)
    # jaccard_score accepts only zero_division 0 or 1: where the two differ, IoU is 0/0.
    iou_zero = jaccard_score(y_true, y_pred, zero_division=0, **kwargs)
    iou_one = jaccard_score(y_true, y_pred, zero_division=1, **kwargs)
    iou = np.where(iou_zero == iou_one, iou_zero, np.nan)
    dice = f1_score(y_true, y_pred, zero_division=np.nan, **kwargs)
    return iou, dice


def test_random_cases_cover_missing_classes():
    absent_from_both = 0
    for y_true, y_pred, n_labels in CASES:
        absent_from_both += np.isnan(uh.per_class_iou(y_true, y_pred, n_labels)).sum()
    assert absent_from_both >= 5
    assert {n_labels for *_, n_labels in CASES} == {1, 2, 3, 4, 5, 6}


@pytest.mark.parametrize("case", range(len(CASES)))
def test_iou_and_dice_match_sklearn(case):
    y_true, y_pred, n_labels = CASES[case]
    expected_iou, expected_dice = sklearn_scores(y_true, y_pred, n_labels)
    iou = uh.per_class_iou(y_true, y_pred, n_labels)
    dice = uh.per_class_dice(y_true, y_pred, n_labels)
    assert iou.dtype == np.float64 and iou.shape == (n_labels,)
    np.testing.assert_allclose(iou, expected_iou, atol=1e-6)  # NaN positions must agree too
    np.testing.assert_allclose(dice, expected_dice, atol=1e-6)
    np.testing.assert_allclose(uh.mean_iou(y_true, y_pred, n_labels), np.nanmean(expected_iou))
    if n_labels > 1 and not np.all(np.isnan(expected_iou[1:])):
        np.testing.assert_allclose(
            uh.mean_iou(y_true, y_pred, n_labels, include_background=False),
            np.nanmean(expected_iou[1:]),
        )


def test_confusion_matrix_rows_are_truth_columns_are_prediction():
    y_true = np.array([[0, 0, 1], [1, 2, 2]])
    y_pred = np.array([[0, 1, 1], [2, 2, 0]])
    matrix = uh.confusion_matrix(y_true, y_pred, 3)
    assert matrix.dtype == np.int64
    np.testing.assert_array_equal(matrix, [[1, 1, 0], [0, 1, 1], [1, 0, 1]])
    assert uh.confusion_matrix(y_true, y_pred, 4)[3].sum() == 0


@pytest.mark.parametrize("case", range(0, len(CASES), 7))
def test_mean_iou_matches_keras_mean_iou(case):
    y_true, y_pred, n_labels = CASES[case]
    metric = keras.metrics.MeanIoU(num_classes=n_labels)
    metric.update_state(y_true, y_pred)
    expected = uh.mean_iou(y_true, y_pred, n_labels)
    assert float(metric.result()) == pytest.approx(expected, abs=1e-6)


def binary_example(seed=1, shape=(3, 12, 12, 1)):
    """Truth with a small foreground, and sigmoid-like probabilities below 1."""
    rng = np.random.default_rng(seed)
    y_true = (rng.random(shape) < 0.2).astype(np.uint8)
    probabilities = np.clip(0.35 * y_true + 0.6 * rng.random(shape), 0, 0.999).astype(np.float32)
    return y_true, probabilities


def test_binary_iou_matches_keras_binary_iou():
    y_true, probabilities = binary_example()
    metric = keras.metrics.BinaryIoU(target_class_ids=[1], threshold=0.5)
    metric.update_state(y_true, probabilities)
    ours = uh.per_class_iou(y_true, uh.predicted_classes(probabilities), 2)[1]
    assert 0 < ours < 1
    assert float(metric.result()) == pytest.approx(ours, abs=1e-6)


def test_mean_iou_trap_raw_probabilities_score_like_all_background():
    y_true, probabilities = binary_example()
    raw = keras.metrics.MeanIoU(num_classes=2)  # sparse_y_pred=True casts 0.93 to class 0
    raw.update_state(y_true, probabilities)
    all_background = uh.mean_iou(y_true, np.zeros_like(y_true), 2)
    assert float(raw.result()) == pytest.approx(all_background, abs=1e-6)
    fixed = keras.metrics.MeanIoU(num_classes=2)
    fixed.update_state(y_true, uh.predicted_classes(probabilities))
    correct = uh.mean_iou(y_true, uh.predicted_classes(probabilities), 2)
    assert float(fixed.result()) == pytest.approx(correct, abs=1e-6)
    assert correct > all_background + 0.1
    with pytest.raises(ValueError, match=r"predicted_classes"):
        uh.mean_iou(y_true, probabilities, 2)  # ours refuses instead of scoring the wrong thing


def test_training_metrics_score_probabilities_like_our_helpers():
    y_true, probabilities = binary_example()
    accuracy, iou = uh.segmentation_metrics(1)
    iou.update_state(y_true, probabilities)
    expected = uh.per_class_iou(y_true, uh.predicted_classes(probabilities), 2)[1]
    assert float(iou.result()) == pytest.approx(expected, abs=1e-6)
    rng = np.random.default_rng(2)
    softmax = rng.dirichlet(np.ones(4), size=(2, 6, 6)).astype(np.float32)
    y_true = rng.integers(0, 4, (2, 6, 6, 1))
    accuracy, mean = uh.segmentation_metrics(4)
    mean.update_state(y_true, softmax)
    expected = uh.mean_iou(y_true, uh.predicted_classes(softmax), 4)
    assert float(mean.result()) == pytest.approx(expected, abs=1e-6)


def test_class_absent_from_both_is_nan_and_left_out_of_the_mean():
    y_true = np.array([0, 0, 1, 1])
    y_pred = np.array([0, 1, 1, 1])
    iou = uh.per_class_iou(y_true, y_pred, 3)
    np.testing.assert_allclose(iou[:2], [0.5, 2 / 3])
    assert np.isnan(iou[2])
    assert uh.mean_iou(y_true, y_pred, 3) == pytest.approx((0.5 + 2 / 3) / 2)
    assert uh.mean_iou(y_true, y_pred, 3, include_background=False) == pytest.approx(2 / 3)
    assert np.isnan(uh.per_class_dice(y_true, y_pred, 3)[2])


def test_class_predicted_but_absent_from_truth_scores_zero():
    iou = uh.per_class_iou(np.array([0, 0, 0]), np.array([0, 0, 2]), 3)
    assert iou[2] == 0 and np.isnan(iou[1])


def test_empty_masks_give_nan_without_warnings():
    empty = np.zeros((0, 8, 8, 1), dtype=np.uint8)
    with np.errstate(all="raise"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert np.isnan(uh.per_class_iou(empty, empty, 3)).all()
            assert np.isnan(uh.per_class_dice(empty, empty, 3)).all()
            assert np.isnan(uh.mean_iou(empty, empty, 3))
            assert uh.per_image_iou(empty, empty).shape == (0,)
    assert uh.confusion_matrix(empty, empty, 3).sum() == 0


def test_single_class_and_all_background():
    mask = np.zeros((2, 4, 4, 1), dtype=np.uint8)
    np.testing.assert_array_equal(uh.per_class_iou(mask, mask, 1), [1.0])
    assert uh.mean_iou(mask, mask, 1) == 1.0
    iou = uh.per_class_iou(mask, mask, 2)  # all background, nothing predicted: foreground n/a
    assert iou[0] == 1.0 and np.isnan(iou[1])
    assert uh.mean_iou(mask, mask, 2) == 1.0
    assert np.isnan(uh.mean_iou(mask, mask, 2, include_background=False))
    with pytest.raises(ValueError, match="no class"):
        uh.mean_iou(mask, mask, 1, include_background=False)


def test_all_background_masks_give_background_iou_1_not_all_nan():
    background = np.zeros((3, 8, 8, 1), dtype=np.uint8)  # no object anywhere, none predicted
    iou = uh.per_class_iou(background, background, 4)
    assert iou[0] == 1.0 and np.isnan(iou[1:]).all()
    dice = uh.per_class_dice(background, background, 4)
    assert dice[0] == 1.0 and np.isnan(dice[1:]).all()
    assert uh.mean_iou(background, background, 4) == 1.0
    # Only masks without a single pixel give NaN for every class.
    assert np.isnan(uh.per_class_iou(background[:0], background[:0], 4)).all()


def test_float_masks_with_whole_values_are_accepted():
    y_true = np.array([[0.0, 1.0], [1.0, 1.0]], dtype=np.float32)
    assert uh.mean_iou(y_true, y_true.astype(bool), 2) == 1.0


@pytest.mark.parametrize(
    "y_true, y_pred, n_labels, message",
    [
        (np.zeros((2, 4)), np.full((2, 4), 0.3), 2, r"probabilities.*uh\.predicted_classes"),
        (np.zeros((2, 4)), np.full((2, 4), np.nan), 2, r"non-integer"),
        (np.full((2, 4), 0.5), np.zeros((2, 4)), 2, r"y_true .*class ids"),
        (np.zeros((2, 4, 1)), np.zeros((2, 4)), 2, r"differ in shape"),
        (np.zeros((2, 4, 1)), np.zeros((2, 4, 3)), 3, r"3 channels.*predicted_classes"),
        (np.zeros((2, 4)), np.full((2, 4), 2), 2, r"y_pred holds label 2, outside 0\.\.1"),
        (np.zeros((2, 4)), np.full((2, 4), 1), 1, r"uh\.mask_classes\(1\) = 2"),
        (np.full((2, 4), 255), np.zeros((2, 4)), 2, r"y_true holds label 255.*255"),
        (np.full((2, 4), -1), np.zeros((2, 4)), 2, r"label -1"),
        (np.zeros((2, 4)), np.zeros((2, 4)), 0, r"n_labels must be"),
    ],
)
def test_confusion_matrix_errors_name_the_problem(y_true, y_pred, n_labels, message):
    with pytest.raises(ValueError, match=message):
        uh.confusion_matrix(y_true, y_pred, n_labels)


def test_mask_classes():
    assert [uh.mask_classes(n) for n in (1, 2, 5)] == [2, 2, 5]
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="n_classes must be"):
            uh.mask_classes(bad)


def test_predicted_classes_thresholds_one_channel_and_argmaxes_many():
    sigmoid = np.array([0.2, 0.5, 0.7]).reshape(1, 1, 3, 1)
    binary = uh.predicted_classes(sigmoid)
    assert binary.dtype == np.uint8 and binary.shape == (1, 1, 3, 1)
    np.testing.assert_array_equal(binary.ravel(), [0, 1, 1])
    np.testing.assert_array_equal(uh.predicted_classes(sigmoid, threshold=0.6).ravel(), [0, 0, 1])
    softmax = np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]]).reshape(1, 1, 2, 3)
    classes = uh.predicted_classes(softmax)
    assert classes.dtype == np.uint8 and classes.shape == (1, 1, 2, 1)
    np.testing.assert_array_equal(classes.ravel(), [1, 0])


def test_per_image_iou():
    y_true = np.zeros((3, 2, 2, 1), dtype=np.uint8)
    y_pred = np.zeros_like(y_true)
    y_true[0, 0, :] = 1  # image 0: 2 true pixels, 1 predicted -> 0.5
    y_pred[0, 0, 0] = 1
    y_pred[1, 1, 1] = 1  # image 1: false positive only -> 0; image 2: nothing -> NaN
    iou = uh.per_image_iou(y_true, y_pred)
    np.testing.assert_allclose(iou, [0.5, 0.0, np.nan])
    np.testing.assert_allclose(uh.per_image_iou(y_true, y_pred, class_id=0), [2 / 3, 0.75, 1.0])
    # Whole-dataset IoU pools the pixels, which is not the mean of the per-image values.
    assert uh.per_class_iou(y_true, y_pred, 2)[1] == pytest.approx(1 / 3)


def test_iou_table_text_is_stable():
    y_true = np.array([0, 0, 1, 1])
    y_pred = np.array([0, 1, 1, 1])
    table = uh.iou_table(y_true, y_pred, 3, class_names=["background", "cell", "nucleus"])
    assert table == (
        "class         IoU   Dice  share\n"
        "background  0.500  0.667  0.500\n"
        "cell        0.667  0.800  0.500\n"
        "nucleus       n/a    n/a  0.000\n"
        "mean        0.583  0.733"
    )
    assert uh.iou_table(y_true, y_pred, 2).splitlines()[1].startswith("0    ")
    with pytest.raises(ValueError, match="class_names"):
        uh.iou_table(y_true, y_pred, 2, class_names=["one"])


def test_segmentation_metrics_names_and_types():
    accuracy, iou = uh.segmentation_metrics(1)
    assert isinstance(accuracy, keras.metrics.BinaryAccuracy) and accuracy.name == "accuracy"
    assert isinstance(iou, keras.metrics.BinaryIoU) and iou.name == "iou"
    assert iou.target_class_ids == [1] and iou.threshold == 0.5
    accuracy, mean = uh.segmentation_metrics(3)
    assert isinstance(accuracy, keras.metrics.SparseCategoricalAccuracy)
    assert isinstance(mean, keras.metrics.MeanIoU) and mean.name == "mean_iou"
    assert mean.num_classes == 3 and mean.sparse_y_true and not mean.sparse_y_pred
    with pytest.raises(ValueError, match="n_classes must be"):
        uh.segmentation_metrics(0)


def one_hot_float(labels, n_labels):
    return np.eye(n_labels, dtype=np.float32)[labels[..., 0]]


@pytest.mark.parametrize("make_loss", [uh.dice_loss, uh.dice_cross_entropy_loss])
def test_dice_losses_perfect_is_near_zero_and_wrong_is_larger(make_loss):
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 3, (2, 8, 8, 1))
    perfect = np.clip(one_hot_float(y_true, 3), 1e-7, 1.0)
    wrong = one_hot_float((y_true + 1) % 3, 3) * 0.98 + 0.01
    loss = make_loss(3)
    perfect_loss = float(loss(y_true, perfect))
    wrong_loss = float(loss(y_true, wrong))
    assert perfect_loss == pytest.approx(0.0, abs=1e-4)
    assert np.isfinite(wrong_loss) and wrong_loss > 0.9
    assert float(loss(y_true[..., 0], perfect)) == pytest.approx(perfect_loss, abs=1e-6)


def test_dice_loss_binary_and_channel_check():
    y_true = np.array([0, 1, 1, 0], dtype=np.float32).reshape(1, 2, 2, 1)
    assert float(uh.dice_loss(1)(y_true, y_true)) == pytest.approx(0.0, abs=1e-6)
    assert float(uh.dice_loss(1)(y_true, 1 - y_true)) > 0.5
    with pytest.raises(ValueError, match="3 channels"):
        uh.dice_loss(2)(y_true, np.full((1, 2, 2, 3), 1 / 3, dtype=np.float32))


def tiny_model(n_classes):
    inputs = keras.Input((8, 8, 1))
    activation = "sigmoid" if n_classes == 1 else "softmax"
    return keras.Model(inputs, keras.layers.Conv2D(n_classes, 1, activation=activation)(inputs))


def test_dice_loss_trains_and_the_model_reloads(tmp_path, fresh_session):
    rng = np.random.default_rng(4)
    x = rng.random((4, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 3, (4, 8, 8, 1))
    model = tiny_model(3)
    model.compile(optimizer="adam", loss=uh.dice_cross_entropy_loss(3))
    history = model.fit(x, y, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    model.save(tmp_path / "dice.keras")
    loaded = keras.saving.load_model(tmp_path / "dice.keras")
    assert loaded.loss.get_config()["cross_entropy"] is True


@pytest.mark.parametrize("n_classes", [1, 3])
def test_model_save_and_load_round_trip(tmp_path, n_classes):
    # On every backend (tests/test_backends.py runs this file on JAX and PyTorch): the course's
    # metrics and losses are saved with the model and loaded back.
    keras.backend.clear_session()
    model = uh.compile_unet(uh.build_unet((32, 32, 3), n_classes, base_filters=2, depth=1))
    rng = np.random.default_rng(0)
    images = rng.random((2, 32, 32, 3), dtype=np.float32)
    model.fit(images, rng.integers(0, max(n_classes, 2), (2, 32, 32, 1)), epochs=1, verbose=0)
    expected = model.predict(images, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_array_equal(loaded.predict(images, verbose=0), expected)
    assert loaded.output_shape == (None, 32, 32, n_classes)


def test_pixel_weights_mean_one_and_rare_class_heavier():
    masks = np.zeros((2, 10, 10, 1), dtype=np.uint8)
    masks[:, :3, :3] = 1  # 9% of the pixels
    masks[0, 9, 9] = 2  # 0.5%
    weights = uh.pixel_weights(masks, 3)
    assert weights.shape == (2, 10, 10) and weights.dtype == np.float32
    assert weights.mean() == pytest.approx(1.0, abs=1e-6)
    assert weights[0, 9, 9] > weights[0, 0, 0] > weights[0, 5, 5]
    np.testing.assert_allclose(uh.pixel_weights(masks[..., 0], 3), weights)
    class_weights = uh.class_frequency_weights(masks, 3)
    counts = np.bincount(masks.ravel(), minlength=3)
    np.testing.assert_allclose(class_weights * counts, (counts.sum() / 3) * np.ones(3))
    assert uh.class_frequency_weights(masks, 4)[3] == 0  # absent class: no pixels to weight


def test_pixel_weights_binary_masks_and_bad_labels():
    masks = np.zeros((1, 4, 4, 1), dtype=np.uint8)
    masks[0, 0, 0] = 1
    weights = uh.pixel_weights(masks, 1)
    assert weights.mean() == pytest.approx(1.0) and weights[0, 0, 0] == pytest.approx(8.0)
    with pytest.raises(ValueError, match="outside"):
        uh.pixel_weights(masks * 2, 1)


@pytest.mark.parametrize("weight_shape", [(4, 8, 8), (4, 8, 8, 1)])
def test_model_fit_accepts_per_pixel_sample_weights(weight_shape, fresh_session):
    rng = np.random.default_rng(5)
    x = rng.random((4, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 3, (4, 8, 8, 1))
    model = tiny_model(3)
    model.compile(optimizer="adam", loss=uh.SparseCategoricalCrossentropy())
    weights = uh.pixel_weights(y, 3).reshape(weight_shape)
    assert np.isfinite(model.fit(x, y, sample_weight=weights, epochs=1, verbose=0).history["loss"])
    # The weights act per pixel: zero weight outside class 0 gives sum(w * ce) / pixel count.
    only_background = (y[..., 0] == 0).astype(np.float32).reshape(weight_shape)
    weighted = model.evaluate(x, y, sample_weight=only_background, verbose=0)
    probabilities = model.predict(x, verbose=0)
    cross_entropy = -np.log(np.take_along_axis(probabilities, y, axis=-1))[..., 0]
    expected = np.sum(cross_entropy * (y[..., 0] == 0)) / cross_entropy.size
    assert weighted == pytest.approx(expected, rel=1e-4)


def test_plot_history_one_panel_per_metric():
    history = {
        "loss": [0.9, 0.5, 0.4],
        "iou": [0.2, 0.4, 0.5],
        "val_loss": [1.0, 0.6, 0.5],
        "val_iou": [0.1, 0.3, 0.4],
    }
    fig = uh.plot_history(history)
    assert len(fig.axes) == 2
    assert [ax.get_title() for ax in fig.axes] == ["loss", "iou"]
    train_line, val_line = fig.axes[0].get_lines()
    np.testing.assert_array_equal(train_line.get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(val_line.get_ydata(), history["val_loss"])
    assert len(uh.plot_history(history, metrics=["iou"]).axes) == 1
    with pytest.raises(ValueError, match="mean_iou"):
        uh.plot_history(history, metrics=["mean_iou"])
    plt.close("all")


def test_plot_confusion_matrix_annotates_row_percentages():
    matrix = np.array([[3, 1, 0], [0, 2, 2], [0, 0, 0]])
    fig = uh.plot_confusion_matrix(matrix, class_names=["a", "b", "c"])
    assert len(fig.axes) == 1
    texts = [text.get_text() for text in fig.axes[0].texts]
    assert texts[:6] == ["75.0%", "25.0%", "0.0%", "0.0%", "50.0%", "50.0%"]
    assert texts[6:] == ["n/a"] * 3
    counts = uh.plot_confusion_matrix(matrix, normalize=False)
    assert [text.get_text() for text in counts.axes[0].texts][:2] == ["3", "1"]
    plt.close("all")


def test_pixel_accuracy_matches_sklearn_and_is_high_for_an_empty_prediction():
    from sklearn.metrics import accuracy_score

    rng = np.random.default_rng(11)
    truth = (rng.random((3, 16, 16, 1)) < 0.1).astype(np.uint8)
    guess = rng.integers(0, 2, truth.shape).astype(np.uint8)
    expected = accuracy_score(truth.ravel(), guess.ravel())
    assert uh.pixel_accuracy(truth, guess) == pytest.approx(expected, abs=1e-12)
    empty = np.zeros_like(truth)
    assert uh.pixel_accuracy(truth, empty) == pytest.approx(1 - truth.mean())
    assert uh.per_class_iou(truth, empty, 2)[1] == 0
    with pytest.raises(ValueError, match="predicted_classes"):
        uh.pixel_accuracy(truth, guess * 0.7)


def test_peak_memory_bytes_is_the_high_water_mark_in_bytes():
    import sys

    if sys.platform == "win32":
        assert uh.peak_memory_bytes() is None
        return
    if not Path("/proc/self/status").exists():
        pytest.skip("no /proc here to read the high-water mark from")

    def high_water_mark():  # Linux's own figure, in kB
        status = Path("/proc/self/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024

    before = high_water_mark()
    peak = uh.peak_memory_bytes()
    # Within 5 % (the kernel updates the two figures at slightly different times); kilobytes
    # read as bytes would be 1024 times off.
    assert 0.95 * before <= peak <= 1.05 * high_water_mark()


def test_course_cross_entropy_equals_keras_per_pixel_and_weighted():
    rng = np.random.default_rng(8)
    y = rng.integers(0, 3, (2, 5, 7, 1))
    probabilities = rng.dirichlet(np.ones(3), size=(2, 5, 7)).astype(np.float32)
    weights = rng.random((2, 5, 7)).astype(np.float32)
    per_pixel = keras.ops.convert_to_numpy(us.sparse_categorical_crossentropy(y, probabilities))
    assert per_pixel.shape == (2, 5, 7)
    np.testing.assert_allclose(
        per_pixel, -np.log(np.take_along_axis(probabilities, y, axis=-1))[..., 0], rtol=1e-5
    )
    for sample_weight in (None, weights):
        ours = uh.SparseCategoricalCrossentropy()(y, probabilities, sample_weight=sample_weight)
        stock = keras.losses.SparseCategoricalCrossentropy()(y, probabilities, sample_weight)
        assert float(ours) == pytest.approx(float(stock), rel=1e-5)


@pytest.mark.parametrize("weighted", [False, True])
def test_course_iou_metrics_count_what_keras_counts(weighted):
    rng = np.random.default_rng(9)
    weights = rng.integers(0, 3, (3, 6, 5)).astype(np.float32) if weighted else None  # int counts
    truth = rng.integers(0, 2, (3, 6, 5, 1))
    truth[0, 0, 0] = 255  # outside the labels: neither metric counts it
    probabilities = rng.random((3, 6, 5, 1)).astype(np.float32)
    ids = rng.integers(0, 4, (3, 6, 5, 1))
    softmax = rng.dirichlet(np.ones(4), size=(3, 6, 5)).astype(np.float32)
    pairs = [
        (
            uh.BinaryIoU(target_class_ids=[1], threshold=0.5),
            keras.metrics.BinaryIoU(target_class_ids=[1], threshold=0.5),
            truth,
            probabilities,
        ),
        (
            uh.MeanIoU(num_classes=4, sparse_y_pred=False),
            keras.metrics.MeanIoU(num_classes=4, sparse_y_pred=False),
            ids,
            softmax,
        ),
    ]
    for ours, stock, y_true, y_pred in pairs:
        for _ in range(2):  # the matrix accumulates over batches
            ours.update_state(y_true, y_pred, sample_weight=weights)
            stock.update_state(y_true, y_pred, sample_weight=weights)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(ours.total_cm),
            keras.ops.convert_to_numpy(stock.total_cm),
            rtol=1e-5,
        )
        assert float(ours.result()) == pytest.approx(float(stock.result()), rel=1e-5)

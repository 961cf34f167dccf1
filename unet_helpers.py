"""Shared code for the unet-from-blocks lessons: U-Net blocks, ``build_unet``, data, metrics, plots.

Each name is introduced by a lesson and lives here once, in lesson order; its docstring's first
sentence carries "(lesson NN.S)": section S of lesson NN, which introduces it, first calls (or
names) it (an earlier lesson may call it ahead: lesson 01 calls 02's blocks). What the lessons
need not read (input checks, folder readers, array plumbing, the synthetic-data renderer, Keras
fixes, figure drawing, file writers) is in unet_support.py, which never imports this module; the
names of it the lessons call are imported here. ``import keras`` only: any backend.

Contents, by the lesson that introduces each name; a name in parentheses goes with the one
before it (tests/test_lint.py checks each public name is listed once, under its tag's lesson):

* 01 architecture: ``feature_map_table``, ``print_feature_map_table``, ``valid_sizes_near``,
  ``check_unet_config``, ``plot_unet_diagram``.
* 02 blocks as functions: ``conv_block``, ``encoder_block``, ``decoder_block``,
  ``BATCHNORM_MOMENTUM``.
* 03 assemble and summarize: ``build_unet``, ``training_setup`` (``SparseCategoricalCrossentropy``),
  ``compile_unet`` (``segmentation_metrics``, ``BinaryIoU``, ``MeanIoU``), ``multiply_adds``.
* 04 binary segmentation: ``ensure_dataset`` (``make_synthetic_dataset``), ``synthetic_pair``,
  ``load_dataset`` (``cut_tiles``), ``split_dataset``, ``class_pixel_fractions``, ``mask_classes``,
  ``predicted_classes``, ``show_examples`` (``colorize_mask``), ``per_class_iou``,
  ``per_image_iou``, ``plot_history``, ``peak_memory_bytes``.
* 05 multiclass: ``SYNTHETIC_CLASS_NAMES``, ``iou_table``, ``confusion_matrix``,
  ``plot_confusion_matrix``, ``class_frequency_weights``, ``pixel_weights``, ``DiceLoss``
  (``dice_loss``, ``dice_cross_entropy_loss``).
* 06 accuracy versus IoU: ``pixel_accuracy``, ``per_class_dice``, ``mean_iou``.
* 07 real images at full resolution: ``read_image``, ``image_files``, ``load_images``,
  ``normalize_image`` (``bright_background``), ``augmentation`` (``RandomRotation``,
  ``augmentation_outcomes``), ``patch_weights``, ``PatchDataset``, ``predict_tiled``
  (``blending_window``), ``FullImageValidation``, ``refresh_batchnorm``, ``pooled_iou``,
  ``count_objects``, ``split_touching``, ``load_labels``, ``interior_boundary_mask``.
* 08 from pixels to objects: ``object_iou``, ``match_counts``, ``object_scores``
  (``DSB_THRESHOLDS``), ``object_errors``, ``instances_from_mask``, ``grow_seeds``,
  ``instances_from_probabilities``, ``one_hot``, ``otsu_mask``, ``classical_instances``,
  ``ObjectSettings``, ``with_object_settings``, ``object_settings``, ``predict_instances``,
  ``save_labels``, ``save_object_table``.

The file is in the order of the tags (tested), each lesson under a ``# --- Lesson NN`` line.
``n_classes`` counts the head's channels (1 = binary), ``n_labels`` the label values in the masks
(binary = 2): ``mask_classes(n_classes)`` converts the first into the second.
"""

import keras
import numpy as np
from keras import layers

import unet_support as support
from unet_support import (
    SYNTHETIC_CLASS_NAMES,
    BinaryIoU,
    MeanIoU,
    ObjectSettings,
    RandomRotation,
    SparseCategoricalCrossentropy,
    augmentation_outcomes,
    colorize_mask,
    ensure_dataset,
    image_files,
    make_synthetic_dataset,
    object_settings,
    peak_memory_bytes,
    plot_confusion_matrix,
    plot_history,
    read_image,
    save_labels,
    save_object_table,
    synthetic_pair,
    with_object_settings,
)


# --- Lesson 01: architecture ----------------------------------------------------------------------
def feature_map_table(input_shape, base_filters=64, depth=4):
    """Rows ``(stage, height, width, filters)`` of the feature maps in order (lesson 01.2)."""
    check_unet_config(input_shape, 1, base_filters, depth)
    height, width, channels = input_shape

    def row(stage, level):
        return (stage, height >> level, width >> level, base_filters << level)

    encoder = [row(f"encoder {level + 1}", level) for level in range(depth)]
    decoder = [row(f"decoder {level + 1}", level) for level in reversed(range(depth))]
    return [("input", height, width, channels), *encoder, row("bridge", depth), *decoder]


def print_feature_map_table(input_shape, base_filters=64, depth=4):
    """Print feature_map_table as aligned columns (lesson 01.2)."""
    print(f"{'stage':<10} {'height':>6} {'width':>6} {'filters':>8}")
    for stage, height, width, filters in feature_map_table(input_shape, base_filters, depth):
        print(f"{stage:<10} {height:>6} {width:>6} {filters:>8}")


def valid_sizes_near(size, depth):
    """The two sizes below and the two above ``size`` divisible by ``2**depth`` (lesson 01.3)."""
    step = 2**depth
    below = [(size // step - i) * step for i in range(2)]
    above = [(size // step + 1 + i) * step for i in range(2)]
    return sorted(s for s in below + above if s > 0)


def check_unet_config(input_shape, n_classes=1, base_filters=64, depth=4):
    """Raise a ValueError that names the fix if these settings cannot make a U-Net (lesson 01.3)."""
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise ValueError(
            f"input_shape must be (height, width, channels), for example (128, 128, 3); "
            f"got {input_shape!r}. A grayscale image still needs its channel: (128, 128, 1)."
        )
    settings = (*input_shape, n_classes, depth, base_filters)
    names = ("height", "width", "channels", "n_classes", "depth", "base_filters")
    for name, value in zip(names, settings, strict=True):
        support.check_whole_number(name, value)
    step = 2**depth
    for axis, size in zip(("height", "width"), input_shape[:2], strict=True):
        if size % step:
            raise ValueError(
                f"input {axis} {size} is not divisible by 2**depth = {step}: each of the {depth} "
                f"poolings halves it and the decoder must double it back to the same size. "
                f"Use a size such as {valid_sizes_near(size, depth)}, or a smaller depth."
            )


def plot_unet_diagram(input_shape, base_filters=64, depth=4, n_classes=1):
    """Draw the U: a box per level (size, filters), pooling, up-sampling and skips (lesson 01.5)."""
    check_unet_config(input_shape, n_classes, base_filters, depth)
    height, width, _ = input_shape
    head = _head_activation(n_classes)
    return support.draw_unet(height, width, base_filters, depth, f"{n_classes} ({head})")


# --- Lesson 02: blocks as functions ---------------------------------------------------------------
#: BatchNormalization's momentum (lesson 02.1): averages lag ``momentum / (1 - momentum)`` steps;
#: Keras' 0.99 suits long runs, 0.9 a short CPU run (lesson 03, section 7).
BATCHNORM_MOMENTUM = 0.9


def conv_block(x, filters, batchnorm_momentum=BATCHNORM_MOMENTUM):
    """Two rounds of 3x3 Conv2D (same padding) -> BatchNormalization -> ReLU (lesson 02.2)."""
    for _ in range(2):
        x = layers.Conv2D(filters, 3, padding="same")(x)
        x = layers.BatchNormalization(momentum=batchnorm_momentum)(x)
        x = layers.Activation("relu")(x)
    return x


def encoder_block(x, filters, batchnorm_momentum=BATCHNORM_MOMENTUM):
    """conv_block then 2x2 max pooling: ``(skip, pooled)``, skip for the decoder (lesson 02.3)."""
    skip = conv_block(x, filters, batchnorm_momentum)
    pooled = layers.MaxPooling2D(2)(skip)
    return skip, pooled


def decoder_block(x, skip, filters, batchnorm_momentum=BATCHNORM_MOMENTUM):
    """Up by a 2x2 stride-2 Conv2DTranspose, concatenate ``skip``, then conv_block (lesson 02.4)."""
    x = layers.Conv2DTranspose(filters, 2, strides=2, padding="same")(x)
    x = layers.Concatenate()([x, skip])
    return conv_block(x, filters, batchnorm_momentum)


# --- Lesson 03: assemble and summarize ------------------------------------------------------------
def build_unet(
    input_shape,
    n_classes=1,
    base_filters=64,
    depth=4,
    batchnorm_momentum=BATCHNORM_MOMENTUM,
    name="U-Net",
):
    """The U-Net: ``depth`` encoder and decoder blocks, a bridge, a 1x1 head (lesson 03.1).
    Level ``i`` has ``base_filters * 2**i`` filters; sigmoid for 1 class, softmax for K."""
    check_unet_config(input_shape, n_classes, base_filters, depth)
    x = inputs = keras.Input(shape=tuple(input_shape), name="image")
    skips = []
    for level in range(depth):
        skip, x = encoder_block(x, base_filters * 2**level, batchnorm_momentum)
        skips.append(skip)
    x = conv_block(x, base_filters * 2**depth, batchnorm_momentum)  # the bridge
    for level in reversed(range(depth)):
        x = decoder_block(x, skips[level], base_filters * 2**level, batchnorm_momentum)
    outputs = layers.Conv2D(n_classes, 1, activation=_head_activation(n_classes), name="mask")(x)
    return keras.Model(inputs, outputs, name=name)


def multiply_adds(model):
    """Multiply-adds of the convolutions of a model, for one image (lesson 03.3)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2DTranspose):  # kernel applied per input pixel
            total += np.prod(layer.kernel.shape) * layer.input.shape[1] * layer.input.shape[2]
        elif isinstance(layer, keras.layers.Conv2D):  # kernel applied per output pixel
            total += np.prod(layer.kernel.shape) * layer.output.shape[1] * layer.output.shape[2]
    return int(total)


def _head_activation(n_classes):
    """Sigmoid for one channel (binary), softmax for K >= 2 classes (one class per pixel)."""
    return "sigmoid" if n_classes == 1 else "softmax"


def training_setup(n_classes):
    """Head activation, loss and metrics for ``n_classes`` (lesson 03.6): binary cross-entropy for
    1 channel, sparse categorical cross-entropy (masks of class ids) for K."""
    mask_classes(n_classes)  # validates n_classes
    activation = _head_activation(n_classes)
    loss = keras.losses.BinaryCrossentropy() if n_classes == 1 else SparseCategoricalCrossentropy()
    return {"activation": activation, "loss": loss, "metrics": segmentation_metrics(n_classes)}


def compile_unet(model, learning_rate=1e-3, loss=None, clipnorm=None):
    """Compile with Adam, the loss and metrics ``training_setup`` gives the head (lesson 03.6).
    ``loss`` replaces the default loss; binary cross-entropy on a softmax head is refused."""
    n_classes = int(model.output_shape[-1])  # the head's channels
    setup = training_setup(n_classes)
    support.check_head_and_loss(model, setup["activation"], loss)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate, clipnorm=clipnorm),
        loss=loss if loss is not None else setup["loss"],
        metrics=setup["metrics"],
    )
    return model


def segmentation_metrics(n_classes):
    """Keras metrics: accuracy and foreground IoU (1 channel) or mean IoU (K) (lesson 03.8)."""
    mask_classes(n_classes)  # validates n_classes
    if n_classes == 1:
        return [
            keras.metrics.BinaryAccuracy(name="accuracy"),
            BinaryIoU(target_class_ids=[1], threshold=0.5, name="iou"),
        ]
    return [
        keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
        MeanIoU(num_classes=n_classes, sparse_y_true=True, sparse_y_pred=False, name="mean_iou"),
    ]


# --- Lesson 04: binary segmentation ---------------------------------------------------------------
def cut_tiles(array, tile_size):
    """``tile_size`` tiles (n, tile_size, tile_size, ...) covering an array (lesson 04.1): none
    resized, small arrays reflect-padded, the last tiles overlapping their neighbours."""
    array = support.pad_to_at_least(array, tile_size)
    tops, lefts = (support.tile_starts(length, tile_size, tile_size) for length in array.shape[:2])
    return np.stack([array[t : t + tile_size, s : s + tile_size] for t in tops for s in lefts])


def load_dataset(
    directory, image_size=128, n_classes=1, channels=3, percentiles=(1.0, 99.8), mask_values=None
):
    """``load_images`` cut into ``image_size`` tiles (lesson 04.1): ``(images, masks, stems)``,
    stems naming the file of each tile, for ``split_dataset(groups=...)``."""
    images, masks, stems = load_images(directory, n_classes, channels, percentiles, mask_values)
    images = [cut_tiles(image, image_size) for image in images]
    stems = [stem for stem, tiles in zip(stems, images, strict=True) for _ in tiles]
    masks = np.concatenate([cut_tiles(mask, image_size) for mask in masks])
    return np.concatenate(images), masks, stems


def class_pixel_fractions(masks, n_classes):
    """Fraction of all pixels per class id (binary: [background, foreground]) (lesson 04.1)."""
    labels = mask_classes(n_classes)
    masks = support.check_class_ids(np.asarray(masks).ravel(), n_classes, labels)
    counts = np.bincount(masks.astype(np.int64), minlength=labels)
    return counts / max(counts.sum(), 1)


def show_examples(images, masks, predictions=None, n_classes=1, count=4, class_names=None):
    """A row per example: image, true mask, (prediction, errors), overlay; the figure (lesson 04.1).
    ``predictions`` may be probabilities or class ids."""
    count = min(count, len(images))
    truths = [np.asarray(mask)[..., 0] if np.ndim(mask) == 3 else mask for mask in masks[:count]]
    predicted_ids = ious = None
    if predictions is not None:
        predicted_ids = np.asarray(predictions[:count])
        if np.issubdtype(predicted_ids.dtype, np.floating):  # probabilities -> class ids
            predicted_ids = predicted_classes(predicted_ids)
        predicted_ids = predicted_ids[..., 0]
        labels = mask_classes(n_classes)
        ious = [
            mean_iou(truth, found, labels, include_background=n_classes > 1)
            for truth, found in zip(truths, predicted_ids, strict=True)
        ]
    return support.draw_examples(
        images[:count], truths, predicted_ids, ious, n_classes, class_names
    )


def split_dataset(
    images, masks, validation_fraction=0.15, test_fraction=0.15, seed=0, groups=None, strata=None
):
    """Seeded split {"train", "validation", "test": (images, masks)} (lesson 04.2). ``groups`` keep
    a picture's tiles in one split; ``strata`` split each kind alone (under 3 groups: train)."""
    count = len(images)
    groups = np.arange(count) if groups is None else groups
    strata = np.zeros(count, int) if strata is None else strata
    names, group_of = np.unique(np.asarray(groups), return_inverse=True)
    lengths = (len(masks), len(groups), len(strata))
    support.check_split(count, lengths, (validation_fraction, test_fraction), len(names))
    group_stratum = np.zeros(len(names), int)
    group_stratum[group_of] = np.unique(np.asarray(strata), return_inverse=True)[1]
    rng = np.random.default_rng(seed)
    chosen = {"validation": [], "test": [], "train": []}
    for stratum in np.unique(group_stratum):
        order = rng.permutation(np.flatnonzero(group_stratum == stratum))
        n_validation = max(1, round(len(order) * validation_fraction))
        n_test = max(1, round(len(order) * test_fraction))
        if len(order) - n_validation - n_test < 1:
            n_validation, n_test = (1, 1) if len(order) >= 3 else (0, 0)
        chosen["validation"] += list(order[:n_validation])
        chosen["test"] += list(order[n_validation : n_validation + n_test])
        chosen["train"] += list(order[n_validation + n_test :])
    members = [np.flatnonzero(group_of == group) for group in range(len(names))]
    splits = {}
    for name in ("train", "validation", "test"):
        index = np.concatenate([members[group] for group in chosen[name]])
        if isinstance(images, np.ndarray):
            splits[name] = (images[index], masks[index])
        else:
            splits[name] = ([images[i] for i in index], [masks[i] for i in index])
    return splits


def mask_classes(n_classes):
    """Label values in masks for a head of ``n_classes`` channels: 2 for 1, else K (lesson 04.5)."""
    support.check_whole_number("n_classes", n_classes)
    return 2 if n_classes == 1 else int(n_classes)


def predicted_classes(probabilities, threshold=0.5):
    """uint8 class ids ``(..., 1)`` of output ``(..., C)``: 1 channel thresholded, else argmax
    (lesson 04.5)."""
    probabilities = np.asarray(probabilities)
    dtype = np.uint8 if probabilities.shape[-1] <= 256 else np.int64
    if probabilities.shape[-1] == 1:
        return (probabilities >= threshold).astype(dtype)
    return np.argmax(probabilities, axis=-1, keepdims=True).astype(dtype)


def per_class_iou(y_true, y_pred, n_labels):
    """IoU = TP / (TP + FP + FN) per class, float64; NaN for a class in no mask (lesson 04.5)."""
    matrix = confusion_matrix(y_true, y_pred, n_labels)
    true_positives = np.diag(matrix)
    union = matrix.sum(axis=0) + matrix.sum(axis=1) - true_positives
    return support.ratio_or_nan(true_positives, union)


def per_image_iou(y_true, y_pred, class_id=1):
    """IoU of one class per image (axis 0), float64 ``(N,)``; NaN if in neither (lesson 04.5)."""
    y_true, y_pred = support.check_label_masks(y_true, y_pred)
    if y_true.ndim < 2:
        raise ValueError(f"masks must be a batch (N, H, W, 1); got shape {y_true.shape}.")
    pixels = int(np.prod(y_true.shape[1:]))
    truth = (y_true == class_id).reshape(len(y_true), pixels)
    predicted = (y_pred == class_id).reshape(len(y_pred), pixels)
    intersection = np.sum(truth & predicted, axis=1)
    union = np.sum(truth | predicted, axis=1)
    return support.ratio_or_nan(intersection, union)


# --- Lesson 05: multiclass ------------------------------------------------------------------------
def confusion_matrix(y_true, y_pred, n_labels):
    """Pixel counts int64 ``(n_labels, n_labels)``, rows true, columns predicted (lesson 05.4): as
    scikit-learn's, empty masks allowed, labels outside 0..n_labels-1 refused, not lost."""
    support.check_whole_number("n_labels", n_labels)
    y_true, y_pred = support.check_label_masks(y_true, y_pred, n_labels)
    flat_index = y_true.astype(np.int64).ravel() * n_labels + y_pred.astype(np.int64).ravel()
    counts = np.bincount(flat_index, minlength=n_labels * n_labels)
    return counts.reshape(n_labels, n_labels).astype(np.int64)


def iou_table(y_true, y_pred, n_labels, class_names=None):
    """Printable table: IoU, Dice, share of true pixels per class, means (n/a: undefined)
    (lesson 05.4)."""
    class_names = [str(name) for name in (range(n_labels) if class_names is None else class_names)]
    if len(class_names) != n_labels:
        raise ValueError(f"got {len(class_names)} class_names for n_labels={n_labels}.")
    matrix = confusion_matrix(y_true, y_pred, n_labels)
    iou = per_class_iou(y_true, y_pred, n_labels)
    dice = per_class_dice(y_true, y_pred, n_labels)
    share = support.ratio_or_nan(matrix.sum(axis=1), np.full(n_labels, matrix.sum()))
    width = max(len(name) for name in class_names + ["class", "mean"])

    def number(value):
        return "n/a" if np.isnan(value) else f"{value:.3f}"

    lines = [f"{'class':<{width}} {'IoU':>6} {'Dice':>6} {'share':>6}"]
    for name, row in zip(class_names, zip(iou, dice, share, strict=True), strict=True):
        lines.append(f"{name:<{width}} " + " ".join(f"{number(v):>6}" for v in row))
    means = (support.nanmean_or_nan(iou), support.nanmean_or_nan(dice))
    lines.append(f"{'mean':<{width}} " + " ".join(f"{number(v):>6}" for v in means))
    return "\n".join(lines)


def dice_loss(n_classes, smooth=1.0):
    """Soft Dice loss for ``model.compile(loss=...)``: rare classes count as much (lesson 05.5)."""
    return DiceLoss(n_classes, cross_entropy=False, smooth=smooth)


def dice_cross_entropy_loss(n_classes, smooth=1.0):
    """Cross-entropy (sparse categorical, or binary for 1 channel) plus soft Dice (lesson 05.5)."""
    return DiceLoss(n_classes, cross_entropy=True, smooth=smooth)


def class_frequency_weights(masks, n_classes):
    """Median-frequency weight per class (0 if absent), the mean pixel weighing 1 (lesson 05.5)."""
    if np.size(masks) == 0:
        raise ValueError("masks are empty: there are no pixels to count.")
    frequency = class_pixel_fractions(masks, n_classes)
    present = frequency > 0
    weights = np.zeros(len(frequency))
    weights[present] = np.median(frequency[present]) / frequency[present]
    return weights / np.sum(weights * frequency)


def pixel_weights(masks, n_classes):
    """float32 (N, H, W) weights of each pixel's class (``class_frequency_weights``), mean 1, for
    ``model.fit(..., sample_weight=...)`` (lesson 05.5)."""
    masks = np.asarray(masks)
    weights = class_frequency_weights(masks, n_classes)
    if masks.ndim == 4 and masks.shape[-1] == 1:
        masks = masks[..., 0]
    return weights[masks.astype(np.int64)].astype(np.float32)


@keras.saving.register_keras_serializable(package="unet_helpers")
class DiceLoss(keras.losses.Loss):
    """Soft Dice loss, 1 - mean over classes of Dice, summed over the batch (lesson 05.6);
    ``cross_entropy=True`` adds cross-entropy. y_true: class ids; y_pred: sigmoid or softmax."""

    def __init__(self, n_classes, cross_entropy=False, smooth=1.0, name=None, **kwargs):
        mask_classes(n_classes)  # validates n_classes
        name = name or ("dice_cross_entropy_loss" if cross_entropy else "dice_loss")
        super().__init__(name=name, **kwargs)
        self.n_classes = int(n_classes)
        self.cross_entropy = bool(cross_entropy)
        self.smooth = float(smooth)

    def call(self, y_true, y_pred):
        """Scalar loss for the batch (Dice is a ratio of batch sums, not a per-pixel loss)."""
        y_pred = keras.ops.convert_to_tensor(y_pred)
        if y_pred.shape[-1] is not None and y_pred.shape[-1] != self.n_classes:
            raise ValueError(
                f"DiceLoss(n_classes={self.n_classes}) got predictions with {y_pred.shape[-1]} "
                f"channels: use the model's n_classes (its output channels)."
            )
        y_true = keras.ops.cast(y_true, "int32")
        if len(y_true.shape) == len(y_pred.shape):
            y_true = keras.ops.squeeze(y_true, axis=-1)
        probabilities = y_pred
        if self.n_classes == 1:
            probabilities = keras.ops.concatenate([1.0 - y_pred, y_pred], axis=-1)
        one_hot = keras.ops.one_hot(y_true, mask_classes(self.n_classes), dtype=probabilities.dtype)
        pixel_axes = tuple(range(len(probabilities.shape) - 1))
        intersection = keras.ops.sum(one_hot * probabilities, axis=pixel_axes)
        total = keras.ops.sum(one_hot, axis=pixel_axes) + keras.ops.sum(
            probabilities, axis=pixel_axes
        )
        dice = (2.0 * intersection + self.smooth) / (total + self.smooth)
        loss = 1.0 - keras.ops.mean(dice)
        if self.cross_entropy:
            if self.n_classes == 1:
                y_true_channel = keras.ops.cast(keras.ops.expand_dims(y_true, -1), y_pred.dtype)
                pixel_loss = keras.losses.binary_crossentropy(y_true_channel, y_pred)
            else:
                pixel_loss = support.sparse_categorical_crossentropy(y_true, y_pred)
            loss = loss + keras.ops.mean(pixel_loss)
        return loss

    def get_config(self):  # so that a model compiled with this loss can be saved and loaded
        own = dict(n_classes=self.n_classes, cross_entropy=self.cross_entropy, smooth=self.smooth)
        return {**super().get_config(), **own}


# --- Lesson 06: accuracy versus IoU ---------------------------------------------------------------
def pixel_accuracy(y_true, y_pred):
    """Share of pixels whose predicted class is the true one, high for empty masks (lesson 06.2)."""
    y_true, y_pred = support.check_label_masks(y_true, y_pred)
    return float(np.mean(y_true == y_pred)) if y_true.size else float("nan")


def per_class_dice(y_true, y_pred, n_labels):
    """Dice = 2 TP / (2 TP + FP + FN) per class (the F1 score), NaN as ``per_class_iou``
    (lesson 06.3)."""
    matrix = confusion_matrix(y_true, y_pred, n_labels)
    true_positives = np.diag(matrix)
    return support.ratio_or_nan(2 * true_positives, matrix.sum(axis=0) + matrix.sum(axis=1))


def mean_iou(y_true, y_pred, n_labels, include_background=True):
    """Mean of ``per_class_iou`` where it is defined, as ``keras.metrics.MeanIoU`` (lesson 06.3);
    ``include_background=False`` leaves out class 0."""
    iou = per_class_iou(y_true, y_pred, n_labels)
    if not include_background:
        if n_labels == 1:
            raise ValueError("include_background=False with n_labels=1 leaves no class to mean.")
        iou = iou[1:]
    return support.nanmean_or_nan(iou)


# --- Lesson 07: real images at full resolution ----------------------------------------------------
def load_images(directory, n_classes=1, channels=3, percentiles=(1.0, 99.8), mask_values=None):
    """Full-resolution ``(images, masks, stems)`` (lesson 07.1): float32 images normalised by
    ``normalize_image``, uint8 (H, W, 1) class ids; ``mask_values``: each class's value in files."""
    support.check_channels(channels, (1, 3))
    pictures, masks, stems = support.read_pairs(directory, n_classes, mask_values)
    return [normalize_image(p, channels, percentiles) for p in pictures], masks, stems


def load_labels(directory, stems, masks):
    """True objects per stem: ``labels/<stem>.*``, or without labels/, ``masks`` (lesson 07.1)."""
    labels = support.read_labels(directory, stems, [mask.shape[:2] for mask in masks])
    return labels or [count_objects(mask)[0].astype(np.int32) for mask in masks]


def normalize_image(image, channels=None, percentiles=(1.0, 99.8)):
    """float32 (H, W, C) in [0, 1] between the image's percentiles (None: its type's maximum;
    "auto": percentiles for grayscale only) (lesson 07.2); ``channels`` 1 or 3 converts. Dark
    objects on a bright background stay dark: ``augmentation`` and ``PatchDataset`` teach both."""
    array, maximum = support.image_array(image)
    support.check_channels(channels)
    gray = array.shape[-1] == 1 or bool(np.all(array == array[..., :1]))
    if isinstance(percentiles, str):  # lesson 05: its colour classes keep absolute values
        if percentiles != "auto":
            raise ValueError(
                f'percentiles must be (low, high), None or "auto"; got {percentiles!r}.'
            )
        percentiles = (1.0, 99.8) if gray else None
    if channels == 1 and array.shape[-1] == 3:
        array = array @ np.array([[0.299], [0.587], [0.114]], np.float32)  # luminance, as Pillow
    elif channels == 3 and array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    if percentiles is None:
        return np.clip(array / np.float32(maximum), 0.0, 1.0)
    low, high = np.percentile(array, percentiles)
    if not high > low:  # a flat image: nothing to scale
        return np.zeros_like(array)
    return np.clip((array - np.float32(low)) / np.float32(high - low), 0.0, 1.0)


def bright_background(image):
    """True for a grayscale image whose scaled median is above 0.5, such as dark nuclei in a
    bright-field picture (lesson 07.2). Colour images: False."""
    array = np.asarray(image)
    if array.ndim == 3 and not np.all(array[..., :3] == array[..., :1]):
        return False
    return bool(np.median(normalize_image(array)) > 0.5)


def augmentation(rotation=True, contrast=0.6, seed=None):
    """Flips and a rotation alike on ``{"images": x, "segmentation_masks": y}`` (lesson 07.4):
    masks nearest (class ids stay exact); then the images' contrast, times 1 to 1 + ``contrast``."""
    # Two flips: RandomFlip("horizontal_and_vertical") flips both axes or neither (never a mirror).
    # A seed per layer: layers sharing one seed draw the same numbers in lockstep.
    seeds = [None] * 4 if seed is None else [seed, seed + 1, seed + 2, seed + 4]
    flips = zip(("horizontal", "vertical"), seeds[:2], strict=True)
    steps = [layers.RandomFlip(axis, seed=axis_seed) for axis, axis_seed in flips]
    if rotation:  # any angle; the corners are filled by reflecting the image
        steps.append(RandomRotation(0.5, fill_mode="reflect", seed=seeds[2]))
    if contrast:  # around each patch's mean, clipped (seed + 4: as in benchmarks/README.md's runs)
        steps.append(layers.RandomContrast((0.0, contrast), value_range=(0, 1), seed=seeds[3]))
    return support.prebuilt(layers.Pipeline(steps, name="augmentation"))  # quick first call


def patch_weights(rare, share):
    """Per-image weights for ``PatchDataset``: the images flagged ``rare`` together get ``share`` of
    the patches, the others the rest (lesson 07.4). None (every image alike) if all are one kind."""
    rare = np.asarray(rare, bool)
    if rare.all() or not rare.any():
        return None
    return np.where(rare, share / rare.sum(), (1 - share) / (~rare).sum())


class PatchDataset(keras.utils.PyDataset):
    """Seeded random ``patch_size`` crops, augmented, in batches, for ``model.fit`` (lesson 07.4):
    each image picked alike (or by ``weights``), none resized, small images padded. An epoch is
    ``patches_per_epoch`` patches; None: 5 per image, at least 384 (grows with the folder)."""

    def __init__(
        self,
        images,
        masks,
        patch_size,
        batch_size=16,
        patches_per_epoch=None,
        augment=True,
        seed=0,
        weights=None,
        noise=0.08,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.weights = support.image_weights(images, masks, weights)
        self.images = [support.pad_to_at_least(image, patch_size) for image in images]
        self.masks = [support.pad_to_at_least(mask, patch_size) for mask in masks]
        self.patch_size, self.batch_size = int(patch_size), int(batch_size)
        self.patches_per_epoch = int(patches_per_epoch or max(384, 5 * len(images)))
        self.seed, self.noise = seed, noise
        self.epoch = 0
        self.augmentation = augmentation(seed=seed) if augment else None

    def __len__(self):  # batches per epoch
        return -(-self.patches_per_epoch // self.batch_size)

    def __getitem__(self, index):
        """Batch ``index`` of the current epoch: ``(images, masks)`` float32 and uint8 arrays."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        count = min(self.batch_size, self.patches_per_epoch - index * self.batch_size)
        size = self.patch_size
        picks = rng.choice(len(self.images), size=count, p=self.weights)
        images, masks = [], []
        for pick in picks:
            height, width = self.images[pick].shape[:2]
            top, left = rng.integers(0, height - size + 1), rng.integers(0, width - size + 1)
            images.append(self.images[pick][top : top + size, left : left + size])
            masks.append(self.masks[pick][top : top + size, left : left + size])
        images, masks = (np.stack(items).astype(np.float32) for items in (images, masks))
        if self.augmentation is not None:
            out = self.augmentation({"images": images, "segmentation_masks": masks}, training=True)
            images = np.array(keras.ops.convert_to_numpy(out["images"]), np.float32)
            masks = keras.ops.convert_to_numpy(out["segmentation_masks"])
            # Half the patches speckled, as by a dim camera: noise and 24-128 grey levels.
            for k in range(len(images) if self.noise else 0):
                if rng.random() < 0.5:
                    levels, sd = rng.integers(24, 129), rng.uniform(0, self.noise)
                    noisy = images[k] + rng.normal(0, sd, images[k].shape)
                    images[k] = np.clip(np.round(noisy * levels) / levels, 0, 1)
        return images, np.rint(masks).astype(np.uint8)

    def on_epoch_end(self):  # a new epoch draws new patches
        self.epoch += 1


class FullImageValidation(keras.callbacks.Callback):
    """Logs ``val_iou`` of whole validation images, as read from their files, after each epoch
    (lesson 07.5): ``class_ids`` merged, ``max_pixels`` at most (or one image); list it first."""

    def __init__(self, images, masks, class_ids=(1,), max_pixels=2_000_000, seed=0):
        super().__init__()
        # Whole images in seeded random order until max_pixels (about 1/5 of a lesson-07 epoch).
        chosen, total = [], 0
        for index in np.random.default_rng(seed).permutation(len(images)):
            pixels = images[index].shape[0] * images[index].shape[1]
            if not chosen or total + pixels <= max_pixels:
                chosen, total = chosen + [int(index)], total + pixels
        self.images, self.masks = ([items[i] for i in sorted(chosen)] for items in (images, masks))
        self.class_ids = tuple(class_ids)

    def on_epoch_end(self, epoch, logs=None):
        """Add ``val_iou`` to the epoch's logs (and so to the history and the printed line)."""
        # overlap 0.25: half the tiles of 0.5 on the shipped images (2,421 against 4,856)
        outputs = [predict_tiled(self.model, image, overlap=0.25) for image in self.images]
        predictions = [np.isin(predicted_classes(output), self.class_ids) for output in outputs]
        truths = [np.isin(mask, self.class_ids) for mask in self.masks]
        if logs is not None:
            logs["val_iou"] = pooled_iou(truths, predictions, class_id=True)


def refresh_batchnorm(model, patches, batches=20):
    """Set each batch-norm layer's moving mean and variance to the plain average over ``batches``
    batches of ``patches``, seen in training mode (lesson 07.5); the weights stay as they are."""
    norms = [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        for variable in (layer.moving_mean, layer.moving_variance):
            variable.assign(keras.ops.zeros(variable.shape))
    for batch in range(min(batches, len(patches))):
        for layer in norms:
            layer.momentum = batch / (batch + 1)  # the average of the batches so far
        model(patches[batch][0], training=True)
    for layer, momentum in zip(norms, momenta, strict=True):
        layer.momentum = momentum


def predict_tiled(model, image, tile_size=None, overlap=0.5, batch_size=8, percentiles=(1.0, 99.8)):
    """(H, W, K) probabilities of an image as read from its file, any size (lesson 07.6):
    ``normalize_image``, then overlapping tiles, ``batch_size`` at a time, blended: no seams."""
    tile_size = support.check_tiling(model, tile_size, overlap)
    normalized = normalize_image(image, model.input_shape[-1], percentiles)
    height, width = normalized.shape[:2]
    stride = max(1, tile_size - int(round(tile_size * overlap)))
    margin = (tile_size - stride) // 2  # the image's edge gets the centre of some tile
    padded = np.pad(normalized, [(margin, margin), (margin, margin), (0, 0)], mode="reflect")
    padded = support.pad_to_at_least(padded, tile_size)
    tops, lefts = (support.tile_starts(length, tile_size, stride) for length in padded.shape[:2])
    positions = [(top, left) for top in tops for left in lefts]
    window = blending_window(tile_size)[..., None]
    total = np.zeros(padded.shape[:2] + (int(model.output_shape[-1]),), np.float32)
    weight = np.zeros(padded.shape[:2] + (1,), np.float32)
    for start in range(0, len(positions), batch_size):
        batch = positions[start : start + batch_size]
        tiles = np.stack([padded[t : t + tile_size, s : s + tile_size] for t, s in batch])
        tiles = np.pad(tiles, [(0, batch_size - len(batch))] + [(0, 0)] * 3)  # JAX: one shape
        predicted = keras.ops.convert_to_numpy(model.predict_on_batch(tiles))[: len(batch)]
        for (top, left), tile in zip(batch, predicted, strict=True):
            total[top : top + tile_size, left : left + tile_size] += tile * window
            weight[top : top + tile_size, left : left + tile_size] += window
    return (total / weight)[margin : margin + height, margin : margin + width]


def pooled_iou(masks, predictions, class_id=1):
    """IoU of one class over all pixels of lists of masks and predicted class ids (lesson 07.6)."""
    intersection = union = 0
    for mask, predicted in zip(masks, predictions, strict=True):
        truth, guess = np.asarray(mask) == class_id, np.asarray(predicted) == class_id
        intersection += np.sum(truth & guess)
        union += np.sum(truth | guess)
    return float(intersection / union) if union else float("nan")


def blending_window(tile_size):
    """(tile_size, tile_size) weights, largest in the middle, never 0 at the edges (lesson 07.7)."""
    ramp = np.sin(np.pi * (np.arange(tile_size) + 0.5) / tile_size) ** 2
    return np.outer(ramp, ramp).astype(np.float32)


def count_objects(mask, min_size=0):
    """``(labels, count)`` of 8-connected foreground regions, under ``min_size`` dropped
    (lesson 07.9)."""
    from skimage import measure, morphology

    foreground = np.asarray(mask) > 0
    if foreground.ndim == 3:
        foreground = foreground[..., 0]
    if min_size > 1:
        too_small = int(np.ceil(min_size)) - 1  # the largest area removed
        foreground = morphology.remove_small_objects(foreground, max_size=too_small, connectivity=2)
    labels = measure.label(foreground, connectivity=2)
    return labels, int(labels.max())


def split_touching(mask, min_distance=4, min_size=0):
    """``(labels, count)`` as ``count_objects``, touching round objects cut apart (lesson 07.9) by a
    watershed seeded at distance peaks ``min_distance`` apart."""
    from scipy import ndimage
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    regions, _ = count_objects(mask, min_size)
    distance = ndimage.distance_transform_edt(regions > 0)
    peaks = peak_local_max(
        distance, min_distance=min_distance, labels=regions, exclude_border=False
    )
    seeds = np.zeros(regions.shape, np.int32)
    seeds[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    labels = watershed(-distance, seeds, mask=regions > 0)
    return labels, int(labels.max())


def interior_boundary_mask(labels):
    """uint8 mask of instance labels (lesson 07.9): 0 background, 1 interior, 2 each object's
    inner boundary, so touching objects stay apart (the best 2018 Data Science Bowl entries)."""
    from skimage.segmentation import find_boundaries

    labels = np.asarray(labels)
    mask = (labels > 0).astype(np.uint8)
    mask[find_boundaries(labels, mode="inner") & (labels > 0)] = 2
    return mask


# --- Lesson 08: from pixels to objects ------------------------------------------------------------
#: IoU thresholds of the 2018 Data Science Bowl score: 0.50, 0.55, ..., 0.95 (lesson 08.2).
DSB_THRESHOLDS = tuple(np.round(np.arange(0.5, 1.0, 0.05), 2).tolist())


def object_iou(true_labels, predicted_labels):
    """IoU of every true object (rows) with every predicted one (columns), float64 (lesson 08.2)."""
    intersection, true_areas, predicted_areas, *_ = support.object_overlaps(
        true_labels, predicted_labels
    )
    return intersection / (true_areas[:, None] + predicted_areas[None, :] - intersection)


def match_counts(iou, threshold=0.5):
    """``(TP, FP, FN, matched IoUs)``, pairs with IoU > ``threshold`` matching (lesson 08.2): above
    0.5 a match is unique, so no assignment step is needed."""
    if threshold < 0.5:
        raise ValueError(f"threshold must be >= 0.5 for matches to be unique; got {threshold!r}.")
    matched = iou > threshold
    tp = int(matched.sum())
    return tp, iou.shape[1] - tp, iou.shape[0] - tp, iou[matched]


def object_scores(true_list, predicted_list, threshold=0.5):
    """Object scores of lists of label images (lesson 08.2): TP, FP, FN, F1, AP and PQ pooled at
    ``threshold``; DSB (AP averaged over ``DSB_THRESHOLDS``, then images); median count error."""
    tp = fp = fn = 0
    matched_iou, dsb, count_error = 0.0, [], []
    for truth, predicted in zip(true_list, predicted_list, strict=True):
        iou = object_iou(truth, predicted)
        counts = match_counts(iou, threshold)
        tp, fp, fn = tp + counts[0], fp + counts[1], fn + counts[2]
        matched_iou += counts[3].sum()
        per_threshold = [match_counts(iou, t)[:3] for t in DSB_THRESHOLDS]
        dsb.append(np.mean([t / (t + p + n) if t + p + n else 1.0 for t, p, n in per_threshold]))
        count_error.append(abs(iou.shape[1] - iou.shape[0]) / max(iou.shape[0], 1))
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0,
        "ap": tp / (tp + fp + fn) if tp + fp + fn else 1.0,
        "pq": float(matched_iou / (tp + fp / 2 + fn / 2)) if tp + fp + fn else 1.0,
        "dsb": float(np.mean(dsb)),
        "count_error": float(np.median(count_error)),
    }


def instances_from_mask(mask, min_size=10, min_distance=None):
    """A binary mask's objects: components, or with ``min_distance`` a watershed (lesson 08.4)."""
    if min_distance is None:
        return count_objects(mask, min_size)[0]
    return split_touching(mask, min_distance=min_distance, min_size=min_size)[0]


def grow_seeds(interior, area, seed_threshold=0.5, threshold=0.5, min_size=10, min_distance=None):
    """int32 objects of 3-class probabilities (lesson 08.4): interior seeds (cut by
    ``split_touching`` with ``min_distance``) grown by a watershed over interior + boundary."""
    from skimage.measure import label
    from skimage.segmentation import watershed

    nucleus = area > threshold
    seeds = (interior > seed_threshold) & nucleus
    if min_distance is None:
        seeds = label(seeds, connectivity=1)
    else:
        seeds = split_touching(seeds, min_distance=min_distance)[0]
    labels = watershed(-interior, seeds, mask=nucleus)
    leftover = label(nucleus & (labels == 0))  # nucleus regions without a seed: objects too
    labels = np.where(leftover > 0, leftover + labels.max(), labels)
    kept = np.bincount(labels.ravel()) >= max(min_size, 1)  # objects of min_size pixels or more
    kept[0] = False
    return (np.cumsum(kept) * kept).astype(np.int32)[labels]  # renumbered 1..n


def instances_from_probabilities(
    probabilities, threshold=0.5, seed_threshold=None, min_size=10, min_distance=None
):
    """int32 (H, W) objects of (H, W, K) output (lesson 08.4): ``grow_seeds`` for 3 classes with
    a ``seed_threshold``, else ``instances_from_mask`` of the nucleus area."""
    probabilities = np.asarray(probabilities)
    if probabilities.ndim == 2:
        probabilities = probabilities[..., None]
    area = probabilities[..., 0] if probabilities.shape[-1] == 1 else 1 - probabilities[..., 0]
    if seed_threshold is not None and probabilities.shape[-1] >= 3:
        interior = probabilities[..., 1]
        return grow_seeds(interior, area, seed_threshold, threshold, min_size, min_distance)
    return instances_from_mask(area > threshold, min_size, min_distance).astype(np.int32)


def one_hot(mask, n_labels=3):
    """A class-id mask as (H, W, n_labels) 0/1 'probabilities', for true masks (lesson 08.4)."""
    return np.eye(n_labels, dtype=np.float32)[np.asarray(mask).squeeze().astype(np.int64)]


def otsu_mask(image, sigma=1.0):
    """Nucleus mask with no network: normalise, Gaussian ``sigma``, Otsu threshold (lesson 08.5)."""
    from skimage.filters import gaussian, threshold_otsu

    gray = gaussian(normalize_image(image, channels=1)[..., 0], sigma)
    if gray.max() == gray.min():  # a flat image holds no objects
        return np.zeros(gray.shape, bool)
    return gray > threshold_otsu(gray)


def classical_instances(image, min_distance=6, min_size=10, sigma=1.0):
    """Objects with no network: ``otsu_mask`` then ``instances_from_mask`` (lesson 08.5)."""
    return instances_from_mask(otsu_mask(image, sigma), min_size, min_distance).astype(np.int32)


#: What became of a true object (``object_errors``), in this order of codes 1..4.
_ERROR_KINDS = ("found", "merged", "split", "missed")


def object_errors(true_labels, predicted_labels, threshold=0.5):
    """What became of each true object (``_ERROR_KINDS`` codes 1..4) (lesson 08.9), which predicted
    objects are false, and a ``map`` of those codes (5: false)."""
    overlaps = support.object_overlaps(true_labels, predicted_labels)
    intersection, true_areas, predicted_areas, true, predicted = overlaps
    iou = intersection / (true_areas[:, None] + predicted_areas[None, :] - intersection)
    holds_half = intersection >= 0.5 * true_areas[:, None]  # true object half inside predicted
    inside = intersection >= 0.5 * predicted_areas[None, :]  # predicted object half inside true
    merged = (holds_half & (holds_half.sum(axis=0) >= 2)).any(axis=1)
    split = inside.sum(axis=1) >= 2
    kind = np.select([(iou > threshold).any(axis=1), merged, split], [1, 2, 3], default=4)
    false = ~(iou > threshold).any(axis=0) & (intersection.sum(axis=0) < 0.5 * predicted_areas)
    error_map = np.concatenate([[0], kind])[true].astype(np.uint8)
    error_map[np.concatenate([[False], false])[predicted] & (true == 0)] = 5
    return {
        "true_kind": kind,
        "true_area": true_areas,
        "false": false,
        "predicted_area": predicted_areas,
        "map": error_map,
    }


def predict_instances(model, image, **settings):
    """int32 (H, W) objects of an image file's array (lesson 08.10): ``predict_tiled``, then
    ``instances_from_probabilities`` with ``object_settings(model)`` updated by ``settings``."""
    settings = {**object_settings(model), **settings}
    probabilities = predict_tiled(model, image, overlap=settings.pop("overlap"))
    return instances_from_probabilities(probabilities, **settings)

"""Shared code for the unet-from-blocks lessons: U-Net blocks, ``build_unet``, data, metrics, plots.

Each function is introduced in a lesson and lives here once. Keras 3 (``import keras``) keeps the
code backend-neutral; TensorFlow is the backend the course ships and tests.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

# --------------------------------------------------------------------------------------------------
# Model: blocks and build_unet (lessons 01-03)
# --------------------------------------------------------------------------------------------------

#: BatchNormalization momentum. Keras' default 0.99 keeps the moving mean/variance close to their
#: initial values for hundreds of steps, so a briefly trained model predicts garbage in inference
#: mode ("all my predictions are black"). 0.9 lets the statistics catch up within a short CPU run.
BATCHNORM_MOMENTUM = 0.9


def conv_block(x, filters, batchnorm_momentum=BATCHNORM_MOMENTUM):
    """Two rounds of 3x3 Conv2D (same padding) -> BatchNormalization -> ReLU."""
    for _ in range(2):
        x = layers.Conv2D(filters, 3, padding="same")(x)
        x = layers.BatchNormalization(momentum=batchnorm_momentum)(x)
        x = layers.Activation("relu")(x)
    return x


def encoder_block(x, filters, batchnorm_momentum=BATCHNORM_MOMENTUM):
    """conv_block then 2x2 max pooling; returns ``(skip, pooled)``, skip going to the decoder."""
    skip = conv_block(x, filters, batchnorm_momentum)
    pooled = layers.MaxPooling2D(2)(skip)
    return skip, pooled


def decoder_block(x, skip, filters, batchnorm_momentum=BATCHNORM_MOMENTUM):
    """2x2 stride-2 Conv2DTranspose (doubles height and width), concatenate ``skip``, conv_block."""
    x = layers.Conv2DTranspose(filters, 2, strides=2, padding="same")(x)
    x = layers.Concatenate()([x, skip])
    return conv_block(x, filters, batchnorm_momentum)


def valid_sizes_near(size, depth, count=2):
    """The ``count`` sizes below and above ``size`` that are divisible by ``2**depth``."""
    step = 2**depth
    below = [(size // step - i) * step for i in range(count)]
    above = [(size // step + 1 + i) * step for i in range(count)]
    return sorted(s for s in below + above if s > 0)


def check_unet_config(input_shape, n_classes=1, base_filters=64, depth=4):
    """Raise a ValueError that names the fix if these settings cannot make a U-Net."""
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise ValueError(
            f"input_shape must be (height, width, channels), for example (128, 128, 3); "
            f"got {input_shape!r}. A grayscale image still needs its channel: (128, 128, 1)."
        )
    for name, value in (("n_classes", n_classes), ("depth", depth), ("base_filters", base_filters)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            hint = {
                "n_classes": "use 1 for binary (foreground/background) masks, K >= 2 for K classes",
                "depth": "use the number of pooling steps, typically 3 or 4",
                "base_filters": "use a positive integer: 16 on a CPU, 64 in the original U-Net",
            }[name]
            raise ValueError(f"{name} must be a whole number >= 1; got {value!r}: {hint}.")
    height, width, channels = input_shape
    if not isinstance(channels, (int, np.integer)) or channels < 1:
        raise ValueError(
            f"input_shape must end with the number of channels (1 grayscale, 3 RGB); "
            f"got {input_shape!r}."
        )
    step = 2**depth
    for axis, size in (("height", height), ("width", width)):
        if not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"input {axis} must be a positive integer; got {size!r}.")
        if size % step:
            raise ValueError(
                f"input {axis} {size} is not divisible by 2**depth = {step}: each of the {depth} "
                f"poolings halves it and the decoder must double it back to the same size. "
                f"Use a size such as {valid_sizes_near(size, depth)}, or a smaller depth."
            )


def build_unet(
    input_shape,
    n_classes=1,
    base_filters=64,
    depth=4,
    batchnorm_momentum=BATCHNORM_MOMENTUM,
    name="U-Net",
):
    """The U-Net: ``depth`` encoder blocks, a bridge, ``depth`` decoder blocks and a 1x1 head.

    Level ``i`` uses ``base_filters * 2**i`` filters and the bridge ``base_filters * 2**depth``.
    The head is sigmoid for ``n_classes == 1`` (binary) and softmax otherwise.
    """
    check_unet_config(input_shape, n_classes, base_filters, depth)
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = inputs
    skips = []
    for level in range(depth):
        skip, x = encoder_block(x, base_filters * 2**level, batchnorm_momentum)
        skips.append(skip)
    x = conv_block(x, base_filters * 2**depth, batchnorm_momentum)  # the bridge
    for level in reversed(range(depth)):
        x = decoder_block(x, skips[level], base_filters * 2**level, batchnorm_momentum)
    outputs = layers.Conv2D(n_classes, 1, activation=head_activation(n_classes), name="mask")(x)
    return keras.Model(inputs, outputs, name=name)


def head_activation(n_classes):
    """Sigmoid for one output channel (binary), softmax across channels for K >= 2 classes."""
    return "sigmoid" if n_classes == 1 else "softmax"


def training_setup(n_classes):
    """The one place that pairs a head with its loss and metrics, decided by ``n_classes``.

    Binary (1 channel): sigmoid + binary cross-entropy, metrics accuracy and foreground IoU.
    Multiclass (K channels): softmax + sparse categorical cross-entropy (masks hold class ids, not
    one-hot vectors), metrics accuracy and mean IoU over the K classes.
    """
    check_unet_config((16, 16, 1), n_classes, 1, 1)
    if n_classes == 1:
        return {
            "activation": "sigmoid",
            "loss": keras.losses.BinaryCrossentropy(),
            "metrics": [
                keras.metrics.BinaryAccuracy(name="accuracy"),
                keras.metrics.BinaryIoU(target_class_ids=[1], threshold=0.5, name="iou"),
            ],
        }
    return {
        "activation": "softmax",
        "loss": keras.losses.SparseCategoricalCrossentropy(),
        "metrics": [
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras.metrics.MeanIoU(
                num_classes=n_classes, sparse_y_true=True, sparse_y_pred=False, name="mean_iou"
            ),
        ],
    }


def output_classes(model):
    """How many classes a model's head predicts: its last axis (1 means binary)."""
    return int(model.output_shape[-1])


def compile_unet(model, learning_rate=1e-3, loss=None):
    """Compile with Adam and the loss/metrics that match the model's own head.

    The number of classes is read from the model, so a softmax model can never be compiled with
    binary cross-entropy by accident. ``loss`` replaces the default loss (for example a Dice loss).
    """
    n_classes = output_classes(model)
    setup = training_setup(n_classes)
    activation = getattr(model.layers[-1], "activation", None)
    activation_name = getattr(activation, "__name__", str(activation))
    if activation_name != setup["activation"]:
        raise ValueError(
            f"the model has {n_classes} output channel(s) and a {activation_name} head, but "
            f"{n_classes} channel(s) need {setup['activation']}. Build it with "
            f"build_unet(..., n_classes={n_classes}) so the head matches."
        )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=loss if loss is not None else setup["loss"],
        metrics=setup["metrics"],
    )
    return model


def feature_map_table(input_shape, base_filters=64, depth=4):
    """Rows ``(stage, height, width, filters)`` of the feature maps, from input to output."""
    check_unet_config(input_shape, 1, base_filters, depth)
    height, width, channels = input_shape
    rows = [("input", height, width, channels)]
    for level in range(depth):
        rows.append(
            (f"encoder {level + 1}", height >> level, width >> level, base_filters << level)
        )
    rows.append(("bridge", height >> depth, width >> depth, base_filters << depth))
    for level in reversed(range(depth)):
        rows.append(
            (f"decoder {level + 1}", height >> level, width >> level, base_filters << level)
        )
    return rows


def print_feature_map_table(input_shape, base_filters=64, depth=4):
    """Print feature_map_table as aligned columns."""
    print(f"{'stage':<10} {'height':>6} {'width':>6} {'filters':>8}")
    for stage, height, width, filters in feature_map_table(input_shape, base_filters, depth):
        print(f"{stage:<10} {height:>6} {width:>6} {filters:>8}")


def plot_unet_diagram(input_shape, base_filters=64, depth=4, n_classes=1, ax=None):
    """Draw the U: a box per level (size, filters), pooling, up-sampling and skip arrows."""
    import matplotlib.pyplot as plt

    check_unet_config(input_shape, n_classes, base_filters, depth)
    height, width, _ = input_shape
    if ax is None:
        _, ax = plt.subplots(figsize=(2.0 + 1.5 * depth, 1.5 + 0.9 * depth))
    box_w, box_h = 1.6, 0.55
    span = 2 * depth + 2  # horizontal slots: encoder levels, bridge, decoder levels

    def box(x_center, level, text, color):
        y = -level * 1.0
        ax.add_patch(
            plt.Rectangle((x_center - box_w / 2, y - box_h / 2), box_w, box_h, color=color, ec="k")
        )
        ax.text(x_center, y, text, ha="center", va="center", fontsize=8)
        return x_center, y

    def arrow(start, end, style="-|>", color="k", **kwargs):
        ax.annotate(
            "", xy=end, xytext=start, arrowprops=dict(arrowstyle=style, color=color, **kwargs)
        )

    left, right = [], []
    for level in range(depth):
        text = f"{height >> level}x{width >> level}\n{base_filters << level} filters"
        left.append(box(level * 1.0, level, text, "#9ecae1"))
        right.append(box(span - level * 1.0, level, text, "#a1d99b"))
    bridge = box(
        span / 2,
        depth,
        f"{height >> depth}x{width >> depth}\n{base_filters << depth} filters",
        "#fdae6b",
    )
    for level in range(depth):
        lower_left = left[level + 1] if level + 1 < depth else bridge
        lower_right = right[level + 1] if level + 1 < depth else bridge
        arrow(
            (left[level][0], left[level][1] - box_h / 2),
            (lower_left[0] - 0.3, lower_left[1] + box_h / 2),
            color="#3182bd",
        )
        arrow(
            (lower_right[0] + 0.3, lower_right[1] + box_h / 2),
            (right[level][0], right[level][1] - box_h / 2),
            color="#31a354",
        )
        arrow(
            (left[level][0] + box_w / 2, left[level][1]),
            (right[level][0] - box_w / 2, right[level][1]),
            color="0.5",
            linestyle="--",
        )
    ax.text(-box_w, 0.55, f"input {height}x{width}", fontsize=8)
    ax.text(
        span - box_w / 2,
        0.55,
        f"output {height}x{width}x{n_classes} ({head_activation(n_classes)})",
        fontsize=8,
    )
    ax.plot([], [], color="#3182bd", label="max pool 2x2 (encoder)")
    ax.plot([], [], color="#31a354", label="transposed conv 2x2 (decoder)")
    ax.plot([], [], color="0.5", linestyle="--", label="skip connection (concatenate)")
    ax.legend(loc="lower left", fontsize=7, frameon=False)
    ax.set_xlim(-box_w, span + box_w)
    ax.set_ylim(-depth - 1.0, 1.0)
    ax.set_aspect("auto")
    ax.axis("off")
    ax.set_title(f"U-Net, depth {depth}, base {base_filters} filters")
    return ax

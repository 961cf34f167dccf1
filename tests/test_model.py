"""Unit tests for the model half of unet_helpers: blocks, build_unet, the training setup, errors."""

import keras
import numpy as np
import pytest

import unet_helpers as uh
import unet_support as us

# Every test here starts from an empty Keras session (fixture in conftest.py).
pytestmark = pytest.mark.usefixtures("fresh_session")


def test_original_tutorial_parameter_counts():
    assert uh.build_unet((256, 256, 3), 1).count_params() == 31_055_297
    assert uh.build_unet((256, 256, 3), 4).count_params() == 31_055_492


def test_model_name_and_output_shape():
    model = uh.build_unet((64, 96, 1), n_classes=3, base_filters=4, depth=3)
    assert model.name == "U-Net"
    assert model.input_shape == (None, 64, 96, 1)
    assert model.output_shape == (None, 64, 96, 3)


@pytest.mark.parametrize("base_filters, depth", [(4, 1), (4, 2), (8, 3), (2, 5)])
def test_filters_double_per_level_and_bridge(base_filters, depth):
    model = uh.build_unet((64, 64, 3), 1, base_filters=base_filters, depth=depth)
    conv_filters = [layer.filters for layer in model.layers if type(layer) is keras.layers.Conv2D]
    # Encoder: 2 convs per level, bridge: 2 convs, decoder: 2 convs per level, head: 1 conv.
    expected = [base_filters * 2**level for level in range(depth) for _ in range(2)]
    expected += [base_filters * 2**depth] * 2
    expected += [base_filters * 2**level for level in reversed(range(depth)) for _ in range(2)]
    expected += [1]
    assert conv_filters == expected


def test_conv_block_is_conv_bn_relu_twice():
    inputs = keras.Input((16, 16, 3))
    outputs = uh.conv_block(inputs, 8)
    model = keras.Model(inputs, outputs)
    kinds = [type(layer).__name__ for layer in model.layers[1:]]
    assert kinds == ["Conv2D", "BatchNormalization", "Activation"] * 2
    assert model.layers[1].kernel_size == (3, 3) and model.layers[1].padding == "same"
    assert model.output_shape == (None, 16, 16, 8)


def test_encoder_block_returns_skip_and_pooled():
    inputs = keras.Input((32, 32, 3))
    skip, pooled = uh.encoder_block(inputs, 8)
    assert tuple(skip.shape) == (None, 32, 32, 8)
    assert tuple(pooled.shape) == (None, 16, 16, 8)


def test_decoder_block_doubles_size_and_concatenates_skip():
    low = keras.Input((8, 8, 16))
    skip = keras.Input((16, 16, 8))
    out = uh.decoder_block(low, skip, 8)
    model = keras.Model([low, skip], out)
    assert model.output_shape == (None, 16, 16, 8)
    concat = [layer for layer in model.layers if isinstance(layer, keras.layers.Concatenate)][0]
    assert concat.output.shape[-1] == 16  # 8 up-sampled + 8 from the skip
    transpose = [
        layer for layer in model.layers if isinstance(layer, keras.layers.Conv2DTranspose)
    ][0]
    assert transpose.kernel_size == (2, 2) and transpose.strides == (2, 2)


def batchnorm_layers(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def test_batchnorm_statistics_catch_up_within_a_short_run():
    # What the default is for: after 50 training steps (a short CPU run) the moving mean that
    # predict() uses has reached the data's mean; with Keras' default 0.99 it has not
    # (1 - 0.99**50 = 0.39).
    model = uh.build_unet((32, 32, 1), 1, base_filters=2, depth=2)
    layers = batchnorm_layers(model)
    assert {layer.momentum for layer in layers} == {uh.BATCHNORM_MOMENTUM}
    data = np.full((4, 32, 32, 2), 5.0, np.float32)
    for layer in (layers[0], keras.layers.BatchNormalization(momentum=0.99)):
        for _ in range(50):
            layer(data, training=True)
        reached = keras.ops.convert_to_numpy(layer.moving_mean) / 5.0
        if layer is layers[0]:
            assert np.all(reached > 0.99), reached
        else:
            assert np.all(reached < 0.5), reached


def test_batchnorm_momentum_can_be_chosen():
    model = uh.build_unet((32, 32, 1), 1, base_filters=2, depth=2, batchnorm_momentum=0.99)
    assert {layer.momentum for layer in batchnorm_layers(model)} == {0.99}


@pytest.mark.parametrize("n_classes, activation", [(1, "sigmoid"), (2, "softmax"), (5, "softmax")])
def test_head_activation(n_classes, activation):
    model = uh.build_unet((32, 32, 3), n_classes, base_filters=2, depth=2)
    assert model.layers[-1].activation.__name__ == activation
    assert model.layers[-1].kernel_size == (1, 1)
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    y = model.predict(x, verbose=0)
    assert y.min() >= 0 and y.max() <= 1
    if n_classes > 1:
        np.testing.assert_allclose(y.sum(axis=-1), 1.0, atol=1e-5)


def test_training_setup_pairs_head_with_loss_and_metrics():
    binary = uh.training_setup(1)
    assert binary["activation"] == "sigmoid"
    assert isinstance(binary["loss"], keras.losses.BinaryCrossentropy)
    assert [m.name for m in binary["metrics"]] == ["accuracy", "iou"]
    multi = uh.training_setup(4)
    assert multi["activation"] == "softmax"
    assert isinstance(multi["loss"], keras.losses.SparseCategoricalCrossentropy)
    assert [m.name for m in multi["metrics"]] == ["accuracy", "mean_iou"]


@pytest.mark.parametrize("n_classes", [1, 3])
def test_compile_unet_reads_classes_from_model_and_trains(n_classes):
    model = uh.compile_unet(uh.build_unet((16, 16, 1), n_classes, base_filters=2, depth=1))
    rng = np.random.default_rng(0)
    x = rng.random((4, 16, 16, 1), dtype=np.float32)
    y = rng.integers(0, max(n_classes, 2), (4, 16, 16, 1))
    history = model.fit(x, y, epochs=1, verbose=0)
    expected_loss = "binary_crossentropy" if n_classes == 1 else "sparse_categorical_crossentropy"
    assert model.loss.name == expected_loss
    assert np.isfinite(history.history["loss"][0])


def test_compile_unet_refuses_mismatched_head():
    inputs = keras.Input((16, 16, 1))
    outputs = keras.layers.Conv2D(4, 1, activation="sigmoid")(inputs)  # 4 classes need softmax
    with pytest.raises(ValueError, match="need softmax"):
        uh.compile_unet(keras.Model(inputs, outputs))


BINARY_CROSSENTROPY_FORMS = {
    "string": lambda: "binary_crossentropy",
    "alias": lambda: "bce",
    "object": keras.losses.BinaryCrossentropy,
    "function": lambda: keras.losses.binary_crossentropy,
}


@pytest.mark.parametrize("form", BINARY_CROSSENTROPY_FORMS)
def test_compile_unet_refuses_binary_crossentropy_on_a_softmax_head(form):
    model = uh.build_unet((16, 16, 1), 4, base_filters=2, depth=1)
    with pytest.raises(ValueError, match="binary_crossentropy") as raised:
        uh.compile_unet(model, loss=BINARY_CROSSENTROPY_FORMS[form]())
    message = str(raised.value)
    assert "sparse categorical cross-entropy" in message
    assert "uh.dice_cross_entropy_loss(4)" in message
    assert "model.compile" in message  # where deliberate multi-label models go


@pytest.mark.parametrize("form", BINARY_CROSSENTROPY_FORMS)
def test_compile_unet_accepts_binary_crossentropy_on_a_sigmoid_head(form):
    model = uh.build_unet((16, 16, 1), 1, base_filters=2, depth=1)
    uh.compile_unet(model, loss=BINARY_CROSSENTROPY_FORMS[form]())
    rng = np.random.default_rng(0)
    x = rng.random((2, 16, 16, 1), dtype=np.float32)
    y = rng.integers(0, 2, (2, 16, 16, 1)).astype(np.float32)
    history = model.fit(x, y, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy", "crossentropy"])
def test_compile_unet_accepts_other_losses_on_a_softmax_head(loss):
    model = uh.build_unet((16, 16, 1), 3, base_filters=2, depth=1)
    assert uh.compile_unet(model, loss=loss).loss == loss


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            dict(input_shape=(100, 128, 3)),
            r"height 100 is not divisible by 2\*\*depth = 16.*96, 112",
        ),
        (dict(input_shape=(128, 100, 3)), r"width 100 is not divisible"),
        (dict(input_shape=(128, 128, 3), n_classes=0), r"n_classes must be .* binary"),
        (dict(input_shape=(128, 128, 3), depth=0), r"depth must be"),
        (dict(input_shape=(128, 128, 3), base_filters=0), r"base_filters must be"),
        (dict(input_shape=(128, 128)), r"\(height, width, channels\)"),
        (dict(input_shape=(1, 128, 128, 3)), r"\(height, width, channels\)"),
        (dict(input_shape=(128, 128, 0)), r"number of channels"),
    ],
)
def test_build_unet_errors_name_the_fix(kwargs, message):
    with pytest.raises(ValueError, match=message):
        uh.build_unet(**kwargs)


def test_valid_sizes_near():
    assert uh.valid_sizes_near(100, 4) == [80, 96, 112, 128]
    assert all(size % 8 == 0 for size in uh.valid_sizes_near(250, 3))


def test_feature_map_table_matches_the_built_model():
    model = uh.build_unet((64, 32, 3), 1, base_filters=4, depth=3)
    table = uh.feature_map_table((64, 32, 3), base_filters=4, depth=3)
    assert table[0] == ("input", 64, 32, 3)
    assert table[4] == ("bridge", 8, 4, 32)
    assert [row[0] for row in table] == (
        ["input"]
        + [f"encoder {i}" for i in (1, 2, 3)]
        + ["bridge"]
        + [f"decoder {i}" for i in (3, 2, 1)]
    )
    conv_shapes = [
        layer.output.shape[1:] for layer in model.layers if type(layer) is keras.layers.Conv2D
    ][1::2]
    table_shapes = [(h, w, f) for _, h, w, f in table[1:]]
    assert [tuple(s) for s in conv_shapes] == table_shapes


def test_plot_unet_diagram_draws_one_box_per_stage():
    ax = uh.plot_unet_diagram((128, 128, 3), base_filters=16, depth=3)
    assert len(ax.patches) == 2 * 3 + 1
    texts = [t.get_text() for t in ax.texts]
    assert "16x16\n128 filters" in texts  # the bridge


@pytest.mark.parametrize("value", [True, 0, -2, 2.0, "3", None])
def test_whole_numbers_are_checked_in_one_place(value):
    with pytest.raises(ValueError, match=r"depth must be a whole number >= 1; got .*pooling"):
        uh.build_unet((32, 32, 1), depth=value)
    with pytest.raises(ValueError, match="n_classes must be a whole number"):
        uh.mask_classes(value)
    us.check_whole_number("count", np.int64(3))  # NumPy integers are whole numbers too

"""Lesson 07's training with one setting changed: which change steadies the bright-field images?

Run by hand, not by pytest (one run takes about 8 minutes on 2 cores, one thread each):

    .venv/bin/python benchmarks/lesson07_variants.py --seed 2 --bright-field-share 0.5

It repeats lesson 07's split, patches, network, schedule and whole-image validation at the defaults,
with one of these changed: the share of patches centred on a random nucleus pixel
(``--foreground-share``, as StarDist's ``train_foreground_only``), the bright-field share of the
patches, or the batch-normalization momentum. After every epoch it also scores the *test* images
(overlap 0.25), fluorescence and bright-field apart: a diagnosis only, never used to choose. One
JSON line per run is appended to ``benchmarks/lesson07_variants.jsonl``. With
``--precise-batchnorm N`` each epoch is scored a second time with the batch-normalization statistics
re-estimated as the plain average over N fresh training patches (then put back): does the swing
come from the moving averages of the last few batches?
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import unet_helpers as uh  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "lesson07_variants.jsonl"


class ForegroundPatches(uh.PatchDataset):
    """``uh.PatchDataset`` where a share of the patches contains a random nucleus pixel."""

    def __init__(self, *args, foreground_share=0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.foreground_share = foreground_share
        self.foreground = [np.flatnonzero(mask[..., 0]) for mask in self.masks]

    def __getitem__(self, index):
        if self.foreground_share == 0:
            return super().__getitem__(index)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        count = min(self.batch_size, self.patches_per_epoch - index * self.batch_size)
        size = self.patch_size
        images, masks = [], []
        for pick in rng.choice(len(self.images), size=count, p=self.weights):
            height, width = self.images[pick].shape[:2]
            if rng.random() < self.foreground_share and len(self.foreground[pick]):
                row, column = divmod(int(rng.choice(self.foreground[pick])), width)
                top = rng.integers(max(0, row - size + 1), min(row, height - size) + 1)
                left = rng.integers(max(0, column - size + 1), min(column, width - size) + 1)
            else:
                top, left = rng.integers(0, height - size + 1), rng.integers(0, width - size + 1)
            images.append(self.images[pick][top : top + size, left : left + size])
            masks.append(self.masks[pick][top : top + size, left : left + size])
        batch = {"images": np.stack(images).astype(np.float32)}
        batch["segmentation_masks"] = np.stack(masks).astype(np.float32)
        moved = self.augmentation(batch, training=True)
        masks = np.rint(keras.ops.convert_to_numpy(moved["segmentation_masks"])).astype(np.uint8)
        return keras.ops.convert_to_numpy(moved["images"]), masks


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--foreground-share", type=float, default=0.0)
    parser.add_argument("--bright-field-share", type=float, default=0.25)
    parser.add_argument("--momentum", type=float, default=uh.BATCHNORM_MOMENTUM)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--precise-batchnorm", type=int, default=0, help="patches; 0: off")
    parser.add_argument("--keep", choices=("best", "last"), default="best", help="epoch kept")
    parser.add_argument(
        "--refresh-batchnorm", type=int, default=0, help="patches, after training; 0: off"
    )
    parser.add_argument(
        "--ema", type=float, default=0.0, help="momentum of Adam's weight average; 0: off"
    )
    parser.add_argument("--no-diagnosis", action="store_true", help="skip the per-epoch test")
    parser.add_argument("--data", default=str(REPOSITORY / "data" / "nuclei"))
    args = parser.parse_args()

    images, masks, stems = uh.load_images(args.data, n_classes=1, channels=1)
    paths = uh.image_files(args.data)
    raw = [uh.read_image(paths[stem]) for stem in stems]
    bright = [uh.bright_background(image) for image in raw]
    splits = uh.split_dataset(images, masks, 0.15, 0.15, seed=0, strata=bright)
    position = {id(image): index for index, image in enumerate(images)}
    train, val, test = ([position[id(i)] for i in splits[k][0]] for k in splits)
    y_val, y_test = splits["validation"][1], splits["test"][1]

    patches = ForegroundPatches(
        *splits["train"],
        128,
        16,
        None,
        seed=args.seed,
        weights=uh.patch_weights([bright[i] for i in train], args.bright_field_share),
        foreground_share=args.foreground_share,
    )
    keras.backend.clear_session()
    keras.utils.set_random_seed(args.seed)
    model = uh.build_unet((128, 128, 1), 1, 16, 4, batchnorm_momentum=args.momentum)
    steps = len(patches)
    schedule = keras.optimizers.schedules.CosineDecay(
        1e-4, max(args.epochs - 1, 1) * steps, alpha=0.05, warmup_target=2e-3, warmup_steps=steps
    )
    uh.compile_unet(model, schedule, loss=uh.dice_cross_entropy_loss(1), clipnorm=1.0)
    if args.ema:  # the same, with the weights replaced by their moving average after fit
        model.compile(
            optimizer=keras.optimizers.Adam(
                schedule, clipnorm=1.0, use_ema=True, ema_momentum=args.ema
            ),
            loss=uh.dice_cross_entropy_loss(1),
            metrics=uh.training_setup(1)["metrics"],
        )
    validation = uh.FullImageValidation([raw[i] for i in val], y_val, seed=args.seed)
    chosen = {id(image) for image in validation.images}

    def kinds(overlap):  # test IoU of the fluorescence and of the bright-field images
        predicted = [
            uh.predicted_classes(uh.predict_tiled(model, raw[i], overlap=overlap)) for i in test
        ]
        return [
            uh.pooled_iou(
                [y_test[k] for k, i in enumerate(test) if bright[i] == kind],
                [predicted[k] for k, i in enumerate(test) if bright[i] == kind],
            )
            for kind in (False, True)
        ], uh.pooled_iou(y_test, predicted)

    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    fresh = uh.PatchDataset(
        *splits["train"],
        128,
        16,
        max(args.precise_batchnorm, 16),
        seed=args.seed + 1000,
        weights=uh.patch_weights([bright[i] for i in train], args.bright_field_share),
    )

    def precise_kinds(keep=False):  # kinds(0.25), statistics averaged over fresh patches
        saved = [
            [keras.ops.convert_to_numpy(v) for v in layer.non_trainable_weights] for layer in layers
        ]
        uh.refresh_batchnorm(model, fresh, batches=len(fresh))  # the plain average of the batches
        if keep:
            return None
        scores = kinds(0.25)[0]
        for layer, values in zip(layers, saved, strict=True):
            for variable, value in zip(layer.non_trainable_weights, values, strict=True):
                variable.assign(value)
        return scores

    per_epoch, per_epoch_precise = [], []

    def diagnose(epoch, logs):
        if args.no_diagnosis:
            return
        (fluorescence, bright_field), pooled = kinds(0.25)
        per_epoch.append([round(v, 3) for v in (fluorescence, bright_field, pooled)])
        if args.precise_batchnorm:
            per_epoch_precise.append([round(v, 3) for v in precise_kinds()])

    diagnosis = keras.callbacks.LambdaCallback(on_epoch_end=diagnose)
    keep_best = keras.callbacks.EarlyStopping(
        monitor="val_iou", mode="max", patience=args.epochs, restore_best_weights=True
    )
    start = time.perf_counter()
    callbacks = [validation, diagnosis] + ([keep_best] if args.keep == "best" else [])
    history = model.fit(patches, epochs=args.epochs, callbacks=callbacks, verbose=0)
    if args.refresh_batchnorm:  # the statistics of the kept weights, re-estimated and kept
        fresh = uh.PatchDataset(
            *splits["train"],
            128,
            16,
            args.refresh_batchnorm,
            seed=args.seed + 2000,
            weights=uh.patch_weights([bright[i] for i in train], args.bright_field_share),
        )
        precise_kinds(keep=True)
    seconds = time.perf_counter() - start
    (fluorescence, bright_field), pooled = kinds(0.5)
    result = {
        "seed": args.seed,
        "foreground_share": args.foreground_share,
        "bright_field_share": args.bright_field_share,
        "momentum": args.momentum,
        "epochs": args.epochs,
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1"),
        "test IoU, fluorescence": round(fluorescence, 4),
        "test IoU, bright-field": round(bright_field, 4),
        "test IoU, all": round(pooled, 4),
        "keep": args.keep,
        "refresh_batchnorm": args.refresh_batchnorm,
        "ema": args.ema,
        "kept epoch": keep_best.best_epoch + 1 if args.keep == "best" else args.epochs,
        "val_iou": [round(v, 3) for v in history.history["val_iou"]],
        "bright-field validation images used": sum(id(raw[i]) in chosen for i in val if bright[i]),
        "test IoU per epoch (fluorescence, bright-field, all)": per_epoch,
        "precise_batchnorm": args.precise_batchnorm,
        "the same, statistics re-estimated": per_epoch_precise or None,
        "training_seconds": round(seconds),
    }
    print(json.dumps(result))
    with RESULTS.open("a") as file:
        file.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()

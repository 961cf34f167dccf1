"""Lesson 07's saved models scored again: test-time flips, batch-norm statistics re-estimated anew.

Run by hand, not by pytest, on models that lesson 07 saved (papermill ``-p MODEL_PATH``):

    .venv/bin/python benchmarks/lesson07_saved_models.py seed3.keras seed1.keras   # flips 1, 4, 8
    .venv/bin/python benchmarks/lesson07_saved_models.py seed3.keras --seed 3 --flips 1 \
        --refresh-batches 20 100 --thresholds 0.5 --records benchmarks/lesson07_refresh.jsonl

It repeats lesson 07's split of ``data/nuclei`` (``SPLIT_SEED`` 0, bright-field images spread over
the parts) and predicts the validation and test images with ``uh.predict_tiled`` (overlap 0.5), as
they are or averaged over 4 or 8 flips of the whole image (mirrors, then also the transpose). With
``--refresh-batches N`` it first sets the batch-norm statistics as lesson 07 does after training,
``uh.refresh_batchnorm`` over N fresh batches of 16 training patches (seed ``--seed`` + 1, half of
them bright-field), instead of the lesson's 20. One JSON line per model and setting is appended to
``--records`` (default ``benchmarks/lesson07_flips.jsonl``): pooled IoU per part, threshold and
kind of image, and the true-positive, false-positive and false-negative pixels of each bright-field
image at threshold 0.5. With several ``--thresholds`` (0.5 among them) it also chooses a threshold
for each kind of image on the validation images and scores the test images with them.
``--figure PATH`` draws the bright-field test images' errors at 0.5, a row per model (its first
setting). ``--kind-statistics`` predicts each kind of image with batch-norm statistics re-estimated
over 20 batches of that kind's training patches only (seed ``--seed`` + 1).
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

DATA_DIR = REPOSITORY / "data" / "nuclei"


def flipped_prediction(model, image, flips):
    """``uh.predict_tiled`` averaged over the first ``flips`` of the 8 flips of the image."""
    total = 0
    for flip in range(flips):
        turned = image[:, ::-1] if flip & 1 else image
        turned = turned[::-1] if flip & 2 else turned
        turned = np.swapaxes(turned, 0, 1) if flip & 4 else turned
        probabilities = uh.predict_tiled(model, np.ascontiguousarray(turned), overlap=0.5)
        probabilities = np.swapaxes(probabilities, 0, 1) if flip & 4 else probabilities
        probabilities = probabilities[::-1] if flip & 2 else probabilities
        total = total + (probabilities[:, ::-1] if flip & 1 else probabilities)
    return total / flips


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--flips", nargs="*", type=int, default=[1, 4, 8])
    parser.add_argument("--refresh-batches", nargs="*", type=int, default=[None])
    parser.add_argument("--seed", type=int, default=0, help="the SEED the model was trained with")
    parser.add_argument("--thresholds", nargs="*", type=float, default=[0.4, 0.5])
    parser.add_argument("--records", default=Path(__file__).parent / "lesson07_flips.jsonl")
    parser.add_argument("--figure", help="PNG of the bright-field images' errors, a row per model")
    parser.add_argument(
        "--kind-statistics", action="store_true",
        help="each kind of image predicted with batch-norm statistics of its own training patches",
    )  # fmt: skip
    args = parser.parse_args()
    images, masks, stems = uh.load_images(DATA_DIR, n_classes=1, channels=1)
    files = uh.image_files(DATA_DIR)
    raw = [uh.read_image(files[stem]) for stem in stems]
    bright_field = [uh.bright_background(image) for image in raw]
    splits = uh.split_dataset(
        images, masks, validation_fraction=0.15, test_fraction=0.15, seed=0, strata=bright_field
    )
    position = {id(image): index for index, image in enumerate(images)}
    parts = {
        part: [position[id(image)] for image in splits[part][0]] for part in ("validation", "test")
    }
    train_bright = [bright_field[position[id(image)]] for image in splits["train"][0]]
    error_maps = {}  # model name -> [(stem, RGB map: green found, red false, blue missed)]
    for path in args.models:
        for batches in args.refresh_batches:
            model = keras.models.load_model(path)
            record = {"model": Path(path).name, "backend": keras.backend.backend()}
            record["onednn"] = int(os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0")
            if batches is not None:  # lesson 07's refresh, over ``batches`` batches
                start = time.perf_counter()
                fresh = uh.PatchDataset(
                    *splits["train"], 128, 16, batches * 16, seed=args.seed + 1,
                    weights=uh.patch_weights(train_bright, 0.5),
                )  # fmt: skip
                uh.refresh_batchnorm(model, fresh, batches=batches)
                record |= {"seed": args.seed, "refresh_batches": batches}
                record["refresh_seconds"] = round(time.perf_counter() - start, 1)
            # One model for each kind of image (False: fluorescence), or the same model for both.
            kind_models = {False: model, True: model}
            if args.kind_statistics:  # each kind's statistics from 20 batches of its own patches
                record |= {"seed": args.seed, "kind_statistics": True}
                for bright in (False, True):
                    kind_models[bright] = keras.models.load_model(path)
                    picked = [k for k, kind in enumerate(train_bright) if kind == bright]
                    fresh = uh.PatchDataset(
                        *([part[k] for k in picked] for part in splits["train"]), 128, 16, 320,
                        seed=args.seed + 1,
                    )  # fmt: skip
                    uh.refresh_batchnorm(kind_models[bright], fresh, batches=20)
            for flips in args.flips:
                start = time.perf_counter()
                record["flips"] = flips
                counts = {}  # (part, kind, threshold) -> [TP, FP, FN] pixels
                for part, indices in parts.items():
                    probabilities = [
                        flipped_prediction(kind_models[bright_field[i]], raw[i], flips)
                        for i in indices
                    ]
                    for threshold in args.thresholds:
                        predictions = [uh.predicted_classes(p, threshold) for p in probabilities]
                        for kind, chosen in (
                            ("all", [True] * len(indices)),
                            ("fluorescence", [not bright_field[i] for i in indices]),
                            ("bright-field", [bright_field[i] for i in indices]),
                        ):
                            picked = [k for k, keep in enumerate(chosen) if keep]
                            iou = uh.pooled_iou(
                                [masks[indices[k]] for k in picked],
                                [predictions[k] for k in picked],
                            )
                            record[f"{part} IoU, {kind}, threshold {threshold}"] = round(iou, 4)
                            counts[part, kind, threshold] = pixel_counts(
                                [masks[indices[k]] for k in picked],
                                [predictions[k] for k in picked],
                            )  # fmt: skip
                        for k, index in enumerate(indices):
                            if not bright_field[index] or threshold != 0.5:
                                continue
                            truth, found = masks[index][..., 0] > 0, predictions[k][..., 0] > 0
                            name = f"{part} pixels TP/FP/FN, {stems[index]}, threshold {threshold}"
                            record[name] = pixel_counts([truth], [found])
                            first = (flips, batches) == (args.flips[0], args.refresh_batches[0])
                            if part == "test" and first:  # one row per model
                                error_maps.setdefault(Path(path).name, []).append(
                                    (stems[index], np.stack([found & ~truth, found & truth,
                                                             ~found & truth], axis=-1))
                                )  # fmt: skip
                if len(args.thresholds) > 1:
                    record |= per_kind_thresholds(counts, args.thresholds)
                record["seconds"] = round(time.perf_counter() - start, 1)
                with open(args.records, "a") as results:
                    results.write(json.dumps(record) + "\n")
                print(json.dumps(record), flush=True)
    if args.figure:
        draw_errors(error_maps, args.figure)


def pixel_counts(masks, predictions):
    """[TP, FP, FN] foreground pixels summed over lists of masks and predicted class ids."""
    totals = np.zeros(3, np.int64)
    for mask, predicted in zip(masks, predictions, strict=True):
        truth, found = np.asarray(mask) > 0, np.asarray(predicted) > 0
        totals += [np.sum(found & truth), np.sum(found & ~truth), np.sum(~found & truth)]
    return totals.tolist()


def per_kind_thresholds(counts, thresholds):
    """Each kind's threshold chosen on its validation images, then the pooled test IoU with both
    chosen, and with the bright-field one chosen and fluorescence left at 0.5."""
    iou = lambda tp, fp, fn: tp / max(tp + fp + fn, 1)  # noqa: E731
    chosen = {
        kind: max(thresholds, key=lambda t: iou(*counts["validation", kind, t]))
        for kind in ("fluorescence", "bright-field")
    }
    record = {"thresholds chosen on validation": chosen}
    for name, fluorescence in (
        ("both chosen", chosen["fluorescence"]),
        ("bright-field chosen", 0.5),
    ):
        test = np.add(counts["test", "fluorescence", fluorescence],
                      counts["test", "bright-field", chosen["bright-field"]])  # fmt: skip
        record[f"test IoU, all, {name}"] = round(iou(*test), 4)
    return record


def draw_errors(error_maps, path):
    """A row per model, a column per bright-field test image: green found, red false, blue
    missed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, columns = len(error_maps), max(len(maps) for maps in error_maps.values())
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 4 * rows), squeeze=False)
    for row, (name, maps) in enumerate(error_maps.items()):
        for column, (stem, rgb) in enumerate(maps[:columns]):
            axes[row, column].imshow(rgb.astype(np.float32))
            axes[row, column].set_title(f"{name}\n{stem}", fontsize=8)
            axes[row, column].axis("off")
    fig.suptitle("bright-field test images: green found, red false, blue missed", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=40)


if __name__ == "__main__":
    main()

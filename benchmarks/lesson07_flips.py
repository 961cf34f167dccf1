"""Test-time flips for lesson 07: do saved models score steadier when each image is flipped?

Run by hand, not by pytest, on models that lesson 07 saved (papermill ``-p MODEL_PATH``):

    .venv/bin/python benchmarks/lesson07_flips.py data/models/seed3.keras data/models/seed1.keras

It repeats lesson 07's split of ``data/nuclei`` (``SPLIT_SEED`` 0, bright-field images spread over
the parts), predicts the validation and test images with ``uh.predict_tiled`` (overlap 0.5) as they
are and averaged over 4 and 8 flips of the whole image (mirrors, then also the transpose), and
appends one JSON line per model and number of flips to ``benchmarks/lesson07_flips.jsonl``: pooled
IoU at thresholds 0.4 and 0.5, fluorescence and bright-field apart.
"""

import json
import sys
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import unet_helpers as uh  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "lesson07_flips.jsonl"
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
    for path in sys.argv[1:]:
        model = keras.models.load_model(path)
        for flips in (1, 4, 8):
            start = time.perf_counter()
            record = {"model": Path(path).name, "flips": flips, "backend": keras.backend.backend()}
            for part, indices in parts.items():
                probabilities = [flipped_prediction(model, raw[i], flips) for i in indices]
                for threshold in (0.4, 0.5):
                    predictions = [uh.predicted_classes(p, threshold) for p in probabilities]
                    for kind, chosen in (
                        ("all", [True] * len(indices)),
                        ("fluorescence", [not bright_field[i] for i in indices]),
                        ("bright-field", [bright_field[i] for i in indices]),
                    ):
                        picked = [k for k, keep in enumerate(chosen) if keep]
                        iou = uh.pooled_iou(
                            [masks[indices[k]] for k in picked], [predictions[k] for k in picked]
                        )
                        record[f"{part} IoU, {kind}, threshold {threshold}"] = round(iou, 4)
            record["seconds"] = round(time.perf_counter() - start, 1)
            with RESULTS.open("a") as results:
                results.write(json.dumps(record) + "\n")
            print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()

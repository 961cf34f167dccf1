"""Lessons 07 and 08 on a larger folder of real nuclei, with only DATA_DIR changed (run by hand).

    .venv/bin/python benchmarks/larger_folder.py --lesson 08 --shared ../shared/data/nuclei
    .venv/bin/python benchmarks/larger_folder.py --lesson 07 --shared ../shared/data/nuclei

``--shared`` is the 435-image folder of the 2018 Data Science Bowl that sits beside the project
(see its README); the project never reads it at run time, and this script copies what it needs
into ``--work`` (outside the project). Lesson 07 runs on all 435 images and reports its own test
split. Lesson 08 runs on the images the project does not ship, split once (``--split-seed``) into
a part the lesson trains and tunes on and a part scored once at the end with
``uh.predict_instances`` and the lesson's saved model alone. One JSON line per run is appended to
``benchmarks/larger_folder.jsonl``. ``--set '{"EPOCHS": 8}'`` changes other parameters too, and
``--no-score`` leaves the scored part unseen: for probes, judged on the lesson's own split.
"""

import argparse
import json
import os
import time
from pathlib import Path

import nbformat
import numpy as np
import papermill
from PIL import Image

import unet_helpers as uh

REPOSITORY = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "larger_folder.jsonl"
# Evaluated in the lesson's kernel at the end: what the scoring below needs from the run.
REPORT = {
    "07": "dict(test_iou=test_iou, fluorescence_iou=fluorescence_iou, "
    "bright_field_iou=bright_field_iou, training_seconds=training_seconds)",
    "08": "dict(classical=classical_settings, components=components_settings, "
    "watershed=watershed_settings, grown=seed_settings, ceiling_distance=ceiling_distance, "
    "headline_f1=headline_f1, training_seconds=training_seconds)",
}


def copy_pairs(shared, stems, folder):
    """images/, masks/ (labels > 0, as 0/255) and labels/ of ``stems`` into ``folder``."""
    for name in ("images", "masks", "labels"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    for stem in stems:
        labels = np.asarray(Image.open(shared / "labels" / f"{stem}.png"))
        Image.open(shared / "images" / f"{stem}.png").save(folder / "images" / f"{stem}.png")
        Image.fromarray(labels.astype(np.uint16)).save(folder / "labels" / f"{stem}.png")
        Image.fromarray(((labels > 0) * 255).astype(np.uint8)).save(
            folder / "masks" / f"{stem}.png"
        )


def run_lesson(lesson, data_dir, work, settings=None):
    """Execute the lesson at its defaults with DATA_DIR (and ``settings``) changed; return its
    report and seconds."""
    path = next((REPOSITORY / "notebooks").glob(f"{lesson}_*.ipynb"))
    notebook = nbformat.read(path, as_version=4)
    report = f"import json as _j\nprint('REPORT ' + _j.dumps({REPORT[lesson]}, default=float))"
    notebook.cells.append(nbformat.v4.new_code_cell(report))
    source, output = work / f"source_{path.name}", work / f"run_{path.name}"
    nbformat.write(notebook, source)
    parameters = {"DATA_DIR": str(data_dir), **(settings or {})}
    # The model (and lesson 08's exports) go to the work folder, not over the lesson's own files.
    parameters["MODEL_PATH"] = str(work / f"{lesson}.keras")
    if lesson == "08":
        parameters["EXPORT_DIR"] = str(work / "exports")
    start = time.perf_counter()
    papermill.execute_notebook(
        source, output, parameters=parameters, cwd=str(path.parent), kernel_name="python3",
        progress_bar=False,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    for line in nbformat.read(output, as_version=4).cells[-1].outputs[0]["text"].splitlines():
        if line.startswith("REPORT "):
            return json.loads(line[len("REPORT ") :]), seconds
    raise RuntimeError("the lesson printed no report")


def score_unshipped(work, report):
    """Lesson 08's table on the scored part: the saved model through predict_instances alone."""
    import keras

    folder = work / "scored"
    model = keras.models.load_model(work / "08.keras")
    _, masks, stems = uh.load_images(folder, n_classes=1, channels=1)
    truth = uh.load_labels(folder, stems, masks)
    files = uh.image_files(folder)
    raw = [uh.read_image(files[stem]) for stem in stems]
    start = time.perf_counter()
    found = [uh.predict_instances(model, image) for image in raw]
    seconds = time.perf_counter() - start
    settings = uh.object_settings(model)
    probabilities = [uh.predict_tiled(model, image, overlap=settings["overlap"]) for image in raw]
    rows = {
        "classical: Otsu + distance watershed": [
            uh.classical_instances(image, **report["classical"]) for image in raw
        ],
        "network area, connected components": [
            uh.instances_from_probabilities(p, **report["components"]) for p in probabilities
        ],
        "network area, distance watershed": [
            uh.instances_from_probabilities(p, **report["watershed"]) for p in probabilities
        ],
        "network interiors grown: predict_instances": found,
        "perfect binary mask, connected components": [
            uh.instances_from_mask(mask, 0) for mask in masks
        ],
        "perfect binary mask, distance watershed": [
            uh.instances_from_mask(mask, 0, report["ceiling_distance"]) for mask in masks
        ],
        "perfect 3-class mask, interiors grown": [
            uh.instances_from_probabilities(
                uh.one_hot(uh.interior_boundary_mask(labels)), seed_threshold=0.5, min_size=0
            )
            for labels in truth
        ],
    }
    fluorescence = [k for k, image in enumerate(raw) if not uh.bright_background(image)]
    table = {}
    for name, objects in rows.items():
        scores = uh.object_scores(truth, objects)
        scores["f1_fluorescence"] = uh.object_scores(
            [truth[k] for k in fluorescence], [objects[k] for k in fluorescence]
        )["f1"]
        table[name] = {key: round(float(value), 3) for key, value in scores.items()}
    nuclei = sum(len(np.unique(labels)) - 1 for labels in truth)
    return {
        "images": len(raw),
        "fluorescence_images": len(fluorescence),
        "nuclei": nuclei,
        "predict_instances_seconds": round(seconds, 1),
        "settings": settings,
        "table": table,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lesson", choices=["07", "08"], required=True)
    parser.add_argument("--shared", type=Path, required=True, help="the 435-image folder")
    parser.add_argument("--work", type=Path, default=Path("/tmp/unet_larger_folder"))
    parser.add_argument("--split-seed", type=int, default=2026)
    parser.add_argument("--scored", type=int, default=121, help="lesson 08: images scored")
    parser.add_argument("--set", type=json.loads, default={}, help="other parameters, as JSON")
    parser.add_argument(
        "--no-score", action="store_true", help="lesson 08: leave the scored part unseen (probes)"
    )
    args = parser.parse_args()
    work = args.work / args.lesson
    work.mkdir(parents=True, exist_ok=True)
    stems = sorted(path.stem for path in (args.shared / "images").glob("*.png"))
    record = {"lesson": args.lesson, "date": time.strftime("%Y-%m-%d"), "cpu_count": os.cpu_count()}
    if args.set:
        record["settings"] = args.set
    if args.lesson == "07":
        copy_pairs(args.shared, stems, work / "all")
        record["report"], record["seconds"] = run_lesson("07", work / "all", work, args.set)
        record["images"] = len(stems)
    else:
        # Images the project ships, whole or as crops (<id>_center512), are left out.
        shipped = {
            path.stem.split("_")[0] for path in (REPOSITORY / "data/nuclei/images").iterdir()
        }
        unshipped = [stem for stem in stems if stem not in shipped]
        order = np.random.default_rng(args.split_seed).permutation(len(unshipped))
        scored = sorted(unshipped[i] for i in order[: args.scored])
        tune = sorted(unshipped[i] for i in order[args.scored :])
        copy_pairs(args.shared, scored, work / "scored")
        copy_pairs(args.shared, tune, work / "tune")
        record["report"], record["seconds"] = run_lesson("08", work / "tune", work, args.set)
        record |= {"unshipped": len(unshipped), "tune_images": len(tune)}
        if not args.no_score:
            record["scored"] = score_unshipped(work, record["report"])
    record["seconds"] = round(record["seconds"], 1)
    with RESULTS.open("a") as results:
        results.write(json.dumps(record, default=float) + "\n")
    print(json.dumps(record, indent=1, default=float))


if __name__ == "__main__":
    main()

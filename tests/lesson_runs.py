"""Shared by the tests that run lessons with edited parameters (test_parameter_sweeps.py,
test_browser.py, test_backends.py): the parameter sets, scratch runs and students' folders.

Run as a script (``python lesson_runs.py NUMBER ROOT PARAMETERS_JSON``) it makes one scratch run:
``run_together`` starts such runs in separate processes, two at a time.
"""

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import numpy as np
import papermill
from PIL import Image

from notebook_paths import LESSONS

# Edited parameter sets, keyed by the lesson's two-digit prefix. Every lesson needs a set here
# (test_every_lesson_has_sweeps): a new lesson adds an entry. Kept small for a 2-core CPU; strict
# nbval already runs every lesson with its defaults. Each set runs once: 03's and 05's in the
# browser (test_browser.py), 07's on a student's folder on PyTorch and 08's on a folder without
# labels/ on JAX (test_backends.py), the others in test_parameter_sweeps.py (04's on a student's
# folder, written below).
ELSEWHERE = {
    "03": "test_browser",
    "04": "test_parameter_sweeps",
    "05": "test_browser",
    "07": "test_backends",
    "08": "test_backends",
}
SWEEPS = {
    "01": [
        dict(IMAGE_SIZE=96, BASE_FILTERS=8, DEPTH=3, N_CLASSES=3)
    ],  # depth 5 made the receptive-field probe take 48 s
    "02": [dict(IMAGE_SIZE=96, BASE_FILTERS=8, DEPTH=5, N_CLASSES=3)],
    "03": [dict(IMAGE_SIZE=64, BASE_FILTERS=8, DEPTH=2, N_CLASSES=3, CHANNELS=1)],
    "04": [
        dict(
            IMAGE_SIZE=96, CHANNELS=1, BASE_FILTERS=8, DEPTH=3, EPOCHS=1, BATCH_SIZE=4, N_IMAGES=40
        )
    ],
    "05": [
        dict(
            IMAGE_SIZE=64, N_CLASSES=3, BASE_FILTERS=8, DEPTH=3, EPOCHS=1, BATCH_SIZE=4, N_IMAGES=40
        )
    ],
    "06": [dict(IMAGE_SIZE=64, DEPTH=3, BASE_FILTERS=4, EPOCHS=1, N_IMAGES=40)],
    "07": [
        dict(
            IMAGE_SIZE=64,
            BASE_FILTERS=8,
            DEPTH=3,
            EPOCHS=1,
            PATCHES_PER_EPOCH=32,
            BATCH_SIZE=8,
            OVERLAP=0.25,
        )  # fmt: skip
    ],
}
SWEEPS["08"] = SWEEPS["07"]  # lesson 07's small network, on a folder without labels/


def run_scratch_copy(number, root, parameters):
    """Run a copy of lesson ``number`` in root/notebooks: its ../data (models too) is scratch."""
    lesson = next(path for path in LESSONS if path.name.startswith(f"{number}_"))
    workdir = root / "notebooks"
    workdir.mkdir()
    shutil.copy(lesson, workdir / lesson.name)
    return run_with_papermill(workdir / lesson.name, parameters)


def run_with_papermill(notebook, parameters):
    """Execute a copy with papermill; only cells tagged raises-exception may fail. Returns it."""
    executed = notebook.with_name(f"executed_{notebook.name}")
    try:
        papermill.execute_notebook(
            str(notebook),
            str(executed),
            parameters=parameters,
            cwd=str(notebook.parent),
            kernel_name="python3",
            progress_bar=False,
            execution_timeout=600,
        )
    except papermill.PapermillExecutionError:
        # papermill reports any stored error, even an expected one; check which cells failed.
        cells = nbformat.read(executed, as_version=4).cells
        unexpected = [
            cell.source.splitlines()[0]
            for cell in cells
            if cell.cell_type == "code"
            and "raises-exception" not in cell.metadata.get("tags", [])
            and any(output.output_type == "error" for output in cell.get("outputs", []))
        ]
        assert not unexpected, f"cells failed: {unexpected}"
    return executed


def lesson_command(number, root, parameters):
    """The command that runs ``run_scratch_copy(number, root, parameters)`` in its own process."""
    return [sys.executable, __file__, number, str(root), json.dumps(parameters)]


def run_together(commands, workers=2, timeout=900):
    """Run ``{name: (command, environment)}`` as processes, ``workers`` at a time; return
    ``{name: (returncode, output)}``. The small TensorFlow sweeps are mostly one Python thread:
    in CI they took 55 s together, 77 s one after the other. JAX and PyTorch runs gain nothing."""

    def run(command, environment):
        done = subprocess.run(
            command, env={**os.environ, **environment}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, timeout=timeout, cwd=Path(__file__).parent,
        )  # fmt: skip
        return done.returncode, done.stdout

    with ThreadPoolExecutor(workers) as pool:
        futures = {name: pool.submit(run, *job) for name, job in commands.items()}
        return {name: future.result() for name, future in futures.items()}


def write_students_folder(folder, count=24):
    """A folder in the documented layout made like a student's: mixed sizes, gray and RGB, 0/1."""
    import unet_helpers as uh  # here, so a scratch run's own process does not import Keras

    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    rng = np.random.default_rng(7)
    sizes = [(100, 140), (160, 160), (90, 75), (128, 200)]
    for index in range(count):
        image, mask = uh.synthetic_pair("binary", 160, rng)
        width, height = sizes[index % len(sizes)]
        picture = Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR)
        if index % 3 == 0:
            picture = picture.convert("L")
        labels = Image.fromarray(mask).resize((width, height), Image.Resampling.NEAREST)
        picture.save(folder / "images" / f"photo_{index:02d}.png")
        labels.save(folder / "masks" / f"photo_{index:02d}.png")  # class ids 0/1, not 0/255


def write_large_mixed_folder(folder, count=8):
    """A student's microscopy-like folder: large images of mixed sizes, gray and RGB, saved as
    PNG, TIFF or JPEG, with 0/1 masks as PNG or TIFF (a JPEG mask is refused: lossy)."""
    import unet_helpers as uh

    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    rng = np.random.default_rng(11)
    sizes = [(450, 300), (700, 520), (260, 900), (100, 120)]  # width x height, one under 128 px
    for index in range(count):
        width, height = sizes[index % len(sizes)]
        side = 128 * -(-max(width, height) // 128)
        image, mask = uh.synthetic_pair("binary", side, rng)
        picture = Image.fromarray(image[:height, :width])
        if index % 2:
            picture = picture.convert("L")
        picture.save(folder / "images" / f"scan_{index:02d}{('.png', '.tif', '.jpg')[index % 3]}")
        labels = Image.fromarray(mask[:height, :width])
        labels.save(folder / "masks" / f"scan_{index:02d}{('.png', '.tif')[index % 2]}")


if __name__ == "__main__":
    number, root, parameters = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3])
    print(run_scratch_copy(number, root, parameters))

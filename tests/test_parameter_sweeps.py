"""Every lesson still runs when a student edits its parameters cell (papermill, small settings)."""

import json
import shutil

import nbformat
import numpy as np
import papermill
import pytest
from PIL import Image

import unet_helpers as uh
from notebook_paths import LESSONS

# Two other parameter sets per lesson, kept small so the sweep stays fast on a 2-core CPU.
SWEEPS = {
    "01": [dict(IMAGE_SIZE=64, DEPTH=3), dict(IMAGE_SIZE=96, BASE_FILTERS=8, DEPTH=5, N_CLASSES=3)],
    "02": [dict(IMAGE_SIZE=64, DEPTH=3), dict(IMAGE_SIZE=96, BASE_FILTERS=8, DEPTH=5, N_CLASSES=3)],
    "03": [dict(IMAGE_SIZE=64, DEPTH=3), dict(BASE_FILTERS=8, DEPTH=2, N_CLASSES=3, CHANNELS=1)],
    "04": [
        dict(IMAGE_SIZE=64, DEPTH=3, EPOCHS=1, N_IMAGES=40),
        dict(IMAGE_SIZE=96, BASE_FILTERS=8, CHANNELS=1, EPOCHS=1, BATCH_SIZE=4, N_IMAGES=40),
    ],
    "05": [
        dict(IMAGE_SIZE=64, DEPTH=3, EPOCHS=1, N_IMAGES=40),
        dict(N_CLASSES=3, BASE_FILTERS=8, EPOCHS=1, BATCH_SIZE=4, N_IMAGES=40),
    ],
    "06": [
        dict(IMAGE_SIZE=64, DEPTH=3, EPOCHS=1, N_IMAGES=40),
        dict(BASE_FILTERS=4, DEPTH=2, EPOCHS=2, N_IMAGES=40),
    ],
}
CASES = [
    pytest.param(lesson, parameters, id=f"{lesson.stem}-{index}")
    for lesson in LESSONS
    for index, parameters in enumerate(SWEEPS.get(lesson.name[:2], []))
]


def test_every_lesson_has_sweeps():
    assert all(lesson.name[:2] in SWEEPS for lesson in LESSONS)


@pytest.mark.parametrize("lesson, parameters", CASES)
def test_lesson_runs_with_edited_parameters(lesson, parameters, tmp_path):
    # A copy in a scratch tree: its ../data and ../models are scratch too.
    workdir = tmp_path / "notebooks"
    workdir.mkdir()
    shutil.copy(lesson, workdir / lesson.name)
    run_with_papermill(workdir / lesson.name, parameters)


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


def write_students_folder(folder, count=24):
    """A folder in the documented layout made like a student's: mixed sizes, gray and RGB, 0/1."""
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


def test_lesson_04_trains_on_a_students_folder_by_changing_only_data_dir(tmp_path):
    lesson = next(path for path in LESSONS if path.name.startswith("04_"))
    write_students_folder(tmp_path / "my_cells")
    workdir = tmp_path / "notebooks"
    workdir.mkdir()
    shutil.copy(lesson, workdir / lesson.name)
    executed = run_with_papermill(workdir / lesson.name, dict(DATA_DIR="../my_cells", EPOCHS=1))
    outputs = json.dumps(nbformat.read(executed, as_version=4).cells)
    assert "Found 24 image/mask pairs in ../my_cells" in outputs
    assert (tmp_path / "my_cells" / "images").exists() and not (
        tmp_path / "data" / "shapes_binary"
    ).exists()

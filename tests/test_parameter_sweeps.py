"""Every lesson still runs when a student edits its parameters cell (papermill, small settings)."""

import json

import nbformat
import pytest

from lesson_runs import ELSEWHERE, SWEEPS, run_scratch_copy, write_students_folder
from notebook_paths import LESSONS

CASES = [
    pytest.param(lesson, parameters, id=f"{lesson.stem}-{index}")
    for lesson in LESSONS
    for index, parameters in enumerate(SWEEPS.get(lesson.name[:2], []))
    if lesson.name[:2] not in ELSEWHERE
]


def test_every_lesson_has_sweeps():
    missing = [lesson.name for lesson in LESSONS if not SWEEPS.get(lesson.name[:2])]
    assert not missing, f"add parameter sets for these lessons to SWEEPS: {missing}"


@pytest.mark.parametrize("lesson, parameters", CASES)
def test_lesson_runs_with_edited_parameters(lesson, parameters, tmp_path):
    run_scratch_copy(lesson.name[:2], tmp_path, parameters)


def test_lesson_04_trains_on_a_students_folder_by_changing_data_dir(tmp_path):
    write_students_folder(tmp_path / "my_cells")
    executed = run_scratch_copy("04", tmp_path, {**SWEEPS["04"][0], "DATA_DIR": "../my_cells"})
    outputs = json.dumps(nbformat.read(executed, as_version=4).cells)
    assert "Found 24 image/mask pairs in ../my_cells" in outputs
    assert (tmp_path / "my_cells" / "images").exists() and not (
        tmp_path / "data" / "shapes_binary"
    ).exists()

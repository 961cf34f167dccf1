"""Every lesson still runs when a student edits its parameters cell (papermill, small settings)."""

import json

import nbformat
import pytest

from lesson_runs import ELSEWHERE, SWEEPS, lesson_command, run_together, write_students_folder
from notebook_paths import LESSONS

CASES = {
    f"{lesson.stem}-{index}": (lesson.name[:2], parameters)
    for lesson in LESSONS
    for index, parameters in enumerate(SWEEPS.get(lesson.name[:2], []))
    if lesson.name[:2] not in ELSEWHERE
}
STUDENTS_FOLDER = "04 on a student's folder"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every run of this file, two at a time; ``{name: (returncode, output, scratch folder)}``."""
    roots = {name: tmp_path_factory.mktemp("sweep") for name in [*CASES, STUDENTS_FOLDER]}
    commands = {
        name: (lesson_command(number, roots[name], parameters), {})
        for name, (number, parameters) in CASES.items()
    }
    write_students_folder(roots[STUDENTS_FOLDER] / "my_cells")
    students = {**SWEEPS["04"][0], "DATA_DIR": "../my_cells"}
    commands[STUDENTS_FOLDER] = (lesson_command("04", roots[STUDENTS_FOLDER], students), {})
    return {name: (*result, roots[name]) for name, result in run_together(commands).items()}


def test_every_lesson_has_sweeps():
    missing = [lesson.name for lesson in LESSONS if not SWEEPS.get(lesson.name[:2])]
    assert not missing, f"add parameter sets for these lessons to SWEEPS: {missing}"


@pytest.mark.parametrize("case", CASES)
def test_lesson_runs_with_edited_parameters(case, runs):
    returncode, output, _ = runs[case]
    assert returncode == 0, output[-4000:]


def test_lesson_04_trains_on_a_students_folder_by_changing_data_dir(runs):
    returncode, output, root = runs[STUDENTS_FOLDER]
    assert returncode == 0, output[-4000:]
    executed = output.strip().splitlines()[-1]  # the script prints the executed copy's path
    outputs = json.dumps(nbformat.read(executed, as_version=4).cells)
    assert "Found 24 image/mask pairs in ../my_cells" in outputs
    assert (root / "my_cells" / "images").exists() and not (
        root / "data" / "shapes_binary"
    ).exists()

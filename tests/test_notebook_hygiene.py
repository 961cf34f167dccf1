"""Lessons are committed executed top to bottom in a fresh kernel (nbval skips unexecuted cells)."""

import ast
import os
import re

import nbformat
import pytest

from execute_notebooks import STORED_ARITHMETIC
from notebook_paths import LESSONS, REPOSITORY

MACHINE_PATH = re.compile(r"/(root|home|tmp|Users)/[^\s'\"]+")


def test_lessons_are_numbered_in_order_and_listed_in_the_readme():
    numbers = [int(path.name[:2]) for path in LESSONS]
    assert numbers and numbers == list(range(1, len(numbers) + 1)), f"gaps or repeats: {numbers}"
    listed = re.findall(r"^\d+\. `(\d\d_\w+\.ipynb)`", (REPOSITORY / "README.md").read_text(), re.M)
    assert listed == [path.name for path in LESSONS], "README's lesson list differs from notebooks/"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_lesson_is_executed_top_to_bottom_in_a_fresh_kernel(path):
    code_cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    counts = [cell.execution_count for cell in code_cells]
    assert None not in counts, f"{path.name}: cells never executed - run tests/execute_notebooks.py"
    assert counts == list(range(1, len(counts) + 1)), f"{path.name}: execution order {counts}"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_lesson_outputs_are_clean_and_portable(path):
    notebook = nbformat.read(path, as_version=4)
    assert notebook.metadata.kernelspec.name == "python3"
    for index, cell in enumerate(c for c in notebook.cells if c.cell_type == "code"):
        # Only a cell tagged raises-exception (honoured by nbval and JupyterLab's Run All) may
        # hold an error, and it must.
        expected = "raises-exception" in cell.metadata.get("tags", [])
        errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
        assert expected or not errors, f"{path.name} code cell {index + 1} stored an error"
        assert errors or not expected, f"{path.name} code cell {index + 1} is tagged, no error"
        for output in cell.get("outputs", []):
            assert output.get("name") != "stderr" or "I0000" not in output.get("text", ""), (
                f"{path.name} code cell {index + 1} stored TensorFlow log lines"
            )
            text = output.get("text", "") + str(output.get("data", {}).get("text/plain", ""))
            assert not MACHINE_PATH.search(text), f"{path.name} cell {index + 1} shows a path"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_lesson_has_the_course_shape(path):
    cells = nbformat.read(path, as_version=4).cells
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith("# ")
    first_code = next(c for c in cells if c.cell_type == "code")
    assert "parameters" in first_code.metadata.get("tags", []), "first code cell: parameters tag"
    names = re.findall(r"^([A-Za-z_]\w*)\s*=", first_code.source, flags=re.MULTILINE)
    assert names and all(name.isupper() for name in names), f"UPPER_CASE parameters: {names}"
    headings = [c.source.splitlines()[0] for c in cells if c.cell_type == "markdown" and c.source]
    assert "## Summary" in headings and "## Exercises" in headings
    skips = [c for c in cells if c.cell_type == "code" and "NBVAL_SKIP" in c.source]
    assert not skips, "no NBVAL_SKIP: fix the cause instead"
    comments = [c for c in cells if c.cell_type == "code" and "NBVAL_IGNORE_OUTPUT" in c.source]
    assert not comments, "mark a cell with the nbval-ignore-output tag, not a comment"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_papermill_reads_every_parameter(path):
    # papermill skips a line with two "=" (one in a comment is enough), then warns "Passed
    # unknown parameter" when a student or a sweep sets it.
    import papermill

    first_code = next(c for c in nbformat.read(path, 4).cells if c.cell_type == "code")
    names = re.findall(r"^([A-Z_]\w*)\s*=", first_code.source, flags=re.MULTILINE)
    assert sorted(papermill.inspect_notebook(str(path))) == sorted(names)


DEFAULTS_LESSONS = [
    path
    for path in LESSONS
    if "DEFAULTS" in "".join(c.source for c in nbformat.read(path, 4).cells)
]


@pytest.mark.parametrize("path", DEFAULTS_LESSONS, ids=lambda p: p.name)
def test_defaults_check_matches_the_parameters_cell(path):
    # A lesson checks its IoU floor only when DEFAULTS is true. If the tuple it compares against
    # drifted from the parameters cell, the floor would silently never be checked again.
    import ast

    cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    parameters = next(c for c in cells if "parameters" in c.metadata.get("tags", []))
    namespace = {}
    exec(parameters.source, namespace)
    for cell in cells:
        for node in ast.parse(cell.source).body:
            targets = getattr(node, "targets", [])
            if any(getattr(t, "id", "").startswith("DEFAULT") for t in targets):
                exec(compile(ast.Module([node], []), path.name, "exec"), namespace)
    assert namespace.get("DEFAULTS") is True, f"{path.name}: DEFAULTS is false at the defaults"


TIME_NAME = re.compile(r"second|time|duration|elapsed|minute|perf_counter", re.IGNORECASE)


def asserted_time_names(source):
    """Names in the code's assert statements that look like a time (``lesson_seconds``...)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assert):
            for part in ast.walk(node.test):
                name = getattr(part, "id", None) or getattr(part, "attr", None)
                if name and TIME_NAME.search(name):
                    found.append(name)
    return found


def test_time_asserts_are_recognised():
    assert asserted_time_names("assert lesson_seconds < 300") == ["lesson_seconds"]
    assert asserted_time_names("assert time.perf_counter() - start < 9")
    assert not asserted_time_names("assert test_iou >= 0.8\nseconds = 3")


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_no_lesson_asserts_a_time(path):
    # A time depends on the machine: lessons print it; benchmarks/lessons.py measures budgets.
    for index, cell in enumerate(c for c in nbformat.read(path, as_version=4).cells):
        if cell.cell_type == "code" and not cell.source.lstrip().startswith(("%", "!")):
            names = asserted_time_names(cell.source)
            assert not names, f"{path.name} cell {index}: an assert on a time ({names})"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_stored_outputs_come_from_other_arithmetic_than_the_tests(path):
    # Strict nbval then fails on any stored output that depends on training and is not marked
    # nbval-ignore-output, here as on a machine with another processor.
    stored = nbformat.read(path, as_version=4).metadata.get("executed_with")
    assert stored == STORED_ARITHMETIC, f"{path.name}: re-execute with tests/execute_notebooks.py"
    for name, value in stored.items():
        # Set by name (conftest.py): unset, TensorFlow picks its kernels by the processor.
        tested = os.environ.get(name)
        assert tested not in (None, "", value), (
            f"tests ran with {name}={tested!r}: set it, not to {value}"
        )

"""Lesson 02 writes conv_block, encoder_block and decoder_block itself; they must stay identical to
the versions in unet_helpers.py, which every later lesson uses. Compares the syntax trees (so
formatting and docstrings may differ, code may not)."""

import ast
import copy
import inspect

import nbformat
import pytest

import unet_helpers as uh
from notebook_paths import NOTEBOOK_DIR

LESSON = NOTEBOOK_DIR / "02_blocks_as_functions.ipynb"
BLOCKS = ["conv_block", "encoder_block", "decoder_block"]


def without_docstring(function):
    """The FunctionDef dumped as text, its docstring (if any) removed."""
    body = function.body
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        body = body[1:]
    stripped = copy.copy(function)
    stripped.body = body
    return ast.dump(stripped, annotate_fields=True, include_attributes=False)


def function_defs(source, what):
    """Every top-level function definition in ``source``, by name; fails on duplicates."""
    found = {}
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            assert node.name not in found, f"{what} defines {node.name} twice"
            found[node.name] = node
    return found


def lesson_defs(path=LESSON):
    notebook = nbformat.read(path, as_version=4)
    found = {}
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        for name, node in function_defs(cell.source, f"cell {index}").items():
            assert name not in found, f"lesson 02 defines {name} in more than one cell"
            found[name] = node
    return found


@pytest.mark.parametrize("name", BLOCKS)
def test_lesson_block_is_the_module_block(name):
    lesson = lesson_defs()
    assert name in lesson, f"lesson 02 no longer defines {name}"
    module = function_defs(inspect.getsource(uh), "unet_helpers.py")[name]
    assert without_docstring(lesson[name]) == without_docstring(module), (
        f"{name} in notebooks/02_blocks_as_functions.ipynb differs from unet_helpers.{name}: "
        "change both, the lesson teaches the code the other lessons run"
    )


def test_docstring_removal_is_the_only_normalization():
    plain = ast.parse("def f(x):\n    return x + 1\n").body[0]
    documented = ast.parse('def f(x):\n    """Add one."""\n    return x + 1\n').body[0]
    changed = ast.parse("def f(x):\n    return x + 2\n").body[0]
    assert without_docstring(plain) == without_docstring(documented)
    assert without_docstring(plain) != without_docstring(changed)


# Lesson 03 writes multiply_adds itself to explain it; lesson 07 uses the module's copy.
LESSON_03 = NOTEBOOK_DIR / "03_assemble_and_summarize.ipynb"


def test_lesson_03_multiply_adds_is_the_module_function():
    notebook = nbformat.read(LESSON_03, as_version=4)
    found = {}
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            found.update(function_defs(cell.source, f"lesson 03 cell {index}"))
    assert "multiply_adds" in found, "lesson 03 no longer defines multiply_adds"
    module = function_defs(inspect.getsource(uh), "unet_helpers.py")["multiply_adds"]
    assert without_docstring(found["multiply_adds"]) == without_docstring(module), (
        "multiply_adds in lesson 03 differs from unet_helpers.multiply_adds: change both"
    )

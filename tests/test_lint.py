"""ruff is clean on the helpers, the tests and the lessons (it reads .ipynb directly), and the
contents list of unet_helpers' docstring is complete and agrees with each definition's tag."""

import ast
import inspect
import re
import subprocess
import sys

import unet_helpers as uh
import unet_support
from notebook_paths import LESSONS, REPOSITORY

TARGETS = ["unet_helpers.py", "unet_support.py", "conftest.py", "tests", "notebooks", "benchmarks"]


def run_ruff(*arguments):
    command = [sys.executable, "-m", "ruff", *arguments, *TARGETS]
    return subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True)


def test_ruff_check_is_clean():
    result = run_ruff("check", "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean():
    result = run_ruff("format", "--check", "--no-cache")
    assert result.returncode == 0, "run `ruff format`:\n" + result.stdout + result.stderr


def contents_list():
    """{name: (lesson, in parentheses)} from the contents list of unet_helpers' docstring."""
    text = uh.__doc__.split("Contents, by the lesson")[1].split("\nThe file is in")[0]
    listed = {}
    for bullet in text.split("\n* ")[1:]:
        lesson, depth = bullet[:2], 0
        for piece in re.split(r"(``\w+``|[()])", bullet):
            depth += {"(": 1, ")": -1}.get(piece, 0)
            if piece.startswith("``"):
                assert piece[2:-2] not in listed, f"{piece} is listed twice"
                listed[piece[2:-2]] = (lesson, depth > 0)
    return listed


def public_names():
    """uh's public names; what it takes from unet_support is public too: lessons call it."""
    return {
        name
        for name, value in vars(uh).items()
        if not name.startswith("_")
        and getattr(value, "__module__", uh.__name__) in (uh.__name__, unet_support.__name__)
        and (callable(value) or name.isupper())
    }


def definition_tags():
    """{name: lesson} of the "(lesson NN)" tag of each top-level definition of both modules: the
    first in its docstring, or in the ``#:`` comment above a constant (d2l's "Defined in")."""
    tags = {}
    for module in (uh, unet_support):
        source = inspect.getsource(module)
        lines = source.split("\n")
        for node in ast.parse(source).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names, text = [node.name], ast.get_docstring(node) or ""
            elif isinstance(node, ast.Assign):
                names = [target.id for target in node.targets if isinstance(target, ast.Name)]
                above = node.lineno - 2
                while above >= 0 and lines[above].startswith("#:"):
                    above -= 1
                text = " ".join(lines[above + 1 : node.lineno - 1])
            else:
                continue
            tag = re.search(r"\(lesson (\d\d)\b", text)
            tags.update({name: tag and tag.group(1) for name in names})
    return tags


def test_contents_list_names_every_public_name_once_under_a_lesson_that_shows_it():
    public, listed = public_names(), contents_list()
    assert sorted(public - set(listed)) == [], "add these to the contents list"
    assert sorted(set(listed) - public) == [], "the contents list names what the module lacks"
    lessons = {path.name[:2]: path.read_text() for path in LESSONS}
    missing = [
        f"{name} ({lesson})"
        for name, (lesson, supporting) in listed.items()
        if not supporting and not re.search(rf"\b{name}\b", lessons[lesson])
    ]
    assert missing == [], "listed under a lesson that never names them"


def test_each_public_definition_is_tagged_with_the_lesson_the_contents_list_files_it_under():
    tags, listed = definition_tags(), contents_list()
    untagged = sorted(name for name in public_names() if not tags.get(name))
    assert untagged == [], "end the first docstring line (or #: comment) with (lesson NN)"
    disagree = {name: (tags[name], lesson) for name, (lesson, _) in listed.items()}
    assert {name: pair for name, pair in disagree.items() if len(set(pair)) > 1} == {}
    lessons = {path.name[:2] for path in LESSONS}
    assert {tags[name] for name in public_names()} <= lessons, "a tag names no lesson"

"""ruff is clean on the helpers, the tests and the lessons (it reads .ipynb directly), and the
contents list of unet_helpers' docstring is complete and agrees with each definition's tag, and
each tag names the section of its lesson that introduces the name, and unet_helpers is in the
order of its tags."""

import ast
import inspect
import json
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


def contents_list(parents=None):
    """{name: (lesson, in parentheses)} from the contents list of unet_helpers' docstring; fills
    ``parents`` with {name in parentheses: the name before them}."""
    text = uh.__doc__.split("Contents, by the lesson")[1].split("\nThe file is in")[0]
    listed, parents = {}, {} if parents is None else parents
    for bullet in text.split("\n* ")[1:]:
        lesson, depth, top = bullet[:2], 0, None
        for piece in re.split(r"(``\w+``|[()])", bullet):
            depth += {"(": 1, ")": -1}.get(piece, 0)
            if piece.startswith("``"):
                name = piece[2:-2]
                assert name not in listed, f"{piece} is listed twice"
                listed[name] = (lesson, depth > 0)
                if depth:
                    parents[name] = top
                else:
                    top = name
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
    """{name: (lesson, section)} of the "(lesson NN.S)" tag of each top-level definition of both
    modules: the first in its docstring, or in the ``#:`` comment above a constant (d2l's "Defined
    in"); None where there is no tag, section None where the tag has none."""
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
            tag = re.search(r"\(lesson (\d\d)(?:\.(\d+))?\b", text)
            tag = tag and (tag.group(1), tag.group(2) and int(tag.group(2)))
            tags.update({name: tag for name in names})
    return tags


def lesson_sections(path):
    """[(section, code, markdown)] of a lesson, split at its "## S." headings (0: before them)."""
    sections = [(0, [], [])]
    for cell in json.loads(path.read_text())["cells"]:
        for line in "".join(cell["source"]).splitlines():
            heading = re.match(r"## (\d+)?", line)
            if cell["cell_type"] == "markdown" and heading:
                sections.append((int(heading.group(1) or -1), [], []))
            sections[-1][1 if cell["cell_type"] == "code" else 2].append(line)
    return [(number, "\n".join(code), "\n".join(text)) for number, code, text in sections]


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
    disagree = {name: (tags[name][0], lesson) for name, (lesson, _) in listed.items()}
    assert {name: pair for name, pair in disagree.items() if len(set(pair)) > 1} == {}
    lessons = {path.name[:2] for path in LESSONS}
    assert {tags[name][0] for name in public_names()} <= lessons, "a tag names no lesson"


def test_unet_helpers_is_in_lesson_order_under_a_banner_per_lesson():
    """Its definitions follow their tags' (lesson, section) order, each under its lesson's
    ``# --- Lesson NN`` line: a student who reads on from a name reaches the next section's."""
    tags, lines = definition_tags(), inspect.getsource(uh).split("\n")
    banners = [
        (number, line[13:15])
        for number, line in enumerate(lines, 1)
        if line.startswith("# --- Lesson ")
    ]
    assert [lesson for _, lesson in banners] == sorted({path.name[:2] for path in LESSONS})
    found, previous = [], ("00", 0)
    for node in ast.parse("\n".join(lines)).body:
        names = [node.name] if isinstance(node, (ast.FunctionDef, ast.ClassDef)) else []
        names += [t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
        for name in names:
            if not tags.get(name):
                continue  # a private helper, just above its user
            tag = (tags[name][0], tags[name][1] or 0)
            under = [lesson for line, lesson in banners if line < node.lineno][-1:]
            if tag < previous or under != [tag[0]]:
                found.append(f"{name} {tag} after {previous}, under banner {under}")
            previous = max(previous, tag)
    assert found == [], "move these to their lesson's part, in section order"


def test_each_tag_names_the_section_that_introduces_the_name():
    """The section of "(lesson NN.S)" is the first of lesson NN whose code calls ``uh.name``, else
    the first whose text or code names it, else that of the name it serves in the contents list."""
    parents = {}
    listed, tags = contents_list(parents), definition_tags()
    sections = {path.name[:2]: lesson_sections(path) for path in LESSONS}

    def introduced(name):
        numbered = [part for part in sections[listed[name][0]] if part[0] > 0]
        for pattern, where in ((rf"\buh\.{name}\b", "code"), (rf"\b{name}\b", "all")):
            for number, code, text in numbered:
                if re.search(pattern, code if where == "code" else code + text):
                    return number
        return introduced(parents[name])

    wrong = {
        name: (tags[name][1], introduced(name))
        for name in listed
        if tags[name][1] != introduced(name)
    }
    assert wrong == {}, "(tagged, introduced in): make each tag (lesson NN.S) name that section"

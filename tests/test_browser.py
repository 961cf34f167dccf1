"""What a student does: open lessons in real JupyterLab in a browser, run them, read the result.

JupyterLab serves a scratch copy of notebooks/ on 127.0.0.1 (random token, free port) so autosave
never touches the committed files; Playwright drives the system's Chromium (Debian's package,
or the browser the CHROMIUM variable names).
Screenshots go to artifacts/browser/ (gitignored).
"""

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import keras
import nbformat
import pytest
from playwright.sync_api import sync_playwright

import unet_helpers as uh
from lesson_runs import SWEEPS
from notebook_paths import LESSONS, REPOSITORY

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPOSITORY / "artifacts" / "browser"
# Settings for the scratch JupyterLab: no news or update pop-ups.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on a scratch copy of the lessons; yields (base url, token, folder)."""
    root = tmp_path_factory.mktemp("lab")
    notebooks = root / "notebooks"
    notebooks.mkdir()
    for lesson in LESSONS:
        shutil.copy(lesson, notebooks / lesson.name)
        if lesson in RUN_ALL_LESSONS:  # nbval runs the defaults; here the browser is the point
            set_parameters(notebooks / lesson.name, SWEEPS[lesson.name[:2]][0])
    settings = root / "settings"
    for name, values in LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(values))
    port, token = free_port(), secrets.token_hex(16)
    environment = dict(
        os.environ,
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(root / "workspaces"),
    )
    command = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
        "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={notebooks}", "--LabApp.news_url=None",
        "--LabApp.expose_app_in_browser=True",
    ]  # fmt: skip
    log = open(root / "jupyterlab.log", "w")
    server = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if server.poll() is not None or time.time() > deadline:
                server.kill()
                pytest.fail(f"JupyterLab did not start:\n{(root / 'jupyterlab.log').read_text()}")
            time.sleep(0.5)
    yield base, token, notebooks
    server.terminate()
    server.wait(timeout=30)
    log.close()


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"no browser at {CHROMIUM}: apt-get install chromium, or set CHROMIUM=path")
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        except Exception as error:  # noqa: BLE001 - say what failed, never skip
            pytest.fail(f"Chromium at {CHROMIUM} could not start: {error}")
        yield chromium
        chromium.close()


def open_lesson(browser, lab, name):
    """Open a lesson in a fresh workspace and wait until its kernel is idle."""
    base, token, _ = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{base}/lab/tree/{name}?reset&token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    wait_for_idle(page)
    return page


def wait_for_idle(page, timeout=60):
    """Wait until the notebook's kernel reports idle (JupyterLab's sessionContext)."""
    page.wait_for_function(
        """() => {
            const panel = window.jupyterapp.shell.currentWidget;
            return panel && panel.sessionContext && panel.sessionContext.session &&
                   panel.sessionContext.session.kernel &&
                   panel.sessionContext.session.kernel.status === 'idle';
        }""",
        timeout=timeout * 1000,
    )


ERRORS_JS = """() => {
    const panel = window.jupyterapp.shell.currentWidget;
    const found = [];
    panel.content.widgets.forEach((cell, index) => {
        if (cell.model.type !== 'code') return;
        const tags = cell.model.getMetadata('tags') || [];
        if (tags.includes('raises-exception')) return;
        for (let i = 0; i < cell.model.outputs.length; i++) {
            const output = cell.model.outputs.get(i).toJSON();
            if (output.output_type === 'error') found.push([index, output.ename, output.evalue]);
        }
    });
    return found;
}"""


def run_all_and_wait(page, timeout):
    """Clear outputs, click Run > Run All Cells, wait until every cell ran (or one failed)."""
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
    page.locator("#jp-MainMenu").get_by_text("Run", exact=True).click()
    page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()
    page.wait_for_function(
        """() => {
            const panel = window.jupyterapp.shell.currentWidget;
            const idle = panel.sessionContext.session.kernel.status === 'idle';
            const failed = (__ERRORS__)().length > 0;
            const cells = panel.content.widgets.filter(cell => cell.model.type === 'code');
            const done = cells.every(cell => cell.model.executionCount !== null &&
                                             cell.promptNode.textContent.indexOf('*') < 0);
            return idle && (done || failed);
        }""".replace("__ERRORS__", ERRORS_JS),
        timeout=timeout * 1000,
        polling=1000,
    )


OUTPUT_TEXT_JS = """() => window.jupyterapp.shell.currentWidget.content.widgets
    .filter(cell => cell.model.type === 'code')
    .flatMap(cell => Array.from({length: cell.model.outputs.length},
                                (_, i) => cell.model.outputs.get(i).toJSON()))
    .map(output => [].concat(output.text || (output.data || {})['text/plain'] || []).join(''))
    .join('\\n')"""


def error_outputs(page):
    """Error outputs of code cells not tagged raises-exception: (cell index, name, message)."""
    return page.evaluate(ERRORS_JS)


def save_screenshot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def set_parameters(notebook_path, values):
    """Set lines ``NAME = ...`` of a notebook's parameters cell to ``values`` (small settings)."""
    notebook = nbformat.read(notebook_path, as_version=4)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    lines = []
    for line in cell.source.splitlines():
        name = line.split("=")[0].strip()
        lines.append(f"{name} = {values[name]!r}" if name in values else line)
    cell.source = "\n".join(lines)
    nbformat.write(notebook, notebook_path)


def has_expected_error(lesson):
    """Whether a code cell of the lesson is tagged raises-exception."""
    cells = nbformat.read(lesson, as_version=4).cells
    return any("raises-exception" in cell.metadata.get("tags", []) for cell in cells)


# Strict nbval already runs every lesson, so Run All in the browser only runs where it adds to that:
# - every lesson with a cell tagged raises-exception: JupyterLab's Run All must carry on past the
#   expected error (found from the notebooks' metadata, so new lessons are picked up);
# - one training lesson, for the student's whole experience of a training run in JupyterLab: 05,
#   which is also the lesson with an expected error, so one Run All covers both. It runs with its
#   small sweep settings (nbval already runs the defaults, with their IoU floors).
# Lesson 03 is run with its sweep settings, typed in by the parameter-edit test below.
TRAINING_LESSON = next(path for path in LESSONS if path.name.startswith("05_"))
RUN_ALL_LESSONS = [
    lesson for lesson in LESSONS if lesson == TRAINING_LESSON or has_expected_error(lesson)
]


@pytest.mark.parametrize("lesson", RUN_ALL_LESSONS, ids=lambda path: path.stem)
def test_run_all_in_jupyterlab_shows_no_error(browser, lab, lesson):
    page = open_lesson(browser, lab, lesson.name)
    code_cells = sum(cell.cell_type == "code" for cell in nbformat.read(lesson, 4).cells)
    run_all_and_wait(page, timeout=600)
    save_screenshot(page, lesson.stem)
    assert error_outputs(page) == []
    executed = page.evaluate(
        """() => window.jupyterapp.shell.currentWidget.content.widgets
                 .filter(cell => cell.model.type === 'code' && cell.model.executionCount !== null)
                 .length"""
    )
    assert executed == code_cells
    page.close()


def test_student_edits_parameters_in_lesson_03(browser, lab):
    # The student types lesson 03's sweep settings (lesson_runs.SWEEPS) into the
    # parameters cell, runs all, and sees the parameter count of the network they asked for.
    lesson = next(path for path in LESSONS if path.name.startswith("03_"))
    page = open_lesson(browser, lab, lesson.name)
    parameters = page.locator(".jp-CodeCell").first
    source = parameters.locator(".cm-content").inner_text()
    defaults = dict(re.findall(r"^([A-Z_]+) = (\d+)", source, flags=re.MULTILINE))
    settings = SWEEPS["03"][0]
    edited = source
    for name, value in settings.items():
        edited, count = re.subn(rf"^{name} = \d+", f"{name} = {value}", edited, flags=re.MULTILINE)
        assert count == 1, f"lesson 03's parameters cell has no {name} line"
    parameters.locator(".cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(edited)
    page.keyboard.press("Escape")
    run_all_and_wait(page, timeout=300)
    save_screenshot(page, "03_edited_parameters")
    assert error_outputs(page) == []
    keras.backend.clear_session()
    chosen = {name: int(value) for name, value in defaults.items()} | settings

    def parameter_count(values):
        shape = (values["IMAGE_SIZE"], values["IMAGE_SIZE"], values["CHANNELS"])
        return uh.build_unet(
            shape, values["N_CLASSES"], values["BASE_FILTERS"], values["DEPTH"]
        ).count_params()

    expected = parameter_count(chosen)
    default = parameter_count({name: int(value) for name, value in defaults.items()})
    shown = page.evaluate(OUTPUT_TEXT_JS)  # JupyterLab renders only the visible cells
    assert f"{expected:,}" in shown, f"expected {expected:,} parameters shown after the edit"
    assert f"{default:,}" not in shown
    page.close()

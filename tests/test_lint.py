"""ruff is clean on the helpers, the tests and the lessons (it reads .ipynb directly)."""

import subprocess
import sys

from notebook_paths import REPOSITORY

TARGETS = ["unet_helpers.py", "tests", "notebooks", "benchmarks"]


def run_ruff(*arguments):
    command = [sys.executable, "-m", "ruff", *arguments, *TARGETS]
    return subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True)


def test_ruff_check_is_clean():
    result = run_ruff("check", "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean():
    result = run_ruff("format", "--check", "--no-cache")
    assert result.returncode == 0, "run `ruff format`:\n" + result.stdout + result.stderr

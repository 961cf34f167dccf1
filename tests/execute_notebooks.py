"""Re-execute lessons in place, the canonical way: stored outputs are what strict nbval re-creates.

Usage: python tests/execute_notebooks.py [notebooks/NN_name.ipynb ...]   (default: every lesson)
Each lesson runs top to bottom in a fresh ``python3`` kernel started in ``notebooks/``; TF's C++
log lines go to the terminal, not into the notebook (nbval does not capture them either).
"""

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

# Run as a script, tests/ is sys.path[0]; under pytest, conftest.py puts it there.
from notebook_paths import LESSONS

KERNEL_ARGUMENTS = ["--IPKernelApp.capture_fd_output=False"]


def execute_in_place(path, timeout=900):
    """Run a notebook in a fresh kernel, write it back with its new outputs; return the seconds."""
    path = Path(path).resolve()
    notebook = nbformat.read(path, as_version=4)
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        extra_arguments=KERNEL_ARGUMENTS,
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    nbformat.write(notebook, path)
    return seconds


def main(paths):
    paths = paths or [str(lesson) for lesson in LESSONS]
    for path in paths:
        seconds = execute_in_place(path)
        print(f"{Path(path).name}: executed in {seconds:.0f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

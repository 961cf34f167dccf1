"""Re-execute lessons in place, the canonical way: stored outputs are what strict nbval re-creates.

Usage: python tests/execute_notebooks.py [notebooks/NN_name.ipynb ...]   (default: every lesson)
Each lesson runs top to bottom in a fresh ``python3`` kernel started in ``notebooks/``; TF's C++
log lines go to the terminal, not into the notebook (nbval does not capture them either).

The kernel runs with ``TF_ENABLE_ONEDNN_OPTS=0``: TensorFlow's plain CPU kernels, not the oneDNN
ones. The tests ask for oneDNN (``conftest.py``), so strict nbval compares every stored output
with one computed by other arithmetic, as on another processor: an output that depends on training
and is not marked ``nbval-ignore-output`` fails on the developer's own machine
(``test_notebook_hygiene.py`` checks that the two settings differ).
"""

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

# Run as a script, tests/ is sys.path[0]; under pytest, conftest.py puts it there.
from notebook_paths import LESSONS

KERNEL_ARGUMENTS = ["--IPKernelApp.capture_fd_output=False"]
# The arithmetic the stored outputs come from; the tests ask for the other (conftest.py).
STORED_ARITHMETIC = {"TF_ENABLE_ONEDNN_OPTS": "0"}


def execute_in_place(path, timeout=1800):
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
    notebook.metadata["executed_with"] = dict(STORED_ARITHMETIC)
    saved = dict(os.environ)
    os.environ.update(STORED_ARITHMETIC)  # the kernel inherits it
    start = time.perf_counter()
    try:
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
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

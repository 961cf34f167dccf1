"""The course on Keras' other backends: the helpers' unit tests, and a training lesson on each.

TensorFlow is the backend the course ships, and every other test runs on it. JAX and PyTorch (CPU
builds) come from requirements-backends.txt; where they are not installed these tests are skipped.
The backend is chosen as a student would: KERAS_BACKEND set before Python (or the kernel) starts.
"""

import json
import os
import subprocess
import sys

import nbformat
import pytest

from lesson_runs import SWEEPS, run_scratch_copy, write_large_mixed_folder
from notebook_paths import REPOSITORY

# The unit tests of the helpers that call Keras (test_data.py reads files with NumPy and Pillow).
# JAX compiles every small model that test_model.py builds: with it the JAX run took 80 s, without
# it 28 s. So JAX runs the backend-sensitive tests (losses, metrics, augmentation, patches, tiled
# prediction); PyTorch runs all three files.
UNIT_TESTS = {
    "jax": ["test_metrics.py", "test_real_images.py"],
    "torch": ["test_model.py", "test_metrics.py", "test_real_images.py"],
}
PYTEST = [sys.executable, "-m", "pytest", "-o", "addopts=", "-p", "no:cacheprovider"]


def require(backend):
    """Skip unless the backend's package is installed."""
    pytest.importorskip(backend, reason="install it: pip install -r requirements-backends.txt")


def test_helper_unit_tests_pass_on_jax_and_pytorch():
    for backend in ("jax", "torch"):
        require(backend)
    runs = {  # both at once: a 2-core machine has room, as each run is mostly one Python thread
        backend: subprocess.Popen(
            [*PYTEST, *UNIT_TESTS[backend]],
            cwd=REPOSITORY / "tests",
            env={**os.environ, "KERAS_BACKEND": backend},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for backend in ("jax", "torch")
    }
    for backend, run in runs.items():
        output = run.communicate(timeout=600)[0]
        assert f"keras backend: {backend}" in output  # conftest's report header
        assert run.returncode == 0, f"{backend}:\n{output[-4000:]}"
        print(f"{backend}: {output.strip().splitlines()[-1]}")


def run_lesson_on(backend, number, root, parameters, monkeypatch):
    """Run a scratch copy of a lesson in a kernel started with KERAS_BACKEND=backend."""
    require(backend)
    monkeypatch.setenv("KERAS_BACKEND", backend)  # the kernel inherits it
    executed = run_scratch_copy(number, root, parameters)
    outputs = json.dumps(nbformat.read(executed, as_version=4).cells)
    assert f"backend {backend}" in outputs
    return outputs


def test_lesson_07_runs_on_large_mixed_images_with_pytorch(tmp_path, monkeypatch):
    write_large_mixed_folder(tmp_path / "my_scans")
    small = {**SWEEPS["07"][0], "DATA_DIR": "../my_scans"}
    outputs = run_lesson_on("torch", "07", tmp_path, small, monkeypatch)
    assert "8 images; sizes (width x height)" in outputs
    assert "augmented picture and mask agree on" in outputs  # the rotation fix, checked by the cell


def test_lesson_08_finds_objects_in_a_folder_without_labels_on_jax(tmp_path, monkeypatch):
    write_large_mixed_folder(tmp_path / "my_scans")
    small = {**SWEEPS["08"][0], "DATA_DIR": "../my_scans"}
    outputs = run_lesson_on("jax", "08", tmp_path, small, monkeypatch)
    assert "true objects from the connected regions of masks/" in outputs
    assert (tmp_path / "data" / "models" / "08_nuclei_objects.keras").exists()
    assert not (tmp_path / "my_scans" / "labels").exists()

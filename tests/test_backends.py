"""The course on Keras' other backends: the helpers' unit tests, and a training lesson on each.

TensorFlow is the backend the course ships, and every other test runs on it. JAX and PyTorch (CPU
builds) come from requirements-backends.txt; where they are not installed these tests are skipped.
The backend is chosen as a student would: KERAS_BACKEND set before Python (or the kernel) starts.
"""

import json
import sys

import nbformat
import pytest

from lesson_runs import SWEEPS, lesson_command, run_together, write_large_mixed_folder

# The unit tests of the helpers that call Keras (test_data.py reads files with NumPy and Pillow).
# JAX compiles every small model that test_model.py builds: with it the JAX run took 80 s, without
# it 28 s. So JAX runs the backend-sensitive tests (losses, metrics, augmentation, patches, tiled
# prediction); PyTorch runs all three files.
UNIT_TESTS = {
    "jax": ["test_metrics.py", "test_real_images.py"],
    "torch": ["test_model.py", "test_metrics.py", "test_real_images.py"],
}
PYTEST = [sys.executable, "-m", "pytest", "-o", "addopts=", "-p", "no:cacheprovider"]
# Lesson 07 on a student's folder on PyTorch, lesson 08 on a folder without labels/ on JAX.
LESSONS_ON = {"07": "torch", "08": "jax"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The unit tests and the two lessons on the other backends, two processes at a time."""
    for backend in ("jax", "torch"):
        pytest.importorskip(backend, reason="install it: pip install -r requirements-backends.txt")
    commands = {
        backend: ([*PYTEST, *UNIT_TESTS[backend]], {"KERAS_BACKEND": backend})
        for backend in UNIT_TESTS
    }
    roots = {}
    for number, backend in LESSONS_ON.items():
        roots[number] = tmp_path_factory.mktemp(f"lesson{number}")
        write_large_mixed_folder(roots[number] / "my_scans")
        small = {**SWEEPS[number][0], "DATA_DIR": "../my_scans"}
        command = lesson_command(number, roots[number], small)
        commands[number] = (command, {"KERAS_BACKEND": backend})  # the kernel inherits it
    # The lessons first: they take longest, and the unit tests fill in beside them.
    order = [*LESSONS_ON, *UNIT_TESTS]
    results = run_together({name: commands[name] for name in order})
    return results, roots


def lesson_outputs(runs, number):
    """The outputs of a lesson's executed copy, after checking it ran on its backend."""
    (returncode, output), backend = runs[0][number], LESSONS_ON[number]
    assert returncode == 0, f"lesson {number} on {backend}:\n{output[-4000:]}"
    executed = output.strip().splitlines()[-1]  # lesson_runs.py prints the executed copy's path
    outputs = json.dumps(nbformat.read(executed, as_version=4).cells)
    assert f"backend {backend}" in outputs
    return outputs


def test_helper_unit_tests_pass_on_jax_and_pytorch(runs):
    for backend in UNIT_TESTS:
        returncode, output = runs[0][backend]
        assert f"keras backend: {backend}" in output  # conftest's report header
        assert returncode == 0, f"{backend}:\n{output[-4000:]}"
        print(f"{backend}: {output.strip().splitlines()[-1]}")


def test_lesson_07_runs_on_large_mixed_images_with_pytorch(runs):
    """Images of mixed sizes and formats (PNG, TIFF, JPEG), read through the helpers."""
    outputs = lesson_outputs(runs, "07")
    assert "8 images; sizes (width x height)" in outputs
    assert "augmented picture and mask agree on" in outputs  # the rotation fix, checked by the cell


def test_lesson_08_finds_objects_in_a_folder_without_labels_on_jax(runs):
    outputs = lesson_outputs(runs, "08")
    assert "true objects from the connected regions of masks/" in outputs
    root = runs[1]["08"]
    assert (root / "data" / "models" / "08_nuclei_objects.keras").exists()
    assert not (root / "my_scans" / "labels").exists()

"""Shared by the tests: tests/ importable (notebook_paths), matplotlib off-screen, fresh_session."""

import sys
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def pytest_report_header(config):
    """Name the backend, so a run under KERAS_BACKEND=jax or torch says which one it used. Not
    in pytest-xdist's controller: it runs no test, and importing Keras delayed the workers 13 s."""
    if config.pluginmanager.hasplugin("dsession"):
        return None
    import keras

    return f"keras backend: {keras.backend.backend()}"


@pytest.fixture
def fresh_session():
    """Start the test with an empty Keras session (layer names, graph state)."""
    import keras

    keras.backend.clear_session(free_memory=False)  # skips gc.collect(), as Keras advises in loops
    yield

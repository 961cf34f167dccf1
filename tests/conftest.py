"""Shared by the tests: tests/ importable (notebook_paths), matplotlib off-screen, fresh_session."""

import sys
from pathlib import Path

import keras
import matplotlib
import pytest

matplotlib.use("Agg")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def pytest_report_header():
    """Name the backend, so a run under KERAS_BACKEND=jax or torch says which one it used."""
    return f"keras backend: {keras.backend.backend()}"


@pytest.fixture
def fresh_session():
    """Start the test with an empty Keras session (layer names, graph state)."""
    keras.backend.clear_session(free_memory=False)  # skips gc.collect(), as Keras advises in loops
    yield

"""Shared by the tests: tests/ importable (notebook_paths), matplotlib off-screen, fresh_session."""

import sys
from pathlib import Path

import keras
import matplotlib
import pytest

matplotlib.use("Agg")
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture
def fresh_session():
    """Start the test with an empty Keras session (layer names, graph state)."""
    keras.backend.clear_session()
    yield

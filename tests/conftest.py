"""Make tests/ importable (notebook_paths) and keep matplotlib off-screen in unit tests."""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
sys.path.insert(0, str(Path(__file__).resolve().parent))

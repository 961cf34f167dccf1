"""Loaded first for every test path: how pytest's two workers (pyproject's ``-n 2``) share work.

Each worker is a process of its own, and so is every kernel or lesson run it starts. On two cores
two TensorFlow processes of two threads each only take turns (measured: 0.63 s a step each against
0.33 s alone), while one thread each gives 0.56 s a step: 15 % more training, and the Python-bound
parts (imports, kernels, plotting, scoring) run side by side. So a worker and what it starts use one
thread, and the lessons spread over both workers.
"""

import os

import pytest

# One thread each (above). Memory: TensorFlow's CPU allocator hands each freed tensor buffer
# back through malloc, and the next step faults it in again. Its BFC allocator
# (TF_CPU_ALLOCATOR_USE_BFC, read in tensorflow/core/common_runtime/process_state.cc) keeps a pool
# instead: one epoch of lesson 07's fit on one thread took 44.6 s with 0.3 s of system time and
# 71,000 page faults, against 55.0 s, 8.0 s and 3.2 million with glibc's MALLOC_ variables and
# MALLOC_ARENA_MAX=1 (the MALLOC_ variables alone help a bare train_on_batch: 1.76 s a step
# against 1.93 s). Other systems and backends ignore what they do not read. The kernels and
# lesson runs a worker starts inherit all of these.
WORKER_ENVIRONMENT = {
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "TF_CPU_ALLOCATOR_USE_BFC": "true",
    "MALLOC_MMAP_THRESHOLD_": "4294967296",
    "MALLOC_TRIM_THRESHOLD_": "4294967296",
    "MALLOC_TOP_PAD_": "536870912",
}
if os.environ.get("PYTEST_XDIST_WORKER"):  # set by pytest-xdist before it loads this file
    for variable, value in WORKER_ENVIRONMENT.items():
        os.environ.setdefault(variable, value)

# TensorFlow's oneDNN kernels, asked for by name. TensorFlow 2.21 chooses them by itself on some
# processors only: on the Intel Xeon of the earlier runs, not on a 2-core AMD EPYC with AVX2 and no
# AVX-512 (no "oneDNN custom operations are on" line at import). Asked for, they run there too, and
# faster: the benchmark network took 0.61 s a step on one thread against 0.92 s without. The
# notebooks are stored from the other arithmetic (tests/execute_notebooks.py), so on any processor
# strict nbval fails a stored output that depends on training and is not marked ignored.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

# About the seconds each took in CI on the two workers (``--durations``, its cells added up; the
# 2-core AMD EPYC with oneDNN, 2026-12-07; lesson 08's at 5 epochs less a fifth of its training
# cell), so that the longest start first; the rest is small.
LONGEST = {
    "notebooks/07_": 750,
    "notebooks/08_": 390,
    "notebooks/04_+06_": 300,
    "tests/test_backends.py": 250,
    "notebooks/05_": 210,
    "tests/test_browser.py": 130,
    "tests/test_parameter_sweeps.py": 105,
}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Whole files go to a worker, the longest first; lessons 04 and 06 go together.

    A lesson's cells share one kernel, and a test file its module fixtures (one JupyterLab, one
    browser). Lessons 04 and 06 generate the same synthetic set on a fresh clone, so one runs after
    the other.
    """
    from xdist.scheduler import LoadScopeScheduling

    class LongestFirst(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            path = nodeid.split("::", 1)[0]
            if path.endswith(".ipynb"):
                number = path.rsplit("/", 1)[-1][:2]
                return "notebooks/04_+06_" if number in ("04", "06") else f"notebooks/{number}_"
            return path

        def _assign_work_unit(self, node):
            longest = max(self.workqueue, key=lambda scope: LONGEST.get(scope, 0))
            self.workqueue.move_to_end(longest, last=False)
            super()._assign_work_unit(node)

    return LongestFirst(config, log)

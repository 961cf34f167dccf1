"""Lesson benchmark: run lessons at their defaults in fresh kernels; time, memory, headline metrics.

Run by hand, not by pytest (a run of every lesson takes many minutes):

    .venv/bin/python benchmarks/lessons.py                       # every lesson, TensorFlow, seed 0
    .venv/bin/python benchmarks/lessons.py --lessons 07 --seeds 0 1 2 3 4 --onednn 1 0
    .venv/bin/python benchmarks/lessons.py --backends jax torch --lessons 04 07 --seeds 0 1
    .venv/bin/python benchmarks/lessons.py --lessons 07 --set '{"BASE_FILTERS": 12}'  # a probe
    .venv/bin/python benchmarks/lessons.py --table               # tables from results so far

Each run executes a lesson top to bottom with papermill in a fresh kernel, in ``notebooks/`` (so it
reads and writes ``data/`` like a student's run), with only ``SEED`` changed (the split has its own
``SPLIT_SEED`` and stays fixed). ``--onednn 0`` sets ``TF_ENABLE_ONEDNN_OPTS=0``: TensorFlow then
uses other CPU kernels, which changes the arithmetic the way another processor does. Every run
appends one JSON line to ``benchmarks/results.jsonl``: machine (CPU model, cores, the per-step time
of the benchmark network), wall time, training time (the cells that call ``.fit(``), peak memory and
the lesson's headline metrics. ``--table`` prints the README's two markdown tables from that file.
Runs made with ``--alongside`` (other jobs on the machine) count in the spreads; the time table
shows one only where no quiet run exists, marked, with the step time measured under that load.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPOSITORY / "notebooks"
RESULTS = Path(__file__).resolve().parent / "results.jsonl"

# The values each lesson's floors check, as expressions evaluated in the lesson's kernel at the end.
HEADLINES = {
    "04": {"test IoU": "test['iou']"},
    "05": {"mean IoU (Dice + CE)": "dice_mean", "rarest class IoU": "float(min(dice_iou))"},
    "06": {"test IoU": "test_iou", "trap epochs": "len(trap_points)"},
    "07": {
        "test IoU, fluorescence": "fluorescence_iou",
        "test IoU, bright-field": "bright_field_iou",
        "test IoU, all": "test_iou",
        "largest merge (nuclei)": "covered",
        "validation IoU": "validation_iou[0.5]",  # whole validation images, threshold 0.5
    },
    "08": {
        "F1@0.5, interiors grown": "headline_f1",
        "DSB score, interiors grown": "headline_dsb",
        "best validation IoU": "best_val_iou",
    },
}
REPORT_CELL = """
import json as _json
def _value(expression):
    try:
        value = eval(expression)
    except Exception:
        return None
    return None if value is None else float(value)
print("BENCHMARK " + _json.dumps({
    "metrics": {name: _value(expr) for name, expr in %r.items()},
    "peak_bytes": globals().get("peak_bytes"),
}))
"""

STEP_SCRIPT = """
import time, numpy as np, keras, unet_helpers as uh
keras.utils.set_random_seed(0)
model = uh.build_unet((128, 128, 3), 1, 16, 4)
uh.compile_unet(model)
x = np.random.default_rng(0).random((8, 128, 128, 3), dtype=np.float32)
y = (x[..., :1] > 0.5).astype(np.uint8)
for _ in range(3):
    model.train_on_batch(x, y)
steps = []
for _ in range(10):
    start = time.perf_counter()
    model.train_on_batch(x, y)
    steps.append(time.perf_counter() - start)
print("STEP", float(np.median(steps)))
"""


def cpuinfo():
    """/proc/cpuinfo as text; empty where the OS has none."""
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_model():
    """The processor's name as the OS reports it."""
    for line in cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


VECTOR_FLAGS = (("avx512f", "AVX-512"), ("avx2", "AVX2"))  # /proc/cpuinfo flag, name shown


def vector_extension():
    """The widest vector instructions the processor reports: two EPYCs of one name can differ."""
    flags = cpuinfo().split()
    return next((name for flag, name in VECTOR_FLAGS if flag in flags), None)


def environment(backend, onednn):
    """The environment of a run: the backend and TensorFlow's choice of CPU kernels."""
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
    env["TF_ENABLE_ONEDNN_OPTS"] = str(onednn)
    return env


def step_seconds(backend, onednn):
    """Median seconds per training step of the benchmark network (batch 8 of 128x128x3)."""
    out = subprocess.run(
        [sys.executable, "-c", STEP_SCRIPT],
        env=environment(backend, onednn),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(next(line for line in out.splitlines() if line.startswith("STEP")).split()[1])


def run_lesson(lesson, backend, seed, onednn, settings=None):
    """Execute one lesson with papermill, ``settings`` (parameters) changed besides ``SEED``;
    return its record (times, memory, metrics)."""
    import nbformat
    import papermill

    path = next(NOTEBOOKS.glob(f"{lesson}_*.ipynb"))
    notebook = nbformat.read(path, as_version=4)
    expected = {  # the cells that fail on purpose
        cell.get("id")
        for cell in notebook.cells
        if "raises-exception" in cell.metadata.get("tags", [])
    }
    for cell in notebook.cells:  # run on after a failed check: a failed floor is a result too
        cell.metadata.setdefault("tags", []).append("raises-exception")
    notebook.cells.append(nbformat.v4.new_code_cell(REPORT_CELL % HEADLINES.get(lesson, {})))
    with tempfile.TemporaryDirectory() as scratch:
        source, output = Path(scratch) / path.name, Path(scratch) / f"out_{path.name}"
        nbformat.write(notebook, source)
        saved = dict(os.environ)
        os.environ.update(environment(backend, onednn))
        start = time.perf_counter()
        try:
            papermill.execute_notebook(
                source, output, parameters={**(settings or {}), "SEED": seed}, cwd=str(NOTEBOOKS),
                kernel_name="python3", progress_bar=False,
            )  # fmt: skip
        except papermill.PapermillExecutionError:
            pass  # the failed cells are listed in the record below
        finally:
            os.environ.clear()
            os.environ.update(saved)
        wall = time.perf_counter() - start
        executed = nbformat.read(output, as_version=4)
    training = sum(
        cell.metadata.get("papermill", {}).get("duration") or 0.0
        for cell in executed.cells
        if cell.cell_type == "code" and ".fit(" in cell.source
    )
    failed = [
        f"{output_item.ename}: {output_item.evalue}"[:200]
        for cell in executed.cells
        if cell.get("id") not in expected
        for output_item in cell.get("outputs", [])
        if output_item.output_type == "error"
    ]
    report = {}
    for output_item in executed.cells[-1].get("outputs", []):
        for line in output_item.get("text", "").splitlines():
            if line.startswith("BENCHMARK "):
                report = json.loads(line[len("BENCHMARK ") :])
    return {
        "lesson": path.stem,
        "backend": backend,
        "onednn": onednn,
        "seed": seed,
        "settings": settings or {},
        "wall_seconds": round(wall, 1),
        "training_seconds": round(training, 1),
        "peak_gb": round(report["peak_bytes"] / 2**30, 2) if report.get("peak_bytes") else None,
        "metrics": report.get("metrics", {}),
        "failed": failed,
    }


def machine(backend, onednn):
    """What the numbers depend on: processor, cores and the benchmark network's step time."""
    return {
        "cpu": cpu_model(),
        "vector": vector_extension(),
        "cores": os.cpu_count(),
        "step_seconds": round(step_seconds(backend, onednn), 3),
        "date": time.strftime("%Y-%m-%d"),
    }


def tables(records):
    """The README's tables: time and memory at the defaults; the spread of each headline."""
    records = [record for record in records if not record.get("settings")]  # defaults only
    lines = [
        "| lesson | backend | wall | training | peak memory | machine |",
        "|---|---|---|---|---|---|",
    ]
    # One row per lesson and backend: its first seed-0 run with oneDNN made on a quiet machine, else
    # its first one made alongside other jobs (marked; its step time was measured under that load).
    first = {}
    for record in records:
        key = (record["lesson"], record["backend"])
        if record["seed"] == 0 and record["onednn"] == 1:
            if key not in first or (first[key].get("alongside") and not record.get("alongside")):
                first[key] = record
    for (lesson, backend), record in sorted(first.items()):
        m = record["machine"]
        shared = ", shared with other jobs" if record.get("alongside") else ""
        vector = f" ({m['vector']})" if m.get("vector") else ""
        peak = f"{record['peak_gb']} GB" if record["peak_gb"] else "-"
        lines.append(
            f"| {lesson[:2]} | {backend} | {record['wall_seconds']:.0f} s | "
            f"{record['training_seconds']:.0f} s | {peak} | "
            f"{m['cpu']}{vector}, {m['cores']} cores, {m['step_seconds']} s/step{shared} |"
        )
    lines += ["", "| lesson | metric | backend, arithmetic | runs | mean | min | max |"]
    lines.append("|---|---|---|---|---|---|---|")
    groups = {}
    for record in records:
        arithmetic = "oneDNN" if record["onednn"] == 1 else "no oneDNN"
        if record["backend"] != "tensorflow":
            arithmetic = "default"
        for name, value in record["metrics"].items():
            if value is not None:
                key = (record["lesson"][:2], name, f"{record['backend']}, {arithmetic}")
                groups.setdefault(key, []).append(value)
    for (lesson, name, setting), values in sorted(groups.items()):
        lines.append(
            f"| {lesson} | {name} | {setting} | {len(values)} | {statistics.mean(values):.3f} | "
            f"{min(values):.3f} | {max(values):.3f} |"
        )
    failures = [record for record in records if record.get("failed")]
    if failures:
        lines += ["", "| lesson | backend, oneDNN | seed | failed check |", "|---|---|---|---|"]
    for record in failures:
        setting = f"{record['backend']}, {record['onednn']}"
        for message in record["failed"]:
            lines.append(f"| {record['lesson'][:2]} | {setting} | {record['seed']} | {message} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lessons", nargs="*", default=None, help="two-digit prefixes")
    parser.add_argument("--backends", nargs="*", default=["tensorflow"])
    parser.add_argument("--seeds", nargs="*", type=int, default=[0])
    parser.add_argument("--onednn", nargs="*", type=int, default=[1], help="1 on, 0 off")
    parser.add_argument("--table", action="store_true", help="print the tables and stop")
    parser.add_argument(
        "--set", default="{}", help='other parameters as JSON, e.g. \'{"BASE_FILTERS": 12}\'; '
        "such runs are kept out of the tables of the defaults",
    )  # fmt: skip
    parser.add_argument(
        "--alongside", action="store_true", help="other jobs share the machine: the metrics count "
        "in the spreads, the times only where no quiet run exists",
    )  # fmt: skip
    args = parser.parse_args()
    if args.table:
        records = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]
        print(tables(records))
        return
    lessons = args.lessons or sorted(path.name[:2] for path in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    for backend in args.backends:
        for onednn in args.onednn if backend == "tensorflow" else [1]:
            about = machine(backend, onednn)
            for lesson in lessons:
                for seed in args.seeds:
                    record = run_lesson(lesson, backend, seed, onednn, json.loads(args.set))
                    record["machine"] = about
                    record["alongside"] = args.alongside
                    with RESULTS.open("a") as results:
                        results.write(json.dumps(record) + "\n")
                    print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()

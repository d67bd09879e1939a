"""`autograder batch` per-notebook cost across class sizes, interleaved, with the parent's memory.

    .venv/bin/python bench/class_sizes.py [--sizes 100,300,400,1000,3000] [--rounds 2] [--workers N]

Builds the largest class once with bench/batch_vs_nbgrader.py's builder (a quarter with mistakes),
gives each size its own folder of hard links to the first N notebooks, then runs `autograder batch`
on every size in turn, round after round (sizes alternate, so machine noise hits all alike). For
each run: wall time per notebook (start-up included), the median of the results' `execution_time`
(one submission's grading, parent side), and the batch process's own peak RSS (not its children's).
Prints a table of min/median over the rounds and the spread of the per-notebook medians
(goal: within 15% of each other).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from batch_vs_nbgrader import build_submissions, check_grades  # noqa: E402

# Runs the CLI in this interpreter and reports the process's own peak RSS on stderr at exit.
PEAK_RSS_WRAPPER = (
    "import atexit, resource, runpy, sys\n"
    "atexit.register(lambda: print('peak_rss_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,"
    " file=sys.stderr))\n"
    "sys.argv = ['autograder', *sys.argv[1:]]\n"
    "runpy.run_module('autograder', run_name='__main__')\n"
)


def class_folder(all_notebooks: Path, size: int, work: Path) -> Path:
    folder = work / f"class-{size}"
    if not folder.exists():
        folder.mkdir()
        for path in sorted(all_notebooks.glob("*.ipynb"))[:size]:
            os.link(path, folder / path.name)
    return folder


def run_batch(folder: Path, out: Path, workers: int | None) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-c", PEAK_RSS_WRAPPER, "batch", str(folder), "--out", str(out)]
    if workers:
        command += ["--workers", str(workers)]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"autograder batch failed on {folder}:\n{done.stderr[-2000:]}")
    peak_kb = next(int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("peak_rss_kb"))
    times = [json.loads(p.read_text())["execution_time"] for p in (out / "results").glob("*.json")]
    return {"wall": wall, "per_notebook": wall / len(times), "child_median": statistics.median(times),
            "peak_mb": peak_kb / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,300,400,1000,3000")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, help="autograder batch --workers (default: its own)")
    parser.add_argument("--keep", help="keep the notebooks and outputs in this folder (reused if present)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(args.keep or tempfile.mkdtemp(prefix="bench-sizes-"))
    try:
        all_notebooks = work / "all"
        if len(list(all_notebooks.glob("*.ipynb"))) < max(sizes):
            correct = build_submissions(max(sizes), all_notebooks)
        else:
            correct = {p.stem: None for p in all_notebooks.glob("*.ipynb")}
        runs: dict[int, list[dict]] = {size: [] for size in sizes}
        for round_ in range(args.rounds):
            order = sizes if round_ % 2 == 0 else sizes[::-1]
            for size in order:
                folder = class_folder(all_notebooks, size, work)
                run = run_batch(folder, work / "out", args.workers)
                if round_ == 0 and all(v is not None for v in correct.values()):
                    check_grades(work / "out", {s: correct[s] for s in (p.stem for p in folder.glob("*.ipynb"))})
                runs[size].append(run)
                print(f"round {round_ + 1} size {size}: {run['per_notebook'] * 1000:.1f} ms/notebook, "
                      f"child median {run['child_median'] * 1000:.1f} ms, parent peak {run['peak_mb']:.0f} MB",
                      flush=True)
        header = ("notebooks", "ms/notebook min", "median", "one submission (median)", "parent peak RSS")
        print("\n{:>9} | {:>15} | {:>6} | {:>26} | {:>15}".format(*header))
        print("-" * 92)
        medians = {}
        for size in sizes:
            per = [r["per_notebook"] * 1000 for r in runs[size]]
            child = statistics.median(r["child_median"] * 1000 for r in runs[size])
            medians[size] = statistics.median(per)
            peak = max(r["peak_mb"] for r in runs[size])
            print(f"{size:>9} | {min(per):>15.1f} | {medians[size]:>6.1f} | {child:>23.1f} ms | {peak:>12.0f} MB")
        spread = max(medians.values()) / min(medians.values()) - 1
        print(f"\nspread of the per-notebook medians: {spread * 100:.0f}% (goal <= 15%); "
              f"{os.cpu_count()} CPU(s), {args.rounds} round(s), sizes interleaved")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

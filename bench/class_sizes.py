"""`autograder batch` per-notebook cost across class sizes, interleaved, with the parent's memory.

    .venv/bin/python bench/class_sizes.py [--sizes 100,300,400,1000,3000] [--rounds 2] [--workers N]
                                          [--checkouts DIR,DIR]   # e.g. a worktree of main, then this one

Builds the largest class once with bench/batch_vs_nbgrader.py's builder (a quarter with mistakes),
gives each size its own folder of hard links to the first N notebooks, then runs `autograder batch`
on every size (and checkout) in turn, round after round, the order reversed every other round, so
machine noise hits all alike. For each run: wall time per notebook (start-up included), the steady
rate (first result written to the last: no start-up), the median of the results' `execution_time`
(one submission, parent side), CPU per notebook of the batch and every process under it, and the
batch process's own peak RSS (not its children's). Prints medians over the rounds and the spread
of the steady per-notebook cost over class sizes (goal: within 15%).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
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


def run_batch(folder: Path, out: Path, workers: int | None, checkout: Path = ROOT) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-c", PEAK_RSS_WRAPPER, "batch", str(folder), "--out", str(out)]
    if workers:
        command += ["--workers", str(workers)]
    started, cpu_before = time.perf_counter(), _children_cpu()
    done = subprocess.run(command, cwd=checkout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall, cpu = time.perf_counter() - started, _children_cpu() - cpu_before
    if done.returncode:
        sys.exit(f"autograder batch failed on {folder}:\n{done.stderr[-2000:]}")
    peak_kb = next(int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("peak_rss_kb"))
    results = list((out / "results").glob("*.json"))
    times = [json.loads(p.read_text())["execution_time"] for p in results]
    written = sorted(p.stat().st_mtime for p in results)
    return {"wall": wall, "per_notebook": wall / len(times), "child_median": statistics.median(times),
            # the steady rate, without start-up and the report: first result written to the last
            "steady": (written[-1] - written[0]) / max(1, len(written) - 1),
            "cpu_per_notebook": cpu / len(times), "peak_mb": peak_kb / 1024}


def _children_cpu() -> float:
    """CPU seconds of every finished descendant: the batch, its template and all its children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,300,400,1000,3000")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, help="autograder batch --workers (default: its own)")
    parser.add_argument("--keep", help="keep the notebooks and outputs in this folder (reused if present)")
    parser.add_argument("--checkouts", help="comma-separated kit checkouts to compare, run alternately on "
                        "the same notebooks (default: this one); e.g. a worktree of main and this branch")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    checkouts = [Path(c).resolve() for c in args.checkouts.split(",")] if args.checkouts else [ROOT]
    work = Path(args.keep or tempfile.mkdtemp(prefix="bench-sizes-"))
    try:
        all_notebooks = work / "all"
        if len(list(all_notebooks.glob("*.ipynb"))) < max(sizes):
            correct = build_submissions(max(sizes), all_notebooks)
        else:
            correct = {p.stem: None for p in all_notebooks.glob("*.ipynb")}
        cases = [(size, checkout) for size in sizes for checkout in checkouts]
        runs: dict[tuple, list[dict]] = {case: [] for case in cases}
        for round_ in range(args.rounds):
            for size, checkout in cases if round_ % 2 == 0 else cases[::-1]:
                folder = class_folder(all_notebooks, size, work)
                run = run_batch(folder, work / "out", args.workers, checkout)
                if round_ == 0 and all(v is not None for v in correct.values()):
                    check_grades(work / "out", {s: correct[s] for s in (p.stem for p in folder.glob("*.ipynb"))})
                runs[size, checkout].append(run)
                print(f"round {round_ + 1} size {size} {_label(checkout, checkouts)}: "
                      f"{run['per_notebook'] * 1000:.1f} ms/notebook (steady {run['steady'] * 1000:.1f}), "
                      f"child median {run['child_median'] * 1000:.1f} "
                      f"ms, CPU {run['cpu_per_notebook'] * 1000:.1f} ms/notebook, parent peak {run['peak_mb']:.0f} MB",
                      flush=True)
        _print_table(runs, checkouts, args.rounds)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def _label(checkout: Path, checkouts: list[Path]) -> str:
    return checkout.name if len(checkouts) > 1 else ""


def _print_table(runs: dict, checkouts: list[Path], rounds: int) -> None:
    header = ("notebooks", "ms/notebook", "steady ms/notebook", "one submission", "CPU ms/notebook",
              "parent peak RSS")
    print("\n{:>22} | {:>11} | {:>18} | {:>14} | {:>15} | {:>15}".format(*header))
    print("-" * 112)
    steady = {checkout: {} for checkout in checkouts}
    for (size, checkout), done in runs.items():
        per = statistics.median(r["per_notebook"] * 1000 for r in done)
        steady[checkout][size] = statistics.median(r["steady"] * 1000 for r in done)
        child = statistics.median(r["child_median"] * 1000 for r in done)
        cpu = statistics.median(r["cpu_per_notebook"] * 1000 for r in done)
        peak = max(r["peak_mb"] for r in done)
        name = f"{size} {_label(checkout, checkouts)}"
        print(f"{name:>22} | {per:>11.1f} | {steady[checkout][size]:>18.1f} | {child:>11.1f} ms | "
              f"{cpu:>15.1f} | {peak:>12.0f} MB")
    print("\nmedians over the rounds; ms/notebook: the whole command (start-up, template, report) over N;"
          "\nsteady: first result written to the last, over N - 1; one submission: the median of the"
          "\nresults' execution_time; CPU: the batch and every process under it, over N")
    for checkout, by_size in steady.items():
        spread = max(by_size.values()) / min(by_size.values()) - 1
        print(f"{_label(checkout, checkouts) or 'spread'} of the steady per-notebook cost over class sizes: "
              f"{spread * 100:.0f}% (goal <= 15%)")
    print(f"{os.cpu_count()} CPU(s), {rounds} round(s), runs interleaved (the order reversed every other round)")


if __name__ == "__main__":
    main()

"""nbgrader's own `nbgrader autograde` (through the kit, after `autograder nbgrader setup`) versus
`autograder batch`, on the same notebooks.

    .venv/bin/python bench/nbgrader_vs_batch.py [-n 200] [--rounds 2] [--bridge] [--keep DIR]

1. Builds N distinct submission notebooks (bench/batch_vs_nbgrader.py's builder: the released
   template with the reference answers, every fourth one with a mistake) and an nbgrader course
   holding them in submitted/<student>/ps1/, set up by `autograder nbgrader setup`
   (generate_assignment run once, untimed).
2. Times, interleaved (batch, nbgrader, [bridge,] batch, ...), each whole command:
   `autograder batch submissions/ --out DIR --force`, `nbgrader autograde ps1 --force` and, with
   --bridge, `autograder nbgrader autograde ps1`.
3. Checks nbgrader's gradebook: every student's total equals the batch's grades.csv total.
4. Prints seconds and ms per notebook for each round, the best of each and the ratios (goal:
   nbgrader within 2.5x of batch).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from batch_vs_nbgrader import build_submissions  # noqa: E402
from bridge_vs_batch import ASSIGNMENT, check_gradebook, course_with, run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="notebooks (default 200: the machine may be shared)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of each (default 2)")
    parser.add_argument("--bridge", action="store_true", help="time `autograder nbgrader autograde` too")
    parser.add_argument("--keep", help="keep the notebooks, course and outputs in this folder")
    args = parser.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="bench-nbgrader-"))
    kit = [sys.executable, "-m", "autograder"]
    commands = {
        "batch": [*kit, "batch", str(work / "submissions"), "--out", str(work / "out"), "--force"],
        "nbgrader": [str(Path(sys.executable).parent / "nbgrader"), "autograde", ASSIGNMENT, "--force",
                     "--log-level=WARN"],
    }
    if args.bridge:
        commands["bridge"] = [*kit, "nbgrader", "autograde", ASSIGNMENT, "--course-dir", str(work / "course")]
    try:
        build_submissions(args.n, work / "submissions")
        course_with(work / "submissions", work / "course")
        run([*kit, "nbgrader", "setup", "--course-dir", str(work / "course")], work)
        print(f"{args.n} notebooks in {work} ({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})", flush=True)
        times: dict[str, list[float]] = {route: [] for route in commands}
        for number in range(1, args.rounds + 1):
            for route, command in commands.items():
                times[route].append(run(command, work / "course" if route != "batch" else work))
            print(f"round {number}: " + ", ".join(f"{route} {seconds[-1]:.1f} s" for route, seconds in times.items()),
                  flush=True)
        check_gradebook(work / "course", work / "out")
        best = {route: min(seconds) for route, seconds in times.items()}
        for route, seconds in best.items():
            print(f"{route:>8}: best {seconds:.1f} s = {seconds / args.n * 1000:.1f} ms per notebook")
        for route in best:
            if route != "batch":
                print(f"{route} / batch: {best[route] / best['batch']:.2f}x (goal <= 2.5x), {date.today()}")
        print("gradebook checked against grades.csv")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

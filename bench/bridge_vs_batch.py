"""`autograder nbgrader autograde` (the bridge) versus `autograder batch`, on the same notebooks.

    .venv/bin/python bench/bridge_vs_batch.py [-n 1000] [--rounds 2] [--workers N] [--keep DIR]

1. Builds N distinct submission notebooks (bench/batch_vs_nbgrader.py's builder: the released
   template with the reference answers, every fourth one with a mistake) and an nbgrader course
   holding them in submitted/<student>/ps1/ (generate_assignment run once, untimed).
2. Times, side by side and interleaved (batch, bridge, batch, bridge, ...), each whole command:
   `autograder batch submissions/ --out DIR --force` and `autograder nbgrader autograde ps1`.
3. Checks the bridge's gradebook: every student's total equals the batch's grades.csv total.
4. Prints seconds and ms per notebook for each round, the best of each, the ratio, and the
   1000-notebook time of the bridge (goal: <= 60 s on 2 cores).
"""
from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from batch_vs_nbgrader import NOTEBOOK, build_submissions  # noqa: E402

ASSIGNMENT = "ps1"


def course_with(submissions: Path, course: Path) -> None:
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    shutil.copyfile(ROOT / "assignment" / NOTEBOOK, course / "source" / ASSIGNMENT / NOTEBOOK)
    (course / "nbgrader_config.py").write_text("c = get_config()\nc.CourseDirectory.course_id = 'bench'\n")
    for path in sorted(submissions.glob("*.ipynb")):
        folder = course / "submitted" / path.stem / ASSIGNMENT
        folder.mkdir(parents=True)
        shutil.copyfile(path, folder / NOTEBOOK)
    run([str(Path(sys.executable).parent / "nbgrader"), "generate_assignment", ASSIGNMENT, "--force",
         "--log-level=ERROR"], course)


def run(command: list[str], cwd: Path) -> float:
    venv_bin = str(Path(sys.executable).parent)  # nbgrader runs `alembic` from PATH
    environment = {**os.environ, "PATH": venv_bin + os.pathsep + os.environ.get("PATH", "")}
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=environment)
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def check_gradebook(course: Path, out: Path) -> None:
    """The bench is only meaningful if the bridge wrote the grades batch computed."""
    from nbgrader.api import Gradebook

    with open(out / "grades.csv", newline="") as stream:
        batch = {row["student"]: float(row["score"]) for row in csv.DictReader(stream)}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        bridge = {student: gradebook.find_submission(ASSIGNMENT, student).score for student in batch}
    wrong = {s: (batch[s], bridge[s]) for s in batch if abs(batch[s] - bridge[s]) > 1e-9}
    assert not wrong, f"the bridge's gradebook differs from batch for {len(wrong)} students: {list(wrong.items())[:5]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="notebooks (default 1000)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of each (default 2)")
    parser.add_argument("--workers", type=int, help="--workers for both (default: their own, all cores)")
    parser.add_argument("--keep", help="keep the notebooks, course and outputs in this folder")
    args = parser.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="bench-bridge-"))
    workers = ["--workers", str(args.workers)] if args.workers else []
    kit = [sys.executable, "-m", "autograder"]
    try:
        build_submissions(args.n, work / "submissions")
        course_with(work / "submissions", work / "course")
        print(f"{args.n} notebooks in {work} ({os.cpu_count()} CPUs)", flush=True)
        times: dict[str, list[float]] = {"batch": [], "bridge": []}
        for number in range(1, args.rounds + 1):
            times["batch"].append(run([*kit, "batch", str(work / "submissions"), "--out", str(work / "out"),
                                       "--force", *workers], work))
            times["bridge"].append(run([*kit, "nbgrader", "autograde", ASSIGNMENT, "--course-dir",
                                        str(work / "course"), *workers], work))
            print(f"round {number}: batch {times['batch'][-1]:.1f} s, bridge {times['bridge'][-1]:.1f} s",
                  flush=True)
        check_gradebook(work / "course", work / "out")
        best = {route: min(seconds) for route, seconds in times.items()}
        for route, seconds in best.items():
            print(f"{route:>6}: best {seconds:.1f} s = {seconds / args.n * 1000:.1f} ms per notebook")
        print(f"bridge / batch: {best['bridge'] / best['batch']:.2f}x; gradebook checked against grades.csv")
        print(f"1000 notebooks through the bridge: {'measured' if args.n == 1000 else 'projected'} "
              f"{best['bridge'] / args.n * 1000:.1f} s (goal <= 60 s)")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Cold `autograder grade` of one submission versus a bare `python -c "import torch"`, interleaved.

Goal: ratio <= 1.5. Both are measured as whole processes, alternating A, B, A, B so machine noise
hits both alike; prints medians and the ratio.

    .venv/bin/python bench/grade_one.py [--reps 7] [--submission assignment/nn_from_scratch.ipynb]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--submission", default=str(ROOT / "assignment" / "nn_from_scratch.ipynb"))
    args = parser.parse_args()
    grade = [sys.executable, "-m", "autograder", "grade", args.submission, "--json"]
    bare = [sys.executable, "-c", "import torch"]
    timed(bare), timed(grade)  # warm the page cache for both
    grades, bares = [], []
    for _ in range(args.reps):
        grades.append(timed(grade))
        bares.append(timed(bare))
    g, b = statistics.median(grades), statistics.median(bares)
    print(f"autograder grade (cold, full suite incl. train): median {g:.2f} s over {args.reps}")
    print(f"python -c 'import torch':                        median {b:.2f} s")
    print(f"ratio grade / import torch: {g / b:.2f}  (goal <= 1.5)")


if __name__ == "__main__":
    main()

"""`autograder batch` versus real `nbgrader autograde`, seconds per notebook.

    .venv/bin/python bench/batch_vs_nbgrader.py [-n 1000] [--nbgrader-n 4] [--workers N] [--keep DIR]

1. Builds N submission notebooks from the released student template with the reference answers
   (every fourth one carries a realistic mistake, an unfinished part or a forbidden call). Each
   notebook is distinct (a comment with the student id in an answer cell), so nothing could be
   reused between them.
2. Grades all N with `autograder batch` (a subprocess, progress on stderr), timing the whole
   command: start-up, the warm template, every submission, the CSV and the report.
3. Grades the first --nbgrader-n of the same notebooks with `nbgrader autograde` in a temporary
   course, twice: with the kit's hidden tests in the test cells (what this course runs), and with
   the visible self-checks only (nbgrader's own cost: a fresh kernel, torch, the notebook's cells).
4. Prints seconds per notebook for each, the ratios (goal >= 100x), and the N-notebook wall time
   (goal: 1000 in under a minute on a 2-core machine).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "assignment"))

import build_samples  # noqa: E402  (the kit's own "template + reference answers" builder)

NOTEBOOK = "nn_from_scratch.ipynb"
HIDDEN = re.compile(r"\n*### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", re.S)
# (answer cells left unfinished, (old, new) edits): mistakes students make
VARIANTS = [
    ((), (("self.db = dh.sum(dim=0)", "self.db = dh.sum(dim=0, keepdim=True)"),)),
    ((), (("return dr * self.h.sign().clamp(min=0)", "return dr * (self.h >= 0)"),)),
    ((), (("z = r - r.max(dim=1, keepdim=True).values", "z = r"),)),
    ((), (("return -self.p.log().mean()", "return -self.p.log().sum()"),)),
    ((), (("return h.clamp(min=0)", "return torch.relu(h)"),)),
    (("softmax", "nll"), ()),
]


def build_submissions(n: int, folder: Path) -> dict[str, bool]:
    """Write n notebooks into folder; returns student -> whether it holds the reference answers."""
    template = json.loads(build_samples.TEMPLATE.read_text())
    answers = build_samples._regions(json.loads(build_samples.SOURCE.read_text()))
    reference_text = json.dumps(answers)
    for _, edits in VARIANTS:
        for old, _ in edits:
            assert old in reference_text, f"the reference answers changed: update VARIANTS ({old!r})"
    folder.mkdir(parents=True, exist_ok=True)
    correct = {}
    for i in range(n):
        student = f"s{i:05d}"
        unfinished, edits = ((), ()) if i % 4 else VARIANTS[(i // 4) % len(VARIANTS)]
        notebook = build_samples.filled(template, answers, unfinished, edits)
        for cell in notebook["cells"]:
            if cell["metadata"].get("nbgrader", {}).get("grade_id") == "linear":
                cell["source"] = f"# submitted by {student}\n" + build_samples._source(cell)
        (folder / f"{student}.ipynb").write_text(json.dumps(notebook, indent=1))
        correct[student] = not unfinished and not edits
    return correct


def time_batch(submissions: Path, out: Path, workers: int | None) -> float:
    command = [sys.executable, "-m", "autograder", "batch", str(submissions), "--out", str(out)]
    if workers:
        command += ["--workers", str(workers)]
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def check_grades(out: Path, correct: dict[str, bool]) -> None:
    """The benchmark is only meaningful if the grades are right."""
    with open(out / "grades.csv", newline="") as stream:
        rows = {row["student"]: row for row in csv.DictReader(stream)}
    assert set(rows) == set(correct), "grades.csv does not hold every submission"
    for student, is_reference in correct.items():
        full = rows[student]["score"] == rows[student]["max_score"]
        assert full == is_reference, f"{student}: score {rows[student]['score']} (reference: {is_reference})"


def nbgrader_course(course: Path, assignment: str, source: dict, notebooks: list[Path]) -> None:
    (course / "source" / assignment).mkdir(parents=True)
    (course / "source" / assignment / NOTEBOOK).write_text(json.dumps(source, indent=1))
    for path in notebooks:
        target = course / "submitted" / path.stem / assignment
        target.mkdir(parents=True)
        shutil.copyfile(path, target / NOTEBOOK)


def nbgrader(course: Path, *args: str) -> float:
    venv_bin = str(Path(sys.executable).parent)  # nbgrader runs `alembic` and kernels from PATH
    command = [str(Path(venv_bin) / "nbgrader"), *args, "--force", "--log-level=ERROR"]
    environment = {**os.environ, "PATH": venv_bin + os.pathsep + os.environ.get("PATH", "")}
    started = time.perf_counter()
    done = subprocess.run(command, cwd=course, capture_output=True, text=True, env=environment)
    if done.returncode:
        sys.exit(f"nbgrader {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def time_nbgrader(notebooks: list[Path], work: Path) -> dict[str, float]:
    """Seconds per notebook of `nbgrader autograde`, with and without the kit's hidden tests."""
    source = json.loads(build_samples.SOURCE.read_text())
    visible_only = json.loads(json.dumps(source))
    for cell in visible_only["cells"]:
        cell["source"] = HIDDEN.sub("\n", build_samples._source(cell))
    course = work / "course"
    course.mkdir()
    (course / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.course_id = 'bench'\nc.CourseDirectory.root = {str(course)!r}\n"
        "c.ExecutePreprocessor.timeout = 600\n")
    seconds = {}
    for assignment, notebook in (("hidden", source), ("visible", visible_only)):
        nbgrader_course(course, assignment, notebook, notebooks)
        nbgrader(course, "generate_assignment", assignment)
        seconds[assignment] = nbgrader(course, "autograde", assignment) / len(notebooks)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="notebooks for autograder batch (default 1000)")
    parser.add_argument("--nbgrader-n", type=int, default=4, help="notebooks for nbgrader autograde (default 4)")
    parser.add_argument("--workers", type=int, help="autograder batch --workers (default: its own)")
    parser.add_argument("--keep", help="keep the submissions and outputs in this folder")
    args = parser.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="bench-batch-"))
    try:
        correct = build_submissions(args.n, work / "submissions")
        print(f"built {args.n} notebooks ({sum(not c for c in correct.values())} with mistakes) in {work}",
              flush=True)
        batch_seconds = time_batch(work / "submissions", work / "out", args.workers)
        check_grades(work / "out", correct)
        per_batch = batch_seconds / args.n
        print(f"autograder batch: {args.n} notebooks in {batch_seconds:.1f} s = {per_batch * 1000:.1f} ms "
              f"per notebook (grades checked)", flush=True)
        subset = sorted((work / "submissions").glob("*.ipynb"))[:args.nbgrader_n]
        nb = time_nbgrader(subset, work)
        print(f"nbgrader autograde, visible self-checks only: {nb['visible']:.2f} s per notebook "
              f"({len(subset)} notebooks)")
        print(f"nbgrader autograde, with the kit's hidden tests: {nb['hidden']:.2f} s per notebook")
        print(f"ratio (nbgrader visible-only / autograder batch): {nb['visible'] / per_batch:.0f}x  (goal >= 100x)")
        print(f"ratio (nbgrader with hidden tests / autograder batch): {nb['hidden'] / per_batch:.0f}x")
        projected = per_batch * 1000
        print(f"1000 notebooks: {'measured' if args.n == 1000 else 'projected'} {projected:.1f} s "
              f"(goal < 60 s) on {os.cpu_count()} CPU(s)")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

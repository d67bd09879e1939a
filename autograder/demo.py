"""`make demo`: release the student notebook, grade sample submissions built from it, print the gradebook.

    .venv/bin/python -m autograder.demo [--out demo_out]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .files import KIT_ROOT
from .records import GraderError

SAMPLES_BUILDER = KIT_ROOT / "assignment" / "build_samples.py"


def samples_builder():
    """assignment/build_samples.py as a module (it is a script beside the notebook, not in a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_samples", SAMPLES_BUILDER)
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    return builder


def write_samples(folder: Path, template: Path) -> Path:
    """The sample submissions (correct, buggy, unfinished, a .py, a zip) filled into `template`."""
    return samples_builder().write(folder, template)


def print_gradebook(csv_path: Path) -> None:
    """One row per student: total and points per part, from the batch's grades.csv."""
    import csv

    from rich.console import Console
    from rich.table import Table

    with open(csv_path, newline="") as stream:
        rows = list(csv.DictReader(stream))
    checks = [name for name in (rows[0] if rows else {}) if name.count(".") == 2]
    parts = list(dict.fromkeys(name.split(".")[0] for name in checks))
    table = Table(title=f"gradebook ({csv_path})")
    for column in ("student", "score", *parts):
        table.add_column(column, justify="left" if column == "student" else "right")
    for row in rows:
        by_part = [sum(float(row[c] or 0) for c in checks if c.startswith(part + ".")) for part in parts]
        table.add_row(row["student"], f"{row['score']} / {row['max_score']}", *(f"{p:g}" for p in by_part))
    Console().print(table)


def print_next_steps(out: Path, samples: Path) -> None:
    """What to try next, as commands that run as printed from the checkout."""
    print(f"""
next steps (from the kit's checkout):
  .venv/bin/autograder grade {samples / 'bob_buggy.ipynb'}        one student's feedback
  open {out / 'grades' / 'report.html'}        the class report; each student's page is in {out / 'grades' / 'results'}/
  .venv/bin/autograder gradescope build --out autograder.zip     the zip for Gradescope (see README.md, Gradescope)
  hand out student_template/nn_from_scratch.ipynb; README.md walks through the rest of the term""")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo_out", help="folder for the release and the gradebook")
    args = parser.parse_args(argv)
    out = Path(args.out)
    try:
        from .platforms.nbgrader_release import DEFAULT_SOURCE, release

        notebook = release(DEFAULT_SOURCE, out / "student_template")
        print(f"1. released the student notebook: {notebook}")
        samples = write_samples(out / "samples", notebook)
        print(f"2. grading the sample submissions written into {samples}/ ...")
        from .batch import grade_batch
        from .batch.summary import print_summary
        from .course.config import load_config

        config = load_config()
        outcome = grade_batch(samples, out / "grades", config)  # the batch stage itself, not the CLI
        print_summary(outcome, config)
        if outcome.interrupted or outcome.failures:
            return 130 if outcome.interrupted else 2
        print_gradebook(outcome.csv_path)
        print_next_steps(out, samples)
        return 0
    except GraderError as error:
        print(f"demo: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

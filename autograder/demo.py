"""`make demo`: release the student notebook, grade the bundled samples, print the gradebook.

    .venv/bin/python -m autograder.demo [--out demo_out]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import KIT_ROOT
from .records import GraderError

SAMPLES = KIT_ROOT / "assignment" / "samples"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo_out", help="folder for the release and the gradebook")
    args = parser.parse_args(argv)
    out = Path(args.out)
    try:
        from .release import DEFAULT_SOURCE, release

        notebook = release(DEFAULT_SOURCE, out / "student_template")
        print(f"1. released the student notebook: {notebook}")
        print(f"2. grading the sample submissions in {SAMPLES.relative_to(KIT_ROOT)}/ ...")
        from .cli import main as cli

        return cli(["batch", str(SAMPLES), "--out", str(out / "grades")])
    except GraderError as error:
        print(f"demo: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""Same inputs, same grades: record what this checkout gives the bench notebooks, compare later.

    .venv/bin/python bench/grades_fixture.py record grades-before.json [-n 48]
    .venv/bin/python bench/grades_fixture.py compare grades-before.json      # exit 1 on any change

Grades -n notebooks from bench/batch_vs_nbgrader.py's builder (every mistake variant, unfinished
parts, forbidden calls) with `autograder batch`, and keeps grades.csv byte for byte plus every
results/<student>.json without what legitimately varies between runs (execution_time, the
submission's temporary path). A speed change must leave the recording identical; run `record` on
the commit before it (or in a worktree of it) and `compare` after.
"""
from __future__ import annotations

import argparse
import difflib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from batch_vs_nbgrader import build_submissions  # noqa: E402

VARYING = ("execution_time",)
VARYING_EXTRA = ("submission",)


def stable(result: dict) -> dict:
    """A result without what differs between two runs of the same inputs."""
    kept = {key: value for key, value in result.items() if key not in VARYING}
    extra = kept.get("extra_data")
    if isinstance(extra, dict):
        kept["extra_data"] = {key: value for key, value in extra.items() if key not in VARYING_EXTRA}
    return kept


def grade(n: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-fixture-") as work:
        work = Path(work)
        build_submissions(n, work / "submissions")
        subprocess.run([sys.executable, "-m", "autograder", "batch", str(work / "submissions"),
                        "--out", str(work / "out")], check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        results = {path.stem: stable(json.loads(path.read_text()))
                   for path in sorted((work / "out" / "results").glob("*.json"))}
        return {"grades.csv": (work / "out" / "grades.csv").read_text(), "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("record", "compare"))
    parser.add_argument("fixture")
    parser.add_argument("-n", type=int, default=48, help="notebooks (default 48: every variant twice)")
    args = parser.parse_args()
    fixture = Path(args.fixture)
    if args.action == "record":
        fixture.write_text(json.dumps({"n": args.n, **grade(args.n)}, indent=1, sort_keys=True))
        print(f"recorded the grades of {args.n} notebooks in {fixture}")
        return
    before = json.loads(fixture.read_text())
    after = {"n": before["n"], **grade(before["n"])}
    before_text = json.dumps(before, indent=1, sort_keys=True).splitlines()
    after_text = json.dumps(after, indent=1, sort_keys=True).splitlines()
    if before_text == after_text:
        print(f"identical: grades.csv and {len(after['results'])} results of {before['n']} notebooks")
        return
    sys.stdout.writelines(line + "\n" for line in list(difflib.unified_diff(
        before_text, after_text, "recorded", "now", lineterm=""))[:80])
    sys.exit(1)


if __name__ == "__main__":
    main()

"""The README's instructor quickstarts run as pasted: each section's bash blocks, run by bash from the
kit's checkout, with only their scratch places moved into the test's temporary folder (the course
folder, /tmp/ag, the zip) and the submissions a course would collect put in place."""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from autograder.course.config import KIT_ROOT
from conftest import notebook_submission

README = (KIT_ROOT / "README.md").read_text(encoding="utf-8")
VENV_BIN = Path(sys.executable).parent


def bash_blocks(heading: str) -> list[str]:
    """The ```bash blocks of the README section under `heading`, dedented (some sit in a list)."""
    section = README.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]
    return [textwrap.dedent(block) for block in re.findall(r"^ *```bash\n(.*?)^ *```$", section, re.M | re.S)]


def run(script: str, tmp_path: Path) -> subprocess.CompletedProcess:
    if not (KIT_ROOT / ".venv").exists():  # a checkout whose venv lives elsewhere (the one running us)
        script = script.replace("source .venv/bin/activate", f"source {VENV_BIN}/activate")
        script = script.replace("$PWD/.venv/bin/", f"{VENV_BIN}/").replace(".venv/bin/", f"{VENV_BIN}/")
    env = {key: value for key, value in os.environ.items() if key != "AUTOGRADER_CONFIG"}
    env["HOME"] = str(tmp_path / "home")
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=KIT_ROOT, env=env, capture_output=True,
                          text=True, timeout=1200)


def checkout_listing() -> str:
    """What a change to the checkout would show: git's view (ignored files aside), else the names."""
    if (KIT_ROOT / ".git").exists():
        return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=KIT_ROOT,
                              capture_output=True, text=True, check=True).stdout
    return "\n".join(sorted(path.name for path in KIT_ROOT.iterdir() if path.suffix != ".secret"))


def test_the_guide_sections_have_their_blocks():
    assert len(bash_blocks("## Quick start")) == 2
    assert len(bash_blocks("## nbgrader")) == 1
    assert len(bash_blocks("## Gradescope")) == 2
    assert len(bash_blocks("## Grading a class")) == 1
    assert len(bash_blocks("## Editing the assignment")) == 1


def test_the_readme_links_to_files_that_exist():
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", README):
        assert (KIT_ROOT / target).exists(), f"README links to {target}, which does not exist"


@pytest.mark.slow
def test_the_quick_start_runs_as_pasted_on_the_demos_samples(tmp_path):
    _, try_it = bash_blocks("## Quick start")
    demo = tmp_path / "demo_out"
    made = subprocess.run([sys.executable, "-m", "autograder.demo", "--out", str(demo)], capture_output=True,
                          text=True, timeout=1200)
    assert made.returncode == 0, made.stderr[-3000:]
    assert "next steps" in made.stdout and "bob_buggy.ipynb" in made.stdout  # the demo says what to try
    before = checkout_listing()
    done = run(try_it.replace("demo_out/", f"{demo}/"), tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert checkout_listing() == before
    assert "Traceback" not in done.stdout + done.stderr
    assert (demo / "graded" / "grades.csv").is_file() and (demo / "graded" / "gradebook.csv").is_file()


@pytest.mark.slow
def test_the_editing_steps_run_as_pasted_and_leave_a_consistent_checkout_as_it_was(tmp_path):
    """jupytext syncs a copy of assignment/ (a newer jupytext would rewrite the twin's version line);
    check and release run on the kit itself, whose notebook is consistent: nothing changes."""
    [block] = bash_blocks("## Editing the assignment")
    scratch = tmp_path / "kit"
    shutil.copytree(KIT_ROOT / "assignment", scratch / "assignment")
    script = block.replace(".venv/bin/", f"{VENV_BIN}/")
    before = checkout_listing()
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=scratch, capture_output=True,
                          text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert checkout_listing() == before
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.slow
def test_the_nbgrader_quickstart_runs_as_pasted_and_leaves_the_checkout_as_it_was(tmp_path):
    [block] = bash_blocks("## nbgrader")
    course = tmp_path / "nn-course"
    submission = tmp_path / "alice.ipynb"
    submission.write_text(notebook_submission())
    assert "COURSE=~/nn-course" in block
    script = block.replace("COURSE=~/nn-course", f"COURSE={course}")
    collect = "# ... collect submissions into submitted/<student>/ps1/nn_from_scratch.ipynb ..."
    assert collect in script
    script = script.replace(collect, f"mkdir -p submitted/alice/ps1 && cp {submission} "
                                     f"submitted/alice/ps1/nn_from_scratch.ipynb")
    before = checkout_listing()
    done = run(script, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert checkout_listing() == before, "the quickstart left files in the kit's checkout"
    assert "grade through the kit's sandbox" in done.stdout  # doctor, run in the course folder
    with open(course / "grades.csv", newline="") as stream:
        [row] = list(csv.DictReader(stream))
    assert row["student_id"] == "alice" and float(row["score"]) == float(row["max_score"]) > 0
    assert (course / "feedback" / "alice" / "ps1" / "nn_from_scratch.html").is_file()


@pytest.mark.slow
def test_the_gradescope_quickstart_runs_as_pasted(tmp_path):
    build, try_locally = bash_blocks("## Gradescope")
    zip_path, root = tmp_path / "autograder.zip", tmp_path / "ag"
    assert "--out autograder.zip" in build and '"$OLDPWD/autograder.zip"' in try_locally
    script = (build.replace("--out autograder.zip", f"--out {zip_path}") + "\n"
              + try_locally.replace('"$OLDPWD/autograder.zip"', str(zip_path)).replace("/tmp/ag", str(root)))
    before = checkout_listing()
    done = run(script, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert checkout_listing() == before
    results = json.loads((root / "results" / "results.json").read_text())
    assert results["tests"] and results["score"] == 0  # the released template: nothing written yet
    assert "Traceback" not in done.stdout + done.stderr

"""`make demo`'s job: release, build the samples from the release, grade them."""
from __future__ import annotations

import subprocess
import sys

import pytest

from autograder.course.config import KIT_ROOT


@pytest.mark.slow  # the whole `make demo`
def test_demo_releases_grades_and_prints_the_gradebook(tmp_path):
    done = subprocess.run([sys.executable, "-m", "autograder.demo", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600, cwd=KIT_ROOT)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "student_template" / "nn_from_scratch.ipynb").is_file()
    rows = {cells[0]: cells[1:] for line in done.stdout.splitlines() if line.count("│") > 3
            for cells in [[cell.strip() for cell in line.split("│")[1:-1]]]}
    # score, linear, relu, softmax, nll, train: each sample loses points where its mistake is
    assert rows == {
        "alice_correct": ["58 / 58", "17", "9", "15", "12", "5"],
        "bob_buggy": ["51 / 58", "11", "8", "15", "12", "5"],  # db keepdim; ReLU gradient 1 at 0
        "carol_unfinished": ["26 / 58", "17", "9", "0", "0", "0"],  # softmax and nll not written
        "dave_module": ["55 / 58", "17", "9", "12", "12", "5"],  # softmax overflows at ±1000
        # torch.relu in ReLU.forward: forward's checks and the train check; the hand-written backward keeps its own
        "erin_forbidden": ["49 / 58", "17", "5", "15", "12", "0"],
    }
    assert (tmp_path / "grades" / "grades.csv").read_text().count("\n") == 6  # header + 5 students
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == [
        "alice_correct.ipynb", "bob_buggy.ipynb", "carol_unfinished.ipynb", "dave_module.py", "erin_forbidden.zip"]
    assert not (KIT_ROOT / "assignment" / "samples").exists()  # built, never committed

"""`make demo`'s job, and the bundled samples it grades."""
from __future__ import annotations

import subprocess
import sys

from autograder.config import KIT_ROOT


def test_samples_are_a_fresh_build():
    sys.path.insert(0, str(KIT_ROOT / "assignment"))
    try:
        import build_samples
    finally:
        sys.path.pop(0)
    for name, data in build_samples.build().items():
        assert (build_samples.SAMPLES / name).read_bytes() == data, f"run assignment/build_samples.py ({name})"


def test_demo_releases_grades_and_prints_the_gradebook(tmp_path):
    done = subprocess.run([sys.executable, "-m", "autograder.demo", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600, cwd=KIT_ROOT)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "student_template" / "nn_from_scratch.ipynb").is_file()
    rows = {line.split("│")[1].strip(): line for line in done.stdout.splitlines() if line.count("│") > 3}
    assert "58 / 58" in rows["alice_correct"]
    assert "58 / 58" not in rows["bob_buggy"] and "58 / 58" not in rows["carol_unfinished"]
    assert (tmp_path / "grades" / "grades.csv").read_text().count("\n") == 6  # header + 5 students

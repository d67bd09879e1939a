"""The course secret (autograder/course/secret.py): the hidden inputs are drawn from it, not from the
public [inputs] seed alone; the same secret gives byte-identical grades, results name it by its
fingerprint, and a batch regrades when it changes. (The attack it stops is
tests/redteam/predicted_inputs.py.)"""
from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from autograder.course.config import KIT_ROOT, load_config
from autograder.records import GraderError
from autograder.feedback.report import results_json
from autograder.course.secret import course_inputs, ensure_secret, fingerprint, read_secret, secret_path

BUGGY = (KIT_ROOT / "solution" / "layers.py").read_text().replace(
    "return dr * self.h.sign().clamp(min=0)", "return dr * (self.h >= 0)")


def course(folder: Path, secret: str | None = None):
    """A copy of the kit's grading.toml in `folder`, with `secret` beside it (or none yet)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(KIT_ROOT / "grading.toml", folder / "grading.toml")
    if secret is not None:
        (folder / "grading.secret").write_text(secret)
    return load_config(folder / "grading.toml")


def test_a_secret_is_drawn_once_private_and_kept(tmp_path):
    config = course(tmp_path)
    path = secret_path(config)
    assert path == tmp_path / "grading.secret" and not path.exists()
    seed, secret_id = course_inputs(config)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(path.read_text().strip()) == 64
    assert course_inputs(config) == (seed, secret_id)  # kept, not drawn again
    assert seed != config.inputs.seed and 0 <= seed < 2 ** 63
    assert secret_id == fingerprint(read_secret(path)) and secret_id not in path.read_text()


def test_the_instructors_own_secret_is_used_and_closed_to_others(tmp_path):
    mine = course(tmp_path / "a", "correct horse battery staple")
    (tmp_path / "a" / "grading.secret").chmod(0o644)
    again = course(tmp_path / "b", "correct horse battery staple\n")
    other = course(tmp_path / "c", "another course, another secret")
    assert course_inputs(mine) == course_inputs(again) != course_inputs(other)
    assert stat.S_IMODE((tmp_path / "a" / "grading.secret").stat().st_mode) == 0o600
    assert ensure_secret(tmp_path / "a" / "grading.secret").read_text() == "correct horse battery staple"


def test_a_short_or_unwritable_secret_is_a_one_line_error(tmp_path):
    with pytest.raises(GraderError, match="shorter than 16"):
        course_inputs(course(tmp_path / "short", "1234"))
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        config = course(locked)
        locked.chmod(0o500)
        try:
            with pytest.raises(GraderError, match="cannot create the course secret"):
                course_inputs(config)
        finally:
            locked.chmod(0o700)


@pytest.mark.slow  # three graders, each started afresh
def test_the_same_secret_gives_byte_identical_results_and_another_draws_other_inputs(tmp_path):
    from autograder.pipeline import Grader

    submission = tmp_path / "bob.py"
    submission.write_text(BUGGY)
    results, inputs = [], []
    for folder, secret in (("one", "a secret of this course"), ("two", "a secret of this course"),
                           ("three", "the secret of another course")):
        config = course(tmp_path / folder, secret)
        with Grader(config, hide=(tmp_path,)) as grader:
            report = grader.grade(submission)
            inputs.append([entry.check.probe.tensors[0] for entry in grader.suite if entry.check.part != "train"])
        data = results_json(report, config)
        data.pop("execution_time")
        results.append(json.dumps(data, sort_keys=True))
    assert results[0] == results[1]
    assert json.loads(results[0])["extra_data"]["course_secret_id"] == fingerprint(b"a secret of this course")
    assert all(a.equal(b) for a, b in zip(inputs[0], inputs[1]))
    assert not any(a.equal(b) for a, b in zip(inputs[0], inputs[2]))
    scores = [{t["name"]: t["score"] for t in json.loads(r)["tests"]} for r in results]
    assert scores[2] == scores[0]  # an honest submission's grade does not depend on the secret


@pytest.mark.slow  # two batches
def test_a_batch_regrades_everyone_when_the_secret_changes(grader, tmp_path):
    from test_batch import REFERENCE, batch, write_class

    config = course(tmp_path / "course", "the first secret of the term")
    students = write_class(tmp_path / "class", {"alice.py": REFERENCE})
    out = tmp_path / "out"
    batch(students, out, config, grader)
    assert batch(students, out, config, grader).graded == 0
    (tmp_path / "course" / "grading.secret").write_text("a new secret after a leak")
    assert batch(students, out, config, grader).graded == 1

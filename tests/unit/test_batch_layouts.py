"""Finding the submissions of a batch: every input layout, student ids, and zips that lie."""
from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import pytest

from autograder.intake import safezip
from autograder.batch import layouts
from autograder.batch.layouts import discover, safe_id
from autograder.records import GraderError

CAP = 1 << 20


def found_ids(found) -> dict[str, str]:
    """member id -> label of the submission it was found in."""
    return {member: item.label for item in found.items for member in item.members}


def make_zip(path: Path, members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return path


@pytest.fixture
def staging(tmp_path):
    folder = tmp_path / "staging"
    folder.mkdir()
    return folder


def test_folder_of_files_and_folders(tmp_path, staging):
    course = tmp_path / "subs"
    (course / "dave").mkdir(parents=True)
    (course / "dave" / "nn_from_scratch.ipynb").write_text("{}")
    (course / "alice.ipynb").write_text("{}")
    (course / "bob.py").write_text("x = 1")
    (course / "carol.zip").write_bytes(b"PK")
    (course / "README.txt").write_text("not a submission")
    (course / ".DS_Store").write_bytes(b"\0")
    (course / "__MACOSX").mkdir()
    found = discover(course, staging, CAP)
    assert found.layout == "folder"
    assert found_ids(found) == {"alice": "alice.ipynb", "bob": "bob.py", "carol": "carol.zip", "dave": "dave"}
    assert any("README.txt" in warning for warning in found.warnings)
    assert next(i for i in found.items if i.key == "dave").source == course / "dave"


def test_output_folder_inside_the_input_is_not_a_student(tmp_path, staging):
    course = tmp_path / "subs"
    (course / "graded" / "results").mkdir(parents=True)
    (course / "alice.py").write_text("x = 1")
    assert found_ids(discover(course, staging, CAP, exclude=(course / "graded",))) == {"alice": "alice.py"}


@pytest.mark.parametrize("top", ["class-2026/", ""])
def test_zip_of_a_folder_with_or_without_its_top_folder(tmp_path, staging, top):
    archive = make_zip(tmp_path / "class.zip", {
        f"{top}alice.ipynb": b"{}", f"{top}bob/work.py": b"x = 1",
        f"__MACOSX/{top}._alice.ipynb": b"\0junk", f"{top}.DS_Store": b"\0", f"{top}data.csv": b"1,2",
    })
    found = discover(archive, staging, CAP)
    assert found_ids(found) == {"alice": "alice.ipynb", "bob": "bob"}
    assert all(staging in item.source.parents for item in found.items)  # graded from the extracted copy


def test_zip_cannot_write_outside_its_folder(tmp_path, staging):
    archive = make_zip(tmp_path / "evil.zip", {
        "../escaped.py": b"x = 1", "/abs.py": b"x = 1", "a/../../up.py": b"x = 1", "ok.py": b"x = 1",
    }, symlinks={"link.py": "/etc/passwd"})
    found = discover(archive, staging, CAP)
    assert found_ids(found) == {"ok": "ok.py"}
    assert sorted(p.name for p in tmp_path.rglob("*") if staging not in p.parents) == ["evil.zip", "staging"]
    assert not any(p.is_symlink() for p in staging.rglob("*"))


def test_zip_members_are_cut_at_the_cap(tmp_path, staging):
    archive = make_zip(tmp_path / "big.zip", {"huge.py": b"#" * 5000, "small.py": b"x = 1"})
    safezip.extract(archive, staging, member_cap=1000)
    assert (staging / "huge.py").stat().st_size == 1000
    assert (staging / "small.py").read_bytes() == b"x = 1"


def test_unreadable_zip_is_a_one_line_error(tmp_path, staging):
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(GraderError, match="not a readable zip"):
        discover(bad, staging, CAP)


def test_single_submission_file_is_refused(tmp_path, staging):
    one = tmp_path / "alice.ipynb"
    one.write_text("{}")
    with pytest.raises(GraderError, match="autograder grade"):
        discover(one, staging, CAP)


def nbgrader_course(root: Path, submissions: dict[tuple[str, str], str]) -> Path:
    for (student, assignment), name in submissions.items():
        folder = root / "submitted" / student / assignment
        folder.mkdir(parents=True)
        (folder / name).write_text("{}")
        (folder / "timestamp.txt").write_text("2026-11-25 10:00:00.000000 UTC")
    (root / "nbgrader_config.py").write_text("c = get_config()\n")
    return root


def test_nbgrader_tree_from_the_course_root_or_submitted(tmp_path, staging):
    course = nbgrader_course(tmp_path / "course", {
        ("alice", "ps1"): "nn_from_scratch.ipynb", ("bob", "ps1"): "nn_from_scratch.ipynb",
    })
    for path in (course, course / "submitted"):
        found = discover(path, staging, CAP)
        assert found.layout == "nbgrader"
        assert found_ids(found) == {"alice": "submitted/alice/ps1", "bob": "submitted/bob/ps1"}


def test_nbgrader_with_several_assignments_needs_a_choice(tmp_path, staging):
    course = nbgrader_course(tmp_path / "course", {
        ("alice", "ps1"): "nn_from_scratch.ipynb", ("alice", "ps2"): "other.ipynb",
        ("bob", "ps2"): "other.ipynb",
    })
    with pytest.raises(GraderError, match="several assignments.*--assignment"):
        discover(course, staging, CAP)
    assert found_ids(discover(course, staging, CAP, assignment="ps2")) == {
        "alice": "submitted/alice/ps2", "bob": "submitted/bob/ps2"}
    with pytest.raises(GraderError, match="no submissions of assignment 'ps9'"):
        discover(course, staging, CAP, assignment="ps9")


GRADESCOPE_METADATA = """\
submission_101:
  :submitters:
  - :name: Ada Lovelace
    :sid: '007'
    :email: ada@example.edu
  - :name: Alan Turing
    :sid: '12345'
    :email: alan@example.edu
  :created_at: 2026-11-20 10:00:00.000000000 -08:00
  :score: 0.0
  :status: processed
  :history: []
submission_102:
  :submitters:
  - :name: Grace Hopper
    :sid:
    :email: grace@example.edu
  :created_at: !ruby/object:ActiveSupport::TimeWithZone
    utc: 2026-11-21 10:00:00 Z
  :history:
  - :id: 90
    :created_at: 2026-11-19 10:00:00.000000000 -08:00
"""


def gradescope_export(path: Path, metadata: str = GRADESCOPE_METADATA) -> Path:
    top = "assignment_555_export/"
    return make_zip(path, {
        top + "submission_metadata.yml": metadata.encode(),
        top + "submission_101/nn_from_scratch.ipynb": b"{}",
        top + "submission_102/work/nn_from_scratch.ipynb": b"{}",
        top + "submission_103/late.py": b"x = 1",
        "__MACOSX/" + top + "submission_101/._nn_from_scratch.ipynb": b"\0",
        top + "submission_101/.DS_Store": b"\0",
    })


def test_gradescope_export_ids_from_metadata_groups_list_every_member(tmp_path, staging):
    found = discover(gradescope_export(tmp_path / "export.zip"), staging, CAP)
    assert found.layout == "gradescope"
    by_label = {item.label: item.members for item in found.items}
    assert by_label == {
        "submission_101": ("007", "12345"),  # a group: one submission, a result per member; leading zeros kept
        "submission_102": ("grace@example.edu",),  # no sid: the email
        "submission_103": ("submission_103",),  # not in the metadata: its folder name, with a warning
    }
    assert any("submission_103" in warning for warning in found.warnings)


def test_gradescope_metadata_that_is_not_yaml(tmp_path, staging):
    with pytest.raises(GraderError, match="not readable YAML"):
        discover(gradescope_export(tmp_path / "export.zip", metadata="a: [unclosed"), staging, CAP)


@pytest.mark.parametrize("raw, expected", [
    ("alice", "alice"), ("../../etc/passwd", "_.._etc_passwd"), (".hidden", "hidden"),
    ("Ana María", "Ana_Mar_a"), ("a/b\\c", "a_b_c"), ("", "_"), ("...", "_"), ("x" * 300, "x" * 100),
    ("007", "007"), ("jo@uni.edu", "jo@uni.edu"),
])
def test_student_ids_are_safe_file_names(raw, expected):
    assert safe_id(raw) == expected
    assert os.sep not in safe_id(raw) and not safe_id(raw).startswith(".")


def test_duplicate_ids_get_a_suffix_not_a_shared_file(tmp_path, staging):
    course = tmp_path / "subs"
    course.mkdir()
    for name in ("alice.ipynb", "alice.py", "Alice.zip", "a:b.py", "a_b.py"):
        (course / name).write_text("{}")
    ids = found_ids(discover(course, staging, CAP))
    # in input order (sorted names: upper case first), compared case-insensitively
    assert ids == {"Alice": "Alice.zip", "a_b": "a:b.py", "a_b-2": "a_b.py", "alice-2": "alice.ipynb",
                   "alice-3": "alice.py"}


def test_a_missing_input_is_a_one_line_error(tmp_path, staging):
    with pytest.raises(GraderError, match="no such file or folder"):
        discover(tmp_path / "nope", staging, CAP)


def test_unwrap_does_not_enter_a_single_file(tmp_path):
    (tmp_path / "only.py").write_text("x")
    assert layouts._unwrap(tmp_path) == tmp_path

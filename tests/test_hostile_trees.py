"""Hostile trees and layouts on the trusted side (#22): what a student controls in an upload (a
submission folder, a zip, a Gradescope submission) and in the working folder a child leaves behind.

Folders nested thousands deep, links to /, to themselves or to nothing, names of any bytes,
folders whose modes a child took away, many files; and a student's folder dressed up as a
Gradescope export. The grader walks and removes such trees only with autograder/sandbox/trees.py
(iterative, relative to folder descriptors, never through a link, bounded), and recognises a
batch's layout at the top of its input only. Hypothesis builds such trees (the wire is fuzzed the
same way in test_wire_fuzz.py) and puts them through the real `grade`, `batch` and
`run_autograder`: an exit code, a result for every student, no traceback, nothing left in the
temporary folder, nothing outside the tree touched. AUTOGRADER_FUZZ_EXAMPLES=N runs N examples
of each fuzz test instead of a handful.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autograder.batch import layouts
from autograder.batch.layouts import discover
from autograder.batch.outputs import UNREADABLE, submission_digest
from autograder.config import KIT_ROOT
from autograder.records import GraderError
from autograder.sandbox import trees
from autograder.submission import SubmissionError, load_submission
from conftest import REFERENCE_LAYERS

REFERENCE = REFERENCE_LAYERS.read_text()

FUZZ_EXAMPLES = int(os.environ.get("AUTOGRADER_FUZZ_EXAMPLES", "0"))
CAP = 1 << 20

# --- hostile trees, built the same way on the host (an upload) or by a child (its folder) ---------

# One builder, run on the host for an upload and pasted into a submission for a child's folder:
# everything relative to folder descriptors, so a tree may be deeper than any path can name.
BUILDER = '''
import os as _os


def _build_tree(top, operations):
    """Best effort: an operation the file system refuses is skipped."""
    def inside(parts):
        folder = _os.open(top, _os.O_RDONLY | _os.O_DIRECTORY)
        for name in parts:
            try:
                inner = _os.open(name, _os.O_RDONLY | _os.O_DIRECTORY | _os.O_NOFOLLOW, dir_fd=folder)
            except OSError:
                try:
                    _os.mkdir(name, dir_fd=folder)
                    inner = _os.open(name, _os.O_RDONLY | _os.O_DIRECTORY | _os.O_NOFOLLOW, dir_fd=folder)
                except OSError:
                    _os.close(folder)
                    return None
            _os.close(folder)
            folder = inner
        return folder

    modes = []
    for kind, parts, name, value in operations:
        folder = inside(parts)
        if folder is None:
            continue
        try:
            if kind == "deep":  # `value` folders, one in the other
                for _ in range(value):
                    _os.mkdir(name, dir_fd=folder)
                    inner = _os.open(name, _os.O_RDONLY | _os.O_DIRECTORY, dir_fd=folder)
                    _os.close(folder)
                    folder = inner
            elif kind == "link":
                _os.symlink(value, name, dir_fd=folder)
            elif kind == "file":
                with open(_os.open(name, _os.O_WRONLY | _os.O_CREAT, 0o644, dir_fd=folder), "wb") as stream:
                    stream.write(value)
            elif kind == "many":
                for number in range(value):
                    _os.close(_os.open(name + b"%d" % number, _os.O_WRONLY | _os.O_CREAT, 0o644, dir_fd=folder))
            elif kind == "fifo":
                _os.mkfifo(name, dir_fd=folder)
            elif kind == "mode":  # a folder whose rights are taken away, last
                _os.mkdir(name, dir_fd=folder)
                _os.close(_os.open(b"inside", _os.O_WRONLY | _os.O_CREAT, 0o644,
                                   dir_fd=_os.open(name, _os.O_RDONLY | _os.O_DIRECTORY, dir_fd=folder)))
                modes.append((list(parts), name, value))
        except OSError:
            pass
        finally:
            _os.close(folder)
    for parts, name, mode in reversed(modes):
        folder = inside(parts)
        if folder is not None:
            try:
                _os.chmod(name, mode, dir_fd=folder)
            except OSError:
                pass
            _os.close(folder)
'''
_builder: dict = {}
exec(BUILDER, _builder)
build_tree = _builder["_build_tree"]

NAMES = st.one_of(
    st.binary(min_size=1, max_size=40).map(lambda b: b.replace(b"/", b"_").replace(b"\0", b"_")).filter(
        lambda b: b not in (b".", b"..")),
    st.sampled_from([b"\xff\xfe", b"line\nbreak", b"n" * 255, b"..." , b"-rf", b"\x1b[2J", b" ", b"__MACOSX",
                     b"nn_from_scratch.ipynb", b"submission_metadata.yml", b"a.zip"]),
)
PARTS = st.lists(NAMES, max_size=3)


def operations(outside: str):
    """Hostile operations; links may aim at `outside`, which nothing may touch."""
    targets = st.sampled_from([b"/", b".", b"..", b"loop", b"nowhere/at/all", b"/etc/passwd",
                               os.fsencode(outside), os.fsencode(outside) + b"/keep.txt"])
    return st.lists(st.one_of(
        st.tuples(st.just("deep"), PARTS, NAMES, st.integers(1, 1500)),
        st.tuples(st.just("link"), PARTS, NAMES, targets),
        st.tuples(st.just("file"), PARTS, NAMES, st.sampled_from([b"", b"{}", b"\0" * 10, REFERENCE.encode()])),
        st.tuples(st.just("many"), PARTS, NAMES, st.integers(1, 300)),
        st.tuples(st.just("fifo"), PARTS, NAMES, st.none()),
        st.tuples(st.just("mode"), PARTS, NAMES, st.sampled_from([0o000, 0o300, 0o500, 0o100])),
    ), min_size=1, max_size=6)


def fuzz_settings(examples: int):
    return settings(max_examples=FUZZ_EXAMPLES or examples, deadline=None, derandomize=not FUZZ_EXAMPLES,
                    suppress_health_check=list(HealthCheck))


DEEP_AND_LINKED = [("deep", [], b"d", 1500), ("link", [b"d"], b"root", b"/"), ("link", [b"d"], b"loop", b"loop"),
                   ("mode", [], b"locked", 0o000), ("mode", [], b"wx", 0o300)]


@pytest.fixture
def tmp_path():
    """A temporary folder in memory where there is one (thousands of folders made and removed per
    test are slow on a busy disk), removed with trees: pytest's own clean-up of old temporary
    folders (shutil.rmtree) would crash on a deep tree."""
    memory = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(prefix="autograder-test-trees-",
                                   dir=memory if memory.is_dir() and os.access(memory, os.W_OK) else None))
    yield folder
    trees.remove(folder)


@pytest.fixture
def outside(tmp_path):
    """A folder beside the trees, that links in them point to: it must stay as it is."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "keep.txt").write_text("keep me")
    folder.chmod(0o777)
    return folder


def assert_untouched(outside: Path) -> None:
    assert sorted(os.listdir(outside)) == ["keep.txt"]
    assert (outside / "keep.txt").read_text() == "keep me"


# --- the walker ---------------------------------------------------------------------------------

def test_remove_takes_any_depth_and_never_follows_a_link(tmp_path, outside):
    """shutil.rmtree raised RecursionError at ~1000 levels (and the grader with it)."""
    top = tmp_path / "top"
    top.mkdir()
    build_tree(str(top), [("deep", [], b"d", 1500), ("link", [b"d"] * 40, b"out", os.fsencode(outside)),
                          ("link", [], b"root", b"/"), ("link", [], b"loop", b"loop"),
                          ("file", [b"d"] * 5, b"\xff\n" + b"n" * 200, b"x"), *DEEP_AND_LINKED[3:]])
    with pytest.raises(RecursionError):  # what the grader did until #22
        shutil.rmtree(top, ignore_errors=True)
    assert trees.remove(top) is True
    assert not top.exists()
    assert_untouched(outside)
    assert Path("/etc/passwd").exists()


def test_walk_is_bounded_and_names_its_bound(tmp_path):
    top = tmp_path / "top"
    top.mkdir()
    build_tree(str(top), [("deep", [], b"d", 1100), ("many", [], b"f", 50)])
    with pytest.raises(RecursionError):  # rglob, until #22
        list(top.rglob("*"))
    with pytest.raises(trees.TreeTooLarge, match="nested more than 32 deep"):
        trees.walk(top)
    with pytest.raises(trees.TreeTooLarge, match="more than 20 files and folders"):
        trees.walk(top, max_entries=20)
    within = trees.walk(top, complete=False)
    assert len(within) == 50 + trees.MAX_DEPTH and max(len(e.parts) for e in within) == trees.MAX_DEPTH


def test_walk_lists_links_as_links_and_odd_names_printably(tmp_path, outside):
    top = tmp_path / "top"
    top.mkdir()
    build_tree(str(top), [("link", [], b"out", os.fsencode(outside)), ("link", [], b"loop", b"loop"),
                          ("file", [b"sub"], b"\xff\xfe.py", b"x"), ("fifo", [], b"pipe.ipynb", None)])
    entries = {e.relative: e.kind for e in trees.walk(top)}
    assert entries == {"loop": "link", "out": "link", "pipe.ipynb": "other", "sub": "folder",
                       "sub/\ufffd\ufffd.py": "file"}


AS_NOBODY = """
import os, sys
sys.path.insert(0, {kit!r})
from autograder.sandbox import trees
os.setgroups([]); os.setgid(65534); os.setuid(65534)
exec({builder!r})
top = {top!r}
os.mkdir(top)
_build_tree(top, {operations!r})
print(trees.remove(top), os.path.exists(top))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to become uid 65534")
def test_remove_gives_back_the_modes_a_child_took_away(outside):
    """As the owner, not root (the bubblewrap template): a folder of mode 0000, 0300, 0500 or
    0100 must be opened and emptied, never by following a link to chmod what it points to."""
    base = Path(tempfile.mkdtemp(prefix="autograder-test-modes-"))
    base.chmod(0o777)
    operations = [("mode", [], b"zero", 0o000), ("mode", [b"a"], b"wx", 0o300), ("mode", [b"a", b"b"], b"rx", 0o500),
                  ("mode", [], b"x", 0o100), ("deep", [b"zero2"], b"d", 200), ("mode", [b"zero2"] + [b"d"] * 100, b"z", 0),
                  ("link", [], b"etc", b"/etc"), ("link", [], b"out", os.fsencode(outside))]
    etc_mode = os.stat("/etc").st_mode
    done = subprocess.run([sys.executable, "-c", AS_NOBODY.format(kit=str(KIT_ROOT), builder=BUILDER,
                                                                  top=str(base / "top"), operations=operations)],
                          capture_output=True, text=True, timeout=120)
    base.rmdir()
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]
    assert os.stat("/etc").st_mode == etc_mode
    assert_untouched(outside)


# --- an upload: the submission folder, the batch input --------------------------------------------

def test_a_submission_folder_nested_1100_deep_is_a_zero_with_a_sentence(tmp_path, outside):
    folder = tmp_path / "mallory"
    folder.mkdir()
    build_tree(str(folder), [("deep", [], b"d", 1100), ("file", [], b"nn_from_scratch.ipynb", b"{}")])
    with pytest.raises(SubmissionError, match=r"^folder mallory holds folders nested more than 32 deep; "
                                              r"submit your notebook alone$"):
        load_submission(folder, CAP)


def test_a_notebook_reached_through_a_link_is_refused(tmp_path, outside):
    (outside / "nn_from_scratch.ipynb").write_text("{}")
    folder = tmp_path / "mallory"
    folder.mkdir()
    build_tree(str(folder), [("link", [b"sub"], b"nn_from_scratch.ipynb", os.fsencode(outside / "nn_from_scratch.ipynb"))])
    with pytest.raises(SubmissionError, match=r"sub/nn_from_scratch.ipynb is a symbolic link"):
        load_submission(folder, CAP)


def test_a_notebook_deep_in_a_long_path_is_read_without_a_path(tmp_path):
    """Thirty folders of 255 bytes: longer than any path the kernel takes (PATH_MAX)."""
    folder = tmp_path / "deep"
    folder.mkdir()
    parts = [b"n" * 255] * 30
    build_tree(str(folder), [("file", parts, b"nn_from_scratch.py", REFERENCE.encode())])
    submission = load_submission(folder, CAP)
    assert submission.kind == "python" and submission.text == REFERENCE


def upload_class(root: Path, operations) -> Path:
    """A class folder: honest alice.py, and mallory/ holding the hostile tree."""
    course = root / "class"
    (course / "mallory").mkdir(parents=True)
    (course / "alice.py").write_text(REFERENCE)
    build_tree(str(course / "mallory"), operations)
    return course


def test_discovery_and_digests_of_a_class_with_a_deep_upload(tmp_path, outside):
    """An upload of 1100 nested folders made rglob raise: the batch exited 1, nobody got a grade."""
    course = upload_class(tmp_path, DEEP_AND_LINKED)
    found = discover(course, tmp_path / "staging", CAP)
    assert {item.key for item in found.items} == {"alice", "mallory"}
    digests = {item.key: submission_digest(item, CAP) for item in found.items}
    assert UNREADABLE not in digests.values()


# --- the layout is the instructor's to say --------------------------------------------------------

FAKE_EXPORT = {"submission_metadata.yml": "submission_1:\n  :submitters:\n  - :sid: 'alice'\n"
                                          "submission_2:\n  :submitters:\n  - :sid: 'bob'\n",
               "submission_1/nn_from_scratch.py": REFERENCE, "submission_2/nn_from_scratch.py": REFERENCE}


def write_files(folder: Path, files: dict) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def test_a_students_folder_dressed_as_an_export_does_not_decide_the_layout(tmp_path):
    """Her folder held submission_metadata.yml with submission_1/ and submission_2/: the class
    was graded as a Gradescope export rooted there (classmates 0, her stubs 58)."""
    course = tmp_path / "class"
    write_files(course, {"alice.py": REFERENCE, "bob/nn_from_scratch.py": REFERENCE})
    write_files(course / "mallory", FAKE_EXPORT)
    found = discover(course, tmp_path / "staging", CAP)
    assert found.layout == "folder"
    assert {item.key: item.label for item in found.items} == {"alice": "alice.py", "bob": "bob", "mallory": "mallory"}


def test_two_such_folders_two_levels_down_do_not_refuse_the_batch(tmp_path):
    course = tmp_path / "class"
    write_files(course, {"alice.py": REFERENCE})
    write_files(course / "mallory" / "a", FAKE_EXPORT)
    write_files(course / "trudy" / "b", FAKE_EXPORT)
    found = discover(course, tmp_path / "staging", CAP)
    assert (found.layout, sorted(item.key for item in found.items)) == ("folder", ["alice", "mallory", "trudy"])


def test_layout_says_what_a_lone_folder_is(tmp_path):
    """One folder alone, laid out as an export: an export in a folder of its own, or one student's
    folder made to look like one. auto asks; --layout decides."""
    course = tmp_path / "class"
    write_files(course / "assignment_5_export", FAKE_EXPORT)
    with pytest.raises(GraderError, match="--layout gradescope"):
        discover(course, tmp_path / "staging", CAP)
    export = discover(course, tmp_path / "staging", CAP, layout="gradescope")
    assert (export.layout, sorted(item.key for item in export.items)) == ("gradescope", ["alice", "bob"])
    one = discover(course, tmp_path / "staging", CAP, layout="folder")
    assert (one.layout, [item.key for item in one.items]) == ("folder", ["assignment_5_export"])
    with pytest.raises(GraderError, match="no submitted/ folder"):
        discover(course, tmp_path / "staging", CAP, layout="nbgrader")
    with pytest.raises(GraderError, match="unknown layout 'zip'"):
        discover(course, tmp_path / "staging", CAP, layout="zip")


def test_an_export_given_as_itself_or_as_its_zip_is_still_recognised(tmp_path):
    export = write_files(tmp_path / "assignment_5_export", FAKE_EXPORT)
    assert discover(export, tmp_path / "staging", CAP).layout == "gradescope"
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for name, text in FAKE_EXPORT.items():
            zipped.writestr(f"assignment_5_export/{name}", text)
    assert discover(archive, tmp_path / "staging2", CAP).layout == "gradescope"


def test_a_zip_member_nested_past_any_project_is_not_extracted(tmp_path):
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("alice.py", REFERENCE)
        zipped.writestr("mallory/" + "d/" * 1100 + "nn_from_scratch.ipynb", "{}")
    found = discover(archive, tmp_path / "staging", CAP)
    assert sorted(item.key for item in found.items) == ["alice"]


# --- the trusted side, fuzzed in process (cheap: part of every `make test`) --------------------------

@pytest.mark.parametrize("seed", [0])
def test_fuzz_discovery_reading_digests_and_removal_of_hostile_uploads(seed, tmp_path):
    @fuzz_settings(8)
    @given(data=st.data())
    def fuzz(data):
        root = Path(tempfile.mkdtemp(dir=tmp_path))
        outside = root / "outside"
        outside.mkdir()
        (outside / "keep.txt").write_text("keep me")
        course = upload_class(root, data.draw(operations(str(outside))))
        found = discover(course, root / "staging", CAP)  # never raises for what a student uploaded
        assert {item.key for item in found.items} == {"alice", "mallory"}
        for item in found.items:
            submission_digest(item, CAP)
            try:
                load_submission(item.source, CAP)
            except SubmissionError as unusable:
                assert "\n" not in str(unusable) and str(unusable).encode("utf-8")
        assert trees.remove(course) and not course.exists()
        assert_untouched(outside)
        trees.remove(root)

    fuzz()

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

from autograder.batch.layouts import discover
from autograder.batch.outputs import UNREADABLE, submission_digest
from autograder.course.config import KIT_ROOT
from autograder.records import GraderError
from autograder.sandbox import trees
from autograder.intake.submission import SubmissionError, load_submission
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
            except OSError:  # no chmod (bubblewrap's filter): a folder born with that mode instead
                try:
                    _os.mkdir(name + b"-born", mode, dir_fd=folder)
                    if mode & 0o300 == 0o300:
                        _os.close(_os.open(name + b"-born/inside", _os.O_WRONLY | _os.O_CREAT, 0o644, dir_fd=folder))
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


def test_counting_a_childs_folder_takes_any_depth_with_one_descriptor(tmp_path, outside):
    """What the bubblewrap template's police of /tmp needs (os.walk recursed: RecursionError)."""
    top = tmp_path / "top"
    top.mkdir()
    build_tree(str(top), [("deep", [], b"d", 1500), ("link", [b"d"] * 3, b"out", os.fsencode(outside)),
                          ("many", [b"d"] * 1400, b"f", 20), ("file", [b"d"] * 10, b"big", b"x" * 100_000)])
    with pytest.raises(RecursionError):
        sum(1 for _ in os.walk(top))
    entries = 1500 + 1 + 20 + 1  # the folders, the link, the files
    assert trees.holds_more(top, 1 << 30, entries) is False
    assert trees.holds_more(top, 1 << 30, entries - 1) is True
    assert trees.holds_more(top, 50_000, 1 << 20) is True
    assert trees.holds_more(tmp_path / "nowhere", 0, 0) is False
    assert_untouched(outside)


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
                  ("mode", [], b"x", 0o100), ("deep", [b"zero2"], b"d", 200),
                  ("mode", [b"zero2"] + [b"d"] * 100, b"z", 0),
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
    build_tree(str(folder), [("link", [b"sub"], b"nn_from_scratch.ipynb",
                              os.fsencode(outside / "nn_from_scratch.ipynb"))])
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


def test_a_zip_member_whose_name_cannot_be_written_costs_only_itself(tmp_path):
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("alice.py", REFERENCE)
        zipped.writestr("mallory/a.py", "x = 1")
        zipped.writestr("mallory/a.py/b.py", "x = 2")  # a file and a folder of one name
        zipped.writestr("mallory/" + "n" * 300 + ".py", "x = 3")  # longer than a name may be
    found = discover(archive, tmp_path / "staging", CAP)
    assert sorted(item.key for item in found.items) == ["alice", "mallory"]
    assert load_submission(next(i for i in found.items if i.key == "mallory").source, CAP).text == "x = 1"


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
        top = data.draw(operations(str(outside)))  # the instructor's own folder holding odd things too
        build_tree(str(course), top)
        try:
            found = discover(course, root / "staging", CAP)
        except GraderError as unusable:  # e.g. a submission_metadata.yml at the top that is not one
            assert "\n" not in str(unusable)
            found = discover(course, root / "staging", CAP, layout="folder")
        assert {"alice", "mallory"} <= {item.key for item in found.items}
        for item in found.items:
            submission_digest(item, CAP)
            assert item.label.encode("utf-8")  # written to results, grades.csv, the report
            try:
                load_submission(item.source, CAP)
            except SubmissionError as unusable:
                assert "\n" not in str(unusable) and str(unusable).encode("utf-8")
        assert trees.remove(course) and not course.exists()
        assert_untouched(outside)
        trees.remove(root)

    fuzz()


# --- through the real grader ------------------------------------------------------------------------

def in_its_folder(operations) -> str:
    """Student code that builds the tree in the working folder its child runs in."""
    return (f"\n{BUILDER}\n_build_tree('.', {operations!r})\n")


@pytest.fixture
def private_tmp():
    """TMPDIR for a grader under test: what it leaves behind shows (other graders share /tmp)."""
    folder = Path(tempfile.mkdtemp(prefix="autograder-test-tmpdir-"))
    folder.chmod(0o1777)  # the children's uids make their working folders' parents here
    yield folder
    trees.remove(folder)


def grader_env(tmpdir: Path, **more) -> dict:
    return {**os.environ, "TMPDIR": str(tmpdir), "PYTHONPATH": str(KIT_ROOT), **more}


def assert_no_traceback(done: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout, done.stderr[-3000:]


WITHOUT_SYS_ADMIN = ["setpriv", "--inh-caps=-sys_admin", "--bounding-set=-sys_admin", "--"]
ROOT_WITHOUT_NAMESPACES = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                                             reason="needs root and setpriv (a container without CAP_SYS_ADMIN)")


@ROOT_WITHOUT_NAMESPACES
@pytest.mark.slow
def test_a_deep_tree_in_the_childs_folder_does_not_crash_grade_or_batch(tmp_path, private_tmp, outside):
    """As root without CAP_SYS_ADMIN (Gradescope's container, Docker's default) each child works
    in a folder of the host's /tmp, which the grader removes: 1500 nested folders made it raise
    RecursionError (`grade` exit 1, no results, the tree left in /tmp; `batch` exit 2, every re-run too)."""
    tmp_path.chmod(0o755)
    mallory = tmp_path / "class" / "mallory.py"
    mallory.parent.mkdir()
    mallory.write_text(REFERENCE + in_its_folder(DEEP_AND_LINKED + [("link", [], b"out", os.fsencode(outside))]))
    (tmp_path / "class" / "alice.py").write_text(REFERENCE)
    command = [*WITHOUT_SYS_ADMIN, sys.executable, "-m", "autograder"]
    graded = subprocess.run([*command, "grade", str(mallory), "--json"], capture_output=True, text=True,
                            timeout=600, env=grader_env(private_tmp), cwd=tmp_path)
    assert graded.returncode == 0, graded.stderr[-3000:]
    assert_no_traceback(graded)
    result = json.loads(graded.stdout)
    assert result["extra_data"]["isolation"] == "uid"
    assert result["score"] == result["max_score"] > 0
    assert os.listdir(private_tmp) == []
    out = tmp_path / "out"
    for run in (1, 2):  # a re-run, forced, must work as well
        done = subprocess.run([*command, "batch", str(tmp_path / "class"), "--out", str(out), "--workers", "2",
                               *(["--force"] if run == 2 else [])],
                              capture_output=True, text=True, timeout=600, env=grader_env(private_tmp), cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        assert_no_traceback(done)
        scores = {p.stem: json.loads(p.read_text())["score"] for p in (out / "results").glob("*.json")}
        assert scores == {"alice": result["max_score"], "mallory": result["max_score"]}
        assert os.listdir(private_tmp) == []
    assert_untouched(outside)


def kill_with_its_children(pid: int) -> None:
    """Once a template has a child, SIGKILL it, then its children: what its death does in
    bubblewrap, where it is PID 1 of the sandbox (as root, children outlive their template)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    deadline = time.monotonic() + 120
    while not children.read_text().split() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # into her cells
    forked = children.read_text().split()
    os.kill(pid, signal.SIGKILL)
    for child in forked:
        try:
            os.kill(int(child), signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.slow
def test_a_template_that_dies_costs_no_one_points_silently(config):
    """Whatever kills the template (here a SIGKILL from outside; it was its wipe of a child's
    folder in bubblewrap) kills the children it was running: a classmate graded at that moment
    got 0 with no warning. She is graded again, once, and the notice says so."""
    from autograder.pipeline import Grader
    from autograder.sandbox.session import REGRADED

    folder = Path(tempfile.mkdtemp(prefix="autograder-test-regrade-"))
    try:
        slow = folder / "slow.py"
        slow.write_text(REFERENCE + "\nimport time\ntime.sleep(2.5)\n")
        with Grader(config, hide=(folder,)) as grader:
            process = grader.sandbox._template(())._process
            # graded in this thread: a template dies with the thread that started it
            killer = threading.Thread(target=kill_with_its_children,
                                      args=(process if isinstance(process, int) else process.pid,))
            killer.start()
            report = grader.grade(slow)
            killer.join()
            assert report.score == report.max_score > 0, report.notices
            assert REGRADED in report.notices
            again = grader.grade(slow)  # the fresh template grades on, with nothing to say
            assert again.score == again.max_score and REGRADED not in again.notices
    finally:
        trees.remove(folder)


# --- bubblewrap: the template wipes each child's folder ----------------------------------------------

from redteam.harness import can_run_as_nobody  # noqa: E402
from test_redteam import arena, as_nobody, listeners, nobody_arena  # noqa: E402,F401  (fixtures)
from test_without_user_namespaces import setuid_bwrap  # noqa: E402,F401  (a fixture)
from test_gradescope import built_zip, run_autograder, unzip_keeping_modes  # noqa: E402,F401  (built_zip: a fixture)

NOBODY_ONLY = pytest.mark.skipif(not can_run_as_nobody(), reason="needs root, unshare and setpriv")
SLEEPS_IN_ITS_CELLS = "\nimport time\ntime.sleep(2)\n"  # in flight when the others' children end (TEST_LIMITS)
LEAVES = "\nimport os\nos._exit(0)\n"  # its child ends at once: the template wipes its folder


@NOBODY_ONLY
@pytest.mark.slow
def test_bubblewrap_a_childs_deep_or_linked_folder_costs_a_classmate_nothing(nobody_arena, setuid_bwrap, outside):
    """The template (PID 1 of the sandbox) wipes each child's folder: 1500 nested folders made it
    die of RecursionError (os.walk), a link to / of NotImplementedError (chmod without following
    links), and every child in the sandbox with it: a classmate graded then got 0/58, silently."""
    root, _, targets = nobody_arena
    folder, out = root / "trees-in", root / "trees-out"
    folder.mkdir()
    students = {"aaa_alice": REFERENCE + SLEEPS_IN_ITS_CELLS,
                "mmm_deep": in_its_folder([("deep", [], b"d", 1500)]) + LEAVES,
                "mmm_root": in_its_folder([("link", [], b"root", b"/"), ("link", [b"a"], b"up", b"..")]) + LEAVES,
                "mmm_modes": in_its_folder([("mode", [], b"zero", 0), ("mode", [b"b"], b"wx", 0o300),
                                            ("deep", [b"c"], b"d", 1200), ("link", [], b"out", os.fsencode(outside))])
                + LEAVES,
                "zzz_zoe": REFERENCE + SLEEPS_IN_ITS_CELLS}
    for name, source in students.items():
        (folder / f"{name}.py").write_text(source)
        (folder / f"{name}.py").chmod(0o644)
    folder.chmod(0o755)
    done = as_nobody(nobody_arena, ["batch", str(folder), "--out", str(out), "--workers", "2"], targets,
                     bubblewrap=setuid_bwrap)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert_no_traceback(done)
    results = {p.stem: json.loads(p.read_text()) for p in (out / "results").glob("*.json")}
    assert sorted(results) == sorted(students)
    assert {r["extra_data"]["isolation"] for r in results.values()} == {"bubblewrap"}
    for honest in ("aaa_alice", "zzz_zoe"):
        assert results[honest]["score"] == results[honest]["max_score"] > 0, results[honest]["extra_data"]["notices"]
        assert not any("graded a second time" in n for n in results[honest]["extra_data"]["notices"])  # no death
    assert_untouched(outside)


# --- fuzzing through the real command line (a handful of examples; AUTOGRADER_FUZZ_EXAMPLES for more) ---

def outside_folder(base: Path) -> Path:
    folder = base / "outside"
    folder.mkdir()
    (folder / "keep.txt").write_text("keep me")
    folder.chmod(0o777)
    return folder


@ROOT_WITHOUT_NAMESPACES
@pytest.mark.slow
def test_fuzz_grade_with_hostile_trees_in_the_childs_folder(tmp_path, private_tmp):
    """Trees a child makes where the grader removes them (root without CAP_SYS_ADMIN)."""
    tmp_path.chmod(0o755)
    outside = outside_folder(tmp_path)

    @fuzz_settings(2)
    @given(data=st.data())
    def fuzz(data):
        path = Path(tempfile.mkdtemp(dir=tmp_path)) / "hostile.py"
        path.parent.chmod(0o755)
        path.write_text(REFERENCE + in_its_folder(data.draw(operations(str(outside)))))
        done = subprocess.run([*WITHOUT_SYS_ADMIN, sys.executable, "-m", "autograder", "grade", str(path), "--json"],
                              capture_output=True, text=True, timeout=600, env=grader_env(private_tmp), cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        assert_no_traceback(done)
        result = json.loads(done.stdout)
        assert result["score"] == result["max_score"] > 0  # whatever it left, its layers were graded
        assert os.listdir(private_tmp) == []
        assert_untouched(outside)

    fuzz()


@pytest.mark.slow
def test_fuzz_batch_and_grade_with_a_hostile_upload(tmp_path, private_tmp):
    """A student's folder of any tree beside an honest classmate: `batch` grades both (exit 0, a
    result each, the classmate's full marks), `grade` of the folder says in one line what is wrong
    with it (exit 0 or 2)."""
    outside = outside_folder(tmp_path)

    @fuzz_settings(2)
    @given(data=st.data())
    def fuzz(data):
        root = Path(tempfile.mkdtemp(dir=tmp_path))
        course = upload_class(root, data.draw(operations(str(outside))))
        out = root / "out"
        command = [sys.executable, "-m", "autograder"]
        done = subprocess.run([*command, "batch", str(course), "--out", str(out), "--workers", "2"],
                              capture_output=True, text=True, timeout=600, env=grader_env(private_tmp), cwd=root)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        assert_no_traceback(done)
        results = {p.stem: json.loads(p.read_text()) for p in (out / "results").glob("*.json")}
        assert sorted(results) == ["alice", "mallory"]
        assert results["alice"]["score"] == results["alice"]["max_score"] > 0
        graded = subprocess.run([*command, "grade", str(course / "mallory")], capture_output=True, text=True,
                                timeout=600, env=grader_env(private_tmp), cwd=root)
        assert graded.returncode in (0, 2), graded.stderr[-3000:]
        assert_no_traceback(graded)
        if graded.returncode == 2:
            assert graded.stderr.count("autograder: error:") == 1 and graded.stderr.endswith("\n")
        assert os.listdir(private_tmp) == []
        assert_untouched(outside)
        trees.remove(root)

    fuzz()


@pytest.mark.slow
def test_fuzz_run_autograder_with_a_hostile_submission(built_zip, tmp_path):
    """Gradescope's /autograder/submission holding any tree: results.json with a score and a
    sentence, exit 0, no traceback; "The autograder failed" only for a grader that failed."""
    base = Path(tempfile.mkdtemp(prefix="autograder-test-", dir="/srv" if os.access("/srv", os.W_OK) else None))
    base.chmod(0o755)
    try:
        unzip_keeping_modes(built_zip, base / "source")
        outside = outside_folder(tmp_path)

        @fuzz_settings(2)
        @given(data=st.data())
        def fuzz(data):
            for folder in ("submission", "results"):
                trees.remove(base / folder)
                (base / folder).mkdir()
            build_tree(str(base / "submission"), data.draw(operations(str(outside))))
            done, results = run_autograder(base)
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
            assert_no_traceback(done)
            assert results is not None and "score" in results and "The autograder failed" not in results["output"]
            assert_untouched(outside)

        fuzz()
    finally:
        trees.remove(base)


def test_batch_layout_option_is_checked_before_a_grader_starts(tmp_path):
    write_files(tmp_path / "class", {"alice.py": REFERENCE})
    done = subprocess.run([sys.executable, "-m", "autograder", "batch", str(tmp_path / "class"), "--out",
                           str(tmp_path / "out"), "--layout", "moodle"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr == ("autograder: error: unknown layout 'moodle': use auto, folder, nbgrader, gradescope\n")


def test_a_grader_fault_is_retried_once_and_the_result_says_so(config, grader, tmp_path):
    """A fault of the grading machinery (not of the submission) costs a batch's student nothing
    if a second try works; the result says it took two."""
    from autograder.batch.layouts import Item
    from autograder.batch.runner import GradingFault, grade_with_one_retry

    path = write_files(tmp_path, {"alice.py": REFERENCE}) / "alice.py"
    item = Item(("alice",), path, "alice.py")
    real, calls = grader.grade, []

    def fails_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise BrokenPipeError(32, "Broken pipe")
        return real(*args, **kwargs)

    grader.grade = fails_once
    try:
        result = grade_with_one_retry(grader, item)
        assert result["score"] == result["max_score"] > 0
        assert any(n.startswith("graded a second time: the grader failed the first time (BrokenPipeError")
                   for n in result["extra_data"]["notices"])
        calls.clear()
        grader.grade = lambda *args, **kwargs: (_ for _ in ()).throw(BrokenPipeError(32, "Broken pipe"))
        assert isinstance(grade_with_one_retry(grader, item), GradingFault)
    finally:
        grader.grade = real


@ROOT_WITHOUT_NAMESPACES
@pytest.mark.slow
def test_run_autograder_without_sys_admin_survives_a_deep_tree_in_the_childs_folder(built_zip, private_tmp):
    """Gradescope's container without CAP_SYS_ADMIN: the grader removes each child's folder, and
    1500 nested folders made the student read "The autograder failed"."""
    base = Path(tempfile.mkdtemp(prefix="autograder-test-", dir="/srv" if os.access("/srv", os.W_OK) else None))
    base.chmod(0o755)
    try:
        unzip_keeping_modes(built_zip, base / "source")
        for folder in ("submission", "results"):
            (base / folder).mkdir()
        (base / "submission" / "nn_from_scratch.py").write_text(REFERENCE + in_its_folder(DEEP_AND_LINKED))
        done = subprocess.run([*WITHOUT_SYS_ADMIN, str(base / "source" / "run_autograder")], capture_output=True,
                              text=True, timeout=600, cwd=base,
                              env={**os.environ, "AUTOGRADER_ROOT": str(base), "AUTOGRADER_PYTHON": sys.executable,
                                   "TMPDIR": str(private_tmp)})
        results = json.loads((base / "results" / "results.json").read_text())
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        assert_no_traceback(done)
        assert "The autograder failed" not in results["output"]
        assert results["extra_data"]["isolation"] == "uid"
        assert results["score"] == sum(test["max_score"] for test in results["tests"]) > 0
        assert os.listdir(private_tmp) == []
    finally:
        trees.remove(base)

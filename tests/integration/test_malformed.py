"""Broken and odd submission files never break a grading run.

Each file is graded by the real grader: it either gets a zero with one sentence saying what is
wrong with the file, or (when the code can still be found) is graded with a notice, never above
what its code earns. `autograder grade` refuses unusable files with one line and exit 2, and an
`autograder batch` holding all of them grades every other student normally. Zips are read in
memory: `../` and absolute member names, links and bombs write nothing and blow up nothing.
"""
from __future__ import annotations

import codecs
import copy
import json
import os
import re
import stat
import struct
import subprocess
import sys
import tracemalloc
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from autograder.intake import safezip
from autograder.course.config import KIT_ROOT, load_config
from autograder.records import GraderError
from autograder.intake.submission import load_submission
from autograder.demo import samples_builder
from redteam.harness import REFERENCE, solution_copies, write_config

NOTEBOOK = json.loads(samples_builder().build()["alice_correct.ipynb"])  # the template, answered


def notebook(change: Callable[[dict], None] | None = None) -> bytes:
    """The correct sample notebook, changed by `change`."""
    changed = copy.deepcopy(NOTEBOOK)
    if change:
        change(changed)
    return json.dumps(changed).encode()


def cell(nb: dict, grade_id: str) -> dict:
    return next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id)


def drop_metadata(grade_id):
    return lambda nb: cell(nb, grade_id)["metadata"].pop("nbgrader")


def duplicate(grade_id):
    return lambda nb: nb["cells"].append(copy.deepcopy(cell(nb, grade_id)))


def to_markdown(grade_id):
    def change(nb):
        changed = cell(nb, grade_id)
        changed["cell_type"] = "markdown"
        changed.pop("outputs", None)
        changed.pop("execution_count", None)
    return change


def stored_output(megabytes: int):
    def change(nb):
        code = next(c for c in nb["cells"] if c["cell_type"] == "code")
        code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "0123456789" * (megabytes << 17)}]
    return change


def added_cell(source: str):
    return lambda nb: nb["cells"].append({"cell_type": "code", "metadata": {}, "source": source, "outputs": [],
                                          "execution_count": None})


def raising_cells(count: int):
    """`count` extra cells that each raise with a long message: their errors together are far over
    a frame's 4 MB, the notebook itself well under the size limit."""
    def change(nb):
        nb["cells"].extend({"cell_type": "code", "source": "raise ValueError('x' * 450)"} for _ in range(count))
    return change


def many_entries_zip(count: int = 300_000, claimed: int | None = None):
    """Makes a zip whose central directory lists `count` files (no data: zipfile reads only the
    directory to open it; as ZipInfo objects it takes ~150 MB), with a zip64 end record that says
    `claimed` files (default: the truth)."""
    def make(path: Path) -> None:
        entries = []
        for n in range(count):
            name = f"{n:07d}.txt".encode()
            entries.append(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 0, 0, len(name),
                                       0, 0, 0, 0, 0, 0) + name)
        directory = b"".join(entries)
        files = count if claimed is None else claimed
        zip64_end = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, files, files, len(directory), 0)
        locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, len(directory), 1)
        end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
        path.write_bytes(directory + zip64_end + locator + end)
    return make


def utf8_flag_with_latin1_name() -> bytes:
    """A member name flagged UTF-8 (as zipfile writes a non-ASCII one) whose bytes are not UTF-8:
    zipfile raises UnicodeDecodeError, not BadZipFile."""
    return a_zip({"layers_\u00e9.py": REFERENCE}, compression=zipfile.ZIP_STORED).replace("\u00e9".encode(), b"\xe9_")


def nbformat3() -> bytes:
    """The correct sample as an nbformat 3 notebook: worksheets, and code in `input`."""
    cells = [{**{k: v for k, v in c.items() if k not in ("source", "id", "attachments")},
              ("input" if c["cell_type"] == "code" else "source"): c["source"]}
             for c in NOTEBOOK["cells"]]
    return json.dumps({"nbformat": 3, "nbformat_minor": 0, "metadata": {"name": "nn"},
                       "worksheets": [{"cells": cells, "metadata": {}}]}).encode()


def a_zip(members: dict, links: dict | None = None, compression=zipfile.ZIP_DEFLATED) -> bytes:
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return buffer.getvalue()


def lying_zip() -> bytes:
    """A 64 MB bomb whose headers say its member is 100 bytes long."""
    data = bytearray(a_zip({"bomb.py": b"#" * (64 << 20)}))
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local and central size fields
        at = data.find(signature)
        data[at + offset:at + offset + 4] = (100).to_bytes(4, "little")
    return bytes(data)


@dataclass(frozen=True)
class Bad:
    """name: file (or folder) name, the student id is its stem; content: bytes, or a callable
    making it at a path; says: regex the error (refused) or the notices (graded) must match;
    refused: not graded at all; lost: check prefixes a graded file must lose (else = reference)."""

    name: str
    content: object
    says: str
    refused: bool = True
    lost: tuple = ()


def symlink_to_solution(path: Path) -> None:
    path.symlink_to(KIT_ROOT / "solution" / "layers.py")


def folder_with_link(path: Path) -> None:
    path.mkdir()
    (path / "nn_from_scratch.py").symlink_to(KIT_ROOT / "solution" / "layers.py")


def fifo(path: Path) -> None:
    os.mkfifo(path)


CASES = [
    Bad("not_json.ipynb", b"{ this is not json", r"is not a notebook: invalid JSON at line 1"),
    Bad("json_list.ipynb", b"[1, 2, 3]", r"is JSON but not a Jupyter notebook"),
    Bad("json_no_cells.ipynb", b'{"metadata": {}, "nbformat": 4}', r"not a Jupyter notebook \(no cells\)"),
    Bad("json_nested.ipynb", b"[" * 100_000 + b"]" * 100_000, r"its JSON is nested too deeply"),
    Bad("bad_cells.ipynb", b'{"cells": [5, null], "nbformat": 4}', r"not a readable notebook \(malformed cell\)"),
    Bad("nbformat3.ipynb", nbformat3(), r"^$", refused=False),
    Bad("missing_grade_id.ipynb", notebook(drop_metadata("relu")), r"answer cell 'relu' is missing", refused=False),
    Bad("duplicated_grade_id.ipynb", notebook(duplicate("linear")), r"answer cell id 'linear' appears 2 times",
        refused=False),
    Bad("changed_cell_type.ipynb", notebook(to_markdown("softmax")),
        r"answer cell 'softmax' was changed to a markdown cell, so it is not run", refused=False,
        lost=("softmax", "train")),
    Bad("null_byte_cell.ipynb", notebook(added_cell("x = 1\0\n")), r"null bytes", refused=False),
    Bad("megabytes_of_outputs.ipynb", notebook(stored_output(5)),
        r"larger than the limit of \d+ KB \(clear the notebook's outputs"),
    Bad("latin1.py", REFERENCE.encode() + "# café\n".encode("latin-1"), r"is not UTF-8 text \(bad byte at position"),
    # honest work that once scored 0: what PowerShell 5 writes (UTF-16 with a byte order mark),
    # Notepad's UTF-8 with one, a 1.45 MB file with a long non-ASCII comment (6 bytes a character
    # when JSON-escaped: over the 4 MB frame), 8000 cells that raise (their errors over 4 MB)
    Bad("powershell_utf16.py", codecs.BOM_UTF16_LE + REFERENCE.encode("utf-16-le"), r"^$", refused=False),
    Bad("notepad_utf8_bom.py", codecs.BOM_UTF8 + REFERENCE.encode(), r"^$", refused=False),
    Bad("long_comment.py", (REFERENCE + "\n# " + "é" * 720_000 + "\n").encode(), r"^$", refused=False),
    # what no longer fits a frame even unescaped gets a sentence, not "[Errno 32] Broken pipe"
    Bad("control_characters.py", (REFERENCE + "\n# " + "\x01" * 1_000_000 + "\n").encode(),
        r"too large to send to the sandbox \(\d+\.\d MB as the grader sends it; the limit is 4 MB\)",
        refused=False, lost=("",)),
    Bad("raising_cells.ipynb", notebook(raising_cells(8000)), r"^\.\.\. and \d+ more cells raised an error$",
        refused=False),
    Bad("utf16_truncated.py", codecs.BOM_UTF16_LE + b"x\x00=\x001", r"is not UTF-16 text"),
    Bad("zip_bad_utf8_name.zip", utf8_flag_with_latin1_name(), r"is not a readable zip file"),
    Bad("zip_many_entries.zip", many_entries_zip(), r"holds 300,000 files; the limit is 10,000$"),
    Bad("zip_lying_count.zip", many_entries_zip(claimed=1), r"lists its files in 16.\d MB, more than 10,000 files"),
    Bad("zip_lying_small.zip", many_entries_zip(20_000, claimed=1), r"holds 20,000 files; the limit is 10,000$"),
    Bad("empty.ipynb", b"", r"is empty"),
    Bad("empty.py", b"", r"is empty"),
    Bad("binary.py", bytes(range(256)) * 64, r"is a binary file, not text"),
    Bad("zip_dotdot.zip", a_zip({"../../evil_dotdot.py": REFERENCE}), r"^$", refused=False),
    Bad("zip_absolute.zip", a_zip({"/tmp/evil_absolute.py": REFERENCE}), r"^$", refused=False),
    Bad("zip_symlink.zip", a_zip({}, links={"layers.py": str(KIT_ROOT / "solution" / "layers.py")}),
        r"holds no .ipynb or .py file"),
    Bad("zip_bomb.zip", a_zip({"bomb.py": b"#" * (1 << 30)}), r"bomb.py in zip_bomb.zip is too large"),
    Bad("zip_lying_bomb.zip", lying_zip(), r"zip_lying_bomb.zip is not a readable zip file \(Bad CRC-32"),
    Bad("zip_not_a_zip.zip", b"PK\x03\x04 and then nothing", r"is not a readable zip file"),
    Bad("zip_empty.zip", a_zip({}), r"holds no .ipynb or .py file"),
    Bad("zip_two.zip", a_zip({"a.py": REFERENCE, "b.py": REFERENCE}), r"holds several candidate files"),
    Bad("symlink.py", symlink_to_solution, r"is a symbolic link; submit the file itself"),
    Bad("linked", folder_with_link, r"is a symbolic link; submit the file itself"),
]


def make(folder: Path, case: Bad) -> Path:
    path = folder / case.name
    if callable(case.content):
        case.content(path)
    else:
        path.write_bytes(case.content)
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from autograder.pipeline import Grader

    root = tmp_path_factory.mktemp("malformed")
    config_path = write_config(root / "grading.toml")
    config = load_config(config_path)
    with Grader(config, hide=(root, *solution_copies())) as grader:
        honest_path = root / "honest.py"
        honest_path.write_text(REFERENCE)
        honest = grader.grade(honest_path)
        assert honest.score == honest.max_score
        yield root, config_path, grader, honest


def under(name: str, prefixes) -> bool:
    return any(p == "" or name == p or name.startswith(p + ".") for p in prefixes)


def assert_handled(case: Bad, error: str, notices: list, checks: dict, honest: dict) -> None:
    """checks and honest: check name -> score."""
    assert checks.keys() == honest.keys()
    if case.refused:
        assert re.search(case.says, error), error
        assert len(error.splitlines()) == 1 and len(error) < 300
        assert all(score == 0 for score in checks.values())
        return
    assert not error, error
    if case.says != r"^$":
        assert any(re.search(case.says, notice) for notice in notices), notices
    for name, score in checks.items():
        assert score <= honest[name]
        assert score == (0 if under(name, case.lost) else honest[name]), name


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_malformed_file_is_graded_or_refused_in_one_sentence(case, setup):
    root, _, grader, honest = setup
    folder = root / "single" / case.name.replace(".", "_")
    folder.mkdir(parents=True)
    report = grader.grade(make(folder, case))
    assert_handled(case, report.error, report.notices, {c.name: c.score for c in report.checks},
                   {c.name: c.score for c in honest.checks})
    assert report.execution_time < 60


def test_a_fifo_named_py_does_not_block_the_grader(setup):
    root, _, grader, _ = setup
    path = root / "fifo.py"
    fifo(path)
    report = grader.grade(path)
    assert report.error == "fifo.py is not a regular file"


@pytest.mark.parametrize("claimed", [None, 1], ids=["counted", "count lies"])
def test_a_zip_of_many_files_is_refused_before_its_list_is_read(tmp_path, claimed):
    """zipfile turns every entry of the central directory into an object before anything else: a
    student zip of a million empty files took the grader from 300 to 859 MB. The end record is
    read first and the entries counted in the raw directory, so refusing it (a single submission or a
    whole class's zip) costs at most the directory's own size, whatever count the zip claims."""
    path = tmp_path / "many.zip"
    many_entries_zip(300_000, claimed)(path)
    for read in (lambda: load_submission(path, 2 << 20), lambda: safezip.extract(path, tmp_path / "out", 1 << 20)):
        tracemalloc.start()
        try:
            with pytest.raises(GraderError, match="holds 300,000 files; the limit is|lists its files in"):
                read()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        # at most the directory's own bytes, read once to count its entries (as objects: ~10x that)
        assert peak < path.stat().st_size + (4 << 20), f"{peak >> 20} MB to refuse it"


def test_zip_member_paths_write_nothing_anywhere(setup):
    """Members named ../../evil_dotdot.py and /tmp/evil_absolute.py are read in memory only."""
    root, _, grader, _ = setup
    folder = root / "zips" / "a" / "b"
    folder.mkdir(parents=True)
    for case in CASES:
        if case.name in ("zip_dotdot.zip", "zip_absolute.zip"):
            assert grader.grade(make(folder, case)).score > 0
    assert not (root / "zips" / "evil_dotdot.py").exists()
    assert not Path("/tmp/evil_absolute.py").exists()
    assert sorted(p.name for p in (root / "zips").rglob("*")) == ["a", "b", "zip_absolute.zip", "zip_dotdot.zip"]


def cli(config_path: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", "--config", str(config_path), *args],
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow  # `autograder grade` as a subprocess, per file
@pytest.mark.parametrize("name", ["json_nested.ipynb", "binary.py", "zip_bomb.zip", "symlink.py"])
def test_autograder_grade_refuses_in_one_line(name, setup):
    root, config_path, _, _ = setup
    folder = root / "cli" / name.replace(".", "_")
    folder.mkdir(parents=True)
    case = next(case for case in CASES if case.name == name)
    done = cli(config_path, "grade", str(make(folder, case)))
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert re.search(case.says, done.stderr)


@pytest.mark.slow  # `autograder batch` over every malformed file
def test_autograder_batch_grades_every_other_student_normally(setup):
    root, config_path, _, honest = setup
    folder, out = root / "class", root / "class-out"
    folder.mkdir()
    for student in ("aaa_alice.py", "zzz_zoe.py"):
        (folder / student).write_text(REFERENCE)
    for case in CASES:  # every case, graded in one batch among honest students
        make(folder, case)
    done = cli(config_path, "batch", str(folder), "--out", str(out), "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    results = {p.stem: json.loads(p.read_text()) for p in (out / "results").glob("*.json")}
    for student in ("aaa_alice", "zzz_zoe"):
        assert all(test["status"] == "passed" for test in results[student]["tests"])
    fair = {c.name: c.score for c in honest.checks}
    for case in CASES:
        result = results[Path(case.name).stem]
        error = re.sub(r"^Not graded: ", "", next((line for line in result["output"].splitlines()
                                                    if line.startswith("Not graded: ")), ""))
        assert_handled(case, error, result["extra_data"]["notices"],
                       {t["name"]: t["score"] for t in result["tests"]}, fair)

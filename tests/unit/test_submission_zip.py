"""A zipped submission is read under the same zip policy as a batch's zips (safezip.py): the
junk a Mac or Jupyter adds is never taken for the submission."""
import io
import zipfile

import pytest

from autograder.intake.submission import SubmissionError, read_zip

NOTEBOOK = b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}'


def zipped(tmp_path, members: dict[str, bytes]):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    path = tmp_path / "upload.zip"
    path.write_bytes(buffer.getvalue())
    return path


@pytest.mark.parametrize("junk", ["__MACOSX/._nn_from_scratch.ipynb", "._nn_from_scratch.ipynb",
                                  ".ipynb_checkpoints/nn_from_scratch-checkpoint.ipynb"])
def test_junk_beside_the_notebook_is_not_a_second_candidate(tmp_path, junk):
    submission = read_zip(zipped(tmp_path, {"work/nn_from_scratch.ipynb": NOTEBOOK, junk: b"\x00\x05\x16\x07"}),
                          1 << 20)
    assert submission.name == "nn_from_scratch.ipynb" and submission.kind == "notebook"


def test_a_zip_of_junk_only_holds_no_submission(tmp_path):
    with pytest.raises(SubmissionError, match="holds no .ipynb or .py file"):
        read_zip(zipped(tmp_path, {"__MACOSX/._layers.py": b"x", "._layers.py": b"x"}), 1 << 20)

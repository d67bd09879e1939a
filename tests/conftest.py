"""Shared fixtures: the kit's config, the reference answers as a submission, one warm grader."""
from __future__ import annotations

import atexit
import importlib.util
import json
import shutil
import tempfile
from pathlib import Path

import pytest

import solution.layers
from autograder.course.config import KIT_ROOT, load_config

# The reference answers live in the source notebook's answer cells; as a .py submission they are
# one file, written once per run into a private (0700) folder removed at exit.
_REFERENCE_DIR = Path(tempfile.mkdtemp(prefix="kit-reference-"))
atexit.register(shutil.rmtree, _REFERENCE_DIR, True)
REFERENCE_LAYERS = _REFERENCE_DIR / "layers.py"
REFERENCE_LAYERS.write_text(solution.layers.source(), encoding="utf-8")
LAYER_PARTS = tuple(part.name for part in load_config().layers)  # the registry's layers, in order


@pytest.fixture(scope="session")
def config():
    return load_config()


@pytest.fixture(scope="session")
def reference_source() -> str:
    """A full-marks .py submission: the reference layers as text."""
    return REFERENCE_LAYERS.read_text()


@pytest.fixture(scope="session")
def grader(config, tmp_path_factory):
    """One warm sandbox template for the whole run; pytest's temp folders are hidden from children."""
    from autograder.pipeline import Grader

    with Grader(config, hide=(tmp_path_factory.getbasetemp(),)) as shared:
        yield shared


def write_notebook(path: Path, cells: list[tuple[str, dict | None, str]]) -> Path:
    """cells: (cell_type, nbgrader metadata or None, source) -> an nbformat-4 notebook file."""
    notebook = {
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [
            {"cell_type": kind, "metadata": {"nbgrader": meta} if meta else {}, "source": source,
             **({"outputs": [], "execution_count": None} if kind == "code" else {}), "id": f"c{i}"}
            for i, (kind, meta, source) in enumerate(cells)
        ],
    }
    path.write_text(json.dumps(notebook))
    return path


def answer(grade_id: str) -> dict:
    return {"solution": True, "grade": False, "locked": False, "grade_id": grade_id, "schema_version": 3}


def locked(grade_id: str, points: float | None = None) -> dict:
    meta = {"solution": False, "grade": points is not None, "locked": True, "grade_id": grade_id,
            "schema_version": 3}
    if points is not None:
        meta["points"] = points
    return meta


def notebook_submission() -> str:
    """The released template with the reference answers (what a good student hands in), filled by
    assignment/build_samples.py: a script beside the notebook, not a package, so loaded from its file."""
    spec = importlib.util.spec_from_file_location("build_samples", KIT_ROOT / "assignment" / "build_samples.py")
    build_samples = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_samples)
    return json.dumps(build_samples.reference_notebook())

"""The grader against its corpus: the reference, single-bug mutations and valid alternatives.

- the reference layers get full marks on every part;
- each mutation (tests/corpus/mutations.py) loses points in its own part and in no other layer part
  (train is not graded for mutations: it is slow and may legitimately suffer from any layer's bug);
- each valid alternative (tests/corpus/valid/*.py, assembled over the reference) gets full marks.

Grading uses the real pipeline through the shared warm `grader` fixture (tests/conftest.py).
"""
import ast

import pytest

from conftest import LAYER_PARTS
from corpus import MUTATIONS, VALID, assembled_valid_source, mutated_source, reference_source


def grade(grader, tmp_path, name, source, parts=None):
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    return grader.grade(path, parts=parts)


def failures(report):
    """Failed checks with their messages, for assertion output."""
    return "\n".join(f"{c.name}: {c.message}" for c in report.checks if not c.passed) or "(none)"


def lost(report):
    return {name: part.max_score - part.score for name, part in report.parts.items() if part.score < part.max_score}


# --- the corpus itself ---------------------------------------------------------------------

def test_corpus_is_large_enough_and_names_are_unique():
    assert len(MUTATIONS) >= 28
    assert len({m.name for m in MUTATIONS}) == len(MUTATIONS)
    assert {m.part for m in MUTATIONS} == set(LAYER_PARTS)
    assert len(VALID) >= 8


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_mutation_is_one_real_edit_of_the_reference(mutation):
    source = mutated_source(mutation)  # asserts that `old` occurs exactly once
    assert source != reference_source() and mutation.why
    ast.parse(source)


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_file_says_what_it_demonstrates(path):
    module = ast.parse(path.read_text())
    assert ast.get_docstring(module), f"{path.name} needs a module docstring"
    classes = {node.name for node in module.body if isinstance(node, ast.ClassDef)}
    assert classes & {"Linear", "ReLU", "Softmax", "NLLLoss"}


def test_reference_layers_import_only_torch_and_math():
    module = ast.parse(reference_source())
    imported = {alias.name for node in ast.walk(module) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(module) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"torch", "math"}


# --- graded --------------------------------------------------------------------------------

def test_reference_gets_full_marks(grader, tmp_path):
    report = grade(grader, tmp_path, "reference", reference_source())
    assert not report.error
    assert set(report.parts) == set(LAYER_PARTS) | {"train"}
    assert report.score == report.max_score > 0, failures(report)


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_mutation_loses_points_in_its_own_part_only(grader, tmp_path, mutation):
    report = grade(grader, tmp_path, mutation.name, mutated_source(mutation), parts=LAYER_PARTS)
    assert set(report.parts) == set(LAYER_PARTS)
    assert mutation.part in lost(report), f"{mutation.name} ({mutation.why}) was not caught"
    assert set(lost(report)) == {mutation.part}, (
        f"{mutation.name} must cost points in {mutation.part} only, lost {lost(report)}:\n{failures(report)}")


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_alternative_gets_full_marks(grader, tmp_path, path):
    report = grade(grader, tmp_path, path.stem, assembled_valid_source(path))
    assert not report.error
    assert set(report.parts) == set(LAYER_PARTS) | {"train"}
    assert lost(report) == {}, f"{path.name} lost {lost(report)}:\n{failures(report)}"
    # no false alarm: honest code neither looks nor acts like reaching into the interpreter
    assert report.instructor_notices == [], report.instructor_notices

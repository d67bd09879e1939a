"""extract(): which cells the grader runs, in notebook order, and what it tells the student about
the answer cells the registry expects."""
import json

from autograder.intake.extract import extract
from autograder.intake.submission import parse

ANSWERS = ("linear", "relu")


def notebook(*cells) -> bytes:
    """cells: (cell_type, nbgrader metadata or None, source)."""
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": kind, "metadata": {"nbgrader": meta} if meta else {}, "source": source,
         **({"outputs": [], "execution_count": None} if kind == "code" else {})}
        for kind, meta, source in cells]}).encode()


def answer(grade_id):
    return {"solution": True, "grade": False, "locked": False, "grade_id": grade_id}


def locked(grade_id, points=None):
    return {"solution": False, "grade": points is not None, "locked": True, "grade_id": grade_id,
            **({"points": points} if points else {})}


def run(data: bytes, answers=ANSWERS):
    return extract(parse("nn_from_scratch.ipynb", data, 1 << 20), answer_ids=answers)


def test_answers_setup_and_added_cells_run_in_order_and_nothing_else():
    code = run(notebook(
        ("code", locked("setup_imports"), "import torch"),
        ("code", answer("linear"), "class Linear: pass"),
        ("code", locked("test_linear", 17), "assert False"),
        ("code", None, "HELPER = 1"),
        ("code", locked("demo_plot"), "plot()"),
        ("markdown", None, "# text"),
        ("code", answer("relu"), "class ReLU: pass"),
    ))
    assert [cell.label for cell in code.cells] == [
        "the set-up cell 'setup_imports'", "your answer cell for class Linear", "a cell you added ('HELPER = 1')",
        "your answer cell for class ReLU"]
    assert code.source == "import torch\n\nclass Linear: pass\n\nHELPER = 1\n\nclass ReLU: pass"
    assert code.notices == ()


def test_magics_and_shell_lines_are_dropped_with_a_notice():
    code = run(notebook(("code", answer("linear"), "%matplotlib inline\nclass Linear:\n    !ls\n    pass"),
                        ("code", answer("relu"), "%%time\nclass ReLU: pass")))
    assert code.cells[0].source == ("pass  # IPython line dropped by the grader\nclass Linear:\n"
                                    "    pass  # IPython line dropped by the grader\n    pass")
    assert code.cells[1].source == ""
    assert len(code.notices) == 2 and "not run by the grader" in code.notices[0]


def test_missing_repeated_and_retyped_answer_cells_are_named():
    missing = run(notebook(("code", answer("linear"), "")))
    assert missing.notices == ("the answer cell 'relu' is missing (deleted, or its metadata changed?); "
                               "code in cells you added is still run",)
    repeated = run(notebook(("code", answer("linear"), ""), ("code", answer("linear"), ""),
                            ("code", answer("relu"), "")))
    assert repeated.notices == ("the answer cell id 'linear' appears 2 times (cells 1, 2); all are run in order",)
    retyped = run(notebook(("markdown", answer("linear"), ""), ("code", answer("relu"), "")))
    assert retyped.notices == ("the answer cell 'linear' was changed to a markdown cell, so it is not run",)


def test_the_expected_answer_cells_come_from_the_caller():
    data = notebook(("code", answer("tanh"), "class Tanh: pass"))
    assert run(data, answers=("tanh",)).notices == ()
    assert len(run(data, answers=("tanh", "linear")).notices) == 1


def test_a_python_file_is_one_cell():
    code = extract(parse("layers.py", b"class Linear: pass\n", 1 << 20), answer_ids=ANSWERS)
    assert [(c.label, c.source) for c in code.cells] == [("layers.py", "class Linear: pass\n")]
    assert code.origin == "python" and code.notices == ()

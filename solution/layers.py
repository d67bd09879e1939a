"""Reference layers for the nn-from-scratch assignment: Linear, ReLU, Softmax, NLLLoss.

The reference answers live in one place: the answer cells of the instructor's notebook
`assignment/nn_from_scratch.ipynb`, where each class sits next to the derivation it implements and
its `### BEGIN SOLUTION` regions are what `autograder release` turns into stubs. This module runs
those cells, as the grader runs a submission: the locked set-up cells (`grade_id` starting with
`setup`: the imports) and then every answer cell (nbgrader `solution: true`), in notebook order.
So `from solution.layers import Linear` is the notebook's `Linear`, and an edit made in Jupyter is
the reference the next time this module is imported. Tracebacks show the cell's own lines.

Rows are examples. Dimension symbols used throughout:
    N      number of examples (any N >= 1)
    D_in   input features of a Linear layer
    D_out  output features of a Linear layer
    C      number of classes

Each layer keeps what its backward pass needs from the last forward call and returns the gradient
of the loss with respect to its input, in the dtype of its inputs, never modifying its arguments in
place, with basic tensor ops only (no torch.nn, no autograd, no torch.softmax / torch.relu).
"""
import json
import linecache
from pathlib import Path

NOTEBOOK = Path(__file__).resolve().parent.parent / "assignment" / "nn_from_scratch.ipynb"

__all__ = ["Linear", "ReLU", "Softmax", "NLLLoss", "NOTEBOOK", "reference_cells", "source"]


def reference_cells(notebook=NOTEBOOK) -> list[tuple[str, str]]:
    """
    The cells that define the reference, in notebook order.

    Inputs:
    - notebook: path of an instructor notebook (nbgrader source format)

    Returns:
    - list of (grade_id, source) for each set-up cell and each answer cell
    """
    cells = []
    for cell in json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        grade_id = str(meta.get("grade_id", ""))
        is_setup = meta.get("locked") and grade_id.startswith("setup")
        if cell.get("cell_type") == "code" and (meta.get("solution") or is_setup):
            text = cell["source"]
            cells.append((grade_id, "".join(text) if isinstance(text, list) else text))
    return cells


def source(notebook=NOTEBOOK) -> str:
    """The reference as the text of one module (set-up and answer cells): it imports only torch
    and math, so it also runs as a `.py` submission."""
    return "\n\n\n".join(text.strip("\n") for _, text in reference_cells(notebook)) + "\n"


def _run_cells(namespace: dict) -> None:
    """Execute the reference cells in `namespace`, each under its own file name for tracebacks."""
    for grade_id, text in reference_cells():
        filename = f"{NOTEBOOK}#{grade_id}"
        linecache.cache[filename] = (len(text), None, text.splitlines(keepends=True), filename)
        exec(compile(text, filename, "exec"), namespace)


_run_cells(globals())

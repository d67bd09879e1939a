"""The notebook's visible self-checks can be trusted: what costs hidden points shows ✗ before submitting.

The source notebook's set-up, helper, answer and test cells (without their hidden region) run in a
real Jupyter kernel, with one typical mistake per part that earlier self-checks let through:
an input changed in place (ReLU's h.clamp_, NLL's S.clamp_ on exact zeros) and a forbidden call
(torch.softmax, torch.nn.functional.linear). The reference answers show no ✗ at all.
"""
from __future__ import annotations

import re
import sys

import nbformat
import pytest

from solution.layers import NOTEBOOK

HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", re.S)
MISTAKES = {  # part -> (reference line, the mistake, the self-check that must show ✗)
    "relu": ("return h.clamp(min=0)", "return h.clamp_(min=0)", "h and dr unchanged"),
    "nll": ("self.S = S\n", "self.S = S.clamp_(min=1e-12)\n", "S unchanged"),
    "softmax": ("self.S = e / e.sum(dim=1, keepdim=True)", "self.S = torch.softmax(r, dim=1)",
                "uses none of the forbidden functions"),
    "linear": ("return x @ self.W + self.b", "return torch.nn.functional.linear(x, self.W.T, self.b)",
               "uses none of the forbidden functions"),
}


def _visible_cells(mistakes: dict) -> list:
    """The notebook's code as a student runs it: hidden regions gone, mistakes put in."""
    source = nbformat.read(NOTEBOOK, as_version=4)
    cells = []
    for cell in source.cells:
        meta = cell.metadata.get("nbgrader", {})
        grade_id = meta.get("grade_id", "")
        if cell.cell_type != "code" or not (grade_id.startswith(("setup", "helpers")) or meta.get("solution")
                                            or grade_id.startswith("test_")):
            continue
        text = HIDDEN.sub("", cell.source)
        if grade_id in mistakes:
            old, new, _ = mistakes[grade_id]
            assert text.count(old) == 1, f"{grade_id}: the reference changed, update this test ({old!r})"
            text = text.replace(old, new)
        cells.append(nbformat.v4.new_code_cell(text))
    return cells


def _run(cells, tmp_path, errors: list | None = None) -> str:
    """stdout of the cells run in a kernel; error outputs (ename: evalue) go to `errors`."""
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=cells)
    # allow_errors: a test cell with a ✗ stops at its end (self_checks_done); the next cells still run
    NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    if errors is not None:
        errors.extend(f"{o.get('ename')}: {o.get('evalue')}" for o in outputs if o.get("output_type") == "error")
    return "\n".join(o.get("text", "") for o in outputs if o.get("name") == "stdout")


def _verdicts(printed: str) -> dict[str, str]:
    """First line of each verdict: description -> ✓ or ✗ (the test cells' own words)."""
    return {line[2:]: line[0] for line in printed.splitlines() if line.startswith(("✓", "✗"))}


@pytest.mark.slow
def test_self_checks_catch_in_place_changes_and_forbidden_calls(tmp_path):
    printed = _run(_visible_cells(MISTAKES), tmp_path)
    verdicts = _verdicts(printed)
    for part, (_, mistake, description) in MISTAKES.items():
        failed = [d for d, mark in verdicts.items() if mark == "✗" and description in d]
        assert failed, f"{part}: {mistake!r} passes every visible self-check:\n{printed}"
    assert "torch.softmax" in printed or "calls softmax" in printed
    assert "NotImplementedError" not in printed


@pytest.mark.slow
def test_the_reference_answers_pass_every_self_check(tmp_path):
    errors: list = []
    printed = _run(_visible_cells({}), tmp_path, errors)
    verdicts = _verdicts(printed)
    assert len(verdicts) >= 20 and set(verdicts.values()) == {"✓"} and errors == [], (printed, errors)


def test_forbidden_check_works_without_the_grading_kit(monkeypatch):
    """A student's own Jupyter has no `autograder`: the watch on torch calls still names the call."""
    helpers = next(c.source for c in nbformat.read(NOTEBOOK, as_version=4).cells
                   if c.metadata.get("nbgrader", {}).get("grade_id") == "helpers_selfcheck")
    monkeypatch.setitem(sys.modules, "autograder.forbidden", None)  # import fails as without the kit
    namespace: dict = {}
    exec("import math\nimport torch\n" + helpers, namespace)

    class ReLU:
        def forward(self, h):
            return getattr(namespace["torch"], "re" + "lu")(h)

    with pytest.raises(AssertionError, match="ReLU calls relu"):
        namespace["expect_allowed"](ReLU, lambda: ReLU().forward(namespace["torch"].randn(3)))

    class Fine:
        def forward(self, h):
            return h.clamp(min=0)

    namespace["expect_allowed"](Fine, lambda: Fine().forward(namespace["torch"].randn(3)))


def test_the_notebooks_forbidden_list_is_grading_tomls(config):
    helpers = next(c.source for c in nbformat.read(NOTEBOOK, as_version=4).cells
                   if c.metadata.get("nbgrader", {}).get("grade_id") == "helpers_selfcheck")
    namespace: dict = {}
    exec("import math\nimport torch\n" + helpers, namespace)
    assert namespace["FORBIDDEN_MODULES"] == tuple(config.forbidden.modules)
    assert namespace["FORBIDDEN_FUNCTIONS"] == tuple(config.forbidden.functions)

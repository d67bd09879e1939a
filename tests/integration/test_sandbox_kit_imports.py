"""Student code cannot import the kit's modules, wherever they live in the package (#26 moved most
of them into subpackages): each import is refused inside the child, by its full name."""
import pytest

# a module of each folder a move made, and the ones holding what students must never read
KIT_MODULES = ["autograder.course.secret", "autograder.course.config", "autograder.scoring.diagnosis",
               "autograder.intake.forbidden", "autograder.feedback.report", "autograder.checks.softmax",
               "autograder.diagnosis", "solution.layers"]


@pytest.mark.parametrize("module", KIT_MODULES)
def test_student_code_cannot_import_a_kit_module(grader, tmp_path, reference_source, module):
    path = tmp_path / "mia.py"
    path.write_text(reference_source + f"""
try:
    import {module}
    REACHED = "imported {module}"
except ImportError as refused:
    REACHED = str(refused)


class ReLU(ReLU):
    def forward(self, h):
        raise RuntimeError(REACHED)
""")
    report = grader.grade(path, parts=("relu",))
    said = " ".join(check.message for check in report.checks if check.name.startswith("relu.forward"))
    assert f"module '{module}' is not available inside the grader" in said, said
    assert f"imported {module}" not in said

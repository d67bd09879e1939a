"""Names that files outside the kit import keep working after the modules moved (#26): released
notebooks (`autograder.notebook`, `autograder.forbidden`), instructors' nbgrader_config.py files
(`autograder.stamp`, the class paths `autograder nbgrader setup` writes) and courses' own checks
modules (`autograder.diagnosis`)."""
import pytest


def test_released_notebooks_find_grade_part_under_its_short_name():
    from autograder.notebook import grade_part
    from autograder.platforms import kernel_hook

    assert grade_part is kernel_hook.grade_part


def test_released_notebooks_self_check_still_scans_with_the_kit():
    from autograder.forbidden import scan_class

    class Softmax:
        def forward(self, r):
            import torch
            return torch.softmax(r, dim=1)

    assert any("torch.softmax" in line for line in scan_class(Softmax))


def test_course_checks_modules_written_before_the_move_build_their_catalogue():
    import autograder.diagnosis as old
    from autograder.scoring import diagnosis

    assert old.__all__ and all(getattr(old, name) is getattr(diagnosis, name) for name in old.__all__)
    for name in ("inputs_of", "output_of", "variant", "wrong_backward", "wrong_forward", "changes_input", "Region"):
        assert name in old.__all__  # what docs/diagnosis.md shows a course importing


def test_instructors_nbgrader_config_imports_the_stamp_preprocessor():
    pytest.importorskip("nbgrader")
    from autograder.platforms.nbgrader_stamp import StampGradingToml
    from autograder.stamp import stamped_preprocessors

    assert stamped_preprocessors()[0] is StampGradingToml


# As `autograder nbgrader setup` has written them into courses' nbgrader_config.py files.
COURSE_CONFIG_PATHS = [
    "autograder.platforms.nbgrader_autograde.KitCellMetadata",
    "autograder.platforms.nbgrader_autograde.OverwriteCellsQuietly",
    "autograder.platforms.nbgrader_autograde.KitGrade",
    "autograder.platforms.nbgrader_autograde.KitNotebookExporter",
]


def test_the_class_paths_in_courses_configs_import_as_nbgrader_imports_them():
    pytest.importorskip("nbgrader")
    from nbconvert.exporters import Exporter
    from nbgrader.preprocessors import NbGraderPreprocessor
    from traitlets.utils.importstring import import_item

    from autograder.platforms.nbgrader_course import KIT_AUTOGRADE, KIT_EXPORTER, KIT_SANITIZE

    assert set(COURSE_CONFIG_PATHS) <= {*KIT_SANITIZE, *KIT_AUTOGRADE, KIT_EXPORTER}
    for path in COURSE_CONFIG_PATHS:
        cls = import_item(path)
        assert issubclass(cls, (NbGraderPreprocessor, Exporter)) and cls.__name__ == path.rsplit(".", 1)[1]

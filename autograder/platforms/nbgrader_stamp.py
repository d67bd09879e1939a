"""nbgrader preprocessor: test cells' points and stated values from grading.toml, so the student
notebook and the gradebook follow it.

`autograder release` puts `StampGradingToml` first in `GenerateAssignment.preprocessors` (a configurable
list; nothing of nbgrader is copied or overridden). An instructor who runs plain
`nbgrader generate_assignment` can do the same in `nbgrader_config.py`, through the kit's stable
name for it (autograder/stamp.py):

    from autograder.stamp import stamped_preprocessors
    c.GenerateAssignment.preprocessors = stamped_preprocessors()
    c.StampGradingToml.grading_toml = "/path/to/grading.toml"   # default: the kit's

Importing this module needs nbgrader (the kit's `notebook` extra).
"""
from __future__ import annotations

from nbgrader.converters import GenerateAssignment
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

from ..course.config import load_config
from ..consistency import stamp


class StampGradingToml(NbGraderPreprocessor):
    """Set every kit test cell's `points` (the cell calling grade_part("<part>")) and every value
    marked <data value="key">…</data> in markdown from grading.toml."""

    grading_toml = Unicode("", help="grading.toml to take the points from; empty: the kit's own").tag(config=True)

    def preprocess(self, nb, resources):
        for line in stamp(nb.cells, load_config(self.grading_toml or None)):
            self.log.info("from grading.toml: %s", line)
        return nb, resources


def stamped_preprocessors() -> list:
    """GenerateAssignment's default preprocessors with StampGradingToml first (before the gradebook and
    the checksums record the points)."""
    return [StampGradingToml, *GenerateAssignment.class_traits()["preprocessors"].default()]

"""The name instructors' nbgrader_config.py files import the kit's stamping preprocessor by:

    from autograder.stamp import stamped_preprocessors
    c.GenerateAssignment.preprocessors = stamped_preprocessors()

The preprocessor itself is an nbgrader adapter and lives with the others, in
platforms/nbgrader_stamp.py; this name stays so that configs already written keep working.
Importing it needs nbgrader (the kit's `notebook` extra).
"""
from .platforms.nbgrader_stamp import StampGradingToml, stamped_preprocessors

__all__ = ["StampGradingToml", "stamped_preprocessors"]

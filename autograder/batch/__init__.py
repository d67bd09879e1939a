"""Batch grading: a whole class at once, from a folder, a zip, an nbgrader tree or a Gradescope
export, into results/<student>.json, grades.csv and report.html (see run.py for the flow)."""
from .run import BatchOutcome, grade_batch

__all__ = ["BatchOutcome", "grade_batch"]

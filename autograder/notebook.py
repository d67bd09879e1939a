"""`autograder.platforms.kernel_hook` under the short name hidden test cells use: every released
notebook, the kit's own included, runs `from autograder.notebook import grade_part`.

It warns nothing at run time on purpose: nbgrader zeroes a test cell that writes to stderr.
"""
from .platforms.kernel_hook import find_notebook, grade_part, part_feedback

__all__ = ["find_notebook", "grade_part", "part_feedback"]

"""Deprecated name of `autograder.platforms.kernel_hook`, kept because released course notebooks
run `from autograder.notebook import grade_part` in their hidden tests.

It warns nothing at run time on purpose: nbgrader zeroes a test cell that writes to stderr.
"""
from .platforms.kernel_hook import find_notebook, grade_part, part_feedback

__all__ = ["find_notebook", "grade_part", "part_feedback"]

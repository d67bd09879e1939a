"""Attack: sys.exit() at import, hoping the grader stops and reports success.

Expected: SystemExit only ends the cell (as in Jupyter); the classes defined before it are
graded as usual, and a notice names the SystemExit.
"""
import sys

sys.exit("grading is over, everything passed")

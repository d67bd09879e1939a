"""The name course files written before the move import a part's catalogue of mistakes by:

    from autograder.diagnosis import inputs_of, output_of, variant, wrong_backward

(a course's own checks module, docs/diagnosis.md). The engine is scoring/diagnosis.py, where new
checks modules import these from; this name stays so that courses' files keep working.
"""
from .scoring.diagnosis import (
    Region, Variant, changes_input, inputs_of, output_of, variant, wrong_backward, wrong_forward,
)

__all__ = ["Region", "Variant", "changes_input", "inputs_of", "output_of", "variant", "wrong_backward",
           "wrong_forward"]

"""Attack: recursion bombs. ReLU.forward lifts the recursion limit and recurses in C (repr of a
deeply nested list) until the C stack overflows; Softmax.forward recurses without end under the
default limit; NLLLoss.forward evaluates 100000 nested parentheses.

Expected: relu's child dies of a segmentation fault (relu skipped after 3 restarts), softmax
fails with RecursionError, nll with the parser's error; linear is graded normally.
"""
import sys


def _c_stack_overflow(self, h):
    sys.setrecursionlimit(1 << 30)
    nested = []
    for _ in range(300_000):
        nested = [nested]
    return repr(nested)


def _endless(self, r):
    return _endless(self, r)


def _nested_eval(self, S, y):
    return eval("(" * 100_000 + ")" * 100_000)


ReLU.forward = _c_stack_overflow
Softmax.forward = _endless
NLLLoss.forward = _nested_eval

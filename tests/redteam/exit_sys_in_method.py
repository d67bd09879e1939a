"""Attack: sys.exit() inside NLLLoss.backward.

Expected: the checks that call NLLLoss.backward (and train) fail with SystemExit; the rest pass.
"""
import sys


def _exit_backward(self):
    sys.exit(0)


NLLLoss.backward = _exit_backward

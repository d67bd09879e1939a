"""Attack: sleep inside `except BaseException: pass` in NLLLoss.forward, so no exception (timeout,
KeyboardInterrupt, SystemExit) can end it.

Expected: nll and train hit the time limit; other parts are unaffected.
"""
import time


def _unkillable_forward(self, S, y):
    while True:
        try:
            time.sleep(3600)
        except BaseException:
            pass


NLLLoss.forward = _unkillable_forward

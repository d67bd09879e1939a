"""Attack (or just a slow student): correct code that sleeps 0.5 s in every ReLU.forward.

Expected: relu's checks (a few calls each) finish inside the per-check limit and pass; train,
which calls ReLU.forward hundreds of times, hits its time limit; nothing else changes.
"""
import time

_fast_forward = ReLU.forward


def _slow_forward(self, h):
    time.sleep(0.5)
    return _fast_forward(self, h)


ReLU.forward = _slow_forward

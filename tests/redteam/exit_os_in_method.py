"""Attack: os._exit(3) inside Softmax.forward, killing the grader's process mid-check.

Expected: softmax (and train, which calls it) lose their checks after a few restarts; every other
part is graded normally.
"""
_os = __import__("random")._os


def _exit_forward(self, r):
    _os._exit(3)


Softmax.forward = _exit_forward

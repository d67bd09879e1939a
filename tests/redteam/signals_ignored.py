"""Attack: ignore SIGTERM, SIGINT, SIGHUP and SIGXCPU, then spin forever in ReLU.backward.

Expected: the first ReLU.backward check hits the time limit (the parent kills with SIGKILL, which
cannot be ignored), the rest of relu is skipped, train times out too; other parts are unaffected.
"""
import sys

_signal = sys.modules["signal"]
for _name in ("SIGTERM", "SIGINT", "SIGHUP", "SIGXCPU", "SIGUSR1"):
    _signal.signal(getattr(_signal, _name), _signal.SIG_IGN)


def _spin_backward(self, dr):
    while True:
        pass


ReLU.backward = _spin_backward

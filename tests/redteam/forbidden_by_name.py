"""Attack (#14 item 10): torch.softmax, a forbidden API, with the run-time guard switched off, and
every name built at run time so no name the syntax scan knew appears in the source:
getattr(getattr(torch, "_C"), "Disable" + "TorchFunction"). Before: 58/58 and no notice at all.

Expected: the name guard is off, but the operation that runs is softmax's all the same (#22 item 1):
Softmax.forward loses its checks. The report also asks the instructor to review the code, twice:
the syntax scan names the getattr calls on a module (a private attribute, a computed name), and at
run time the switch itself is seen.
"""
import torch

_internals = getattr(torch, "_" + "C")
_switch_off = getattr(_internals, "Disable" + "Torch" + "Function")
_softmax = getattr(torch, "soft" + "max")


def _softmax_unguarded(self, r):
    with _switch_off():
        self.S = _softmax(r, dim=1)
    return self.S


Softmax.forward = _softmax_unguarded

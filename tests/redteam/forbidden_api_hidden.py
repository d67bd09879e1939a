"""Attack (not in the list of the issue; a known limit): use torch.softmax, a forbidden API, with
the run-time guard switched off (torch._C.DisableTorchFunction) and the name built at run time,
so neither the guard nor the syntax scan sees it.

Expected today: the checks pass (the guard runs inside the child, which student code controls),
but the report carries a notice asking the instructor to review the code. See README.
"""
import torch


def _hidden_softmax(self, r):
    with torch._C.DisableTorchFunction():
        self.S = getattr(torch, "soft" + "max")(r, dim=1)
    return self.S


Softmax.forward = _hidden_softmax

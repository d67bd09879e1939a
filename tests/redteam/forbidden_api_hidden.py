"""Attack: use torch.softmax, a forbidden API, with the run-time name guard switched off
(torch._C.DisableTorchFunction) and the name built at run time, so no name of it is seen.

Expected: the operation that runs is softmax's (aten._softmax) whatever its name, so Softmax.forward
loses its checks (#22 item 1); the report also asks the instructor to review the switch.
"""
import torch


def _hidden_softmax(self, r):
    with torch._C.DisableTorchFunction():
        self.S = getattr(torch, "soft" + "max")(r, dim=1)
    return self.S


Softmax.forward = _hidden_softmax

"""Attack: Linear.forward returns a 64 MB tensor in every check (the grader kept every frame, up
to 256 MB each, and grew to gigabytes for one submission).

Expected: each such frame is refused unread ("outputs over 4 MB"); linear and train lose their
checks; the rest is graded.
"""
import torch


def _huge_forward(self, x):
    return torch.zeros(8 << 20, dtype=torch.float64)


Linear.forward = _huge_forward

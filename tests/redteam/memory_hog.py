"""Attack: exhaust memory. At import a 1 TB tensor (caught); Linear.forward asks for a 64 GB
bytearray; Softmax.forward grows a list of 1 MB blocks until memory runs out.

Expected: linear, softmax and train fail with MemoryError; relu and nll are graded normally; the
grader's own memory is untouched.
"""
import torch

try:
    _huge = torch.empty(1 << 37, dtype=torch.float64)
except (RuntimeError, MemoryError):
    pass


def _hog_forward(self, x):
    return bytearray(64 << 30)


def _grow_forward(self, r):
    blocks = []
    while True:
        blocks.append(bytearray(1 << 20))


Linear.forward = _hog_forward
Softmax.forward = _grow_forward

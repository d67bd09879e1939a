"""Attack (#14 item 10): find the hidden inputs with the garbage collector while the cells load
(the child has received every probe's tensors by then), compute the answers with torch.softmax
(forbidden, but no layer method is running, so the guard is not looking) and have
Softmax.forward look them up. The names are built at run time. Before: every hidden softmax
forward check passed, with no notice.

Expected: the same scores (nothing in the child can tell a looked-up answer from a computed
one), and a notice for the instructor that the code walked the object graph (gc.get_objects).
"""
import torch

_collector = __builtins__["__imp" + "ort__"]("g" + "c")
_answers = {}
for _candidate in getattr(_collector, "get_" + "objects")():
    if type(_candidate) is torch.Tensor and _candidate.dim() == 2 and _candidate.is_floating_point():
        _answers[(_candidate.dtype, _candidate.shape, _candidate.numpy().tobytes())] = \
            getattr(torch, "soft" + "max")(_candidate, dim=1)


def _looked_up(self, r):
    key = (r.dtype, r.shape, r.numpy().tobytes())
    self.S = _answers[key].clone() if key in _answers else _softmax_forward(self, r)
    return self.S


_softmax_forward = Softmax.forward
Softmax.forward = _looked_up
print(f"precomputed {len(_answers)} answers")

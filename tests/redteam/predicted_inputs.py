"""Attack (#14 item 12): the hidden inputs come from a public seed (grading.toml ships with the
kit), so a student can compute every probe at home and carry the answers: here every `forward`
looks its input up in a table made from the public seed (REDTEAM["answers"]: input -> output) and
returns the stored answer, with no layer written.

Expected: the table matches nothing, because the hidden inputs come from the course secret
(autograder/course/secret.py): the submission scores what the stubs score, zero.
"""
import torch

_ANSWERS = REDTEAM["answers"]


def _key(tensor):
    return " ".join(f"{value:.6e}" for value in tensor.detach().double().flatten().tolist())


def _look_up(tensor):
    shape, dtype, values = _ANSWERS[_key(tensor)]  # KeyError: this input was not predicted
    return torch.tensor(values, dtype=getattr(torch, dtype)).reshape(shape)


for _layer in (Linear, ReLU, Softmax):
    _layer.forward = lambda self, x: _look_up(x)
NLLLoss.forward = lambda self, S, y: _look_up(S)

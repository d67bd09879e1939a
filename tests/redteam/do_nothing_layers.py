"""Attack (#14 item 8): layers that compute nothing. Every method body is `pass`, so no input is
ever modified: before the fix the eight `inputs_unchanged` checks gave 8 points for no work.

Expected: every check scores 0; an inputs-unchanged check counts only when the method under test
returned a tensor of the right shape and dtype.
"""


class Linear:
    def __init__(self, in_features, out_features, generator=None):
        pass

    def forward(self, x):
        pass

    def backward(self, dh):
        pass


class ReLU:
    def forward(self, h):
        pass

    def backward(self, dr):
        pass


class Softmax:
    def forward(self, r):
        pass

    def backward(self, dS):
        pass


class NLLLoss:
    def forward(self, S, y):
        pass

    def backward(self):
        pass

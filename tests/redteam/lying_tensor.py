"""Attack: outputs that lie. Softmax.forward returns wrong values (doubled) in a tensor subclass
whose __torch_function__ answers True to allclose/equal and whose == is always True;
Linear.forward returns an object that is not a tensor but claims to be one (__class__, shape,
dtype) and refuses to be read.

Expected: the grader sees only the numbers: the softmax forward values fail, the pretender is
reported as "h was a _Pretender, expected a tensor"; checks that do not use these outputs pass.
"""
import torch


class _Liar(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in ("allclose", "equal", "__eq__", "eq", "isclose"):
            return True
        return super().__torch_function__(func, types, args, kwargs or {})

    def __eq__(self, other):
        return True

    def detach(self):
        raise RuntimeError("read me if you can")


class _Pretender:
    __class__ = property(lambda self: torch.Tensor)
    shape = torch.Size([5, 3])
    dtype = torch.float64

    def detach(self):
        raise RuntimeError("there is no tensor here")


_softmax_forward = Softmax.forward
_linear_forward = Linear.forward


def _lying_softmax(self, r):
    return (_softmax_forward(self, r) * 2).as_subclass(_Liar)


def _pretending_linear(self, x):
    _linear_forward(self, x)  # keeps what backward needs, so only forward's outputs lie
    return _Pretender()


Softmax.forward = _lying_softmax
Linear.forward = _pretending_linear

"""The forbidden-API guard's verdicts, cached per callable (every torch call of a student method
goes through it), stay right whatever student code hands it."""
import torch

from autograder.config import load_config
from autograder.sandbox.guard import ForbiddenGuard


def _guard() -> ForbiddenGuard:
    forbidden = load_config().forbidden
    return ForbiddenGuard(forbidden.modules, forbidden.functions, forbidden.attributes)


class _Liar:
    """Equal to everything, with softmax's hash: a dict keyed by callables would take it for softmax."""
    __name__, __module__ = "harmless", "mine"

    def __eq__(self, other):
        return True

    def __hash__(self):
        return hash(torch.softmax)

    def __call__(self, *args):
        return None


def test_a_callable_with_a_lying_eq_cannot_borrow_a_cached_verdict():
    guard = _guard()
    assert guard._forbidden(_Liar(), None) is None  # judged, and not remembered
    assert guard._forbidden(torch.softmax, None) == "torch.softmax"
    assert guard._forbidden(_Liar(), None) is None  # nor does it take softmax's verdict


def test_verdicts_repeat_and_keyword_arguments_are_judged_on_every_call():
    guard = _guard()
    for _ in range(2):
        assert guard._forbidden(torch.Tensor.sum, None) is None
        assert guard._forbidden(torch.zeros, {"requires_grad": True}) == "zeros(requires_grad=True)"
        assert guard._forbidden(torch.zeros, {"dtype": torch.float64}) is None
        assert guard._forbidden(torch.Tensor.softmax, None) == "Tensor.softmax"


def test_the_guard_sees_calls_through_torch_functions():
    guard = _guard()
    x = torch.randn(3, 4)
    with guard:
        x.clamp(min=0)
        getattr(torch, "soft" + "max")(x, dim=1)
    assert guard.hits == ["torch.softmax"]

"""The forbidden-API guard's verdicts, cached per callable (every torch call of a student method
goes through it), stay right whatever student code hands it."""
import sys

import torch

from autograder.course.config import load_config
from autograder.sandbox.guard import OPERATIONS_WATCHED, ForbiddenGuard


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


# --- what runs, not what it is called (#22 items 1 and 2) -------------------------------------------

def _held(guard: ForbiddenGuard, *tensors):
    guard.hold(list(tensors))
    return tensors


def _hits_of(fn, guard: ForbiddenGuard | None = None) -> tuple[list[str], list[str]]:
    """(forbidden hits, notes for the instructor) of one guarded call of fn."""
    guard = guard or _guard()
    guard.new_probe()
    guard.call("Layer.method", fn, [])
    return guard.take(), guard.unseen


def test_forbidden_functions_are_caught_by_the_operation_they_run():
    """torch._softmax, torch.ops.aten.relu and aten.nll_loss_forward (and their gradients) are
    softmax, relu and nll_loss under other names."""
    guard = _guard()
    x, labels = _held(guard, torch.randn(5, 6, dtype=torch.float64), torch.arange(5))
    calls = {
        "softmax": lambda: torch._softmax(x, 1, False),
        "softmax's gradient": lambda: torch._softmax_backward_data(x, x, 1, x.dtype),
        "relu": lambda: torch.ops.aten.relu.default(x),
        "relu's gradient": lambda: torch.ops.aten.threshold_backward(x, x, 0),
        "nll_loss": lambda: torch.ops.aten.nll_loss_forward(x, labels, None, 1, -100),
        "log_softmax": lambda: torch._log_softmax(x, 1, False),
    }
    for name, call in calls.items():
        hits, _ = _hits_of(call, guard)
        assert hits and hits[0].startswith("aten."), f"{name}: {hits}"


def test_a_backward_pass_is_caught_with_the_name_guard_popped():
    guard = _guard()
    (x,) = _held(guard, torch.randn(5, 6, dtype=torch.float64))

    def by_autograd():
        with torch.overrides._pop_mode_temporarily():
            leaf = x.detach().requires_grad_()
            (leaf * leaf).sum().backward()
            return leaf.grad

    hits, _ = _hits_of(by_autograd, guard)
    assert hits == ["autograd (a backward pass ran)"]


def test_undoing_the_guard_is_seen_by_provenance():
    """With both halves popped nothing is seen running; what the method returns, keeps or feeds to
    an operation was then made out of the guard's sight, and the instructor hears of it."""
    guard = _guard()
    (x,) = _held(guard, torch.randn(5, 6, dtype=torch.float64))

    def unguarded_softmax():
        with torch.overrides._pop_mode_temporarily(), torch.utils._python_dispatch._pop_mode_temporarily():
            return torch.softmax(x, 1)

    def laundered():
        return unguarded_softmax().clone()

    def removed():
        torch.utils._python_dispatch._pop_mode()
        return x.exp()

    for fn, note in ((unguarded_softmax, "returned or kept a tensor made with the guard off"),
                     (laundered, "used a tensor made with the guard off"),
                     (removed, "the forbidden-API guard was removed")):
        hits, unseen = _hits_of(fn)
        assert hits == [] and any(note in text for text in unseen), (fn.__name__, unseen)


class _Honest:
    """Plain tensor code of the kinds honest layers are made of."""
    scale = torch.tensor(2.0, dtype=torch.float64)  # a class-level constant, made before any guard

    def forward(self, x):
        import numpy as np

        self.x = x
        z = x - x.max(dim=1, keepdim=True).values
        e = torch.exp(z)
        S = e / e.sum(1, keepdim=True)
        picked = S.gather(1, torch.zeros(len(x), 1, dtype=torch.long))
        mask = torch.where(x > 0, x, torch.zeros_like(x)).clamp(min=0)
        back = torch.from_numpy(np.asarray(x.numpy() * 2)) + torch.tensor(1.0) * self.scale
        print(x[:1], f"{S.sum():.3f}", repr(mask[0]))
        return S @ torch.eye(S.shape[1], dtype=S.dtype) + 0 * (picked.sum() + mask.matmul(mask.T).sum() + back.sum())

    def backward(self, dS):
        self.dW = self.x.T @ dS
        return dS.mm(torch.ones(dS.shape[1], dS.shape[1], dtype=dS.dtype)) * self.x.sign().clamp(min=0)


def test_honest_tensor_code_has_no_hit_and_no_note():
    guard = _guard()
    guard.hold(vars(sys.modules[__name__]), depth=3)  # as the child holds the cells' namespace
    layer = guard.call("Honest.__init__", _Honest, [])
    (x,) = _held(guard, torch.randn(5, 6, dtype=torch.float64))
    out = guard.call("Honest.forward", layer.forward, [x])
    guard.call("Honest.backward", layer.backward, [out])
    assert guard.take() == [] and guard.unseen == []


def test_the_guard_leaves_no_mode_behind():
    guard = _guard()
    depths = torch._C._len_torch_function_stack(), torch._C._len_torch_dispatch_stack()
    guard.call("Layer.method", lambda: torch.overrides._push_mode(torch.overrides.TorchFunctionMode()), [])
    assert (torch._C._len_torch_function_stack(), torch._C._len_torch_dispatch_stack()) == depths


def test_past_a_methods_first_calls_in_a_probe_names_are_judged_not_operations():
    """The train check's steps repeat the same methods: the guard watches the operations of a
    method's first calls in a probe, and its names throughout."""
    guard = _guard()
    (x,) = _held(guard, torch.randn(5, 6, dtype=torch.float64))
    for _ in range(OPERATIONS_WATCHED):
        assert _hits_after_call(guard, lambda: torch._softmax(x, 1, False)) == ["aten._softmax (what softmax runs)"]
    assert _hits_after_call(guard, lambda: torch._softmax(x, 1, False)) == []
    assert _hits_after_call(guard, lambda: torch.softmax(x, 1)) == ["torch.softmax"]
    guard.new_probe()
    assert _hits_after_call(guard, lambda: torch._softmax(x, 1, False)) == ["aten._softmax (what softmax runs)"]


def _hits_after_call(guard, fn):
    guard.call("Softmax.forward", fn, [])
    return guard.take()


_EPSILON = [torch.tensor(1e-12, dtype=torch.float64)]  # module-level, in a list


def _with_default(x, eps=torch.tensor(1e-12, dtype=torch.float64)):  # noqa: B008  the point: made at definition
    return x.clamp(min=0) + eps + _EPSILON[0]


def test_tensors_made_before_any_call_are_the_students_own():
    """Module-level tensors, in lists too, and default arguments were made by the cells, before any
    guard: using them is no sign of a guard undone."""
    guard = _guard()
    guard.hold(vars(sys.modules[__name__]), depth=3)  # as the child holds the cells' namespace
    (x,) = _held(guard, torch.randn(5, 6, dtype=torch.float64))
    guard.call("Layer.forward", _with_default, [x])
    assert guard.take() == [] and guard.unseen == []


def test_a_courses_own_forbidden_function_is_judged_by_the_operation_it_runs():
    """A course that forbids tanh (not in OPERATIONS) gets aten.tanh and tanh_backward judged too."""
    forbidden = load_config().forbidden
    guard = ForbiddenGuard(forbidden.modules, [*forbidden.functions, "tanh"], forbidden.attributes)
    (x,) = _held(guard, torch.randn(5, 6, dtype=torch.float64))
    assert _hits_of(lambda: torch.ops.aten.tanh.default(x), guard)[0] == ["aten.tanh (what tanh runs)"]
    assert _hits_of(lambda: torch.ops.aten.tanh_backward.default(x, x), guard)[0] == [
        "aten.tanh_backward (what tanh runs)"]
    assert _hits_of(lambda: (x.exp() - (-x).exp()) / (x.exp() + (-x).exp()), guard)[0] == []

"""The reference layers against torch autograd and finite differences, rule by rule (the student contract).

Oracles: torch autograd in float64 (random upstream gradients, distinct dims, and N = 1) and
float64 central finite differences with h = 1e-6, never across the ReLU kink. Tolerances are
stated next to each comparison; assert_close also checks shape and dtype, so a (1, D) gradient
never passes for a (D,) one.
"""
import time

import pytest
import torch
from torch.overrides import TorchFunctionMode

from solution import MLP, Linear, NLLLoss, ReLU, Softmax, fit_digits, load_digits_split, sgd_step
from solution.digits import one_hot

N, D_IN, D_OUT, C = 5, 4, 3, 6
F64 = dict(rtol=1e-10, atol=1e-12)  # autograd vs hand-written, both float64
FD = dict(rtol=1e-6, atol=1e-8)  # central differences, h = 1e-6, float64


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


def randn(*shape, gen, dtype=torch.float64):
    return torch.randn(*shape, generator=gen, dtype=dtype)


def one_hot_rows(n, c, gen, dtype=torch.float64):
    return one_hot(torch.randint(c, (n,), generator=gen), c, dtype=dtype)


def make_linear(d_in, d_out, gen, dtype=torch.float64):
    layer = Linear(d_in, d_out)
    layer.W = randn(d_in, d_out, gen=gen, dtype=dtype)
    layer.b = randn(d_out, gen=gen, dtype=dtype)
    return layer


def probabilities(n, c, gen, dtype=torch.float64):
    """Rows of positive probabilities bounded away from 0 (safe for finite differences)."""
    p = torch.rand(n, c, generator=gen, dtype=dtype) + 0.5
    return p / p.sum(dim=1, keepdim=True)


def central_differences(f, x, h=1e-6):
    """Gradient of the scalar f at x, (f(x + h e_k) - f(x - h e_k)) / 2h for each entry k."""
    grad = torch.zeros_like(x)
    for k in range(x.numel()):
        xp, xm = x.clone(), x.clone()
        xp.view(-1)[k] += h
        xm.view(-1)[k] -= h
        grad.view(-1)[k] = (f(xp) - f(xm)) / (2 * h)
    return grad


# --- Linear --------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [N, 1])
def test_linear_matches_autograd(n, gen):
    layer = make_linear(D_IN, D_OUT, gen)
    x, dh = randn(n, D_IN, gen=gen), randn(n, D_OUT, gen=gen)
    h = layer.forward(x)
    dx = layer.backward(dh)

    xa, Wa, ba = (t.clone().requires_grad_() for t in (x, layer.W, layer.b))
    ha = xa @ Wa + ba
    ha.backward(dh)
    torch.testing.assert_close(h, ha.detach(), **F64)
    torch.testing.assert_close(dx, xa.grad, **F64)
    torch.testing.assert_close(layer.dW, Wa.grad, **F64)
    torch.testing.assert_close(layer.db, ba.grad, **F64)


def test_linear_matches_finite_differences(gen):
    layer = make_linear(D_IN, D_OUT, gen)
    x, dh = randn(N, D_IN, gen=gen), randn(N, D_OUT, gen=gen)
    layer.forward(x)
    dx = layer.backward(dh)
    W, b = layer.W, layer.b

    def loss(x=x, W=W, b=b):  # L = <dh, h>, so dL/dh = dh
        return ((x @ W + b) * dh).sum()

    torch.testing.assert_close(dx, central_differences(lambda t: loss(x=t), x), **FD)
    torch.testing.assert_close(layer.dW, central_differences(lambda t: loss(W=t), W), **FD)
    torch.testing.assert_close(layer.db, central_differences(lambda t: loss(b=t), b), **FD)


def test_linear_shapes_on_non_square_dims(gen):
    layer = make_linear(D_IN, D_OUT, gen)
    assert layer.forward(randn(N, D_IN, gen=gen)).shape == (N, D_OUT)
    assert layer.backward(randn(N, D_OUT, gen=gen)).shape == (N, D_IN)
    assert layer.dW.shape == (D_IN, D_OUT)
    assert layer.db.shape == (D_OUT,)  # not (1, D_OUT)


def test_linear_init_is_seeded_uniform():
    a = Linear(16, 7, generator=torch.Generator().manual_seed(3))
    b = Linear(16, 7, generator=torch.Generator().manual_seed(3))
    assert a.W.shape == (16, 7) and a.b.shape == (7,)
    assert a.dW is None and a.db is None
    torch.testing.assert_close(a.W, b.W, rtol=0, atol=0)
    assert a.W.abs().max() <= 0.25 and a.b.abs().max() <= 0.25  # 1 / sqrt(16)


# --- ReLU ----------------------------------------------------------------------------------

def test_relu_matches_autograd(gen):
    h, dr = randn(N, C, gen=gen), randn(N, C, gen=gen)
    layer = ReLU()
    r = layer.forward(h)
    dh = layer.backward(dr)

    ha = h.clone().requires_grad_()
    ra = ha.clamp(min=0)
    ra.backward(dr)
    torch.testing.assert_close(r, ra.detach(), **F64)
    torch.testing.assert_close(dh, ha.grad, **F64)


def test_relu_matches_finite_differences_away_from_kink(gen):
    h = randn(N, C, gen=gen)
    h = torch.where(h.abs() < 1e-3, h + 0.1, h)  # keep every entry at least 1e-3 from 0
    dr = randn(N, C, gen=gen)
    layer = ReLU()
    layer.forward(h)
    fd = central_differences(lambda t: (t.clamp(min=0) * dr).sum(), h)
    torch.testing.assert_close(layer.backward(dr), fd, **FD)


def test_relu_gradient_at_exact_zero_is_zero():
    layer = ReLU()
    layer.forward(torch.tensor([[0.0, -1.0, 2.0], [0.0, 0.0, 3.0]], dtype=torch.float64))
    dh = layer.backward(torch.ones(2, 3, dtype=torch.float64))
    expected = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(dh, expected, rtol=0, atol=0)


# --- Softmax -------------------------------------------------------------------------------

def softmax_autograd(r):
    e = (r - r.max(dim=1, keepdim=True).values).exp()
    return e / e.sum(dim=1, keepdim=True)


@pytest.mark.parametrize("n", [N, 1])
def test_softmax_matches_autograd(n, gen):
    r, dS = randn(n, C, gen=gen), randn(n, C, gen=gen)
    layer = Softmax()
    S = layer.forward(r)
    dr = layer.backward(dS)

    ra = r.clone().requires_grad_()
    Sa = torch.softmax(ra, dim=1)  # the test's oracle may use torch's own softmax
    Sa.backward(dS)
    torch.testing.assert_close(S, Sa.detach(), **F64)
    torch.testing.assert_close(dr, ra.grad, **F64)
    torch.testing.assert_close(S.sum(dim=1), torch.ones(n, dtype=torch.float64), **F64)


def test_softmax_matches_finite_differences(gen):
    r, dS = randn(N, C, gen=gen), randn(N, C, gen=gen)
    layer = Softmax()
    layer.forward(r)
    fd = central_differences(lambda t: (softmax_autograd(t) * dS).sum(), r)
    torch.testing.assert_close(layer.backward(dS), fd, **FD)


def test_softmax_is_stable_for_logits_offset_by_1000(gen):
    r = randn(N, C, gen=gen)
    offset = torch.tensor([1000.0, -1000.0, 1000.0, -1000.0, 0.0], dtype=torch.float64)[:, None]
    dS = randn(N, C, gen=gen)
    layer = Softmax()
    S = layer.forward(r + offset)
    dr = layer.backward(dS)
    assert torch.isfinite(S).all() and torch.isfinite(dr).all()
    torch.testing.assert_close(S, torch.softmax(r, dim=1), **F64)  # shift invariance
    reference = Softmax()
    reference.forward(r)
    torch.testing.assert_close(dr, reference.backward(dS), **F64)


class LargestTensor(TorchFunctionMode):
    """Records the largest number of elements of any tensor a torch call returns."""

    def __init__(self):
        super().__init__()
        self.numel = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.numel = max(self.numel, t.numel())
        return out


def test_softmax_backward_is_a_vector_jacobian_product_not_a_jacobian(gen):
    n, c = 64, 50  # an (N, C, C) Jacobian would hold 160000 elements; N * C is 3200
    layer = Softmax()
    layer.forward(randn(n, c, gen=gen))
    dS = randn(n, c, gen=gen)
    with LargestTensor() as probe:
        layer.backward(dS)
    assert probe.numel <= n * c


def test_softmax_backward_handles_large_batches_quickly(gen):
    n = c = 2000  # a Jacobian would need 8e9 float32 elements (32 GB)
    layer = Softmax()
    layer.forward(randn(n, c, gen=gen, dtype=torch.float32))
    start = time.perf_counter()
    dr = layer.backward(randn(n, c, gen=gen, dtype=torch.float32))
    assert dr.shape == (n, c)
    assert time.perf_counter() - start < 2.0


# --- NLLLoss -------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [N, 1])
def test_nll_matches_autograd(n, gen):
    S, y = probabilities(n, C, gen), one_hot_rows(n, C, gen)
    layer = NLLLoss()
    L = layer.forward(S, y)
    dS = layer.backward()

    Sa = S.clone().requires_grad_()
    La = -(y * Sa.log()).sum() / n
    La.backward()
    assert L.shape == ()  # a 0-dim tensor, not (1,) or (N,)
    torch.testing.assert_close(L, La.detach(), **F64)
    torch.testing.assert_close(dS, Sa.grad, **F64)


def test_nll_matches_finite_differences(gen):
    S, y = probabilities(N, C, gen), one_hot_rows(N, C, gen)
    layer = NLLLoss()
    layer.forward(S, y)
    fd = central_differences(lambda t: -(y * t.log()).sum() / N, S)
    torch.testing.assert_close(layer.backward(), fd, **FD)


def test_nll_is_finite_with_exact_zeros_off_the_true_class():
    labels = torch.tensor([0, 2, 5, 1, 3])
    y = one_hot(labels, C, dtype=torch.float64)
    S = y.clone()  # all mass on the true class ...
    S[0, :2] = 0.5  # ... or shared with one other class; exact zeros everywhere else
    layer = NLLLoss()
    L = layer.forward(S, y)
    dS = layer.backward()
    torch.testing.assert_close(L, -torch.log(torch.tensor(0.5, dtype=torch.float64)) / N, **F64)
    assert torch.isfinite(dS).all()
    expected = torch.zeros(N, C, dtype=torch.float64)
    expected[torch.arange(N), labels] = -1 / (N * S[torch.arange(N), labels])
    torch.testing.assert_close(dS, expected, rtol=0, atol=0)  # exactly 0 off the true class


# --- rules shared by every layer -----------------------------------------------------------

def probe(name, dtype, gen):
    """A layer and its forward / backward arguments, with the awkward cases included."""
    if name == "linear":
        layer = make_linear(D_IN, D_OUT, gen, dtype)
        return layer, (randn(N, D_IN, gen=gen, dtype=dtype),), (randn(N, D_OUT, gen=gen, dtype=dtype),)
    if name == "relu":
        h = randn(N, C, gen=gen, dtype=dtype)
        h[0, :2] = 0.0
        return ReLU(), (h,), (randn(N, C, gen=gen, dtype=dtype),)
    if name == "softmax":
        r = randn(N, C, gen=gen, dtype=dtype)
        r[1] += 1000
        r[2] -= 1000
        return Softmax(), (r,), (randn(N, C, gen=gen, dtype=dtype),)
    S, y = probabilities(N, C, gen, dtype), one_hot_rows(N, C, gen, dtype)
    S[0] = y[0]  # exact zeros off the true class
    return NLLLoss(), (S, y), ()


def run(layer, forward_args, backward_args):
    """Forward then backward; returns every tensor the layer hands back or stores as a gradient."""
    outputs = [layer.forward(*forward_args), layer.backward(*backward_args)]
    if isinstance(layer, Linear):
        outputs += [layer.dW, layer.db]
    return outputs


LAYERS = ["linear", "relu", "softmax", "nll"]


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_is_preserved(name, dtype, gen):
    outputs = run(*probe(name, dtype, gen))
    assert [t.dtype for t in outputs] == [dtype] * len(outputs)
    assert all(torch.isfinite(t).all() for t in outputs)


@pytest.mark.parametrize("name", LAYERS)
def test_inputs_and_upstream_gradients_are_not_modified(name, gen):
    layer, forward_args, backward_args = probe(name, torch.float64, gen)
    given = list(forward_args) + list(backward_args)
    if isinstance(layer, Linear):
        given += [layer.W, layer.b]
    copies = [t.clone() for t in given]
    run(layer, forward_args, backward_args)
    for after, before in zip(given, copies):
        torch.testing.assert_close(after, before, rtol=0, atol=0)


@pytest.mark.parametrize("name", LAYERS)
def test_backward_twice_gives_the_same_gradients(name, gen):
    layer, forward_args, backward_args = probe(name, torch.float64, gen)
    first = run(layer, forward_args, backward_args)
    second = [layer.backward(*backward_args)]
    if isinstance(layer, Linear):
        second += [layer.dW, layer.db]
    for a, b in zip(first[1:], second):
        torch.testing.assert_close(b, a, rtol=0, atol=0)


# --- the reference MLP on digits -----------------------------------------------------------

def test_mlp_gradients_match_autograd(gen):
    model = MLP(D_IN, 7, C, generator=gen)
    for fc in (model.fc1, model.fc2):
        fc.W, fc.b = fc.W.double(), fc.b.double()
    x, y = randn(N, D_IN, gen=gen), one_hot_rows(N, C, gen)
    L = model.loss(model.forward(x), y)
    model.backward()

    W1, b1, W2, b2 = (p.clone().requires_grad_() for p, _ in model.parameters())
    La = -(y * torch.log_softmax((x @ W1 + b1).clamp(min=0) @ W2 + b2, dim=1)).sum() / N
    La.backward()
    torch.testing.assert_close(L, La.detach(), **F64)
    for (_, grad), leaf in zip(model.parameters(), (W1, b1, W2, b2)):
        torch.testing.assert_close(grad, leaf.grad, **F64)


@pytest.fixture
def one_thread():
    """As `python -m solution` runs: on 2 busy cores, 2 torch threads make this 20x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_reference_mlp_reaches_95_percent_on_digits_within_10_seconds(one_thread):
    start = time.perf_counter()
    _, acc, losses = fit_digits()
    assert time.perf_counter() - start < 10
    assert losses[-1] < losses[0]
    assert acc >= 0.95


def test_sgd_step_moves_every_parameter_against_its_gradient(gen):
    model = MLP(D_IN, 7, C, generator=gen)
    model.loss(model.forward(randn(N, D_IN, gen=gen, dtype=torch.float32)), one_hot_rows(N, C, gen, torch.float32))
    model.backward()
    expected = [p - 0.1 * g for p, g in model.parameters()]
    sgd_step(model, 0.1)
    for (p, _), e in zip(model.parameters(), expected):
        torch.testing.assert_close(p, e, rtol=1e-6, atol=1e-7)


def test_digits_split_is_fixed_disjoint_and_scaled():
    X_train, y_train, X_test, y_test = load_digits_split()
    again = load_digits_split()
    assert X_train.shape == (1348, 64) and X_test.shape == (449, 64)
    assert X_train.dtype == torch.float32 and y_train.dtype == torch.int64
    assert 0 <= X_train.min() and X_train.max() <= 1
    torch.testing.assert_close(again[0], X_train, rtol=0, atol=0)
    torch.testing.assert_close(again[3], y_test, rtol=0, atol=0)
    assert not load_digits_split(seed=1)[0].equal(X_train)

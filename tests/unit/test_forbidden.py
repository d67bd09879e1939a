"""forbidden.scan(): flags what surely resolves to a forbidden torch API, under the method it sits in,
and names code that reaches into the interpreter; never trips on what the rules allow."""
import pytest

from autograder.course.config import load_config
from autograder.intake.forbidden import scan
from autograder.records import CodeCell, StudentCode

FORBIDDEN = load_config().forbidden


def found(source: str):
    return scan(StudentCode((CodeCell("cell", source),), "notebook"), FORBIDDEN)


def layer(body: str, method: str = "forward") -> str:
    return f"import torch\nclass Softmax:\n    def {method}(self, r):\n        {body}\n"


@pytest.mark.parametrize("body, name", [
    ("return torch.softmax(r, dim=1)", "torch.softmax"),
    ("return r.softmax(dim=1)", ".softmax"),
    ("return torch.nn.functional.relu(r)", "torch.nn.functional.relu"),
    ("return r.relu()", ".relu"),
    ("r.requires_grad_()", ".requires_grad_"),
    ("return torch.autograd.grad(r.sum(), r)", "torch.autograd.grad"),
])
def test_a_forbidden_call_is_filed_under_its_method(body, name):
    calls, _ = found(layer(body))
    assert name in calls["Softmax.forward"]


def test_aliases_are_followed():
    calls, _ = found("import torch.nn.functional as F\n"
                     "class ReLU:\n    def forward(self, h):\n        return F.relu(h)\n")
    assert calls["module level"] == ["import torch.nn.functional"]
    assert "torch.nn.functional.relu" in calls["ReLU.forward"]
    calls, _ = found("from torch import softmax as sm\n"
                     "class Softmax:\n    def forward(self, r):\n        return sm(r, 1)\n")
    assert "torch.softmax" in calls["Softmax.forward"]


@pytest.mark.parametrize("body", [
    "return torch.exp(r - r.max(dim=1, keepdim=True).values) / torch.exp(r).sum(1, keepdim=True)",
    "return torch.logsumexp(r, dim=1)",
    "return self.relu(r)",  # the student's own attribute
    "return torch.where(r > 0, r, torch.zeros_like(r))",
])
def test_allowed_code_is_not_flagged(body):
    assert found(layer(body)) == ({}, [])


def test_backward_is_left_to_the_run_time_guard():
    # a layer's own backward (NLLLoss.backward() takes no argument either) looks the same as
    # Tensor.backward() to a syntax scan; the sandbox's guard sees which one ran
    calls, _ = found("class MLP:\n    def step(self, loss):\n        loss.backward()\n        self.out.backward()\n")
    assert calls == {}


def test_reaching_into_the_interpreter_is_named_for_the_instructor():
    _, suspicious = found("import ctypes\nx = ().__class__.__subclasses__()\ntorch._C.DisableTorchFunction\n")
    assert {"ctypes", "__subclasses__", "DisableTorchFunction"} <= set(suspicious)


def test_unparsable_cells_are_skipped_not_raised():
    assert found("def broken(:\n") == ({}, [])
    assert found("(" * 200_000) == ({}, [])


@pytest.mark.parametrize("source, name", [
    ("import torch\ny = torch._softmax(x, 1, False)\n", "torch._softmax"),
    ("import torch\ny = torch.ops.aten.relu(x)\n", "torch.ops.aten.relu"),
    ("import torch as t\nwith t.overrides._pop_mode_temporarily():\n    pass\n",
     "torch.overrides._pop_mode_temporarily"),
    ("import torch\ntorch._C._pop_torch_dispatch_stack(None)\n", "torch._C._pop_torch_dispatch_stack"),
    ("from torch.utils._python_dispatch import _pop_mode\n", "from torch.utils._python_dispatch import _pop_mode"),
    ("from torch import ops\n", "from torch import ops"),
    ("import torch.overrides\n", "torch.overrides"),
])
def test_private_torch_namespaces_are_named_for_the_instructor(source, name):
    """#22 item 2: torch's private names (torch._*, torch.ops, torch.overrides, torch._C) are where
    a forbidden function hides under another name, and where the guard's off switch is."""
    _, suspicious = found(source)
    assert name in suspicious


@pytest.mark.parametrize("source", [
    "import torch\nprint(torch.__version__)\nx = torch.zeros(3, dtype=torch.float64)\n",
    "import torch\nx = torch.finfo(torch.float32).eps\ny = torch.utils.data\n",
])
def test_public_torch_names_are_not_private(source):
    assert found(source) == ({}, [])

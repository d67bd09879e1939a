"""Static scan of the student's code for forbidden APIs (the parent's half of the rule).

Run-time detection (sandbox/guard.py) is authoritative for what a method actually called; this scan
gives the early, friendly message and catches uses hidden from the run-time guard. It only flags
names that resolve to torch for sure: `torch.nn...`, `F.softmax` after `import torch.nn.functional
as F`, `torch.softmax`, `x.softmax(...)`/`.relu()`/`.requires_grad_()` on anything but `self`.
`.backward()` is not flagged here: `loss.backward()` on a tensor and on the student's own NLLLoss look
the same to a syntax scan, so Tensor.backward is left to the run-time guard, which sees which ran.
"""
from __future__ import annotations

import ast

from ..records import StudentCode


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


# Names no layer needs, that tampering with the grader does; reported for the instructor to review.
SUSPICIOUS = frozenset({
    "__subclasses__", "__globals__", "__builtins__", "__import__", "_getframe", "f_back", "f_globals",
    "modules", "get_objects", "_exit", "fork", "setsid", "kill", "ctypes", "importlib", "socket",
    "subprocess", "_set_torch_function_mode", "_pop_torch_function_stack", "DisableTorchFunction",
    # torch's C internals (where the guard's off switch lives), the interpreter's object graph,
    # frames and code objects (how a submission finds the hidden inputs or the guard)
    "_C", "DisableTorchFunctionSubclass", "gc", "get_referrers", "get_referents", "inspect", "builtins",
    "_current_frames", "settrace", "setprofile", "addaudithook", "__code__", "__closure__", "f_locals",
    "eval", "exec",
})
# Built-ins that reach an attribute by a name given at run time.
BY_NAME = frozenset({"getattr", "setattr", "delattr", "hasattr"})
# torch's namespaces no layer needs: where a forbidden function runs under another name
# (torch.ops.aten.relu) and where the forbidden-API guard is taken off the stack. Any other name of
# torch that starts with an underscore (torch._softmax, torch._C) counts too.
PRIVATE_TORCH = ("torch.ops", "torch.overrides", "torch.library")


def private_torch(path: str) -> bool:
    """`torch._softmax`, `torch.ops.aten.relu`, `torch.utils._python_dispatch`: a dotted torch path
    through a private name (dunders such as torch.__version__ are public)."""
    parts = path.split(".")
    if parts[0] != "torch":
        return False
    return (any(p.startswith("_") and not (p.startswith("__") and p.endswith("__")) for p in parts[1:])
            or any(path == prefix or path.startswith(prefix + ".") for prefix in PRIVATE_TORCH))


class _Scanner(ast.NodeVisitor):
    def __init__(self, forbidden):
        self.modules = tuple(forbidden.modules)
        self.functions = set(forbidden.functions)
        self.aliases = {"torch": "torch"}  # local name -> real dotted module/function
        self.imported = {"torch"}  # local names bound by an import (modules, mostly)
        self.context: list[str] = []  # class, function
        self.found: dict[str, list[str]] = {}
        self.suspicious: set[str] = set()

    def _report(self, name: str) -> None:
        where = ".".join(self.context[:2]) if self.context else "module level"
        bucket = self.found.setdefault(where, [])
        if name not in bucket:
            bucket.append(name)

    def _forbidden_path(self, path: str) -> bool:
        if path.startswith(tuple(m + "." for m in self.modules)) or path in self.modules:
            return True
        return path.startswith("torch.") and path.split(".")[-1] in self.functions and path.count(".") == 1

    def visit_Import(self, node):
        for alias in node.names:
            if alias.name.split(".")[0] in SUSPICIOUS or private_torch(alias.name):
                self.suspicious.add(alias.name)
            top = alias.name.split(".")[0]
            self.aliases[alias.asname or top] = alias.name if alias.asname else top
            self.imported.add(alias.asname or top)
            if self._forbidden_path(alias.name):
                self._report(f"import {alias.name}")

    def visit_ImportFrom(self, node):
        for alias in node.names:
            path = f"{node.module}.{alias.name}" if node.module else alias.name
            self.aliases[alias.asname or alias.name] = path
            self.imported.add(alias.asname or alias.name)
            if (node.module or "").split(".")[0] in SUSPICIOUS or alias.name in SUSPICIOUS or private_torch(path):
                self.suspicious.add(f"from {node.module} import {alias.name}")
            if self._forbidden_path(path) or (node.module or "") in self.modules:
                self._report(f"from {node.module} import {alias.name}")

    def _scoped(self, node):
        self.context.append(node.name)
        self.generic_visit(node)
        self.context.pop()

    visit_ClassDef = visit_FunctionDef = visit_AsyncFunctionDef = _scoped

    def visit_Attribute(self, node):
        if node.attr in SUSPICIOUS:
            self.suspicious.add(node.attr)
        path = _dotted(node)
        if path:
            head, _, rest = path.partition(".")
            real = self.aliases.get(head)
            if real and real.startswith("torch"):
                resolved = f"{real}.{rest}" if rest else real
                if self._forbidden_path(resolved):
                    self._report(resolved)
                    return
                if private_torch(resolved):  # the whole path, once (not each shorter prefix of it)
                    self.suspicious.add(resolved)
                    return
        if (node.attr in ("softmax", "log_softmax", "relu", "relu_", "requires_grad_")
                and node.attr in self.functions | {"requires_grad_"}):
            if not (isinstance(node.value, ast.Name) and node.value.id == "self"):
                self._report(f".{node.attr}")
        self.generic_visit(node)

    def _module_rooted(self, node) -> str | None:
        """`torch`, `torch._C`, `np.linalg`: the dotted name, when it starts at an imported module."""
        path = _dotted(node)
        return path if path and path.split(".")[0] in self.imported else None

    def visit_Call(self, node):
        """getattr(torch, "soft" + "max"), getattr(torch, "_C"), vars(torch): a module's attribute
        reached by a name given at run time, or a private one, is how code hides a forbidden call."""
        name = node.func.id if isinstance(node.func, ast.Name) else None
        target = self._module_rooted(node.args[0]) if node.args else None
        if name in BY_NAME and target and len(node.args) > 1:
            attribute = node.args[1]
            if not (isinstance(attribute, ast.Constant) and isinstance(attribute.value, str)):
                self.suspicious.add(f"{name}({target}, <name computed at run time>)")
            elif attribute.value.startswith("_") or attribute.value in SUSPICIOUS:
                self.suspicious.add(f"{name}({target}, {attribute.value!r})")
        elif name == "vars" and target:
            self.suspicious.add(f"vars({target})")
        self.generic_visit(node)

    def visit_Name(self, node):
        if node.id in SUSPICIOUS:
            self.suspicious.add(node.id)
        real = self.aliases.get(node.id)
        if real and real != node.id and self._forbidden_path(real):
            self._report(real)


def scan(code: StudentCode, forbidden) -> tuple[dict[str, list[str]], list[str]]:
    """Returns ("Class.method" (or "module level") -> forbidden names it uses, sorted suspicious
    names). Unparsable cells are skipped (the sandbox reports their SyntaxError)."""
    scanner = _Scanner(forbidden)
    for cell in code.cells:
        try:
            scanner.visit(ast.parse(cell.source))
        except (SyntaxError, ValueError, RecursionError, MemoryError):  # MemoryError: parser bombs
            continue
    return scanner.found, sorted(scanner.suspicious)


def scan_class(cls, forbidden=None) -> list[str]:
    """The same scan on a class defined anywhere, a notebook's kernel included (the visible
    self-check runs it before submission): its methods' source as inspect finds it, with the names
    its module bound to torch modules and functions (`F` after `import torch.nn.functional as F`).
    Returns "Class.method uses name" lines; [] when the source cannot be found."""
    import inspect
    import textwrap
    import types

    from ..course.config import load_config

    forbidden = forbidden or load_config().forbidden
    scanner = _Scanner(forbidden)
    for member in vars(cls).values():
        if not isinstance(member, types.FunctionType):
            continue
        for alias, value in member.__globals__.items():
            real = getattr(value, "__name__", None) if isinstance(value, types.ModuleType) else None
            if real is None and callable(value) and str(getattr(value, "__module__", "")).startswith("torch"):
                real = f"{value.__module__}.{getattr(value, '__name__', alias)}"
            if real and real.startswith("torch") and alias not in scanner.aliases:
                scanner.aliases[alias] = real
        try:
            source = textwrap.dedent(inspect.getsource(member))
            tree = ast.parse(f"class {cls.__name__}:\n" + textwrap.indent(source, "    "))
        except (OSError, TypeError, SyntaxError):
            continue
        scanner.visit(tree)
    return [f"{where} uses {', '.join(names)}" for where, names in scanner.found.items()]

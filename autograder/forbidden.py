"""Static scan of the student's code for forbidden APIs (the parent's half of the rule).

Run-time detection (sandbox/guard.py) is authoritative for what a method actually called; this scan
gives the early, friendly message and catches uses hidden from the run-time guard. It only flags
names that resolve to torch for sure: `torch.nn...`, `F.softmax` after `import torch.nn.functional
as F`, `torch.softmax`, `x.softmax(...)` on anything, `.backward()` on anything but `self.<layer>`.
"""
from __future__ import annotations

import ast

from .records import StudentCode


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
})


class _Scanner(ast.NodeVisitor):
    def __init__(self, forbidden):
        self.modules = tuple(forbidden.modules)
        self.functions = set(forbidden.functions)
        self.aliases = {"torch": "torch"}  # local name -> real dotted module/function
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
            if alias.name.split(".")[0] in SUSPICIOUS:
                self.suspicious.add(alias.name)
            self.aliases[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
            if self._forbidden_path(alias.name):
                self._report(f"import {alias.name}")

    def visit_ImportFrom(self, node):
        for alias in node.names:
            path = f"{node.module}.{alias.name}" if node.module else alias.name
            self.aliases[alias.asname or alias.name] = path
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
        if node.attr in ("softmax", "log_softmax", "relu", "relu_", "requires_grad_") and node.attr in self.functions | {"requires_grad_"}:
            if not (isinstance(node.value, ast.Name) and node.value.id == "self"):
                self._report(f".{node.attr}")
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

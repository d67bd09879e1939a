"""Run-time detection of forbidden torch APIs while student methods run.

A TorchFunctionMode sees every torch call, however it was reached (aliases, getattr, Tensor methods),
so `getattr(torch, "soft" + "max")` is caught as `softmax`. It only records: the parent zeroes the
checks of the method that made the call. (It runs inside the child, so a student who tampers with it
can hide a call; the AST scan in the parent is the second line, see forbidden.py.)
"""
from __future__ import annotations

import types

from torch.overrides import TorchFunctionMode

# Callables whose identity is their meaning: built-in and plain Python functions, method
# descriptors. Student code cannot subclass these types, so none can bring a lying __eq__ or
# __hash__ to borrow another function's cached verdict.
_CACHEABLE = frozenset({types.BuiltinFunctionType, types.FunctionType, types.MethodDescriptorType,
                        types.WrapperDescriptorType, types.MethodWrapperType, types.ClassMethodDescriptorType})
_UNSEEN = object()


def describe(func) -> tuple[str, str]:
    """(module, name) of a torch callable; property setters report the property's name."""
    name = getattr(func, "__name__", "") or ""
    if name in ("__set__", "__get__"):
        name = getattr(getattr(func, "__self__", None), "__name__", name)
    return getattr(func, "__module__", None) or "torch.Tensor", name


class ForbiddenGuard(TorchFunctionMode):
    def __init__(self, modules, functions, attributes):
        super().__init__()
        # torch.nn.functional's C half lives in torch._C._nn; match whole module names only
        # ("torch.func" must not match "torch.functional", where einsum lives)
        names = tuple(modules) + tuple(m.replace("torch.", "torch._C._", 1) for m in modules)
        self.modules = frozenset(names)
        self.module_prefixes = tuple(m + "." for m in names)
        self.functions = frozenset(functions)
        self.attributes = frozenset(attributes)
        self.hits: list[str] = []
        self._verdicts: dict = {}  # func -> _named_forbidden(func): every torch call comes through here

    def _named_forbidden(self, func) -> str | None:
        module, name = describe(func)
        if getattr(func, "__name__", "") == "__set__" and name in self.attributes:
            return f"setting .{name}"
        if name in self.functions or module in self.modules or module.startswith(self.module_prefixes):
            return f"{module}.{name}" if module != "torch.Tensor" else f"Tensor.{name}"
        return None

    def _forbidden(self, func, kwargs) -> str | None:
        if type(func) in _CACHEABLE:
            verdict = self._verdicts.get(func, _UNSEEN)
            if verdict is _UNSEEN:
                verdict = self._verdicts[func] = self._named_forbidden(func)
        else:
            verdict = self._named_forbidden(func)
        if verdict is None and kwargs and kwargs.get("requires_grad"):
            return f"{describe(func)[1]}(requires_grad=True)"
        return verdict

    def __torch_function__(self, func, types, args=(), kwargs=None):
        hit = self._forbidden(func, kwargs)
        if hit and hit not in self.hits:
            self.hits.append(hit)
        return func(*args, **kwargs) if kwargs else func(*args)

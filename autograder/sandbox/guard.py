"""Run-time detection of forbidden torch APIs while student methods run, by what actually runs.

Two halves, entered together around every student call; both only record (the parent zeroes the
checks of the method that made the call):
- a TorchDispatchMode sees every aten operation that runs, however it was reached (`torch._softmax`,
  `torch.ops.aten.relu`, a Tensor method, a name built at run time) and every operation the autograd
  engine runs for a backward pass. The forbidden functions of grading.toml are mapped once to the
  operations that compute them (OPERATIONS: softmax -> _softmax and its gradient
  _softmax_backward_data, ...); any operation of a backward pass is the use of autograd.
- a TorchFunctionMode sees torch's Python API by name: `torch.nn.functional.linear` runs as plain
  t + mm, which only its name forbids; setting `.requires_grad`.

Both live in the child, which student code controls: it can pop them. Undoing them is made
visible rather than impossible: every tensor a student method returns, keeps on its object or
hands to an operation must have been made by an operation the guard saw, or been given by the kit
(provenance); one that was not is reported for the instructor (`unseen`), as is a guard missing
from its stack when the call ends. The syntax scan in the parent is the other line (intake/forbidden.py).
"""
from __future__ import annotations

import itertools
import types
import weakref

import torch
# Held here before the audit (audit.py) wraps torch's own names for them: the guard's pushes and
# pops are the kit's, a student's calls of these names are recorded. torch's Python helpers for
# the mode stacks, whose C functions' arguments changed between versions.
from torch._C import _current_graph_task_id, _len_torch_dispatch_stack, _len_torch_function_stack
from torch.overrides import TorchFunctionMode
from torch.overrides import _pop_mode as _pop_function_mode
from torch.overrides import _push_mode as _push_function_mode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._python_dispatch import _pop_mode as _pop_dispatch_mode
from torch.utils._python_dispatch import _push_mode as _push_dispatch_mode

# A forbidden function -> the aten operations (overload packets) that compute it or its gradient,
# whichever name reached them. Any other forbidden function is forbidden as the operation of its
# own name and that operation's `_backward` (a course forbidding tanh: aten.tanh, tanh_backward).
_SOFTMAX = ("_softmax", "_softmax_backward_data", "_safe_softmax", "softmax", "special_softmax")
_LOG_SOFTMAX = ("_log_softmax", "_log_softmax_backward_data", "log_softmax", "special_log_softmax")
_RELU = ("relu", "relu_", "threshold_backward")
_NLL_LOSS = ("nll_loss_forward", "nll_loss_backward", "nll_loss2d_forward", "nll_loss2d_backward",
             "nll_loss", "nll_loss_nd", "nll_loss2d")
OPERATIONS = {
    "softmax": _SOFTMAX,
    "log_softmax": _LOG_SOFTMAX,
    "relu": _RELU,
    "relu_": ("relu_",),
    "nll_loss": _NLL_LOSS,
    "cross_entropy": ("cross_entropy_loss",) + _LOG_SOFTMAX + _NLL_LOSS,
}
# Names and modules that are "autograd": forbidding any of them forbids every backward pass.
AUTOGRAD_NAMES = frozenset({"backward", "grad", "requires_grad_"})
AUTOGRAD_MODULES = ("torch.autograd", "torch.func")
AUTOGRAD = "autograd"
# Operations that make a tensor out of Python data (torch.tensor, from_numpy): their input tensor
# was made by torch itself a moment before, never by an operation.
FRESH = frozenset({"lift_fresh", "lift_fresh_copy"})
MAX_ITEMS = 1000  # items of a container looked into for tensors (a student's list may be huge)
# Watching operations costs ~15 us each (torch's Python dispatch), ten times judging names, so a
# probe watches the operations of the method it checks (its last call: backward in a backward
# probe), and judges by name the calls that lead there (__init__, forward), whose own probes watch
# them. A probe of no single method (train) watches each method's first OPERATIONS_WATCHED calls:
# its steps repeat the same methods, as its guarded_epochs say.
OPERATIONS_WATCHED = 1
MAX_UNSEEN = 10

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


def computes_gradient(hit: str) -> bool:
    """Whether a recorded hit is a gradient computed for the student (autograd, a torch backward
    operation, requires_grad): it costs the backward checks wherever it ran."""
    return any(word in hit for word in ("backward", "grad", "autograd", "torch.func"))


def _tensors_in(value, depth: int = 1, found: list | None = None) -> list:
    """The tensors of value: itself, or the items of a list, tuple or dict, the attributes of an
    object or a function's default arguments, `depth` levels down (at most MAX_ITEMS each)."""
    found = [] if found is None else found
    kind = type(value)
    if issubclass(kind, torch.Tensor):  # type(), not isinstance(): __class__ can be faked
        found.append(value)
        return found
    if depth <= 0 or value is None or kind is types.ModuleType:
        return found
    if kind is types.FunctionType:  # def forward(self, x, eps=torch.tensor(1e-12))
        items = (value.__defaults__ or ()) + tuple((value.__kwdefaults__ or {}).values())
    elif issubclass(kind, tuple):  # namedtuples too; the base's iterator, not a subclass's
        items = tuple.__iter__(value)
    elif issubclass(kind, list):
        items = list.__iter__(value)
    elif issubclass(kind, dict):
        items = dict.values(value)
    elif kind is types.MappingProxyType:
        items = value.values()
    else:
        try:
            attributes = object.__getattribute__(value, "__dict__")
        except Exception:  # no __dict__, or a student's property that raises
            return found
        if type(attributes) is not dict and type(attributes) is not types.MappingProxyType:
            return found
        items = attributes.values()
    for item in itertools.islice(items, MAX_ITEMS):
        _tensors_in(item, depth - 1, found)
    return found


class _Names(TorchFunctionMode):
    """The half that judges torch's Python API by name."""

    def __init__(self, guard: "ForbiddenGuard"):
        super().__init__()
        self.guard = guard

    def __torch_function__(self, func, types, args=(), kwargs=None):
        verdict = self.guard._name_verdict(func, kwargs)
        if verdict:
            self.guard._record(*verdict, by_name=True)
        return func(*args, **kwargs) if kwargs else func(*args)


class _Operations(TorchDispatchMode):
    """The half that judges the aten operations that run, and notes which tensors they made."""

    def __init__(self, guard: "ForbiddenGuard"):
        super().__init__()
        self.guard = guard

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # else torch wraps __torch_dispatch__ to keep torch.compile out of it, which imports
        # torch._dynamo (800 modules: seconds, in every child) on the first operation
        return False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        # every operation of a watched call comes through here: kept to dictionary look-ups
        guard = self.guard
        verdict, fresh, run = guard._operation_verdicts.get(func) or guard._judge_operation(func)
        if verdict:
            guard._record(*verdict)
        if guard.autograd_forbidden and _current_graph_task_id() != -1:
            guard._record(AUTOGRAD, "autograd (a backward pass ran)")
        known = guard._known
        if not fresh and not guard._inputs_checked:
            for arg in args:
                if isinstance(arg, torch.Tensor):
                    ref = known.get(id(arg))
                    if ref is None or ref() is not arg:
                        guard._unseen_input()
                        break
                elif type(arg) is list or type(arg) is tuple:
                    guard._check_inputs(arg)
        out = run(*args, **kwargs) if kwargs else run(*args)
        if isinstance(out, torch.Tensor):
            known[id(out)] = weakref.ref(out)
        elif type(out) is tuple or type(out) is list:
            guard._made(out)
        return out


class ForbiddenGuard:
    """`with guard:` around a student call records in `hits` the forbidden APIs it used, and in
    `unseen` the signs that the guard was undone; `call` is that, with the provenance checks."""

    def __init__(self, modules, functions, attributes):
        # torch.nn.functional's C half lives in torch._C._nn; match whole module names only
        # ("torch.func" must not match "torch.functional", where einsum lives)
        names = tuple(modules) + tuple(m.replace("torch.", "torch._C._", 1) for m in modules)
        self.modules = frozenset(names)
        self.module_prefixes = tuple(m + "." for m in names)
        self.functions = frozenset(functions)
        self.attributes = frozenset(attributes)
        self.autograd_forbidden = bool(self.functions & AUTOGRAD_NAMES) or any(
            m == a or m.startswith(a + ".") for m in modules for a in AUTOGRAD_MODULES)
        self._functions_of: dict[str, list[str]] = {}  # aten operation -> forbidden functions it computes
        for function in functions:
            if function in AUTOGRAD_NAMES:
                continue
            for operation in OPERATIONS.get(function, (function, f"{function}_backward")):
                self._functions_of.setdefault(operation, []).append(function)
        self.hits: list[str] = []
        self.unseen: list[str] = []  # for the instructor: tensors of unknown origin, a guard removed
        self.where = "student code"
        self._kinds: set[str] = set()  # forbidden functions hit in this call (one report per function)
        self._verdicts: dict = {}  # func -> _named_forbidden(func): every torch call comes through here
        self._operation_verdicts: dict = {}  # OpOverload -> ((kind, text) or None, makes a fresh tensor, its operator)
        self._known: dict[int, weakref.ref] = {}  # id -> tensor made by a seen operation or given by the kit
        self._inputs_checked = False  # one unseen input reported per call
        self._names = _Names(self)
        self._operations = _Operations(self)
        self._depths = (0, 0)
        self._watching = True
        self._calls: dict[str, int] = {}  # method -> its calls in this probe
        self._checked: str | None = None  # the method a probe checks: the calls whose operations it watches

    # --- verdicts ------------------------------------------------------------------------------
    def _named_forbidden(self, func) -> tuple[str, str] | None:
        module, name = describe(func)
        if getattr(func, "__name__", "") == "__set__" and name in self.attributes:
            return AUTOGRAD, f"setting .{name}"
        if name in self.functions or module in self.modules or module.startswith(self.module_prefixes):
            text = f"{module}.{name}" if module != "torch.Tensor" else f"Tensor.{name}"
            autograd = name in AUTOGRAD_NAMES or module.startswith(AUTOGRAD_MODULES)
            return (AUTOGRAD if autograd else name if name in self.functions else text), text
        return None

    def _name_verdict(self, func, kwargs) -> tuple[str, str] | None:
        if type(func) in _CACHEABLE:
            verdict = self._verdicts.get(func, _UNSEEN)
            if verdict is _UNSEEN:
                verdict = self._verdicts[func] = self._named_forbidden(func)
        else:
            verdict = self._named_forbidden(func)
        if verdict is None and kwargs and kwargs.get("requires_grad"):
            return AUTOGRAD, f"{describe(func)[1]}(requires_grad=True)"
        return verdict

    def _forbidden(self, func, kwargs) -> str | None:
        """The name half's verdict on one call: what it would record, or None."""
        verdict = self._name_verdict(func, kwargs)
        return verdict[1] if verdict else None

    def _judge_operation(self, func) -> tuple:
        """(verdict, makes a tensor from Python data) of an aten operation, cached: (kind, text)
        when it computes a forbidden function, else None."""
        operation = func._overloadpacket.__name__
        functions = self._functions_of.get(operation)
        verdict = (functions[0], f"aten.{operation} (what {' or '.join(functions)} runs)") if functions else None
        # the operator itself (what OpOverload.__call__ calls): one Python frame less an operation
        judged = self._operation_verdicts[func] = (verdict, operation in FRESH, getattr(func, "_op", func))
        return judged

    def _record(self, kind: str, text: str, by_name: bool = False) -> None:
        # the name half records first; the operation behind the same function is not news
        if kind in self._kinds and not by_name:
            return
        self._kinds.add(kind)
        if text not in self.hits:
            self.hits.append(text)

    def take(self) -> list[str]:
        """The hits recorded since the last take, cleared."""
        hits, self.hits = self.hits, []
        self._kinds.clear()
        return hits

    # --- provenance ----------------------------------------------------------------------------
    def _made(self, out) -> None:
        known = self._known
        if isinstance(out, torch.Tensor):
            known[id(out)] = weakref.ref(out)
        elif type(out) is tuple or type(out) is list:
            for item in out:
                if isinstance(item, torch.Tensor):
                    known[id(item)] = weakref.ref(item)

    def _is_known(self, tensor) -> bool:
        ref = self._known.get(id(tensor))
        return ref is not None and ref() is tensor

    def _check_inputs(self, tensors) -> None:
        """A list of an operation's tensors (torch.cat's, an index's)."""
        if any(isinstance(tensor, torch.Tensor) and not self._is_known(tensor) for tensor in tensors):
            self._unseen_input()

    def _unseen_input(self) -> None:
        self._inputs_checked = True  # once a call
        self._note(f"{self.where} used a tensor made with the guard off")

    def hold(self, value, depth: int = 1) -> None:
        """Tensors the kit gives or student code made before any call (module-level constants):
        known, wherever they came from."""
        known = self._known
        try:
            for tensor in _tensors_in(value, depth):
                known[id(tensor)] = weakref.ref(tensor)
        except Exception:  # a student's object that breaks when looked at: it is simply not known
            pass
        if len(known) > 100_000:  # forget the tensors that are gone
            self._known = {key: ref for key, ref in known.items() if ref() is not None}

    def _check_kept(self, value) -> None:
        try:
            if any(not self._is_known(tensor) for tensor in _tensors_in(value)):
                self._note(f"{self.where} returned or kept a tensor made with the guard off")
        except Exception:
            pass

    def _note(self, text: str) -> None:
        # short (the parent keeps 80 characters of each): "the guard off" means no operation the
        # guard saw made it
        if text not in self.unseen and len(self.unseen) < MAX_UNSEEN:
            self.unseen.append(text)

    # --- entering and leaving --------------------------------------------------------------------
    def __enter__(self):
        return self._enter(watch_operations=True)

    def _enter(self, watch_operations: bool):
        self._inputs_checked = False
        self._watching = watch_operations
        self._depths = (_len_torch_function_stack(), _len_torch_dispatch_stack())
        _push_function_mode(self._names)
        if watch_operations:
            _push_dispatch_mode(self._operations)
        return self

    def __exit__(self, *exc):
        function_depth, dispatch_depth = self._depths
        watching = self._watching
        if (_len_torch_dispatch_stack() == dispatch_depth + watching
                and _len_torch_function_stack() == function_depth + 1
                and (not watching or _pop_dispatch_mode() is self._operations)
                and _pop_function_mode() is self._names):
            return False
        # pop back to where the call began: whatever student code pushed goes too, and a guard of
        # ours that is no longer there was removed while the call ran
        popped = []
        while _len_torch_dispatch_stack() > dispatch_depth:
            popped.append(_pop_dispatch_mode())
        while _len_torch_function_stack() > function_depth:
            popped.append(_pop_function_mode())
        self._note(f"{self.where}: the forbidden-API guard was removed while it ran")
        return False

    def new_probe(self, checked: str | None = None) -> None:
        """A new probe begins, checking the method named `checked` ("backward"; None for a probe of
        many methods): the operations of that method's calls are watched."""
        self._calls.clear()
        self._checked = checked

    def call(self, where: str, fn, args: list):
        """fn(*args) guarded, as the student method `where`: what the kit hands it (the arguments,
        the object's attributes as they are now) is known; what it returns or keeps on its object
        must have been made by operations the guard saw. The calls of other methods than the one
        the probe checks are judged by name only (see OPERATIONS_WATCHED)."""
        self.where = where
        owner = fn.__self__ if type(fn) is types.MethodType else None
        if self._checked is not None:
            watched = where.rpartition(".")[2] == self._checked
        else:
            watched = (calls := self._calls.get(where, 0) + 1) <= OPERATIONS_WATCHED
            self._calls[where] = calls
        if not watched:
            self._enter(watch_operations=False)
            try:
                result = fn(*args)
            finally:
                self.__exit__()
            # made out of the operation half's sight on purpose: taken as it is, caches included
            # (the result is held as an argument of the call it goes to)
            self.hold(owner, depth=2)
            return result
        self.hold(args)
        self.hold(owner)
        self._enter(watch_operations=True)
        try:
            result = fn(*args)
        finally:
            self.__exit__()
        self._check_kept(result)
        self._check_kept(owner)
        return result


def warm_up() -> None:
    """In the template, before any fork: run the operations layers are made of under a guard, so
    torch's first-use costs of each (its Python operator objects, ~0.1-0.2 ms an operation, and
    the modes' own set-up, ~3 ms) are paid once, not again in every child."""
    guard = ForbiddenGuard((), (), ())
    x = torch.ones(4, 4, dtype=torch.float64)
    rows, labels = torch.arange(4), torch.zeros(4, dtype=torch.long)

    def layers():
        h = (x @ x).addmm(x, x) + torch.zeros(4, dtype=torch.float64) * 2 - 1
        e = (h - h.max(dim=1, keepdim=True).values).exp() / h.exp().sum(1, keepdim=True)
        e = e.clamp(min=0).clamp_min(0).where(x > 0, torch.zeros_like(x)).sign().abs().sqrt().neg()
        picked = e[rows, labels].log().mean() + e.gather(1, labels[:, None]).sum() + e.argmax(dim=1).float().sum()
        grad = torch.zeros_like(e)
        grad[rows, labels] = -1 / (4 * picked)
        torch.einsum("ij,jk->ik", x, x.T).logsumexp(0, keepdim=True).t().mm(x[:1]).matmul(x.t()).reshape(-1).view(4, 4)
        return (grad.mT.transpose(0, 1).permute(1, 0).contiguous().clone().detach().unsqueeze(0).squeeze(0)
                .expand(4, 4).to(torch.float32).double().maximum(x).pow(2).div(x).mul(x) >= 0).float().mean(0)

    guard.call("warm up", layers, [])

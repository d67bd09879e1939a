"""Name the mistake behind failed checks: the engine. What each layer's mistakes are lives with the
layer, in its part's checks module (VARIANTS, FORMULAS, REGIONS, NOT_FINITE); nothing here names a
layer.

Pure and parent-side, like score.py. When checks fail, every wrong variant in the failing part's
catalogue predicts what a student who made that one mistake would have returned on the same hidden
inputs: a *variant* is the part's oracle with one mistake built in (a subclass of it, made by
`wrong_forward`, `wrong_backward`, `changes_input` or by hand), run through the check's own probe; a
*transform* is a mistake that any output can have (wrong sign, a factor N, transposed, an extra
dimension, ...) applied to the oracle's output. A variant is accepted only when it explains at least
one failed output and contradicts none: wherever it predicts a wrong value, the student's value is
that wrong value; where it predicts the right value, it says nothing (another mistake may be at work
there). Causes are then chosen greedily, the one that explains most failed checks first, so one bug
that fails seven checks is one cause, and a check that passed rules out every variant that would
have failed it. Checks no single cause explains may be explained by a pair: a variant whose output
also has one of the transforms (a `-y/S` that lacks the 1/N and divides everywhere), or the wrong
dtype together with the value cause of the same check.

Causes that need no prediction come from the kind of failure: a method that is not written yet, an
exception (class, method, line), a forbidden call, a None, the wrong dtype, an input changed in place.

A part's checks module teaches the engine its layer with module attributes (all optional):

    VARIANTS    list of variant(...): the layer with one known mistake built in, with its sentence
    FORMULAS    output -> the rule it must follow, in the notebook's notation (hints.reminder)
    REGIONS     output -> Region: right in one region of the output, wrong in the rest
    NOT_FINITE  what to look at when an output is nan or infinite

Adding a known mistake is adding one entry to its part's VARIANTS (or to TRANSFORMS, here, for a
mistake any output can have).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable

import torch

from .compare import compare
from ..records import GraderError
from ..sandbox.probe import run_probe


@dataclass(frozen=True)
class Cause:
    """One named mistake. `key` is stable across students (analytics group by it)."""

    key: str
    method: str  # "Linear.backward", or "" for the whole submission
    text: str  # one sentence a student understands
    hint: str = ""  # what to do about it

    def as_dict(self) -> dict:
        return {"key": self.key, "method": self.method, "text": self.text, "hint": self.hint}


# --- what a part's module writes its catalogue with ------------------------------------------

@dataclass(frozen=True)
class Variant:
    cause: Cause
    build: Callable[[type], type]  # the part's oracle class -> a class with the mistake built in
    # failed checks it must explain to be named: a variant that picks one class out of C matches
    # any other code picking that class by chance (one check in ten, say), so one is no evidence
    min_explained: int = 1

    @property
    def cls(self) -> str:
        return self.cause.method.split(".")[0]


def variant(method: str, key: str, text: str, hint: str, build: Callable[[type], type],
            min_explained: int = 1) -> Variant:
    """One catalogue entry: method "Class.method", a key stable across students, the sentence, the hint."""
    return Variant(Cause(f"{method}:{key}", method, text, hint), build, min_explained)


def inputs_of(layer) -> list[torch.Tensor]:
    """What the oracle's forward was given, as float64 tensors."""
    return [t.detach() for t in layer._inputs]


def output_of(layer) -> torch.Tensor:
    """What the oracle's forward computed, in float64."""
    return layer._out.detach()


def wrong_forward(math: Callable, backward: Callable | None = None) -> Callable[[type], type]:
    """The oracle returning another forward formula, math(*inputs, *params) in float64. What the
    correct backward uses is what a student stores: the inputs (so backward stays correct); a layer
    whose backward uses the output it returned says how: backward(that output, upstream) in float64."""

    def build(base):
        def forward(self, *inputs):
            base.forward(self, *inputs)
            params = [getattr(self, name).detach().double() for name in base.params]
            self._wrong = math(*[t.detach().double() for t in inputs], *params).detach()
            return self._wrong.to(self._dtype)

        attributes = {"forward": forward}
        if backward is not None:
            attributes["backward"] = lambda self, up: backward(self._wrong, up.double()).to(self._dtype)
        return type(base.__name__, (base,), attributes)

    return build


def wrong_backward(grad: Callable) -> Callable[[type], type]:
    """The oracle with another backward: grad(layer, upstream float64) -> the returned gradient
    (inputs_of(layer), output_of(layer) are what forward saw and computed)."""

    def build(base):
        def backward(self, *upstream):
            up = upstream[0].double() if upstream else torch.ones((), dtype=torch.float64)
            self._vjp(up)  # sets the parameter gradients, as the correct one does
            return grad(self, up).to(self._dtype)

        return type(base.__name__, (base,), {"backward": backward})

    return build


def changes_input(method: str, change: Callable) -> Callable[[type], type]:
    """The oracle's results, plus change(layer, *args) applied to the caller's tensors afterwards."""

    def build(base):
        def call(self, *args):
            result = getattr(base, method)(self, *[a.clone() for a in args])
            change(self, *args)
            return result

        return type(base.__name__, (base,), {method: call})

    return build


@dataclass(frozen=True)
class Region:
    """Right in one region of an output, wrong in the rest: a cause named by where."""

    key: str
    inside: Callable[[dict], torch.Tensor]  # the probe's tensors by name (x, W, dh, ...) -> a mask
    where: str  # "where h ≤ 0 (it is right where h > 0)"
    rule: str  # the hint: what the output must be there


@dataclass(frozen=True)
class Knowledge:
    """What one part's checks module teaches the engine about its layer."""

    variants: tuple = ()
    formulas: dict = field(default_factory=dict)  # output -> formula
    regions: dict = field(default_factory=dict)  # output -> Region
    not_finite: str = ""

    @classmethod
    def of(cls, module, cls_name: str = "", where: str = "") -> "Knowledge":
        """The module's VARIANTS, FORMULAS, REGIONS and NOT_FINITE, checked (a one-line error if odd)."""
        where = where or getattr(module, "__name__", "the checks module")
        variants = tuple(getattr(module, "VARIANTS", ()) or ())
        formulas = dict(getattr(module, "FORMULAS", {}) or {})
        regions = dict(getattr(module, "REGIONS", {}) or {})
        not_finite = getattr(module, "NOT_FINITE", "") or ""
        odd = [repr(v)[:60] for v in variants if not isinstance(v, Variant) or (cls_name and v.cls != cls_name)]
        odd += [repr(r)[:60] for r in regions.values() if not isinstance(r, Region)]
        if odd or not isinstance(not_finite, str) or not all(isinstance(t, str) for t in formulas.values()):
            raise GraderError(f"{where}: VARIANTS must hold diagnosis.variant(...) entries of class "
                              f"{cls_name or '?'}, REGIONS diagnosis.Region(...)s, FORMULAS and NOT_FINITE text; "
                              f"odd: {', '.join(odd) or 'FORMULAS or NOT_FINITE'}")
        return cls(variants, formulas, regions, not_finite)


NOTHING_KNOWN = Knowledge()


# --- transforms: mistakes any output can have -------------------------------------------------

@dataclass(frozen=True)
class Transform:
    key: str
    text: str  # a sentence with {out} (the output) and {method}
    hint: str
    apply: Callable  # (expected, context) -> predicted tensor, or None when it does not apply


def _scale(factor: Callable):
    return lambda e, ctx: e * factor(ctx) if e.is_floating_point() else None


TRANSFORMS = [
    Transform("sign", "{method} returns {out} with the wrong sign.", "check the sign of every term",
              _scale(lambda c: -1.0)),
    Transform("times_N", "{method} returns {out} N times too large (N = the number of rows): a 1/N is missing.",
              "the loss is a mean over the N rows, so its gradient carries 1/N", _scale(lambda c: c["N"])),
    Transform("over_N", "{method} divides {out} by N (the number of rows) once too often.",
              "the 1/N comes from the loss's mean, once", _scale(lambda c: 1.0 / c["N"])),
    Transform("times_minus_N", "{method} returns {out} with the wrong sign and N times too large.",
              "check the sign and the 1/N", _scale(lambda c: -c["N"])),
    Transform("over_minus_N", "{method} returns {out} with the wrong sign and divided by N.",
              "check the sign and the 1/N", _scale(lambda c: -1.0 / c["N"])),
    Transform("times_C", "{method} returns {out} multiplied by the number of columns: a mean where a sum belongs.",
              "sum, don't average", _scale(lambda c: c["C"])),
    Transform("over_C",
              "{method} returns {out} divided by the number of columns: a mean where a sum belongs, "
              "or C where N belongs.",
              "sum, don't average; N is the number of rows", _scale(lambda c: 1.0 / c["C"])),
    Transform("C_for_N", "{method} divides {out} by the number of columns C where the number of rows N belongs.",
              "N = the number of rows (examples), S.shape[0]", _scale(lambda c: c["N"] / c["C"])),
    Transform("twice", "{method} returns {out} twice as large as it should be.", "look for a term counted twice",
              _scale(lambda c: 2.0)),
    Transform("half", "{method} returns {out} half as large as it should be.", "look for a stray factor 1/2",
              _scale(lambda c: 0.5)),
    Transform("zeros", "{method} returns {out} as all zeros: the computed values never reach it.",
              "return (or assign) the tensor you computed", lambda e, ctx: torch.zeros_like(e)),
    Transform("transposed", "{method} returns {out} transposed: rows are examples (x is N×D_in, W is D_in×D_out).",
              "check the order of the matrix product", lambda e, ctx: e.T if e.dim() == 2 else None),
    Transform("keepdim", "{method} returns {out} with an extra leading dimension of size 1.",
              "sum or mean without keepdim=True here", lambda e, ctx: e.unsqueeze(0)),
    Transform("squeezed", "{method} drops the size-1 dimensions of {out} (a single example must still be a row).",
              "don't squeeze: shapes must hold for any N ≥ 1",
              lambda e, ctx: e.squeeze() if 1 in e.shape else None),
    Transform("not_averaged", "{method} returns the per-example losses; L is their mean, a 0-dim tensor.",
              "take .mean() of the per-example losses", lambda e, ctx: None),  # judged by _not_averaged
]


# --- matching ---------------------------------------------------------------------------------

@dataclass
class Observation:
    """One compared output of one check, for a check that ran to the end."""

    index: int  # position of the check in the report
    entry: object  # checks.SuiteEntry
    output: str
    got: object
    expected: torch.Tensor
    tolerance: object
    failed: bool  # this output is wrong
    kind: str = ""  # compare.Mismatch.kind when failed
    shape_only: bool = False  # the check compares shapes only
    cls: str = ""  # the layer class the check builds (_layer_class): read thousands of times per student
    method: str = ""  # the method that produced the output (_method_of)
    values_wrong: bool = False  # a dtype mismatch whose values are wrong too (in the coarser dtype's tolerance)


def _close(a, b, tolerance) -> bool:
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor) or a.shape != b.shape:
        return False
    if not (a.is_floating_point() and b.is_floating_point()):
        return False
    if a.dtype == b.dtype and torch.equal(a, b):  # the common case in one call (NaNs go on below)
        return True
    rtol, atol = 10 * tolerance.rtol, 10 * tolerance.atol  # variants run in float64, students may not
    return bool(torch.isclose(a.double(), b.double(), rtol=rtol, atol=atol, equal_nan=True).all())


def _judge(observation: Observation, predicted) -> str:
    """'explained', 'contradiction' or 'neutral' for one output predicted by one cause."""
    if predicted is None:
        return "neutral"
    if observation.shape_only:
        if not isinstance(predicted, torch.Tensor) or predicted.shape == observation.expected.shape:
            return "neutral"
        got_shape = getattr(observation.got, "shape", None)
        return ("explained" if observation.failed else "neutral") if got_shape == predicted.shape else "contradiction"
    if _close(predicted, observation.expected, observation.tolerance):
        return "neutral"  # the cause predicts the right value here: says nothing
    if observation.kind == "dtype" and not observation.values_wrong:
        return "neutral"  # a dtype is its own cause; the values are right
    if _close(observation.got, predicted, observation.tolerance):
        return "explained" if observation.failed else "neutral"
    return "contradiction"


def _context(entry) -> dict:
    first = entry.check.probe.tensors[0]
    return {"N": first.shape[0] if first.dim() else 1, "C": first.shape[-1] if first.dim() else 1}


def _named_tensors(entry) -> dict[str, torch.Tensor]:
    """The probe's input tensors by their names in the notebook (x, W, b, dh, h, ...): the names
    its checks module gave them (LayerProbe's labels), else the attributes it assigns."""
    tensors, names = entry.check.probe.tensors, getattr(entry.check, "names", ())
    if len(names) == len(tensors):
        return dict(zip(names, tensors))
    return {step["attr"]: tensors[step["tensor"]] for step in entry.check.probe.steps if step["op"] == "set"}


def _located(observation: Observation, region) -> str:
    """explained: the output is right outside the region and wrong inside; contradiction: wrong outside."""
    got, expected = observation.got, observation.expected
    if not observation.failed:
        return "neutral"
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape or observation.kind == "dtype":
        return "contradiction"
    try:
        inside = region(_named_tensors(observation.entry)).expand_as(expected)
    except (KeyError, RuntimeError):
        return "neutral"
    if not inside.any() or not _close(got[~inside], expected[~inside], observation.tolerance):
        return "contradiction"
    return "explained"


def _method_of(entry, output: str) -> str:
    """The method that produced an output: the call that named it, or the last call before a read."""
    cls, last = "", ""
    for step in entry.check.probe.steps:
        if step["op"] == "new":
            cls = step["cls"]
        elif step["op"] == "call":
            last = f"{cls}.{step['method']}"
            if step["out"] == output:
                return last
        elif step["op"] == "get" and step["out"] == output:
            return last
    return last


def _layer_class(entry) -> str:
    return next((s["cls"] for s in entry.check.probe.steps if s["op"] == "new"), "")


class Catalogue:
    """Variant outputs per check, computed once (the inputs are fixed) and shared by all students."""

    def __init__(self, oracles: dict):
        """oracles: class name -> the trusted class (the registry's, checks.oracle_classes): each
        variant is built on its class's oracle."""
        self._oracles = dict(oracles)
        self._cache: dict[tuple[str, str], dict | None] = {}
        self._lock = threading.Lock()

    def predicted(self, variant: Variant, entry) -> dict | None:
        key = (variant.cause.key, entry.check.name)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        classes = dict(self._oracles)
        try:
            classes[variant.cls] = variant.build(self._oracles[variant.cls])
            with torch.no_grad():
                outputs = run_probe(classes, list(entry.check.probe.steps),
                                    [t.clone() for t in entry.check.probe.tensors])
        except Exception:  # noqa: BLE001 (a course's own variant included)
            outputs = None  # a variant that cannot run on this probe predicts nothing here
        with self._lock:
            self._cache[key] = outputs
        return outputs


@dataclass
class _Candidate:
    cause: Cause
    priority: int
    order: int
    explained: set = field(default_factory=set)  # check indices
    contradicted: bool = False
    min_explained: int = 1  # Variant.min_explained
    parts: tuple = ()  # a pair's: the keys of its two causes alone


def _structural(observation: Observation) -> Cause | None:
    """Causes read off the kind of mismatch alone: no prediction needed."""
    method = observation.method
    out = observation.output
    if out.endswith("_after"):
        name = out[: -len("_after")]
        cls = observation.cls
        methods = list(dict.fromkeys(s["method"] for s in observation.entry.check.probe.steps if s["op"] == "call"))
        where = f"{cls}.{' or '.join(methods)}"
        return Cause(f"{cls}:in_place:{name}", f"{cls}.{methods[-1]}",
                     f"{where} changes its input {name} in place: afterwards the caller's {name} was different.",
                     "build new tensors (h.clamp(min=0), x = x - m) instead of writing into an argument "
                     "(h.clamp_(min=0), h[h < 0] = 0, x -= m)")
    if observation.kind == "type":
        got = observation.got
        if _is_attribute(observation.entry, out):
            return Cause(f"{method}:{out}_not_set", method, f"{method} does not set self.{out}.",
                         f"assign self.{out} = ... in backward")
        if got == "none":
            return Cause(f"{method}:returns_none", method, f"{method} returns None: a return statement is missing.",
                         "end the method with return ...")
        return Cause(f"{method}:{out}_not_tensor", method, f"{method} returns {out} as something other than a tensor.",
                     "return a torch tensor")
    if observation.kind == "dtype":
        got = str(observation.got.dtype).replace("torch.", "")
        wanted = str(observation.expected.dtype).replace("torch.", "")
        # one cause per class: a forward that changes the dtype also changes what backward returns
        return Cause(f"{method.split('.')[0]}:dtype", method,
                     f"{method} returns {out} as {got} when its inputs are {wanted}: it must keep the input's dtype.",
                     DTYPE_HINTS.get((got, wanted), DTYPE_HINTS[None]))
    return None


# how a dtype goes astray, by (returned, expected): the mechanisms real code shows
DTYPE_HINTS = {
    ("float64", "float32"): "a float64 value mixed in promotes the result: a NumPy array or a round trip through "
                            "NumPy (x.numpy(), np.log(...), np.array(np.finfo(float).eps)), a tensor of NumPy float64 "
                            "values (torch.as_tensor([np.finfo(float).eps])), dtype=torch.float64 or .double(); "
                            "use Python numbers for constants, or make tensors with dtype=x.dtype",
    ("float32", "float64"): "a tensor made without a dtype is float32 whatever the inputs (torch.zeros(shape), "
                            "torch.ones(...), torch.tensor(value), a buffer made once in __init__), and so is a "
                            "value passed through .item() or .float(); create it with dtype=x.dtype or zeros_like(x)",
    None: "create tensors with dtype=x.dtype (or zeros_like) and don't call .double()/.float()",
}


def _is_attribute(entry, output: str) -> bool:
    """The probe reads this output off the layer (self.dW), rather than taking it from a call."""
    return any(step["op"] == "get" and step["out"] == output for step in entry.check.probe.steps)


def _observations(entries, outcomes, results, tolerance) -> list[Observation]:
    observations = []
    for index, (entry, outcome, result) in enumerate(zip(entries, outcomes, results)):
        check = entry.check
        if (check.judge or outcome is None or outcome.failure or outcome.error
                or result.cause is not None):
            continue
        for output in dict.fromkeys((*check.compare, *check.produced)):
            expected = entry.expected[output]
            # inputs must come back bit for bit, as score.py demands
            tol = _EXACT if output.endswith("_after") else tolerance[str(expected.dtype).replace("torch.", "")]
            got = outcome.outputs.get(output, "missing")
            shape_only = check.shape_only or output not in check.compare  # produced: shape (and dtype) only
            mismatch = compare(output, got, expected, tol, shape_only)
            if mismatch is None and shape_only and output not in check.compare:  # produced: dtype counts too
                if isinstance(got, torch.Tensor) and got.dtype != expected.dtype:
                    mismatch = compare(output, got, expected, tol)
            values_wrong = False
            if mismatch is not None and mismatch.kind == "dtype" and not shape_only and tol is not _EXACT:
                # values in the coarser of the two dtypes' tolerances: a float32 buffer's rounding is no mistake
                tol = max(tol, tolerance.get(str(got.dtype).replace("torch.", ""), tol), key=lambda t: t.rtol)
                values_wrong = not _close(got, expected, tol)
            observations.append(Observation(index, entry, output, got, expected, tol, mismatch is not None,
                                            mismatch.kind if mismatch else "", shape_only,
                                            cls=_layer_class(entry), method=_method_of(entry, output),
                                            values_wrong=values_wrong))
    return observations


@dataclass(frozen=True)
class _Exact:
    rtol: float = 0.0
    atol: float = 0.0


_EXACT = _Exact()


def _tally(found: _Candidate, observations, verdict_of) -> None:
    """Adds what one cause explains; the first contradiction rules it out."""
    for observation in observations:
        verdict = verdict_of(observation)
        if verdict == "contradiction":
            found.contradicted = True
            return
        if verdict == "explained":
            found.explained.add(observation.index)


def _transform_verdict(observation: Observation, transform: Transform) -> str:
    if transform.key == "not_averaged":
        return "explained" if observation.failed and _not_averaged(observation) else "neutral"
    try:
        predicted = transform.apply(observation.expected.double(), _context(observation.entry))
    except (RuntimeError, IndexError):
        predicted = None
    return _judge(observation, predicted)


def _named_input(entry, name: str, transposed: bool):
    tensor = _named_tensors(entry).get(name)
    if tensor is not None and transposed:
        return tensor.T if tensor.dim() == 2 else None
    return tensor


def _knowledge(entry) -> Knowledge:
    return getattr(entry, "knowledge", NOTHING_KNOWN)


def _not_averaged(observation: Observation) -> bool:
    got, expected = observation.got, observation.expected
    return (isinstance(got, torch.Tensor) and expected.dim() == 0 and got.dim() == 1 and got.is_floating_point()
            and _close(got.double().mean(), expected, observation.tolerance))


def explain(entries, outcomes, results, tolerance, catalogue: Catalogue) -> dict[int, Cause]:
    """Check index -> the cause of its failure, for the failed checks a cause explains."""
    causes: dict[int, Cause] = {}
    observations = _observations(entries, outcomes, results, tolerance)
    failed = [o for o in observations if o.failed]
    if not failed:
        return causes
    candidates: dict[str, _Candidate] = {}

    def candidate(cause: Cause, priority: int, min_explained: int = 1) -> _Candidate:
        return candidates.setdefault(cause.key,
                                     _Candidate(cause, priority, len(candidates), min_explained=min_explained))

    # 1. variants of the classes that failed, judged on every observation of their class
    knowledge = {o.cls: _knowledge(o.entry) for o in observations}
    failing_classes = {o.cls for o in failed}
    judged: dict = {}  # (variant key, id(observation)) -> verdict, which pairs (6.) reuse
    for variant in (v for cls, known in knowledge.items() if cls in failing_classes for v in known.variants):
        found = candidate(variant.cause, 0, variant.min_explained)
        for observation in observations:
            if observation.cls != variant.cls or found.contradicted:
                continue
            predicted = catalogue.predicted(variant, observation.entry)
            verdict = _judge(observation, None if predicted is None else predicted.get(observation.output))
            judged[variant.cause.key, id(observation)] = verdict
            own = (observation.output.endswith("_after")
                   or observation.method == variant.cause.method)
            if verdict == "contradiction" and own:
                found.contradicted = True
            elif verdict == "explained":
                found.explained.add(observation.index)
    # 2. transforms of each failed output, judged on every observation of that output
    for output_method in sorted({(o.output, o.method) for o in failed
                                 if not o.output.endswith("_after")}):
        output, method = output_method
        same = [o for o in observations if (o.output, o.method) == output_method]
        for transform in TRANSFORMS:
            cause = Cause(f"{method}:{output}:{transform.key}", method,
                          transform.text.format(method=method, out=output), transform.hint)
            _tally(candidate(cause, 1), same, lambda o, t=transform: _transform_verdict(o, t))
    # 3. an input handed back (maybe transposed) as the output
    for output, method in sorted({(o.output, o.method) for o in failed
                                  if not o.output.endswith("_after")}):
        same = [o for o in observations if o.output == output and o.method == method]
        for name in sorted({n for o in same for n in _named_tensors(o.entry)}):
            for transposed in (False, True):
                shown = f"{name}ᵀ" if transposed else name
                cause = Cause(f"{method}:{output}:is_{name}{'_T' if transposed else ''}", method,
                              f"{method} returns {shown} as {output}, not the value computed from it.",
                              knowledge[same[0].cls].formulas.get(output, ""))
                _tally(candidate(cause, 1), same,
                       lambda o, n=name, t=transposed: _judge(o, _named_input(o.entry, n, t)))
    # 4. right in one region of the output, wrong in the rest
    for cls, output, region in ((c, out, r) for c, known in knowledge.items() for out, r in known.regions.items()):
        same = [o for o in observations if o.output == output and o.cls == cls]
        if not any(o.failed for o in same):
            continue
        method = same[0].method
        cause = Cause(f"{method}:{output}:wrong_{region.key}", method, f"{method} gets {output} wrong {region.where}.",
                      region.rule)
        _tally(candidate(cause, 3), same, lambda o, r=region.inside: _located(o, r))
    # 5. kinds that are causes by themselves
    for observation in failed:
        cause = _structural(observation)
        if cause:
            candidate(cause, 2 if observation.output.endswith("_after") else -1).explained.add(observation.index)
    # greedy: the cause explaining most of the still unexplained failed checks first
    viable = [c for c in candidates.values() if len(c.explained) >= c.min_explained and not c.contradicted]
    remaining = _greedy(list(viable), {o.index for o in failed}, causes)
    # 6. what no single cause explains: a variant whose output also has a transform's mistake
    if remaining:
        pairs = _pairs(observations, failed, remaining, knowledge, catalogue, len(candidates), judged)
        _greedy(list(pairs), remaining, causes, takes_over=True)
        viable += pairs
    # 7. a wrong dtype with wrong values too: the dtype cause and the values' cause, together
    _with_dtype(causes, failed, viable)
    return causes


def _greedy(live: list, remaining: set, causes: dict, takes_over: bool = False) -> set:
    """Assigns the cause explaining most of the remaining failed checks first; returns what is left.
    takes_over: a pair also takes the checks its parts were given alone (one mistake, one item)."""
    remaining = set(remaining)
    while remaining and live:
        best = max(live, key=lambda c: (len(c.explained & remaining), -c.priority, -c.order))
        gained = best.explained & remaining
        if not gained:
            break
        for index in best.explained if takes_over else gained:
            if index in gained or causes.get(index) and causes[index].key in best.parts:
                causes[index] = best.cause
        remaining -= gained
        live.remove(best)
    return remaining


PAIRED = [t for t in TRANSFORMS if t.key not in ("zeros", "not_averaged")]  # a zero or a mean hides the variant


def _pairs(observations, failed, remaining: set, knowledge: dict, catalogue: Catalogue, order: int,
           judged: dict) -> list:
    """Variant × transform candidates for the classes with unexplained failed checks: the variant's
    prediction, with the transform applied to one output of the variant's own method."""
    pairs = []
    for cls in sorted({o.cls for o in failed if o.index in remaining}):
        mine = [o for o in observations if o.cls == cls]
        targets = sorted({(o.output, o.method) for o in failed
                          if o.cls == cls and o.index in remaining and not o.output.endswith("_after")})
        for variant in knowledge[cls].variants:
            method = variant.cause.method
            if all(m != method for _, m in targets):
                continue
            guesses = {}
            for o in mine:
                outputs = catalogue.predicted(variant, o.entry)
                guesses[id(o)] = None if outputs is None else outputs.get(o.output)
            alone = {id(o): judged.get((variant.cause.key, id(o))) or _judge(o, guesses[id(o)])
                     for o in mine}  # the variant's verdicts, untransformed
            for output in (out for out, m in targets if m == method):
                # failed observations first: a pair is mostly ruled out by the first one it mispredicts
                same = sorted((o for o in mine if (o.output, o.method) == (output, method)), key=lambda o: not o.failed)
                others = [o for o in mine if (o.output, o.method) != (output, method)]
                if any(alone[id(o)] == "contradiction" and (o.output.endswith("_after") or o.method == method)
                       for o in others) or all(not isinstance(guesses[id(o)], torch.Tensor) for o in same):
                    continue
                explained_elsewhere = {o.index for o in others if alone[id(o)] == "explained"}
                if not explained_elsewhere and all(alone[id(o)] == "neutral" for o in same):
                    continue  # the variant leaves this output right: the pair is the transform alone
                found = [_pair(variant, transform, output, order + k) for k, transform in enumerate(PAIRED)]
                order += len(PAIRED)
                for o in same:
                    guess, context = guesses[id(o)], _context(o.entry)
                    guess = guess.double() if isinstance(guess, torch.Tensor) else None
                    transformed = [_transformed(t, guess, context) for t in PAIRED]
                    for candidate, verdict in zip(found, _verdicts(o, transformed)):
                        if verdict == "contradiction":
                            candidate.contradicted = True
                        elif verdict == "explained":
                            candidate.explained.add(o.index)
                for candidate in found:
                    candidate.explained |= explained_elsewhere
                    if not candidate.contradicted and len(candidate.explained) >= candidate.min_explained:
                        pairs.append(candidate)
    return pairs


def _pair(variant: Variant, transform: Transform, output: str, order: int) -> _Candidate:
    method = variant.cause.method
    cause = Cause(f"{variant.cause.key}+{output}:{transform.key}", method,
                  f"{variant.cause.text} {transform.text.format(method=method, out=output)}",
                  "; ".join(h for h in (variant.cause.hint, transform.hint) if h))
    return _Candidate(cause, 0, order, min_explained=max(2, variant.min_explained),
                      parts=(variant.cause.key, f"{method}:{output}:{transform.key}"))


def _transformed(transform: Transform, guess: torch.Tensor | None, context: dict):
    if guess is None:
        return None
    try:
        return transform.apply(guess, context)
    except (RuntimeError, IndexError):
        return None


def _verdicts(observation: Observation, predictions: list) -> list[str]:
    """_judge of each prediction for one observation; the usual case (float predictions of the
    output's shape, a float output) in two stacked comparisons rather than two per prediction."""
    got, expected, tolerance = observation.got, observation.expected, observation.tolerance
    stackable = [i for i, p in enumerate(predictions) if isinstance(p, torch.Tensor) and p.is_floating_point()
                 and p.shape == expected.shape]
    simple = (not observation.shape_only and expected.is_floating_point() and expected.numel() > 0
              and isinstance(got, torch.Tensor) and got.is_floating_point() and got.shape == expected.shape
              and len(stackable) > 1)
    if not simple:
        return [_judge(observation, p) for p in predictions]
    verdicts = [None if i in stackable else _judge(observation, p) for i, p in enumerate(predictions)]
    stacked = torch.stack([predictions[i].double() for i in stackable])
    rtol, atol = 10 * tolerance.rtol, 10 * tolerance.atol

    def close_to(target):
        near = torch.isclose(stacked, target.double().expand_as(stacked), rtol=rtol, atol=atol, equal_nan=True)
        return near.reshape(len(stackable), -1).all(dim=1).tolist()

    right, like_got = close_to(expected), close_to(got)
    values_count = observation.kind != "dtype" or observation.values_wrong
    for i, is_right, is_got in zip(stackable, right, like_got):
        if is_right or not values_count:
            verdicts[i] = "neutral"
        elif is_got:
            verdicts[i] = "explained" if observation.failed else "neutral"
        else:
            verdicts[i] = "contradiction"
    return verdicts


def _with_dtype(causes: dict, failed, viable: list) -> None:
    """A check whose output has the wrong dtype and wrong values gets both causes: the dtype's, and
    the one that explains its values (else the dtype's alone, as the values may follow from it)."""
    every_failed = {o.index for o in failed}
    for observation in failed:
        if observation.kind != "dtype" or not observation.values_wrong or observation.index not in causes:
            continue
        dtype = _structural(observation)
        current = causes[observation.index]
        if dtype.key in current.key.split("+") and current.key != dtype.key:
            continue  # combined already
        value = current if current.key != dtype.key else None
        if value is None:
            explaining = [c for c in viable if observation.index in c.explained and c.cause.key != dtype.key]
            if explaining:
                value = max(explaining, key=lambda c: (len(c.explained & every_failed), -c.priority, -c.order)).cause
        if value is not None:
            causes[observation.index] = Cause(f"{value.key}+{dtype.key}", value.method, f"{value.text} {dtype.text}",
                                              "; ".join(h for h in (value.hint, dtype.hint) if h))


# --- causes that are not about values ---------------------------------------------------------

def cause_of_error(error: dict) -> Cause:
    """The student's exception: not written yet, or class, method, line and message as today."""
    where = str(error.get("where", "?"))
    kind = str(error.get("type", "an error"))
    if kind == "NotImplementedError":
        return Cause(f"{where}:not_written", where, f"{where} raised NotImplementedError: it is not written yet.",
                     "replace `raise NotImplementedError()` with your code")
    line = f" ({error['line']})" if error.get("line") else ""
    message = str(error.get("message", ""))
    if kind == "BrokenChain":  # sandbox/trainer.py: an output the next step of training cannot use
        return Cause(f"{where}:broken_chain", where, f"In training, {where} {message}.", "")
    return Cause(f"{where}:raised:{kind}:{error.get('line', '')}", where,
                 f"{where} raised {kind}: {message}{line}".rstrip(), "")

"""The one list of parts: what each graded part of the assignment is, read from grading.toml.

    [parts.linear]
    class = "Linear"                                  # the student's class (the notebook's contract)
    grade_id = "linear"                               # nbgrader grade_id of its answer cell
    checks_module = "autograder.checks.linear"        # defines checks(inputs) -> [Check]
    oracle = "autograder.checks.linear:Linear"        # the trusted class the outputs are compared with
    colour = "#4C72B0"                                # its colour in report.html (optional)
    [parts.linear.checks]                             # check -> points
    "forward.value" = 2

The kit's own parts are declared this way in its grading.toml, and a course adds one the same way
in its own file, without touching `autograder/`: `checks_module`, `oracle` and `solution` are module
names (`pkg.mod`, `pkg.mod:Name`) or files (`tanh_checks.py`, `tanh_oracle.py:Tanh`) relative to the
TOML file that names them. The reference answers are the source notebook's answer cells; a part
whose answer lives elsewhere names it in `solution` (a .py file): `reference_source` joins them into
the full-marks submission that `autograder gradescope selfcheck` grades.

A layer's knowledge lives in one place, its checks module: its checks, and optionally its oracle
(the kit's own are there), its catalogue of known mistakes and its formulas (VARIANTS, FORMULAS,
REGIONS, NOT_FINITE: see scoring/diagnosis.py), so a course's layer gets named causes for its own mistakes.

Parts with a class are *layers*: the sandbox builds and calls that class. A part without one (the
kit's `train`) only has checks. Modules named here are imported by the trusted parent alone, after
the sandbox template has started: the child side only knows the probe step language.
"""
from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..files import KIT_ROOT
from ..records import GraderError

FIELDS = ("class", "grade_id", "checks_module", "oracle", "solution", "colour", "checks")
# report.html colours for parts that name none (matplotlib's "deep" palette, as the kit's own parts)
PALETTE = ("#4C72B0", "#55A868", "#C44E52", "#8172B2", "#CCB974", "#64B5CD", "#8C8C8C", "#DA8BC3")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Part:
    name: str
    checks_module: str
    cls: str = ""  # the student's class; "" for a part that is not a layer (train)
    grade_id: str = ""  # the answer cell's nbgrader grade_id; "" when the part has no answer cell
    oracle: str = ""
    solution: str = ""
    colour: str = ""
    points: dict = field(default_factory=dict, compare=False)  # "<method>.<check>" -> points
    base: Path = Path(".")  # the folder of the TOML file that declared it: relative paths start here

    @property
    def is_layer(self) -> bool:
        return bool(self.cls)

    @property
    def max_score(self) -> float:
        return sum(self.points.values())

    def checks(self):
        """The part's checks module (imported on first use, in the parent only)."""
        return load(self.checks_module, self.base, f"[parts.{self.name}] checks_module")

    def oracle_class(self):
        return load(self.oracle, self.base, f"[parts.{self.name}] oracle")

    def files(self) -> list[Path]:
        """The .py files this part names (checks, oracle, solution), resolved."""
        specs = (self.checks_module, self.oracle.partition(":")[0], self.solution)
        return [resolve_file(spec, self.base) for spec in specs if spec.endswith(".py")]

    def solution_path(self) -> Path | None:
        return resolve_file(self.solution, self.base) if self.solution else None


def parse(table: dict, bases: dict[str, Path], where: str = "grading.toml") -> dict[str, Part]:
    """[parts] of a (merged) grading.toml -> {name: Part}, in file order. `bases` says which file
    declared each part (for relative paths)."""
    if not isinstance(table, dict):
        raise GraderError(f"{where}: [parts] must be a table of parts")
    parts: dict[str, Part] = {}
    for index, (name, body) in enumerate(table.items()):
        if not NAME.match(name) or not isinstance(body, dict):
            raise GraderError(f"{where}: [parts.{name}] must be a table named with letters, digits and _")
        unknown = sorted(set(body) - set(FIELDS))
        if unknown:
            raise GraderError(f"{where}: [parts.{name}] has unknown key(s) {', '.join(unknown)}; "
                              f"valid keys: {', '.join(FIELDS)}")
        points = body.get("checks", {})
        if not isinstance(points, dict) or not all(_is_number(v) for v in points.values()):
            raise GraderError(f"{where}: [parts.{name}.checks] must map check names to points")
        for key in ("class", "grade_id", "checks_module", "oracle", "solution", "colour"):
            if not isinstance(body.get(key, ""), str):
                raise GraderError(f"{where}: [parts.{name}] {key} must be a string")
        if not body.get("checks_module"):
            raise GraderError(f"{where}: [parts.{name}] needs checks_module (the module or .py file "
                              f"that defines its checks)")
        if body.get("class") and not body.get("oracle"):
            raise GraderError(f"{where}: [parts.{name}] names class {body['class']!r} but no oracle "
                              f"(the trusted class its outputs are compared with)")
        parts[name] = Part(
            name=name, checks_module=body["checks_module"], cls=body.get("class", ""),
            grade_id=body.get("grade_id", ""), oracle=body.get("oracle", ""),
            solution=body.get("solution", ""), colour=body.get("colour") or PALETTE[index % len(PALETTE)],
            points={check: float(value) for check, value in points.items()},
            base=bases.get(name, Path(".")),
        )
    _unique(parts, "cls", "class", where)
    _unique(parts, "grade_id", "grade_id", where)
    return parts


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def _unique(parts: dict[str, Part], attr: str, key: str, where: str) -> None:
    seen: dict[str, str] = {}
    for part in parts.values():
        value = getattr(part, attr)
        if value and value in seen:
            raise GraderError(f"{where}: [parts.{seen[value]}] and [parts.{part.name}] have the same {key} {value!r}")
        seen[value] = part.name


def resolve_file(spec: str, base: Path) -> Path:
    """A part's file: relative to the TOML file that named it, else to the kit (so a course file
    that copies the kit's own [parts] entries still finds solution/layers.py)."""
    path = Path(spec)
    if path.is_absolute():
        return path
    beside, in_kit = (base / path).resolve(), (KIT_ROOT / path).resolve()
    return in_kit if not beside.exists() and in_kit.exists() else beside


def load(spec: str, base: Path, what: str):
    """'pkg.mod', 'pkg.mod:Name', 'file.py' or 'file.py:Name' (relative to `base`) -> the object."""
    target, _, attribute = spec.partition(":")
    try:
        if target.endswith(".py"):
            module = _load_file(resolve_file(target, base))
        else:
            module = importlib.import_module(target)
        return getattr(module, attribute) if attribute else module
    except GraderError:
        raise
    except Exception as failure:  # an instructor's module: say which key and why, in one line
        raise GraderError(f"grading.toml {what} = {spec!r}: {type(failure).__name__}: {failure}") from None


def _load_file(path: Path):
    name = "autograder_course_" + re.sub(r"\W", "_", str(path.with_suffix("")))
    if name in sys.modules:
        return sys.modules[name]
    if not path.is_file():
        raise FileNotFoundError(f"no such file {path}")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before running it: dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def reference_source(parts) -> str:
    """The full-marks submission, as one .py source: the reference notebook's set-up and answer
    cells (solution.layers), then each part's own `solution` file, once each."""
    from solution.layers import source

    files = dict.fromkeys(path for part in parts if (path := part.solution_path()) is not None)
    try:
        return "\n\n".join([source(), *(path.read_text(encoding="utf-8") for path in files)])
    except OSError as failure:
        raise GraderError(f"cannot read a part's solution {failure.filename}: {failure.strerror}") from None

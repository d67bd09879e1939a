"""Read grading.toml once into frozen dataclasses, one section per stage.

A course file (`--config course.toml`) is laid over the kit's grading.toml: it names only what
it changes. Unknown sections and keys are errors naming the valid ones (a typo must not silently
fall back to a default).
"""
from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import MISSING, dataclass, fields
from pathlib import Path

from ..files import KIT_ROOT
from .parts import Part
from .parts import parse as parse_parts
from ..records import GraderError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (Gradescope's Ubuntu 22.04 image): the same parser, from PyPI
    import tomli as tomllib

DEFAULT_CONFIG = KIT_ROOT / "grading.toml"
CONFIG_VARIABLE = "AUTOGRADER_CONFIG"


@dataclass(frozen=True)
class Inputs:
    seed: int
    n: int
    d_in: int
    d_out: int
    classes: int


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float


@dataclass(frozen=True)
class Limits:
    """[limits]. No field has a default here: the kit's grading.toml, read under every course file, gives each."""

    wall_seconds: float
    cpu_seconds: int
    memory_mb: int
    processes: int
    file_size_mb: int
    output_kb: int
    tmpfs_mb: int
    submission_kb: int
    sandbox_uid: int
    submission_seconds: float
    open_files: int
    tmpfs_inodes: int
    notebook_cell_seconds: float


@dataclass(frozen=True)
class Forbidden:
    modules: tuple[str, ...]
    functions: tuple[str, ...]
    attributes: tuple[str, ...]


@dataclass(frozen=True)
class Train:
    hidden: int
    epochs: int
    batch_size: int
    lr: float
    train_samples: int
    wall_seconds: float
    guarded_epochs: int
    trajectory_tolerance: float
    accuracy_tolerance: float


@dataclass(frozen=True)
class Gradescope:
    visibility: str
    hidden_check_visibility: str
    stdout_visibility: str


@dataclass(frozen=True)
class Config:
    path: Path  # the file named with --config (or the kit's grading.toml)
    inputs: Inputs
    tolerance: dict[str, Tolerance]  # by dtype name: "float64", "float32"
    limits: Limits
    forbidden: Forbidden
    train: Train
    gradescope: Gradescope
    parts: dict[str, Part]  # the registry: every graded part, in grading.toml order
    points: dict[str, float]  # full check name -> points, in grading.toml order
    digest: str = ""  # of every file read (the kit's grading.toml and the course file): same digest, same grading

    def part_points(self, part: str) -> float:
        return self.parts[part].max_score if part in self.parts else 0.0

    @property
    def layers(self) -> list[Part]:
        """The parts the student writes a class for, in grading.toml order."""
        return [part for part in self.parts.values() if part.is_layer]

    def select_parts(self, names) -> list[str]:
        """Validated `--parts` names (GraderError naming the valid ones for an unknown name)."""
        names = [name.strip() for name in names if name.strip()]
        unknown = [name for name in names if name not in self.parts]
        if unknown or not names:
            raise GraderError(f"unknown part(s) {', '.join(unknown) or '(none given)'}; "
                              f"valid parts: {', '.join(self.parts)}")
        return names


SECTIONS = ("inputs", "tolerance", "limits", "forbidden", "train", "gradescope", "parts")
DTYPES = ("float64", "float32")
KINDS = {"int": (int, "an integer"), "float": ((int, float), "a number"), "str": (str, "a string")}


def _keys(cls) -> list[str]:
    return [f.name for f in fields(cls)]


# Keys a course file may still carry from an earlier kit: what took their place.
RETIRED = {
    ("train", "accuracy_threshold"): "the train check now compares the accuracy with the reference run's "
                                     "from the same start: set accuracy_tolerance instead",
    ("train", "first_epoch_tolerance"): "renamed trajectory_tolerance (it applies after the first step "
                                        "and each of the first two epochs)",
}


def _section(cls, raw: dict, name: str, where: str):
    table = raw.get(name)
    if not isinstance(table, dict):
        raise GraderError(f"{where}: missing section [{name}]")
    valid = _keys(cls)
    for key in table:
        if (name, key) in RETIRED:
            raise GraderError(f"{where}: [{name}] {key} is no longer a setting: {RETIRED[name, key]}")
    unknown = sorted(set(table) - set(valid))
    if unknown:
        raise GraderError(f"{where}: [{name}] has unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(valid)}")
    missing = [f.name for f in fields(cls) if f.name not in table
               and f.default is MISSING and f.default_factory is MISSING]
    if missing:
        raise GraderError(f"{where}: [{name}] is missing {', '.join(missing)}")
    for f in fields(cls):
        kind = KINDS.get(f.type)
        value = table.get(f.name)
        if kind and f.name in table and (isinstance(value, bool) or not isinstance(value, kind[0])):
            raise GraderError(f"{where}: [{name}] {f.name} = {value!r} must be {kind[1]}")
    return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in table.items()})


def _train(train: Train, where: str) -> Train:
    for key in ("hidden", "epochs", "batch_size", "train_samples"):
        if getattr(train, key) < 1:
            raise GraderError(f"{where}: [train] {key} = {getattr(train, key)} must be at least 1")
    if not train.trajectory_tolerance > 0 or not train.accuracy_tolerance >= 0:
        raise GraderError(f"{where}: [train] trajectory_tolerance must be above 0, accuracy_tolerance at least 0")
    return train


def _tolerances(raw: dict, where: str) -> dict[str, Tolerance]:
    table = raw.get("tolerance")
    if not isinstance(table, dict):
        raise GraderError(f"{where}: missing section [tolerance]")
    unknown = sorted(set(table) - set(DTYPES))
    if unknown:
        raise GraderError(f"{where}: [tolerance] has unknown dtype(s) {', '.join(unknown)}; valid: {', '.join(DTYPES)}")
    return {dtype: _section(Tolerance, table, dtype, f"{where}: [tolerance]") for dtype in table}


def _read(path: Path) -> tuple[dict, bytes]:
    try:
        data = path.read_bytes()
        return tomllib.loads(data.decode("utf-8")), data
    except FileNotFoundError:
        raise GraderError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise GraderError(f"{path} is a folder, not a config file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as bad:
        raise GraderError(f"{path}: not valid TOML ({bad})") from None


def _overlay(base: dict, course: dict, where: tuple = ()) -> dict:
    """The course file's values over the kit's, table by table (a course names only what it changes),
    except a part's [parts.<part>.checks]: a course that lists a part's checks grades exactly those."""
    merged = dict(base)
    for key, value in course.items():
        replaces = where[:1] == ("parts",) and key == "checks"
        if isinstance(value, dict) and isinstance(base.get(key), dict) and not replaces:
            merged[key] = _overlay(base[key], value, (*where, key))
        else:
            merged[key] = value
    return merged


def load_config(path: str | Path | None = None) -> Config:
    """The kit's grading.toml, with the course file `path` laid over it; without one, the file named
    by $AUTOGRADER_CONFIG (how a Jupyter kernel's `grade_part` under nbgrader finds the course's)."""
    raw, data = _read(DEFAULT_CONFIG)
    digest = hashlib.sha256(data)
    bases = {name: DEFAULT_CONFIG.parent for name in raw.get("parts", {})}
    where = str(DEFAULT_CONFIG)
    path = Path(path or os.environ.get(CONFIG_VARIABLE) or DEFAULT_CONFIG)
    if path.resolve() != DEFAULT_CONFIG.resolve():
        course, data = _read(path)
        digest.update(b"\0" + data)
        where = str(path)
        for name, body in (course.get("parts") or {}).items():
            if name not in bases or (isinstance(body, dict) and {"checks_module", "oracle", "solution"} & set(body)):
                bases[name] = path.resolve().parent
        raw = _overlay(raw, course)
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise GraderError(f"{where}: unknown section(s) {', '.join(unknown)}; valid: {', '.join(SECTIONS)}")
    parts = parse_parts(raw.get("parts", {}), bases, where)
    forbidden = _section(Forbidden, {"forbidden": {"modules": [], "functions": [], "attributes": [],
                                                   **raw.get("forbidden", {})}}, "forbidden", where)
    return Config(
        path=path,
        inputs=_section(Inputs, raw, "inputs", where),
        tolerance=_tolerances(raw, where),
        limits=_section(Limits, raw, "limits", where),
        forbidden=forbidden,
        train=_train(_section(Train, raw, "train", where), where),
        gradescope=_section(Gradescope, raw, "gradescope", where),
        parts=parts,
        points={f"{part.name}.{check}": value for part in parts.values() for check, value in part.points.items()},
        digest=digest.hexdigest()[:16],
    )

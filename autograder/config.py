"""Read grading.toml once into frozen dataclasses, one section per stage."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from .records import GraderError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (Gradescope's Ubuntu 22.04 image): the same parser, from PyPI
    import tomli as tomllib

KIT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = KIT_ROOT / "grading.toml"
PARTS = ("linear", "relu", "softmax", "nll", "train")


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
    wall_seconds: float
    cpu_seconds: int
    memory_mb: int
    processes: int
    file_size_mb: int
    output_kb: int
    tmpfs_mb: int
    submission_kb: int
    sandbox_uid: int
    submission_seconds: float = 120.0
    open_files: int = 64
    tmpfs_inodes: int = 4096
    notebook_cell_seconds: float = 24.0


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
    accuracy_threshold: float
    wall_seconds: float
    guarded_epochs: int
    first_epoch_tolerance: float = 1e-3


@dataclass(frozen=True)
class Gradescope:
    visibility: str
    hidden_check_visibility: str
    stdout_visibility: str


@dataclass(frozen=True)
class Config:
    path: Path
    inputs: Inputs
    tolerance: dict[str, Tolerance]  # by dtype name: "float64", "float32"
    limits: Limits
    forbidden: Forbidden
    train: Train
    gradescope: Gradescope
    points: dict[str, float]  # full check name -> points, in grading.toml order

    def part_points(self, part: str) -> float:
        return sum(p for name, p in self.points.items() if name.startswith(part + "."))


def _section(cls, table: dict, name: str):
    try:
        return cls(**table[name])
    except KeyError as missing:
        raise GraderError(f"grading.toml: missing section or key {missing} in [{name}]") from None
    except TypeError as bad:
        raise GraderError(f"grading.toml: [{name}]: {bad}") from None


def load_config(path: str | Path | None = None) -> Config:
    path = Path(path) if path else DEFAULT_CONFIG
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GraderError(f"config file not found: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as bad:
        raise GraderError(f"{path}: not valid TOML ({bad})") from None
    forbidden = raw.get("forbidden", {})
    points = {
        f"{part}.{check}": float(value)
        for part, body in raw.get("parts", {}).items()
        for check, value in body.get("checks", {}).items()
    }
    unknown = {name.split(".")[0] for name in points} - set(PARTS)
    if unknown:
        raise GraderError(f"grading.toml: unknown part(s) {sorted(unknown)}; known: {list(PARTS)}")
    return Config(
        path=path,
        inputs=_section(Inputs, raw, "inputs"),
        tolerance={k: Tolerance(**v) for k, v in raw.get("tolerance", {}).items()},
        limits=_section(Limits, raw, "limits"),
        forbidden=Forbidden(
            modules=tuple(forbidden.get("modules", ())),
            functions=tuple(forbidden.get("functions", ())),
            attributes=tuple(forbidden.get("attributes", ())),
        ),
        train=_section(Train, raw, "train"),
        gradescope=_section(Gradescope, raw, "gradescope"),
        points=points,
    )

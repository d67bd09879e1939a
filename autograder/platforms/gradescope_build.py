"""Gradescope, on the instructor's machine: build the autograder zip to upload.

    build_zip(out) -> setup.sh and run_autograder at the zip's root, plus the kit (what runs inside
                      the container is `platforms/gradescope.py`)
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ..course.config import DEFAULT_CONFIG, load_config
from ..files import KIT_ROOT, replace_atomically
from ..records import GraderError
from ..course.secret import SUFFIX, ensure_secret, read_secret, secret_path
from .gradescope import COURSE_FILE, check_visibility

TEMPLATES = Path(__file__).resolve().parent / "gradescope_files"
SCRIPTS = ("setup.sh", "run_autograder")  # at the zip's root, executable
REFERENCE_NOTEBOOK = "assignment/nn_from_scratch.ipynb"  # holds the reference answers solution/ runs
# student_template/: the released notebook, whose locked set-up cells run in place of edited ones
KIT_MEMBERS = ("autograder", "solution", REFERENCE_NOTEBOOK, "student_template", "grading.toml", "pyproject.toml",
               "README.md")
SKIPPED = ("__pycache__", ".ipynb_checkpoints", ".pytest_cache")
TORCH_PLACEHOLDER = "@@TORCH_VERSION@@"
ZIP_TIME = (2020, 1, 1, 0, 0, 0)  # fixed, so the same kit always builds the same zip


@dataclass(frozen=True)
class BuildResult:
    path: Path
    members: tuple[str, ...]
    torch_version: str


def installed_torch_version() -> str:
    """The torch this kit is tested with, without a local tag such as +cpu."""
    try:
        return metadata.version("torch").split("+")[0]
    except metadata.PackageNotFoundError:
        raise GraderError("torch is not installed here; pass --torch VERSION to pin one") from None


def _kit_files(kit: Path):
    for name in KIT_MEMBERS:
        top = kit / name
        if top.is_file():
            yield top
        elif top.is_dir():
            for path in sorted(top.rglob("*")):
                if path.is_file() and not any(part in SKIPPED for part in path.relative_to(kit).parts) \
                        and path.suffix != ".pyc":
                    yield path


def _add(archive: zipfile.ZipFile, name: str, data: bytes, executable: bool = False, mode: int = 0o644) -> None:
    info = zipfile.ZipInfo(name, ZIP_TIME)
    info.create_system = 3  # Unix, so the mode below is honoured when unzipped
    info.external_attr = (0o100000 | (0o755 if executable else mode)) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def _course_members(config) -> dict[str, Path]:
    """zip member -> file: the course file as course.toml, and its parts' own .py files."""
    folder = config.path.resolve().parent
    members = {COURSE_FILE: config.path}
    for part in config.parts.values():
        for path in part.files():
            if path.is_relative_to(KIT_ROOT.resolve()) and not path.is_relative_to(folder):
                continue  # the kit's own files: already in the zip
            if not path.is_relative_to(folder):
                raise GraderError(f"{config.path}: [parts.{part.name}] names {path}, outside the course "
                                  f"file's folder; keep a part's files beside the course file")
            if not path.is_file():
                raise GraderError(f"{config.path}: [parts.{part.name}] names {path}, which does not exist")
            members[path.relative_to(folder).as_posix()] = path
    return members


def build_zip(out: str | Path, config_path: str | Path | None = None,
              torch_version: str | None = None) -> BuildResult:
    """Write the autograder zip. A course file (`config_path`) goes in as course.toml beside the
    kit's grading.toml, with the .py files its parts name (at the same paths relative to it)."""
    config = load_config(config_path)
    has_course = config.path.resolve() != DEFAULT_CONFIG.resolve()
    course = _course_members(config) if has_course else {}
    check_visibility(config)
    torch_version = torch_version or installed_torch_version()
    for required in ("autograder", "solution", REFERENCE_NOTEBOOK, "pyproject.toml"):
        if not (KIT_ROOT / required).exists():
            raise GraderError(f"the kit at {KIT_ROOT} has no {required}; build from a checkout of the kit")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    members = []
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w") as archive:
        for script in SCRIPTS:
            text = (TEMPLATES / script).read_text(encoding="utf-8")
            _add(archive, script, text.replace(TORCH_PLACEHOLDER, torch_version).encode(), executable=True)
            members.append(script)
        for path in _kit_files(KIT_ROOT):
            name = path.relative_to(KIT_ROOT).as_posix()
            _add(archive, name, path.read_bytes())
            members.append(name)
        for name, path in course.items():
            if name in members:
                continue  # a kit file the course names (a course file kept in the checkout)
            _add(archive, name, path.read_bytes())
            members.append(name)
        # the course's own secret, beside the configuration it belongs to, so Gradescope draws the
        # same hidden inputs as a local regrade
        secret = ensure_secret(secret_path(config))
        name = Path(COURSE_FILE if has_course else DEFAULT_CONFIG.name).with_suffix(SUFFIX).as_posix()
        _add(archive, name, read_secret(secret) + b"\n", mode=0o600)
        members.append(name)
    replace_atomically(partial, out)
    return BuildResult(out, tuple(members), torch_version)

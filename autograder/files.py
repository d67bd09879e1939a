"""Where the kit lives, and the one way the grader writes a file others read."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .records import GraderError

KIT_ROOT = Path(__file__).resolve().parent.parent  # the checkout (or unzipped kit): grading.toml, solution/


def replace_atomically(temporary: Path, target: Path) -> None:
    """Rename a finished file over `target`: readers see the old file or the new one, never half."""
    try:
        os.replace(temporary, target)
    except OSError as failure:
        Path(temporary).unlink(missing_ok=True)
        raise GraderError(f"cannot write {target}: {failure.strerror}") from None


def write_atomic(path: Path, text: str, fsync: bool = False, mode: int = 0o644) -> None:
    """Write `text` next to `path` under a private temporary name, then rename it into place, so an
    interrupted writer (or a file planted at `path` earlier) never leaves anything but a whole file.
    `fsync` also survives a power cut (results a platform reads after the process ends)."""
    path = Path(path)
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as failure:
        raise GraderError(f"cannot write {path}: {failure.strerror}") from None
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(text)
            if fsync:
                stream.flush()
                os.fsync(stream.fileno())
        os.chmod(temporary, mode)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    replace_atomically(Path(temporary), path)

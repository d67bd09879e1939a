"""The course secret: what makes the hidden inputs unpredictable to students.

grading.toml is public (it ships in the kit and in the Gradescope zip), so its `[inputs] seed` alone
would let a student compute every hidden input in advance. The inputs are drawn instead from

    seed = HMAC-SHA256(course secret, "inputs:<[inputs] seed>")   (first 63 bits)

where the course secret is a file next to the configuration (`grading.toml` -> `grading.secret`),
drawn the first time the course grades or builds its Gradescope zip, unless the instructor wrote
one (any text of at least 16 characters). The same secret and grading.toml give byte-identical
grades on every route (grade, batch, Gradescope, both nbgrader routes); results record the
secret's fingerprint (`extra_data.course_secret_id`), never the secret, so a regrade can tell it
holds the same one.

Read only by the trusted parent, after the sandbox template has started (so a forked template
never holds it). The file is kept at mode 0600, so as root (namespaces or uid mode) the children's
uids cannot read it wherever it lies; as an ordinary user the children run as that user, and only
Landlock (sandbox/landlock.py, where the kernel has it) or a hidden folder keeps it from them.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from ..records import GraderError

SUFFIX = ".secret"
MIN_LENGTH = 16


def secret_path(config) -> Path:
    """Where the course secret of `config` lives: beside its grading.toml."""
    return Path(config.path).with_suffix(SUFFIX)


def ensure_secret(path: Path) -> Path:
    """Draw a secret into `path` unless one is there (atomically: concurrent graders agree)."""
    if path.exists():
        return path
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    except OSError as failure:
        raise GraderError(f"cannot create the course secret {path} ({failure.strerror}); create it "
                          f"yourself (any text of {MIN_LENGTH}+ characters, mode 600) or grade from "
                          f"a writable copy of the kit") from None
    with os.fdopen(fd, "w") as file:
        file.write(secrets.token_hex(32) + "\n")
    return path


def read_secret(path: Path) -> bytes:
    """The secret's text (for the Gradescope zip); graders use `course_inputs` instead."""
    secret = _read(path)
    try:
        return bytes(secret)
    finally:
        _forget(secret)


def _read(path: Path) -> bytearray:
    """The secret in a buffer the caller zeroes (_forget) after use, so no copy of it lingers
    in memory a template forked later could scan."""
    buffer = bytearray(4096)
    try:
        if path.stat().st_mode & 0o077 and path.stat().st_uid == os.geteuid():
            path.chmod(0o600)  # the sandbox's uids must not read it, wherever it lies
        with open(path, "rb", buffering=0) as file:
            size = file.readinto(buffer)
    except OSError as failure:
        raise GraderError(f"cannot read the course secret {path}: {failure.strerror}") from None
    secret = bytearray(buffer[:size].strip())
    _forget(buffer)
    if len(secret) < MIN_LENGTH:
        raise GraderError(f"the course secret {path} is shorter than {MIN_LENGTH} characters")
    return secret


def _forget(buffer: bytearray) -> None:
    buffer[:] = bytes(len(buffer))


def fingerprint(secret) -> str:
    """A public name for a secret (results carry it): equal names, equal secrets."""
    digest = hashlib.sha256(b"nn-grading-kit course secret id:")
    digest.update(secret)
    return digest.hexdigest()[:16]


def derive_seed(secret, public_seed: int) -> int:
    digest = hmac.new(secret, f"inputs:{public_seed}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") >> 1  # torch seeds are 64-bit; keep it positive


def course_inputs(config) -> tuple[int, str]:
    """(seed of the hidden inputs, fingerprint of the secret), drawing the secret if needed."""
    secret = _read(ensure_secret(secret_path(config)))
    try:
        return derive_seed(secret, config.inputs.seed), fingerprint(secret)
    finally:
        _forget(secret)


def course_secret_id(config) -> str:
    """The fingerprint alone (a batch's record of which secret its results were graded with)."""
    return course_inputs(config)[1]

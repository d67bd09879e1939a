"""The kit runs on Python 3.10 (Gradescope's default Ubuntu 22.04 image ships 3.10).

torch is not installed for 3.10 here, so the proof has two halves: `vermin` finds no construct
newer than requires-python anywhere in the package, and the pure-Python parts (reading
grading.toml, parsing the command line, building the Gradescope zip) really run under a 3.10
interpreter and give what they give under this one.
"""
from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.course.config import KIT_ROOT

MINIMUM = (3, 10)
PURE_PARTS = r"""
import json, sys
from pathlib import Path
from autograder.cli import build_parser
from autograder.course.config import load_config
from autograder.platforms.gradescope_build import build_zip
from autograder.records import GraderError

out = Path(sys.argv[1])
config = load_config()
args = build_parser().parse_args(["--config", "course.toml", "batch", "subs", "--out", "graded", "--workers", "2"])
try:
    load_config(sys.argv[2])
    broken = None
except GraderError as error:
    broken = str(error)
built = build_zip(out / "autograder.zip", torch_version="2.13.0")
print(json.dumps({
    "version": list(sys.version_info[:2]),
    "points": config.part_points("linear") + config.part_points("train"),
    "limits": config.limits.wall_seconds,
    "args": [args.command, args.path, args.out, args.workers, args.config],
    "broken": broken.split(":")[0] if broken else None,
    "members": len(built.members),
}))
"""


def python310() -> str | None:
    """A Python 3.10 interpreter on this machine (pyenv's, or python3.10 on PATH)."""
    roots = [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv")]
    found = [p for root in roots if root for p in sorted(glob.glob(f"{root}/versions/3.10.*/bin/python3.10"))]
    return (found or [shutil.which("python3.10")])[0]


def vermin(*args: str) -> subprocess.CompletedProcess:
    """vermin's exit status is non-zero when a file needs a newer Python than 3.10."""
    call = "import sys, vermin; sys.exit(vermin.main())"
    return subprocess.run([sys.executable, "-c", call, "--no-tips", "--violations", "--target=3.10-", *args],
                          capture_output=True, text=True, timeout=300)


def test_requires_python_says_3_10():
    text = (KIT_ROOT / "pyproject.toml").read_text()
    assert re.search(r'requires-python = ">=3\.10"', text)
    assert "tomli" in text and "python_version < '3.11'" in text


@pytest.mark.slow  # vermin reads the whole package
def test_vermin_finds_nothing_newer_than_python_3_10_in_the_package():
    pytest.importorskip("vermin")
    targets = [str(KIT_ROOT / name) for name in ("autograder", "solution")]
    done = vermin("--eval-annotations", *targets)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


def test_vermin_would_catch_a_3_11_construct(tmp_path):
    pytest.importorskip("vermin")
    (tmp_path / "newer.py").write_text("import tomllib\n")
    done = vermin(str(tmp_path))
    assert done.returncode != 0 and "tomllib" in done.stdout


def test_config_cli_and_zip_build_run_under_python_3_10(tmp_path):
    interpreter = python310()
    if not interpreter:
        pytest.skip("no Python 3.10 on this machine")
    tomli = pytest.importorskip("tomli")
    # Only the kit and tomli on the path: nothing else of this (newer) venv leaks in.
    site = tmp_path / "site"
    site.mkdir()
    (site / "tomli").symlink_to(Path(tomli.__file__).parent)
    broken = tmp_path / "broken.toml"
    broken.write_text("[limits\n")
    results = {}
    for name, python in (("3.10", interpreter), ("this", sys.executable)):
        out = tmp_path / name
        out.mkdir()
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": f"{KIT_ROOT}{os.pathsep}{site}",
               "PYTHONNOUSERSITE": "1", "HOME": str(tmp_path)}
        done = subprocess.run([python, "-c", PURE_PARTS, str(out), str(broken)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        results[name] = json.loads(done.stdout)
    assert results["3.10"].pop("version") == [3, 10]
    results["this"].pop("version")
    assert results["3.10"] == results["this"]
    assert results["3.10"]["broken"] == str(broken)  # a one-line GraderError, not a crash
    # The zip is built byte for byte the same under both interpreters.
    assert (tmp_path / "3.10" / "autograder.zip").read_bytes() == (tmp_path / "this" / "autograder.zip").read_bytes()


def test_setup_sh_uses_the_images_own_python_3_10_and_never_a_release_candidate(tmp_path):
    """setup.sh's interpreter choice, run in bash with a fake image's PATH."""
    interpreter = python310()
    if not interpreter:
        pytest.skip("no Python 3.10 on this machine")
    setup = (KIT_ROOT / "autograder" / "platforms" / "gradescope_files" / "setup.sh").read_text()
    find_python = re.search(r"(?ms)^find_python\(\) \{.*?^\}", setup).group(0)

    def chosen(executables: dict[str, str]) -> str:
        bin_dir = tmp_path / f"bin{len(list(tmp_path.iterdir()))}"
        bin_dir.mkdir()
        for name, target in executables.items():
            (bin_dir / name).symlink_to(target)
        done = subprocess.run([shutil.which("bash"), "-c", f"{find_python}\nfind_python"], env={"PATH": str(bin_dir)},
                              capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    old = next((p for p in sorted(glob.glob(str(Path.home() / ".pyenv/versions/3.9.*/bin/python3.9")))), None)
    # Ubuntu 22.04: python3 is 3.10, and an (rc) python3.11 may be lying around: python3 wins.
    assert chosen({"python3": interpreter, "python3.11": sys.executable}) == "python3"
    assert chosen({"python3.10": interpreter}) == "python3.10"
    if old:  # an image whose python3 is too old: refused, not used
        assert chosen({"python3": old}) == ""
    assert "apt-get install -y -q python3.11" not in setup

"""The Makefile asks pip for the CPU build of torch (the +cpu local version, which only the local
wheels and PyTorch's CPU index carry), not whatever `torch==X` resolves to (CUDA, on Linux, from PyPI)."""
import json
import re
import subprocess
import sys

import pytest

from autograder.files import KIT_ROOT

MAKEFILE = (KIT_ROOT / "Makefile").read_text()


def torch_install_lines() -> list[str]:
    return [line for line in MAKEFILE.splitlines() if "pip install" in line and "torch==" in line]


def test_every_linux_install_of_torch_names_the_cpu_build():
    lines = torch_install_lines()
    linux = [line for line in lines if "Darwin" not in line]
    assert len(linux) == 2 and all('"torch==$(TORCH_VERSION)+cpu"' in line for line in linux)
    assert '--extra-index-url "$(TORCH_CPU_INDEX)"' in linux[1]
    assert re.search(r"^TORCH_CPU_INDEX \?= https://download\.pytorch\.org/whl/cpu$", MAKEFILE, re.M)


@pytest.mark.slow  # asks pip to resolve torch
def test_the_first_try_resolves_offline_here_to_a_cpu_wheel():
    """What the first pip command would install on this machine, without installing it: pip's own
    resolver, with the machine's pip configuration (local wheels), and no index beyond it."""
    version = re.search(r"^TORCH_VERSION\s*\?=\s*(\S+)$", MAKEFILE, re.M).group(1)
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--no-deps",
                           "--ignore-installed", "--report", "-", f"torch=={version}+cpu"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    [item] = json.loads(done.stdout)["install"]
    assert item["metadata"]["version"] == f"{version}+cpu"

#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder image (Ubuntu 22.04 by default).
# It uses the image's own python3 when it is 3.10 or newer (Ubuntu 22.04 ships 3.10; its universe
# archive's python3.11 is a release candidate, so it is never installed), installs CPU-only torch and
# the kit (editable, so the kit stays in /autograder/source, which the sandbox hides from student
# code), creates named accounts for the sandbox's uids, and finally grades the reference solution
# to prove the sandbox works here.
set -euo pipefail

SOURCE=/autograder/source
VENV=/opt/nn-grading-kit/venv
TORCH_VERSION="@@TORCH_VERSION@@"                        # filled in by `autograder gradescope build`
TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu      # CPU wheels: no multi-GB CUDA download
export DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

find_python() {  # the image's own python3 if it is >= 3.10, else another python3.x >= 3.10 on it
    for candidate in python3 python3.10 python3.11 python3.12 python3.13 python3.14; do
        if command -v "$candidate" >/dev/null &&
           "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
            echo "$candidate"; return 0
        fi
    done
    return 1
}

PYTHON="$(find_python || true)"
if [ -z "$PYTHON" ]; then  # a minimal image without python3: the distribution's own one
    apt-get update -q
    apt-get install -y -q python3 python3-venv
    PYTHON="$(find_python || true)"
fi
if [ -z "$PYTHON" ]; then
    echo "setup.sh: this image has no Python 3.10 or newer; choose Gradescope's Ubuntu 22.04 (or newer) base image" >&2
    exit 1
fi
if ! "$PYTHON" -m venv "$VENV"; then  # Debian/Ubuntu keep ensurepip in a separate package
    apt-get update -q
    apt-get install -y -q "$("$PYTHON" -c 'import sys; print(f"python3.{sys.version_info.minor}-venv")')"
    "$PYTHON" -m venv "$VENV"
fi

"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q "torch==${TORCH_VERSION}+cpu" --extra-index-url "$TORCH_CPU_INDEX"
"$VENV/bin/pip" install -q -e "$SOURCE"
chmod -R a+rX "$VENV"  # sandboxed children run as other uids and read the interpreter's files

# Named accounts for the uids the sandbox drops student code to (grading.toml: limits.sandbox_uid).
# The sandbox does not need them; they make `ps` and file listings readable.
FIRST_UID="$(cd "$SOURCE" && "$VENV/bin/python" -c \
    'from autograder.course.config import load_config; from autograder.platforms.gradescope import course_config; print(load_config(course_config()).limits.sandbox_uid)')"
for slot in 0 1 2 3 4 5 6 7; do
    uid=$((FIRST_UID + slot))
    if ! getent passwd "$uid" >/dev/null; then
        useradd --uid "$uid" --user-group --no-create-home --home-dir /nonexistent \
                --shell /usr/sbin/nologin "student-sandbox-$slot"
    fi
done

# Fails the build, with the reason, if the reference solution does not get full marks here.
cd "$SOURCE"
"$VENV/bin/python" -m autograder gradescope selfcheck

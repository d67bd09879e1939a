"""Unit-level tests of the sandbox's defences: the wire framing's limits (what a hostile child can
send the parent), the session's checks of a child's frames, the forbidden-API guard (and its known
limit), and isolation.py's pieces run in a forked process exactly as a child is set up.
"""
from __future__ import annotations

import json
import os
import socket
import struct
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from autograder.course.config import KIT_ROOT, load_config
from autograder.sandbox import isolation, modes, wire, zygote
from autograder.sandbox.cgroups import SlotCgroups
from autograder.sandbox.guard import ForbiddenGuard
from autograder.sandbox.session import CHILD_FRAME_BYTES, Sandbox, _outcome
from redteam.harness import REFERENCE, SANDBOX_UID, attack, host_folder, in_private_folder

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="namespaces, mounts and uids need root")


# --- wire: framing limits ------------------------------------------------------------------------

def frame(body: bytes, payload: bytes = b"") -> bytes:
    return struct.pack("!II", len(body), len(payload)) + body + payload


@pytest.fixture
def pair():
    left, right = socket.socketpair()
    yield left, right
    left.close()
    right.close()


@pytest.mark.parametrize("dtype", list(wire.DTYPES.values()))
def test_tensors_of_every_dtype_cross_unchanged(pair, dtype):
    tensor = (torch.arange(12) % 5).to(dtype).reshape(3, 4)
    wire.send(pair[0], {"type": "result"}, [tensor, tensor[:0]])
    message, (got, empty) = wire.receive(pair[1])
    assert message == {"type": "result"}
    assert got.dtype == dtype and torch.equal(got, tensor) and empty.shape == (0, 4)


def test_deeply_nested_json_is_a_wire_error(pair):
    pair[0].sendall(frame(b"[" * 20_000 + b"]" * 20_000))  # fits in the socket buffer
    with pytest.raises(wire.WireError):
        wire.receive(pair[1])


@pytest.mark.parametrize("shape", [[0, 10**20], [0] + [2**31 - 1] * 15, [1] * 17, [-1, 0], [2.0], "3"])
def test_absurd_shapes_are_wire_errors(pair, shape):
    pair[0].sendall(frame(json.dumps({"tensors": [{"dtype": "float64", "shape": shape}]}).encode()))
    with pytest.raises(wire.WireError):
        wire.receive(pair[1])


def test_a_frame_over_the_limit_is_refused_from_its_header(pair):
    """Only the 8-byte header was sent: the receiver must not wait for the gigabyte it announces."""
    pair[0].sendall(struct.pack("!II", 100, 1 << 30))
    pair[1].settimeout(5)
    with pytest.raises(wire.FrameTooLarge):
        wire.receive(pair[1], max_bytes=CHILD_FRAME_BYTES)


@pytest.mark.parametrize("body, payload", [
    (b'{"tensors": [{"dtype": "float64", "shape": [2]}]}', b"\0" * 8),  # shorter than its tensors
    (b'{"tensors": []}', b"\0" * 8),  # payload nobody claims
    (b'{"tensors": [7]}', b""),
    (b'[]', b""),
    (b'{"no": "tensors"}', b""),
    (b"\xff\xfe", b""),
])
def test_inconsistent_frames_are_wire_errors(pair, body, payload):
    pair[0].sendall(frame(body, payload))
    with pytest.raises(wire.WireError):
        wire.receive(pair[1])


def test_unsupported_dtypes_arrive_as_none(pair):
    wire.send(pair[0], {}, [torch.zeros(2, dtype=torch.complex64)])
    assert wire.receive(pair[1])[1] == [None]


def test_the_deadline_covers_the_whole_frame_not_each_read(pair):
    """A sender dripping one byte every 0.1 s finishes a 100-byte frame after ~10 s; a deadline of
    1 s must end the wait (with a per-read timeout it never would)."""
    body = json.dumps({"tensors": [], "pad": "x" * 80}).encode()

    def drip():
        try:
            pair[0].sendall(struct.pack("!II", len(body), 0))
            for byte in body:
                time.sleep(0.1)
                pair[0].sendall(bytes([byte]))
        except OSError:
            pass

    threading.Thread(target=drip, daemon=True).start()
    with pytest.raises(socket.timeout):
        wire.receive(pair[1], deadline=time.monotonic() + 1)


def test_a_lying_tensor_subclass_is_read_without_running_its_code():
    class Liar(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            raise AssertionError("student code ran")

        def detach(self):
            raise AssertionError("student code ran")

    plain = wire.plain_tensor(torch.arange(3.0).as_subclass(Liar))
    assert type(plain) is torch.Tensor and plain.tolist() == [0.0, 1.0, 2.0]


# --- session: a child's frame is data, never trusted ---------------------------------------------

def test_frame_fields_of_the_wrong_type_or_size_are_dropped_or_cut():
    outcome = _outcome({
        "type": "result", "index": 0, "passed": True, "score": 99,  # fields the parent never reads
        "outputs": {"h": {"kind": "tensor", "index": 7}, "S": "tensor", "dW": {"kind": "other", "type": "x" * 999}},
        "error": {"where": "w" * 10**5, "type": ["list"], "message": "m" * 10**5, "line": None},
        "forbidden": {"Linear.forward": ["f" * 10**4] * 10**3, "ReLU.forward": "softmax"},
        "seconds": "soon",
    }, [])
    assert outcome.outputs == {"h": "dtype:unsupported", "S": "other:?", "dW": "other:" + "x" * 40}
    assert all(isinstance(value, str) and len(value) <= 500 for value in outcome.error.values())
    assert list(outcome.forbidden) == ["Linear.forward"] and len(outcome.forbidden["Linear.forward"]) == 20
    assert all(len(call) <= 100 for call in outcome.forbidden["Linear.forward"])
    assert outcome.seconds == 0.0
    assert _outcome({"outputs": [1], "error": 5, "forbidden": [2], "seconds": [3]}, []).outputs == {}


def test_the_template_is_not_told_where_a_batch_submission_lies(tmp_path):
    """The template reads every request and children are forked from it: a submission's folder
    inside a hidden one (a batch's submitted/alice/ps1) is hidden with it and never named, so no
    student's id stays in the template's memory for the next child."""
    hidden, inside, outside = tmp_path / "class", tmp_path / "class" / "alice" / "ps1", tmp_path / "elsewhere"
    owner = SimpleNamespace(limits=load_config().limits, as_root=True, namespaces=True, hide=(str(hidden),),
                            cgroups=SlotCgroups(), isolation_mode=modes.Mode("namespaces"), bubblewrap=False)
    request = Sandbox._request(owner, SANDBOX_UID, (str(inside), str(outside)), None)
    assert list(request["limits"]["hide"]) == [str(hidden), str(outside)]
    assert "alice" not in json.dumps(request)


# --- guard: forbidden-API detection and its limit ------------------------------------------------

@pytest.fixture
def guard():
    forbidden = load_config().forbidden
    return ForbiddenGuard(forbidden.modules, forbidden.functions, forbidden.attributes)


def test_the_guard_sees_forbidden_calls_however_they_are_reached(guard):
    x = torch.randn(3, 4, dtype=torch.float64)
    with guard:
        getattr(torch, "soft" + "max")(x, dim=1)
        x.relu()
        torch.nn.functional.log_softmax(x, dim=1)
        torch.zeros(2, requires_grad=True)
    assert guard.hits == ["torch.softmax", "Tensor.relu", "torch.nn.functional.log_softmax",
                          "zeros(requires_grad=True)"]


def test_the_guard_lets_allowed_operations_through_unflagged(guard):
    x = torch.randn(3, 4, dtype=torch.float64)
    with guard:
        result = (x - x.max(dim=1, keepdim=True).values).exp()
        torch.einsum("ij,kj->ik", x, x).logsumexp(dim=1)
        x.clamp(min=0).where(x > 0, torch.zeros_like(x))
    assert guard.hits == []
    assert result.shape == (3, 4)


def test_the_name_guard_switched_off_leaves_the_operation_guard(guard):
    """DisableTorchFunction hides torch.softmax's name, not the operation it runs (#22 item 1)."""
    x = torch.randn(3, 4)
    with guard:
        with torch._C.DisableTorchFunction():
            torch.softmax(x, dim=1)
    assert guard.hits == ["aten._softmax (what softmax runs)"]


# --- isolation: set up a process exactly as a sandboxed child is, and look around ----------------

def run_isolated(look, hide=(), as_root=True) -> dict:
    """Fork as the zygote does (as root into a new PID namespace), set the child up as
    zygote._run_child and child.enter_sandbox do, run `look()` in it and return its result."""
    read, write = os.pipe()
    pid = zygote.fork_into_pid_namespace() if as_root else os.fork()
    if pid == 0:
        try:
            os.close(read)
            os.setsid()
            if as_root:
                isolation.new_namespaces()
            limits = isolation.ChildLimits(cpu_seconds=10, memory_mb=512, processes=8, file_size_mb=1,
                                           tmpfs_mb=4, tmpfs_inodes=256, open_files=64, uid=SANDBOX_UID,
                                           hide=tuple(map(str, hide)))
            workdir = isolation.private_filesystem(limits, as_root) if as_root else tempfile.mkdtemp()
            isolation.clean_environment(workdir)
            isolation.apply_rlimits(limits, as_root)
            if as_root:
                isolation.drop_privileges(limits.uid)
            isolation.die_with_parent()
            os.chdir(workdir)
            os.write(write, json.dumps(look()).encode())
        except BaseException as error:
            os.write(write, json.dumps({"error": repr(error)}).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(data)


def listing(folder) -> list | str:
    return os.listdir(folder) if os.path.isdir(folder) else "missing"


def attempt(action) -> str:
    try:
        action()
        return "done"
    except OSError as error:
        return error.strerror


def write_file(path):
    return lambda: Path(path).write_text("written by the sandbox\n")


@pytest.fixture
def world_writable(tmp_path):
    """A world-writable folder and file outside everything the sandbox hides or replaces (next to
    the kit when possible, see harness.host_folder), so only the read-only mounts can protect them."""
    folder = Path(tempfile.mkdtemp(prefix="autograder-sandbox-test-", dir=host_folder(tmp_path)))
    folder.chmod(0o1777)
    canary = folder / "canary.txt"
    canary.write_text("alive\n")
    canary.chmod(0o666)
    yield folder
    import shutil

    shutil.rmtree(folder)


@ROOT_ONLY
def test_only_the_uid_drop_would_leave_world_writable_host_files_open(world_writable):
    """The control for the next test: without the child's mount namespace, the sandbox uid can
    change a world-writable file of the host."""
    def look():
        return {"canary": attempt(lambda: open(world_writable / "canary.txt", "a").write("x"))}

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        isolation.drop_privileges(SANDBOX_UID)
        os.write(write, json.dumps(look()).encode())
        os._exit(0)
    os.close(write)
    result = json.loads(os.read(read, 1 << 16))
    os.waitpid(pid, 0)
    assert result == {"canary": "done"}


@ROOT_ONLY
def test_a_child_sees_a_read_only_host_an_empty_kit_and_no_network(world_writable):
    secret_folder = world_writable / "hidden"  # outside /tmp, which a child gets fresh anyway
    secret_folder.mkdir()
    (secret_folder / "answers.txt").write_text("42")
    os.environ["AUTOGRADER_TEST_SECRET"] = "hunter2"
    try:
        seen = run_isolated(lambda: {
            "uid": os.getuid(), "pid": os.getpid(),
            "kit": listing(KIT_ROOT), "hidden": os.listdir(secret_folder), "run": os.listdir("/run"),
            "canary": attempt(lambda: open(world_writable / "canary.txt", "a").write("x")),
            "new file": attempt(write_file(world_writable / "new.txt")),
            "tmp": attempt(write_file("/tmp/mine.txt")), "work": attempt(write_file("mine.txt")),
            "network": attempt(lambda: socket.socket().connect(("127.0.0.1", 9))),
            "environment": sorted(os.environ),
            "proc environ": attempt(lambda: Path("/proc/self/environ").read_bytes()),
            "ipc": os.readlink("/proc/self/ns/ipc"),
        }, hide=(KIT_ROOT, secret_folder))
    finally:
        del os.environ["AUTOGRADER_TEST_SECRET"]
    assert "error" not in seen, seen
    assert seen["uid"] == SANDBOX_UID and seen["pid"] == 1
    # the kit is empty but for the Python environment it holds, if any (a venv in the checkout,
    # bound back read-only); a clone under /tmp lies in the child's fresh /tmp: not there at all
    environment = sorted({Path(p).relative_to(KIT_ROOT).parts[0] for p in isolation.python_environment()
                          if Path(p).is_relative_to(KIT_ROOT)})
    assert seen["kit"] == ("missing" if in_private_folder(KIT_ROOT) and not environment else environment)
    assert seen["hidden"] == [] and seen["run"] == []
    assert seen["canary"] == "Read-only file system" and seen["new file"] == "Read-only file system"
    assert seen["tmp"] == "done" and seen["work"] == "done"
    assert seen["network"] == "Network is unreachable"
    assert set(seen["environment"]) <= {"PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "HOME", "TMPDIR"}
    assert (world_writable / "canary.txt").read_text() == "alive\n"
    assert sorted(p.name for p in world_writable.iterdir()) == ["canary.txt", "hidden"]
    assert not Path("/tmp/mine.txt").exists()
    assert seen["ipc"] != os.readlink("/proc/self/ns/ipc")


def test_the_environment_is_scrubbed_from_os_environ_and_from_proc():
    os.environ["AUTOGRADER_TEST_SECRET"] = "hunter2"
    try:
        seen = run_isolated(lambda: {
            "environment": dict(os.environ), "proc": Path("/proc/self/environ").read_bytes().decode(errors="replace"),
        }, as_root=False)
    finally:
        del os.environ["AUTOGRADER_TEST_SECRET"]
    assert "AUTOGRADER_TEST_SECRET" not in seen["environment"]
    assert seen["environment"]["HOME"] == seen["environment"]["TMPDIR"]
    assert "hunter2" not in seen["proc"]


def test_as_an_ordinary_user_the_process_limit_counts_on_top_of_the_users_own():
    """RLIMIT_NPROC counts every task of the uid: the child gets [limits] processes more than the
    user already runs (it used to get no limit at all without root)."""
    seen = run_isolated(lambda: {"limit": __import__("resource").getrlimit(__import__("resource").RLIMIT_NPROC)[0],
                                 "tasks": isolation.tasks_of(os.getuid())}, as_root=False)
    assert "error" not in seen, seen
    assert 8 < seen["limit"] <= seen["tasks"] + 8 + 4  # 8 = ChildLimits.processes above; tasks come and go


@ROOT_ONLY
def test_descriptors_the_grader_had_open_are_closed_in_the_child(tmp_path):
    """A file open at fd 1500 in the grader when the template is forked (above 1024, where the
    child's clean-up used to stop) must not be writable from student code."""
    from autograder.pipeline import Grader

    target = tmp_path / "graders-file.txt"
    with open(target, "w") as graders_file:
        os.dup2(graders_file.fileno(), 1500)
        try:
            submission = tmp_path / "inherited_fd.py"
            submission.write_text(f"{REFERENCE}\n\nREDTEAM = {{'fd': 1500}}\n\n{attack('inherited_fd')}")
            with Grader(load_config(), hide=(tmp_path,), mode="fork") as grader:
                report = grader.grade(submission)
        finally:
            os.close(1500)
    assert "inherited descriptor: Bad file descriptor" in report.student_output
    assert target.read_text() == ""


@ROOT_ONLY
def test_folders_hidden_twice_or_inside_one_another_are_hidden_once(world_writable):
    """Gradescope's grader hides the kit twice (as the kit, as /autograder/source) and the folder
    holding both: a child must still start."""
    outer = world_writable / "autograder"
    (outer / "source").mkdir(parents=True)
    (outer / "source" / "answers.txt").write_text("42")
    seen = run_isolated(lambda: {"outer": os.listdir(outer)},
                        hide=(outer / "source", outer / "source", outer / "results", outer))
    assert seen == {"outer": []}

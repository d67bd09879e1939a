"""Batch grading on a Dask cluster (`--scheduler ADDRESS`): the runner interface of runner.py, with
the grading done on Dask workers.

Each worker process hosts one Grader of its own (a warm template in spawn mode, since worker
processes run threads), started on first use and closed when the worker shuts down. Workers need
not share a file system: a submission travels to the worker as its bytes and file name (a folder as
a zip of its files), and the result comes back as the results.json dict, plain data built by the
trusted worker process. Student code still runs only in the worker's sandboxed children.

Imported only when a scheduler is given: local grading never imports Dask.
"""
from __future__ import annotations

import atexit
import hashlib
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path

from distributed import Client, WorkerPlugin, get_worker
from distributed import wait as dask_wait

from ..records import GraderError
from ..course.secret import SUFFIX, ensure_secret, read_secret, secret_path
from ..intake import safezip
from ..sandbox import trees
from .layouts import Item
from .runner import grade_to_result

PLUGIN_NAME = "autograder-grader"
STAGING_PREFIX = "autograder-dask-"
FILE_CAP = 64 << 20  # bytes sent per submission file; the grader refuses far smaller ones anyway


# --- on the worker ------------------------------------------------------------------------------

class _GraderHost:
    """Owns one worker process's Grader on a thread of its own that lives as long as the Grader:
    the template dies with the thread that started it (PR_SET_PDEATHSIG is per thread), and
    Dask's task threads are not ours to keep alive."""

    def __init__(self, config_text: str, secret_text: str, threads: int):
        _remove_orphaned_staging()
        self.staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-"))
        self._config_text = config_text
        self._secret_text = secret_text
        self._threads = threads
        self._ready, self._stop = threading.Event(), threading.Event()
        self._grader = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._host, name="autograder-grader", daemon=True)
        self._thread.start()

    def _host(self) -> None:
        from ..course.config import load_config
        from ..pipeline import Grader

        try:
            config_path = self.staging / "grading.toml"  # hidden from the children with the rest
            config_path.write_text(self._config_text, encoding="utf-8")
            # the course secret beside it: the workers draw the same hidden inputs as a local run
            secret = os.open(config_path.with_suffix(SUFFIX), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(secret, "w", encoding="latin-1") as file:
                file.write(self._secret_text)
            self._grader = Grader(load_config(config_path), hide=(self.staging,), mode="spawn",
                                  workers=self._threads)
        except BaseException as failure:
            self._error = failure
        finally:
            self._ready.set()
        self._stop.wait()
        if self._grader is not None:
            self._grader.close()
        trees.remove(self.staging)

    def grader(self):
        self._ready.wait()
        if self._error is not None:
            raise RuntimeError(f"the grader could not start on this worker: {self._error}")
        return self._grader

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _remove_orphaned_staging() -> None:
    """Staging folders of worker processes that were killed (no teardown ran) on this machine."""
    for folder in Path(tempfile.gettempdir()).glob(STAGING_PREFIX + "*"):
        pid = folder.name[len(STAGING_PREFIX):].split("-")[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            trees.remove(folder)


_hosts: dict[str, _GraderHost] = {}
_hosts_lock = threading.Lock()


def _host_for(config_text: str, secret_text: str) -> _GraderHost:
    key = hashlib.sha256(f"{config_text}\0{secret_text}".encode()).hexdigest()
    with _hosts_lock:
        if key not in _hosts:
            try:
                threads = get_worker().state.nthreads
            except ValueError:  # not on a worker (called directly)
                threads = 1
            _hosts[key] = _GraderHost(config_text, secret_text, threads)
        return _hosts[key]


def close_hosts() -> None:
    with _hosts_lock:
        hosts = list(_hosts.values())
        _hosts.clear()
    for host in hosts:
        host.close()


atexit.register(close_hosts)


class GraderPlugin(WorkerPlugin):
    """Closes the worker's Grader (its template and staging folder) when the worker shuts down."""

    name = PLUGIN_NAME

    def teardown(self, worker) -> None:
        close_hosts()


def _safe_name(name: str, fallback: str) -> str:
    name = Path(name.replace("\\", "/")).name
    return name if name not in ("", ".", "..") and not name.startswith(".") else fallback


def grade_on_worker(config_text: str, secret_text: str, student: str, kind: str, name: str, data: bytes) -> dict:
    """Runs on a Dask worker: unpack one submission into a private folder, grade it, return its
    results.json object. kind: "file" (data is the file) or "folder" (data is a zip of it)."""
    host = _host_for(config_text, secret_text)
    grader = host.grader()
    job = Path(tempfile.mkdtemp(dir=host.staging))
    try:
        path = job / _safe_name(name, "submission" if kind == "folder" else "submission.ipynb")
        if kind == "folder":
            path.mkdir()
            safezip.extract(data, path, FILE_CAP)
        else:
            path.write_bytes(data)
        return grade_to_result(grader, path, student)
    finally:
        trees.remove(job)  # an extracted upload: the one walker of student trees


# --- on the machine running `autograder batch` --------------------------------------------------

def pack(item: Item) -> tuple[str, str, bytes]:
    """(kind, name, data) of a submission, for a worker that cannot read our files."""
    if item.source.is_dir():
        return "folder", item.source.name, safezip.pack_folder(item.source, FILE_CAP)
    with open(item.source, "rb") as stream:
        return "file", item.source.name, stream.read(FILE_CAP)


class DaskRunner:
    """Sends each submission to the cluster at `address` (see runner.py for the interface)."""

    CAPACITY_REFRESH_SECONDS = 5.0
    CONNECT_TIMEOUT = "20s"  # Dask retries a refused connection until then

    def __init__(self, address: str, config, hide=()):
        # hide: the local folders; remote workers hide their own copies (their staging folder)
        self.address = address
        self.config_text = Path(config.path).read_text(encoding="utf-8")
        self.secret_text = read_secret(ensure_secret(secret_path(config))).decode("latin-1")
        self.client: Client | None = None
        self._futures: dict = {}  # future -> Item
        self._capacity, self._capacity_checked = 2, 0.0

    def start(self) -> None:
        try:
            self.client = Client(self.address, timeout=self.CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as unreachable:
            raise GraderError(f"cannot reach the Dask scheduler at {self.address}: {unreachable}") from None
        self.client.register_plugin(GraderPlugin(), name=PLUGIN_NAME)

    @property
    def capacity(self) -> int:
        """Two submissions per worker thread in the cluster now (it may grow or shrink)."""
        now = time.monotonic()
        if now - self._capacity_checked > self.CAPACITY_REFRESH_SECONDS:
            self._capacity = max(2, 2 * sum(self.client.nthreads().values()))
            self._capacity_checked = now
        return self._capacity

    def submit(self, item: Item) -> None:
        kind, name, data = pack(item)
        future = self.client.submit(grade_on_worker, self.config_text, self.secret_text, item.key, kind, name, data,
                                    key=f"autograder-{item.key}-{uuid.uuid4().hex[:8]}", pure=False)
        self._futures[future] = item

    def wait(self, timeout: float) -> list:
        if not self._futures:
            time.sleep(timeout)
            return []
        try:
            done, _ = dask_wait(list(self._futures), timeout=timeout, return_when="FIRST_COMPLETED")
        except TimeoutError:
            return []
        finished = []
        for future in done:
            item = self._futures.pop(future)
            if future.status == "finished":
                finished.append((item, future.result()))
            else:
                finished.append((item, future.exception() or RuntimeError(f"task {future.status}")))
        return finished

    def close(self, abandon: bool = False) -> None:
        if self.client is None:
            return
        if self._futures:
            self.client.cancel(list(self._futures))
            self._futures.clear()
        self.client.close()
        self.client = None

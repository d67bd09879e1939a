"""Batch grading on a Dask cluster (distributed.LocalCluster, 2 worker processes): the same
grades.csv as local grading, and a worker killed mid-run neither loses nor duplicates a grade."""
from __future__ import annotations

import os
import signal
import threading
import time
import zipfile

import pytest

distributed = pytest.importorskip("distributed")

from autograder.batch import grade_batch  # noqa: E402
from autograder.batch.progress import QuietProgress  # noqa: E402
from test_batch import MIXED_CLASS, REFERENCE, notebook_submission, read_csv, write_class  # noqa: E402


pytestmark = pytest.mark.slow  # a Dask cluster of two worker processes


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as local:
        yield local


@pytest.fixture(scope="module")
def mixed_class(tmp_path_factory):
    """Every kind of submission: good, buggy, unusable, a crash, a notebook, a folder, a zip."""
    folder = tmp_path_factory.mktemp("dask") / "class"
    write_class(folder, {**MIXED_CLASS, "frank.ipynb": notebook_submission(),
                         "grace/work/nn_from_scratch.ipynb": notebook_submission()})
    with zipfile.ZipFile(folder / "heidi.zip", "w") as archive:
        archive.writestr("heidi/layers.py", REFERENCE)
    return folder


def test_cluster_grades_equal_local_grades_byte_for_byte(cluster, mixed_class, tmp_path, config):
    local = grade_batch(mixed_class, tmp_path / "local", config, progress=QuietProgress(), workers=2)
    remote = grade_batch(mixed_class, tmp_path / "dask", config, progress=QuietProgress(),
                         scheduler=cluster.scheduler_address)
    assert remote.failures == [] and remote.graded == local.graded == 8
    assert (tmp_path / "dask" / "grades.csv").read_bytes() == (tmp_path / "local" / "grades.csv").read_bytes()
    rows = {row["student"]: row for row in read_csv(tmp_path / "dask" / "grades.csv")}
    assert rows["grace"]["score"] == rows["grace"]["max_score"] == rows["heidi"]["score"]
    again = grade_batch(mixed_class, tmp_path / "dask", config, progress=QuietProgress(),
                        scheduler=cluster.scheduler_address)
    assert (again.graded, again.skipped) == (0, 8)


def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(cluster, tmp_path, config):
    slow = "import time\ntime.sleep(2)\n" + REFERENCE
    students = [f"s{i}" for i in range(6)]
    course = write_class(tmp_path / "class", {f"{s}.py": slow for s in students})
    client = distributed.Client(cluster.scheduler_address)
    outcome = {}

    def grade():
        outcome["remote"] = grade_batch(course, tmp_path / "dask", config, progress=QuietProgress(),
                                        scheduler=cluster.scheduler_address)

    runner = threading.Thread(target=grade)
    runner.start()
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and time.monotonic() < deadline:  # a worker in the middle of a submission
        busy = [address for address, keys in client.processing().items() if keys]
        if busy and list((tmp_path / "dask" / "results").glob("*.json")):
            pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
            os.kill(pid, signal.SIGKILL)
            killed = busy[0]
        time.sleep(0.2)
    runner.join(timeout=600)
    client.close()
    assert killed, "no worker was ever busy grading"
    remote = outcome["remote"]
    assert remote.failures == [] and remote.graded == 6
    assert sorted(p.stem for p in (tmp_path / "dask" / "results").glob("*.json")) == students
    rows = read_csv(tmp_path / "dask" / "grades.csv")
    assert [row["student"] for row in rows] == students
    assert all(row["score"] == row["max_score"] for row in rows)
    local = grade_batch(course, tmp_path / "local", config, progress=QuietProgress(), workers=2)
    assert local.graded == 6
    assert (tmp_path / "dask" / "grades.csv").read_bytes() == (tmp_path / "local" / "grades.csv").read_bytes()


@pytest.fixture(scope="module")
def config():
    from autograder.course.config import load_config

    return load_config()


def test_unreachable_scheduler_is_a_one_line_error(tmp_path, config, monkeypatch):
    from autograder.batch.dask_runner import DaskRunner
    from autograder.records import GraderError

    monkeypatch.setattr(DaskRunner, "CONNECT_TIMEOUT", "2s")  # the error, not the wait, is tested
    course = write_class(tmp_path / "class", {"alice.py": REFERENCE})
    with pytest.raises(GraderError, match="cannot reach the Dask scheduler"):
        grade_batch(course, tmp_path / "out", config, progress=QuietProgress(), scheduler="tcp://127.0.0.1:9")

"""Speed properties that a change elsewhere could silently lose (see bench/ for the figures)."""
from __future__ import annotations

import re

import pytest


def test_children_never_walk_the_template_heap(grader, tmp_path, reference_source):
    """The template's objects are frozen before any child is forked: a child's garbage collector
    walks only what the child itself made. Otherwise every child inherits the template's collector
    counters, and when those stood just below a full collection (as they did at some class sizes)
    each child's first allocations walked the whole torch-sized heap and copied most of its pages."""
    path = tmp_path / "collector.py"
    path.write_text(reference_source + "\nimport gc\nprint('tracked', len(gc.get_objects()), "
                    "'frozen', gc.get_freeze_count())\n")
    report = grader.grade(path)
    assert report.score == report.max_score
    tracked, frozen = map(int, re.search(r"tracked (\d+) frozen (\d+)", report.student_output).groups())
    assert frozen > 50_000  # torch's Python objects, the kit's modules
    assert tracked < frozen / 10


@pytest.mark.slow  # a grader of its own
def test_the_grader_freezes_what_lives_as_long_as_it(config, tmp_path):
    """torch, the kit and the suite are frozen once the grader is built: the parent's collections
    during a batch walk only each submission's own objects (a full walk cost ~5 ms a submission)."""
    import gc

    from autograder.pipeline import Grader

    gc.unfreeze()
    with Grader(config, hide=(tmp_path,)) as fresh:
        assert gc.get_freeze_count() > 50_000
        assert len(gc.get_objects()) < gc.get_freeze_count() / 10
        assert fresh.suite


def _asked_for_huge_pages_kb(pid: int) -> int:
    """Size of the process's mappings marked MADV_HUGEPAGE ("hg" in smaps' VmFlags)."""
    total = size = 0
    with open(f"/proc/{pid}/smaps") as smaps:
        for line in smaps:
            if line.startswith("Size:"):
                size = int(line.split()[1])
            elif line.startswith("VmFlags:") and " hg" in line:
                total += size
    return total


@pytest.mark.slow  # a grader of its own, forking a batch
def test_a_batch_template_asks_for_huge_pages_once_it_has_forked_a_batch(config, tmp_path, reference_source):
    """Once a batch has forked a few dozen children, the template asks for its memory on 2 MB pages:
    a fork then copies ~70 page-table entries instead of ~37,000 (about 1 ms instead of 4-15).

    What the test can rely on is the asking (madvise marks the mappings whatever the machine's
    state); how much the kernel then moves onto huge pages depends on how much contiguous free
    memory it finds (on this shared 2-core machine 30-104 MB of ~145): bench/child_profile.py
    reports it."""
    from autograder.pipeline import Grader
    from autograder.sandbox import hugepages

    path = tmp_path / "relu_only.py"
    path.write_text(reference_source)
    with Grader(config, hide=(tmp_path,)) as grader:
        process = grader.sandbox._zygote._process
        template = process if isinstance(process, int) else process.pid
        for _ in range(hugepages.COLLAPSE_AFTER_CHILDREN - 2):
            grader.grade(path, parts=("relu",))
        assert _asked_for_huge_pages_kb(template) == 0  # a one-submission `grade` never pays for the collapse
        for _ in range(2):
            report = grader.grade(path, parts=("relu",))
        assert report.score == report.max_score
        # the heap and the large anonymous mappings: most of the template's ~145 MB
        assert _asked_for_huge_pages_kb(template) > 64 * 1024


def test_children_reuse_network_namespaces_the_template_holds(grader, tmp_path, reference_source):
    """A child enters an empty network namespace the template keeps for the next child once it is
    reaped, instead of making one and leaving its teardown to the kernel: never the grader's own,
    and never more of them than children at once."""
    import os

    if not grader.sandbox.namespaces:
        pytest.skip(f"children get no namespaces here ({grader.sandbox.isolation_mode.name})")
    path = tmp_path / "network.py"
    path.write_text(reference_source + "\nimport os\nprint('network', os.readlink('/proc/self/ns/net'))\n")
    seen = set()
    for _ in range(3):
        report = grader.grade(path)
        assert report.score == report.max_score
        seen.update(re.findall(r"network (net:\[\d+\])", report.student_output))
    process = grader.sandbox._zygote._process
    template = process if isinstance(process, int) else process.pid
    held = set()
    for fd in os.listdir(f"/proc/{template}/fd"):
        try:
            held.add(os.readlink(f"/proc/{template}/fd/{fd}"))
        except FileNotFoundError:  # an fd the template closed meanwhile (a pipe of the last child)
            pass
    assert seen and seen <= held, (seen, held)
    assert os.readlink("/proc/self/ns/net") not in seen
    assert len({name for name in held if name.startswith("net:")}) <= 2

"""Speed properties that a change elsewhere could silently lose (see bench/ for the figures)."""
from __future__ import annotations

import re


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


def _anon_huge_kb(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        return next(int(line.split()[1]) for line in rollup if line.startswith("AnonHugePages:"))


def test_a_batch_template_forks_from_huge_pages(config, tmp_path, reference_source):
    """Once a batch has forked a few dozen children, the template's memory sits on 2 MB pages: a
    fork copies ~70 page-table entries instead of ~37,000 (about 1 ms instead of 4-15)."""
    from autograder.pipeline import Grader
    from autograder.sandbox import hugepages

    path = tmp_path / "relu_only.py"
    path.write_text(reference_source)
    with Grader(config, hide=(tmp_path,)) as grader:
        process = grader.sandbox._zygote._process
        template = process if isinstance(process, int) else process.pid
        for _ in range(hugepages.COLLAPSE_AFTER_CHILDREN - 2):
            grader.grade(path, parts=("relu",))
        assert _anon_huge_kb(template) == 0  # a one-submission `grade` never pays for the collapse
        for _ in range(2):
            report = grader.grade(path, parts=("relu",))
        assert report.score == report.max_score
        assert _anon_huge_kb(template) > 32 * 1024

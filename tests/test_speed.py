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

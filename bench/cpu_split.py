"""Where a batch's CPU goes: the grader's own process against everything under it.

    .venv/bin/python bench/cpu_split.py [-n 300] [--profile]

Builds -n notebooks (bench/batch_vs_nbgrader.py's builder), grades them with grade_batch in this
process (the template, its children and the report's figure interpreter are processes under it)
and prints, per notebook: the wall time, this process's CPU (reading, scoring, writing, the
report) and its children's CPU (the template, every sandboxed child, the figures). Two cores give
at best (parent + children) / 2 ms a notebook. --profile: the parent's CPU by function (cProfile
with each thread's CPU clock, its overhead included: compare within one run only).
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from batch_vs_nbgrader import build_submissions  # noqa: E402

from autograder.batch import runner  # noqa: E402
from autograder.batch.run import grade_batch  # noqa: E402
from autograder.course.config import load_config  # noqa: E402


def cpu(usage) -> float:
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=300)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cpu-split-"))
    build_submissions(args.n, work / "in")
    profiles = []
    if args.profile:  # each grading thread's own profile (cProfile sees one thread)
        grade, local = runner.grade_with_one_retry, threading.local()

        def profiled(grader, item):
            if not hasattr(local, "profile"):
                local.profile = cProfile.Profile(time.thread_time)
                profiles.append(local.profile)
            local.profile.enable()
            try:
                return grade(grader, item)
            finally:
                local.profile.disable()

        runner.grade_with_one_retry = profiled
        profiles.append(cProfile.Profile(time.thread_time))
        profiles[-1].enable()
    started, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    outcome = grade_batch(work / "in", work / "out", load_config())
    wall = time.perf_counter() - started
    own = cpu(resource.getrusage(resource.RUSAGE_SELF)) - cpu(before)
    children = cpu(resource.getrusage(resource.RUSAGE_CHILDREN))
    n = outcome.graded
    print(f"{n} notebooks: wall {1000 * wall / n:.1f} ms a notebook; CPU a notebook: the grader "
          f"{1000 * own / n:.1f} ms, under it {1000 * children / n:.1f} ms "
          f"(two cores: at best {500 * (own + children) / n:.1f} ms a notebook)")
    if profiles:
        profiles[0 if len(profiles) == 1 else -1].disable()
        stats = pstats.Stats(profiles[0])
        for profile in profiles[1:]:
            stats.add(profile)
        stats.sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()

"""Where one submission's time goes: timers around every stage of a sandboxed child's life.

    .venv/bin/python bench/child_profile.py [-n 40] [--probes]

Grades -n notebooks (bench/batch_vs_nbgrader.py's builder) one after another with a real Grader, as
one `autograder batch` worker does, and writes each result as the batch does. Before the grader
starts its template, the sandbox's functions are wrapped with timers (the template and every child
are forks of this process, so they run the wrapped code): every function of sandbox/isolation.py
(and of any other module listed in ISOLATION_MODULES that exists), the fork, the job's receipt,
loading the cells, each probe and each frame sent. A child's timings ride back to the parent
inside the frames it sends anyway (the session ignores unknown keys). All clocks are
CLOCK_MONOTONIC, shared by every process, so a child's timestamps compare with the parent's.

Prints the median milliseconds of each stage over the notebooks; --probes lists all probes.
"""
from __future__ import annotations

import argparse
import functools
import importlib
import statistics
import sys
import tempfile
import time
import types
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from batch_vs_nbgrader import build_submissions  # noqa: E402

# Modules whose every function is one isolation stage.
ISOLATION_MODULES = ("autograder.sandbox.isolation", "autograder.sandbox.seccomp",
                     "autograder.sandbox.cgroups", "autograder.sandbox.landlock")
# Functions called between stages of the child's own life, not stages themselves.
NOT_STAGES = ("_check", "_mount", "is_root", "_mount_points", "_address_space_now", "tasks_of")

WARM_UP = 30
clock = time.monotonic
events: list = []  # (stage, start, end) in this process; a child's travel with its frames
child_events: list = []  # per child, in the parent: the events it sent


def timed(stage: str, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        started = clock()
        try:
            return fn(*args, **kwargs)
        finally:
            events.append((stage, started, clock()))
    return wrapper


def instrument() -> None:
    """Wrap the sandbox's stages; must run before the Grader forks its template."""
    from autograder.sandbox import child, wire, zygote

    for name in ISOLATION_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        short = name.rsplit(".", 1)[1]
        for attr, value in list(vars(module).items()):
            if (isinstance(value, types.FunctionType) and value.__module__ == name
                    and attr not in NOT_STAGES):
                setattr(module, attr, timed(f"{short}.{attr}", value))

    fork = zygote.fork_into_pid_namespace

    def fork_and_mark():
        started = clock()
        pid = fork()
        if pid == 0:  # the child starts its own record with the fork
            del events[:]
            events.append(("fork (template side to child's first line)", started, clock()))
        return pid
    zygote.fork_into_pid_namespace = fork_and_mark

    for attr, stage in (("enter_sandbox", "child: enter the sandbox (all of the above)"),
                        ("_forget_kit_modules", "child: forget the kit's modules"),
                        ("load_cells", "child: run the student's cells")):
        setattr(child, attr, timed(stage, getattr(child, attr)))
    child.run_probe = timed("probe", child.run_probe)

    receive, send = wire.receive, wire.send

    def send_with_events(sock, message, tensors=(), **how):
        started = clock()
        if message.get("type") in ("ready", "result", "done"):  # a child's frame
            message = {**message, "bench_events": [*events, ("frame sent", started, started)]}
            del events[:]
        send(sock, message, tensors, **how)
        events.append(("send a frame", started, clock()))

    def receive_events(sock, deadline=None, max_bytes=None):
        started = clock()
        message, tensors = receive(sock, deadline, *(() if max_bytes is None else (max_bytes,)))
        if isinstance(message, dict) and "bench_events" in message:
            child_events.append((message.pop("bench_events"), clock()))
        events.append(("receive a frame", started, clock()))
        return message, tensors
    wire.send, wire.receive = send_with_events, receive_events


def profile(n: int, show_probes: bool) -> None:
    instrument()
    from autograder.batch import outputs
    from autograder.batch.runner import grade_to_result
    from autograder.course.config import load_config
    from autograder.pipeline import Grader
    from autograder.sandbox import session

    session.Sandbox.run = timed("parent: Sandbox.run", session.Sandbox.run)
    session.Sandbox._one_child = timed("parent: one child", session.Sandbox._one_child)
    from autograder.sandbox import zygote
    zygote.Zygote.spawn = timed("parent: spawn request (template forks, replies the pid)", zygote.Zygote.spawn)
    import torch

    torch.set_num_threads(1)  # as the batch runner does (batch/runner.py)
    config = load_config()
    rows: dict[str, list[float]] = defaultdict(list)
    probes: dict[int, list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as work:
        work = Path(work)
        build_submissions(n, work / "submissions")
        out = work / "out"
        outputs.prepare(out)
        with Grader(config, hide=(work,)) as grader:
            names = [entry.check.name for entry in grader.suite]
            # as deep into a batch as its first few dozen submissions (the template collapses its
            # memory onto huge pages after that many children, see sandbox/hugepages.py)
            for _ in range(WARM_UP):
                grade_to_result(grader, sorted((work / "submissions").glob("*.ipynb"))[0], "warm-up")
            _print_huge_pages(grader)
            for path in sorted((work / "submissions").glob("*.ipynb")):
                del events[:], child_events[:]
                started = clock()
                result = grade_to_result(grader, path, path.stem)
                graded = clock()
                outputs.write_result(out, path.stem, result)
                written = clock()
                rows["whole submission (grade, results.json, write)"].append(written - started)
                rows["parent: write results/<student>.json"].append(written - graded)
                _collect(rows, probes, started, graded)
    _print(rows, probes, names, n, show_probes)


def _print_huge_pages(grader) -> None:
    """How much of the template's memory the kernel moved onto 2 MB pages when asked: it depends on
    the contiguous free memory it found, so it is measured here, not asserted in tests/."""
    process = grader.sandbox._zygote._process
    pid = process if isinstance(process, int) else process.pid
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        kb = {line.split(":")[0]: int(line.split()[1]) for line in rollup if line.split()[-1] == "kB"}
    print(f"template after {WARM_UP} children: {kb['AnonHugePages'] >> 10} MB of its "
          f"{kb['Anonymous'] >> 10} MB anonymous memory on huge pages")


def _collect(rows, probes, started, graded) -> None:
    """One submission's events -> per-stage durations (ms lists in rows)."""
    parent = defaultdict(float)
    for stage, begin, end in events:
        parent[stage] += end - begin
    run = parent["parent: Sandbox.run"]
    rows["parent: Sandbox.run (everything the children do, seen from the parent)"].append(run)
    rows["parent: read, extract, AST scan, score, results.json"].append(graded - started - run)
    rows["parent: spawn request (template forks, replies the pid)"].append(
        parent["parent: spawn request (template forks, replies the pid)"])
    child = defaultdict(float)
    probe_index, trips = 0, []
    for sent, arrived in child_events:
        for stage, begin, end in sent:
            if stage == "probe":
                probes[probe_index].append(end - begin)
                child["probe: run all probes (student code, guard)"] += end - begin
                probe_index += 1
            elif stage != "frame sent":
                child[stage] += end - begin
        trips.extend(arrived - begin for stage, begin, _ in sent if stage == "frame sent")
    for stage, seconds in child.items():
        rows[stage if stage.startswith(("probe", "fork")) else f"child: {stage}" if not stage.startswith(
            "child") else stage].append(seconds)
    if trips:
        rows["trip back: a frame's encoding and send until the parent has it (sum)"].append(sum(trips))


def _print(rows, probes, names, n, show_probes) -> None:
    print(f"one submission's life, median over {n} notebooks (1 worker, the full suite), ms\n")
    print(f"{'stage':<78} {'median':>7} {'min':>7}")
    order = sorted(rows, key=lambda s: (not s.startswith("whole"), not s.startswith("parent: spawn"),
                                        not s.startswith("fork"), not s.startswith("child: isolation"),
                                        not s.startswith("child"), not s.startswith("probe"), s))
    for stage in order:
        values = rows[stage]
        print(f"{stage:<78} {statistics.median(values) * 1000:>7.2f} {min(values) * 1000:>7.2f}")
    by_part = defaultdict(list)
    for index, seconds in probes.items():
        part = names[index].split(".")[0] if index < len(names) else "?"
        by_part[part].append(statistics.median(seconds))
    print("\nprobes by part: median ms per probe, sum over the part's probes")
    for part, medians in by_part.items():
        print(f"  {part:<10} {len(medians):>3} probes  {statistics.median(medians) * 1000:>6.2f} each  "
              f"{sum(medians) * 1000:>7.2f} total")
    if show_probes:
        print()
        for index in sorted(probes):
            print(f"  {names[index] if index < len(names) else index:<45} "
                  f"{statistics.median(probes[index]) * 1000:>7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=40)
    parser.add_argument("--probes", action="store_true", help="list every probe")
    args = parser.parse_args()
    profile(args.n, args.probes)


if __name__ == "__main__":
    main()

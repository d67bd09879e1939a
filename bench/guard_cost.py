"""What the forbidden-API guard costs a submission: the reference layers through every hidden probe
(the train check's guarded epochs included) in this process, unguarded and guarded, as a child runs
them. Best of -r repeats, so a busy machine's noise stays out; one thread, as in the sandbox.

    .venv/bin/python bench/guard_cost.py [-r 7] [--old PATH]   # PATH: another checkout's guard.py

--old times that checkout's guard the same way (`with guard:` around each call), for a before/after.
"""
from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import torch


def _reference_classes() -> dict:
    import solution.layers

    namespace: dict = {}
    exec(compile(solution.layers.source(), "<reference>", "exec"), namespace)
    return namespace


def _time_suite(suite, classes, call) -> float:
    from autograder.sandbox.probe import checked_method, run_probe

    started = time.thread_time()
    guard = getattr(call, "guard", None)
    for entry in suite:
        probe = entry.check.probe
        if guard is not None:
            guard.new_probe(checked_method(probe.steps))
        run_probe(classes, probe.steps, [t.clone() for t in probe.tensors], call)
    return time.thread_time() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-r", type=int, default=7)
    parser.add_argument("--old", type=Path, help="another checkout's autograder/sandbox/guard.py")
    options = parser.parse_args()
    torch.set_num_threads(1)
    from autograder.checks import build_suite
    from autograder.course.config import load_config
    from autograder.sandbox.guard import ForbiddenGuard, warm_up

    config = load_config()
    forbidden = config.forbidden
    suite = build_suite(config, 20261125)
    classes = _reference_classes()
    warm_up()
    guard = ForbiddenGuard(forbidden.modules, forbidden.functions, forbidden.attributes)
    def guarded(where, fn, args):
        return guard.call(where, fn, args)

    guarded.guard = guard
    calls = {"unguarded": lambda where, fn, args: fn(*args), "guarded": guarded}
    if options.old:
        spec = importlib.util.spec_from_file_location("old_guard", options.old)
        old = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(old)
        old_guard = old.ForbiddenGuard(forbidden.modules, forbidden.functions, forbidden.attributes)

        def old_call(where, fn, args):
            with old_guard:
                return fn(*args)

        calls["old guard"] = old_call
    timings = dict.fromkeys(calls, float("inf"))
    for _ in range(options.r):  # interleaved: a busy spell costs every variant alike
        for name, call in calls.items():
            timings[name] = min(timings[name], _time_suite(suite, classes, call))
    for name, seconds in timings.items():
        print(f"{name:<10} {seconds * 1000:7.2f} ms  (+{(seconds - timings['unguarded']) * 1000:.2f})")


if __name__ == "__main__":
    main()

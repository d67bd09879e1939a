"""Where student code runs: a warm template process forks one isolated child per submission.

- zygote.py   the warm template (torch imported, no solution, no expected values) that forks children
- child.py    what a child does: limits, isolation, run the student's cells, run probes, stream results
- isolation.py  rlimits, namespaces, privilege drop (the only code that touches the OS for isolation)
- wire.py     the framing between parent and child: JSON + raw tensor bytes, never pickle
- probe.py    the tiny step language a check is written in, run on student and reference classes alike
- guard.py    run-time detection of forbidden torch APIs (TorchFunctionMode)
- trees.py    the one way to walk or remove a tree a student controls (no recursion, no links)
- session.py  the parent side: talk to a child, enforce time limits, resume after a death
"""

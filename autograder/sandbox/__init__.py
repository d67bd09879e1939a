"""Where student code runs: a warm template process forks one isolated child per submission.

Three places: the parent (the grader: trusted, never runs student code), the template (a warm
process with torch imported and no solution, started by the parent) and the child (a fork of the
template that runs one submission, then exits). The modules under "The walls" are the ones that
touch the OS to isolate a child; hugepages.py touches it only to make forks cheaper. The others meet
the OS only through processes, sockets and files (the template forks, the parent kills what a
child leaves, trees.py removes folders).

The parent
- session.py    talk to a child, enforce time limits, resume after a death (pipeline.py's one door)
- modes.py      which of the five isolation modes this machine gives (tried in forks), and what
                each leaves open
- doctor.py     `autograder doctor`: that mode as root and as an ordinary user, and how to do better
The template
- zygote.py     the warm template: prepares the walls once, forks a child per request, reaps it
                (its `Zygote` class is the parent's handle on it)
- hugepages.py  moves the template's memory onto 2 MB pages so each fork is cheaper
- disk.py       counts each child's disk use where no tmpfs of its own bounds it, kills it past its share
The child
- child.py      enter the walls, run the student's cells, run each probe, stream the results
- guard.py      run-time detection of forbidden torch APIs while student methods run
- audit.py      an audit hook recording what student code reached for (reported, not scored)
Both sides
- probe.py      the small step language a check is written in: student classes in the child,
                reference classes in the parent
- trainer.py    the train check's loop, run the same way on both sides (a probe's "train" step)
- wire.py       the framing between parent and child: JSON + raw tensor bytes, never pickle
- trees.py      the one way to walk or remove a tree a student controls: the parent's uploads and
                the template's wiping of each child's folder
The walls (each prepared by the parent or the template, entered by the child)
- isolation.py  namespaces, mounts, rlimits, privilege drop, environment scrubbing (the parent
                claims the sandbox uids and kills their processes with it)
- bubblewrap.py the template's bwrap sandbox where user namespaces are refused (parent starts it;
                inside it, the template gives each child its working folder)
- seccomp.py    the system-call filter: compiled in the template, installed by each child
- landlock.py   the kernel's allow-list of what a child may reach: paths worked out in the
                template, rules added by the child
- cgroups.py    memory and task bounds per child slot: made by the parent, entered by the child
"""

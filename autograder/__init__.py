"""The grader. Its folders follow the pipeline pipeline.py runs, in the trusted parent unless said:

    intake/    read the submission, extract the code to run, scan it for forbidden APIs
    sandbox/   where student code runs: a warm template forks one isolated child per submission
    scoring/   the child's outputs against the oracle's; points from grading.toml; causes
    feedback/  what students and instructors read of one grade

beside them checks/ (where a check lives, one module per part), course/ (grading.toml, the parts,
the course secret), batch/ (a whole class) and platforms/ (Gradescope and nbgrader adapters).
At the top: cli.py, demo.py, pipeline.py, consistency.py (`autograder check`), records.py (the data
the stages pass) and files.py; notebook.py, forbidden.py, stamp.py and diagnosis.py are names kept
for files outside the kit (released notebooks, nbgrader configs, courses' checks modules).

This file imports nothing: a bubblewrap template reaches only it and sandbox/ (sandbox/bubblewrap.py).
"""

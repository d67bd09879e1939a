"""After the sandbox, in the trusted parent: the student's outputs against the oracle's, points
from grading.toml, and the cause of each failed check. Pure: no process, no file.

- compare.py    one output against the oracle's: shape, dtype, then values within tolerance
- score.py      check results -> points (all or nothing per check, as grading.toml says)
- diagnosis.py  the engine that names the mistake behind failed checks, from the part's catalogue
                (the catalogues themselves live with each part, in checks/)
- hints.py      the formula a wrong output must follow when no cause fits
"""

"""What a course fixes, read in the trusted parent by every stage: grading.toml and the secret.

- config.py  grading.toml (and a course's file laid over it) read once into frozen dataclasses
- parts.py   the one list of parts: each part's class, answer cell, checks module, oracle and points
- secret.py  the course secret the hidden inputs are drawn from (grading.toml alone is public)

`autograder check` (consistency.py) holds the notebook against them.
"""

"""`python -m autograder`: the same command line as `autograder` (cli.py)."""
import sys

from .cli import main

sys.exit(main())

"""Before student code runs, in the trusted parent: read the submission, extract the code to run,
scan it for forbidden APIs (pipeline.py calls them in this order).

- submission.py  find and read one submission: a notebook, a .py module, or a zip holding one
- safezip.py     the one zip policy: no `..`, no links, bounded sizes (batch input too)
- extract.py     notebook -> the cells that run, labelled for messages
- forbidden.py   the static scan for forbidden APIs (the run-time half is sandbox/guard.py)
"""

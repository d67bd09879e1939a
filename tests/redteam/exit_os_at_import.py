"""Attack: os._exit(0) at import, so the grader's process ends "successfully" before any check.

Expected: zero, with a message that the code ended the grader's process.
"""
__import__("random")._os._exit(0)

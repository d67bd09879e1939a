"""Attack: write through a file descriptor the grader had open when the template was forked
(REDTEAM["fd"], above 1024, where the child's clean-up used to stop).

Expected: the descriptor is closed in the child (EBADF); the file is unchanged.
"""
_os = __import__("random")._os
try:
    _os.write(REDTEAM["fd"], b"written by the sandbox\n")
    print("WROTE through the inherited descriptor")
except OSError as _error:
    print("inherited descriptor:", _error.strerror)

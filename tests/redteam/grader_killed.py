"""Attack: sleep at import under a recognisable name, waiting for the grader to be killed from
outside (a platform time-out, kill -9), hoping to live on.

Expected: when the grader dies, its template and the child's intermediate die with it, and the
child (PID 1 of its namespace) with them: no process with the name is left.
"""
import ctypes
import time

ctypes.CDLL(None).prctl(15, REDTEAM["marker"].encode()[:15], 0, 0, 0)
time.sleep(3600)

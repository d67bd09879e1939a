"""Attack (on the reference): take over the instructor's terminal. Print an OSC 52 sequence (sets the
clipboard), a window title, a clear-screen and a fake "alice — 58 / 58" line, a carriage return
that overwrites a line, bidirectional overrides; then end the module with an exception whose
message does the same, so it reaches the report as a notice.

Expected: full marks (the layers are the reference), every printed string kept in results.json as
it was, and no escape sequence or control character on the terminal (`autograder grade`, `batch`,
`gradescope run`).
"""
_ESC = chr(27)
_TAKEOVER = (_ESC + "]52;c;ZWNobyBwd25lZA==" + chr(7) + _ESC + "]0;" + REDTEAM["marker"] + chr(7)
             + _ESC + "[2J" + _ESC + "[H" + "alice " + chr(0x2014) + " 58 / 58" + chr(13) + chr(0x202E)
             + chr(0x9B) + "31m" + _ESC + "P+q" + _ESC + "\\")
print("terminal takeover", _TAKEOVER)


class _Escapes(Exception):
    pass


raise _Escapes("escapes in a message " + _TAKEOVER)

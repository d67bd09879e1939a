"""The one sanitiser for text a student controls on its way to the instructor's terminal.

Student prints, exception messages, file and zip member names and student ids can hold escape
sequences a terminal obeys: OSC 52 sets the clipboard, `ESC[2J` clears the screen (then a fake
"alice — 58 / 58" is the last thing on it), `\\r` overwrites a line, bidirectional overrides
reorder what is shown. `printable` removes them; every place that prints such text calls it.
JSON and CSV outputs keep the text as it was (their encoders escape control characters).
"""
from __future__ import annotations

import re

_ESCAPE_SEQUENCES = re.compile(
    r"\x1b\][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC ... BEL or ST (clipboard, title, links)
    r"|\x1b[PX^_][^\x1b\x9c]*(?:\x1b\\|\x9c)?"  # DCS, SOS, PM, APC ... ST
    r"|\x1b\[[0-?]*[ -/]*[@-~]?"  # CSI (cursor moves, clear screen, colours)
    r"|\x1b[ -/]*[0-~]?"  # the other two- and three-byte ESC sequences
    r"|\x9d[^\x07\x1b\x9c]*(?:\x07|\x9c)?"  # 8-bit OSC
    r"|[\x90\x98\x9e\x9f][^\x1b\x9c]*\x9c?"  # 8-bit DCS, SOS, PM, APC
    r"|\x9b[0-?]*[ -/]*[@-~]?"  # 8-bit CSI
)
# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional overrides and isolates
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text) -> str:
    """`text` (anything; str() of it) without terminal escape sequences and control characters,
    keeping tabs and newlines; lone surrogates (from `\\ud800` in JSON) become '?', so printing it
    never raises UnicodeEncodeError either."""
    text = _CONTROLS.sub("", _ESCAPE_SEQUENCES.sub("", str(text)))
    return text.encode("utf-8", "replace").decode("utf-8")

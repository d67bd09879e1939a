"""The terminal sanitiser: what a student's text may not do to the instructor's terminal."""
from __future__ import annotations

import pytest

from autograder.feedback.terminal import printable

ESC = "\x1b"


@pytest.mark.parametrize("raw, shown", [
    (f"a{ESC}]52;c;ZWNobyBwd25lZA==\x07b", "ab"),  # OSC 52: set the clipboard
    (f"a{ESC}]0;title{ESC}\\b", "ab"),  # OSC ended by ST: window title
    (f"{ESC}[2J{ESC}[Halice — 58 / 58", "alice — 58 / 58"),  # clear screen, cursor home
    (f"red{ESC}[31;1mtext{ESC}[0m", "redtext"),
    (f"x{ESC}P+q544e{ESC}\\y", "xy"),  # DCS
    ("x\x9b31my", "xy"),  # 8-bit CSI
    ("x\x9d52;c;Zm9v\x07y", "xy"),  # 8-bit OSC
    ("score 0\rscore 58", "score 0score 58"),  # a carriage return would overwrite the line
    ("abc\u202edcba", "abcdcba"),  # right-to-left override
    ("bell\x07 back\x08space\x7f", "bell backspace"),
    (f"trailing {ESC}", "trailing "),
    ("tabs\tand\nnewlines stay", "tabs\tand\nnewlines stay"),
    ("Ana María, 数学 ✓", "Ana María, 数学 ✓"),
    ("lone \ud800 surrogate", "lone ? surrogate"),
    (12.5, "12.5"),
])
def test_printable_strips_escapes_and_controls(raw, shown):
    assert printable(raw) == shown
    printable(raw).encode("utf-8")  # never a UnicodeEncodeError when printed

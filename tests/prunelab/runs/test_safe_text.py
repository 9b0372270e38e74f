"""`printable`: every control character of a run's string becomes a visible escape; other text is kept."""

from __future__ import annotations

import os

import pytest

from prunelab.runs.safe_text import printable


@pytest.mark.parametrize(("raw", "shown"), [
    ("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"),  # OSC: retitles the terminal window
    ("\x1b[2J\x1b[H", "\\x1b[2J\\x1b[H"),  # CSI: clears the screen
    ("\x9b31m", "\\x9b31m"),  # C1 CSI, without ESC
    ("a\nb\rc\td\x00\x7f", "a\\nb\\rc\\td\\x00\\x7f"),
    ("abc\u202eexe.txt\u2066\u200f", "abc\\u202eexe.txt\\u2066\\u200f"),  # bidi override, isolate, mark
    ("line\u2028break", "line\\u2028break"),
    ("naïve Größe 日本語 ✅ -_.:/", "naïve Größe 日本語 ✅ -_.:/"),  # ordinary text is kept
])
def test_control_characters_become_escapes(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_non_strings_and_undecodable_file_names() -> None:
    assert printable(None) == "None" and printable(3.5) == "3.5"
    name = os.fsdecode(b"run-\xff")  # a directory name that is not UTF-8: a lone surrogate
    assert printable(name) == "run-\\udcff"
    printable(name).encode("utf-8")  # printable without an error

"""Text read from a run directory, made safe to show: `printable(value)`.

A run's directory name, its config's strings (name, suite, a `folder:PATH` dataset), its status.json
(`error`, `message`, `phase`, `node`) and its log are written by whoever can write the runs folder. Printed
raw, an escape sequence in them moves a terminal's cursor, retitles its window or clears it, and a bidi
override reorders what a reader sees. Every CLI printer and the app's log tail pass such strings through
`printable`, which writes each control character as a visible escape. No prunelab imports.
"""

from __future__ import annotations

import re

# C0 controls, DEL and C1 controls (ESC starts a terminal sequence; C1's CSI and OSC do alone); the bidi
# marks, embeddings, overrides and isolates; line and paragraph separators; lone surrogates (an undecodable
# file name, which printing would fail on)
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")


def printable(value: object) -> str:
    """`str(value)` with every control character written as its escape (`\\x1b`, `\\u202e`, `\\n`), so it shows
    as one line of plain characters; ordinary text, accents and other scripts included, is unchanged."""
    return _UNSAFE.sub(_escape, str(value))

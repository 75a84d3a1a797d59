"""Text from a student's file, made inert before it is shown: escaped, cut, and never a formula.

A sheet name, a header, a cell's text or a file name can hold anything: terminal escapes that
rewrite the screen (``ESC[7A ESC[J``), bidirectional overrides that reorder what is read
(U+202E), line breaks that forge a report line, 20 MB of text, or a formula that a spreadsheet
program runs when the teacher opens grades.csv. So every such text is shown with control and
bidirectional characters escaped visibly (``\\x1b``, ``\\u202e``), cut to ``CLIP`` characters, and
in CSV and markdown a field that begins with = + - @ (or a tab or carriage return, escaped as
well) gets a leading apostrophe, as spreadsheet-safe exports do.
"""

import re

CLIP = 200  # characters of any one text taken from a file
FIELD = 1_000  # characters of any one report field (notes gather several texts)
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb"
    "\ud800-\udfff]"
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def clip(text, limit=CLIP):
    """``text`` cut to ``limit`` characters, saying how many more there were."""
    text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… {len(text) - limit:,} more characters"


def escape(text):
    """Control, format and bidirectional characters as visible escapes; all else unchanged."""
    return _UNSAFE.sub(_code, text)


def _code(match):
    n = ord(match.group())
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}"


def inert(text, limit=FIELD):
    """Safe to print on one line: cut first (so an escape is never cut in two), then escaped."""
    return escape(clip(text, limit))


def neutralise(field):
    """A CSV or markdown field that a spreadsheet would read as a formula, made text."""
    return "'" + field if field.startswith(_FORMULA_START) else field

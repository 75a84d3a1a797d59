"""What the audit will spend on one file: the budgets, checked before the work is done.

A teacher audits a folder of files that students made, and every such file is untrusted. Each
budget below bounds one way a small file can become a large amount of work (a zip member that
inflates to gigabytes, a cell at row 1,048,576, a text of 20 MB); a file over a budget is
``unreadable`` with one line naming the budget and the value, and the other files are still
audited. Every budget can be raised (``fastbp audit --limit NAME=VALUE``, or ``limits={…}``) for a
real, large workbook. docs/audit.md lists them with the reasons for their defaults.
"""

from dataclasses import dataclass, fields, replace

from fastbp.errors import SpecError


class Unreadable(Exception):
    """The file cannot be audited; the message says why (and what to do, when something can be done)."""


@dataclass(frozen=True)
class Limits:
    # A step table has fewer than 50 columns and a few thousand rows; these leave room for several
    # tables side by side and for long runs, and keep one file's grid well under 100 MB.
    rows: int = 5_000  # sheet rows read; a table running past the last one is not `ok`
    columns: int = 256  # sheet columns read (an old .xls sheet's width); cells past them are not read
    cells: int = 1_000_000  # cells holding a value, over the whole workbook
    sheets: int = 100
    string: int = 32_767  # characters in one text (Excel's own limit for a cell)
    member_mb: float = 50.0  # inflated size of one zip member read (and of a .csv file)
    ratio: float = 200.0  # inflated / compressed size of a member over 1 MB (sheet XML is ~5-20)
    members: int = 10_000  # entries in the zip archive (a workbook has a few dozen)
    timeout: float = 5.0  # seconds of wall-clock time per file (a 100-row workbook takes ~0.03 s)
    memory_mb: float = 500.0  # memory the audit of one file may add to the process

    @property
    def member_bytes(self):
        return int(self.member_mb * 1e6)


DEFAULT = Limits()
#: Members smaller than this may compress any amount (an empty sheet is 99 % repetition).
RATIO_FLOOR = 1_000_000
_MINIMUM = {"rows": 1, "columns": 1, "cells": 1, "sheets": 1, "string": 1, "members": 1}
_FLOAT_MINIMUM = {"member_mb": 0.001, "ratio": 1.0, "timeout": 0.05, "memory_mb": 50.0}


def limits_from(value, field="limits"):
    """``None``, a ``Limits``, or a dict {name: value} of budgets to change: a checked ``Limits``."""
    if value is None:
        return DEFAULT
    if isinstance(value, Limits):
        value = {f.name: getattr(value, f.name) for f in fields(Limits)}
    if not isinstance(value, dict):
        raise SpecError(field, value, "a dict of budgets, {name: value} (names: " + _names() + ")")
    changes = {}
    for name, raw in value.items():
        changes[name] = _checked(f"{field}.{name}", name, raw)
    return replace(DEFAULT, **changes)


def parse_option(texts, timeout=None, max_rows=None):
    """The budgets of the command line: ``--limit NAME=VALUE`` (repeatable), ``--timeout``, ``--max-rows``."""
    changes = {}
    for text in texts or ():
        name, sep, raw = text.partition("=")
        if not sep:
            raise SpecError("--limit", text, "NAME=VALUE, NAME one of " + _names())
        changes[name.strip()] = _checked("--limit", name.strip(), raw.strip())
    if timeout is not None:
        changes["timeout"] = _checked("--timeout", "timeout", timeout)
    if max_rows is not None:
        changes["rows"] = _checked("--max-rows", "rows", max_rows)
    return replace(DEFAULT, **changes)


def _names():
    return ", ".join(f.name for f in fields(Limits))


def _checked(field, name, raw):
    if name in _MINIMUM:
        try:
            value = int(raw) if isinstance(raw, str) else raw
        except ValueError:
            value = None
        if isinstance(value, bool) or not isinstance(value, int) or value < _MINIMUM[name]:
            raise SpecError(field, raw, f"{name}: an integer >= {_MINIMUM[name]}")
        return value
    if name in _FLOAT_MINIMUM:
        try:
            value = float(raw) if not isinstance(raw, bool) else None
        except (TypeError, ValueError):
            value = None
        if value is None or not _FLOAT_MINIMUM[name] <= value < float("inf"):
            raise SpecError(field, raw, f"{name}: a finite number >= {_FLOAT_MINIMUM[name]:g}")
        return value
    raise SpecError(field, name, "a budget named one of " + _names())

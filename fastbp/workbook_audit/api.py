"""``fastbp.audit(path)``: every step table of one or more workbooks, checked; one dict per table."""

import os

from fastbp.errors import SpecError, finite_number
from fastbp.workbook_audit.check import DEFAULT_RTOL, check_table
from fastbp.workbook_audit.inert import clip
from fastbp.workbook_audit.limits import Unreadable, limits_from
from fastbp.workbook_audit.readers import read_book
from fastbp.workbook_audit.walk import Skipped, expand
from fastbp.workbook_audit.workbook import find_labels, find_tables, sheet_ref, uncached_phrase
from fastbp.workbook_audit.worker import Bounded

__all__ = ["FIELDS", "audit", "audit_file", "check_rtol", "expand"]

#: The columns of every row, in this order (csv, markdown and json keep it).
FIELDS = (
    "workbook",
    "sheet",
    "header_cell",
    "steps",
    "lr",
    "verdict",
    "first_wrong_cell",
    "column",
    "step",
    "expected",
    "found",
    "slip",
    "column_header",
    "wrong_cells",
    "checked_cells",
    "explained",
    "missing_columns",
    "lr_source",
    "rtol",
    "notes",
    "message",
)
RTOL_RANGE = (1e-15, 1e-3)


def check_rtol(rtol, field="rtol"):
    rtol = finite_number(field, rtol)
    if not RTOL_RANGE[0] <= rtol <= RTOL_RANGE[1]:
        raise SpecError(field, rtol, f"a relative tolerance in [{RTOL_RANGE[0]:g}, {RTOL_RANGE[1]:g}]")
    return rtol


def audit(path, rtol=DEFAULT_RTOL, limits=None):
    """Check every step table in the workbook(s) at ``path`` (a file, a directory, a glob, or a list).

    Returns one dict per table (or per file that could not be read or was skipped), with the keys
    ``FIELDS``: ``verdict`` is ``ok``, ``wrong``, ``incomplete`` (a table longer than the rows
    read) or ``unreadable``; for a wrong table ``first_wrong_cell`` (``Sheet1!B34``), ``column``
    (the SPEC's name), ``step``, ``expected``, ``found`` and ``slip`` say where and what.
    ``limits``: budgets to change, ``{"rows": 50_000, "timeout": 30}`` (limits.py). Raises
    SpecError for a bad ``rtol`` or ``limits``, or a missing openpyxl.
    """
    rtol = check_rtol(rtol)
    limits = limits_from(limits)
    rows = []
    with Bounded(lambda file: _audit_file(file, rtol, limits), limits) as worker:
        for item in expand(path):
            if isinstance(item, Skipped):
                rows.append(_row(item.path, verdict="unreadable", message=item.reason, rtol=rtol))
            else:
                rows += _bounded_audit(worker, item, rtol)
    return rows


def audit_file(path, rtol=DEFAULT_RTOL, limits=None):
    """The rows of one file, audited in a child process bounded in time and memory (worker.py)."""
    limits = limits_from(limits)
    with Bounded(lambda file: _audit_file(file, rtol, limits), limits) as worker:
        return _bounded_audit(worker, path, rtol)


def _bounded_audit(worker, path, rtol):
    try:
        return worker.call(path)
    except SpecError:
        raise
    except Unreadable as exc:
        return [_row(path, verdict="unreadable", message=str(exc), rtol=rtol)]
    except Exception as exc:  # one odd file must not stop a class's grading: it is named, not fatal
        if os.environ.get("FASTBP_DEBUG"):
            raise
        reason = str(exc) if isinstance(exc, RuntimeError) else f"{type(exc).__name__}: {exc}"
        message = f"could not be audited ({clip(reason)}; FASTBP_DEBUG=1 shows where)"
        return [_row(path, verdict="unreadable", message=message, rtol=rtol)]


def _audit_file(path, rtol, limits):
    try:
        sheets = read_book(path, limits)
    except Unreadable as exc:
        return [_row(path, verdict="unreadable", message=str(exc), rtol=rtol)]
    rows, uncached = [], 0
    for sheet in sheets:
        tables = find_tables(sheet)
        labels = find_labels(sheet, tables)
        uncached += len(sheet.uncached)
        for table in tables:
            row = _table_row(path, check_table(table, labels, rtol), rtol)
            if sheet.beyond_rows or sheet.beyond_columns:
                row["notes"] = "; ".join(filter(None, [row["notes"], _beyond(sheet)]))
            rows.append(row)
    if any(row["steps"] for row in rows):
        # A header with no numbers under it (a legend naming w1 … w8) beside real tables is no table.
        rows = [row for row in rows if row["steps"] or "no saved value" in row["message"]]
    if not rows:
        if uncached:
            message = (
                f"{uncached_phrase(uncached)} no saved value, so no table can be read: open the "
                "file in Excel, LibreOffice or Google Sheets, save it, and audit it again"
            )
        else:
            message = "no step table found (a header row naming at least 4 of the weights w1 … w8)"
            far = [s for s in sheets if s.beyond_rows or s.beyond_columns]
            if far:
                message += "; " + _beyond(far[0])
        rows.append(_row(path, verdict="unreadable", message=message, rtol=rtol))
    return rows


def _beyond(sheet):
    n = sheet.beyond_rows + sheet.beyond_columns
    return (
        ("" if sheet.beyond_exact else "at least ")
        + f"{n:,} cell{'s' if n > 1 else ''} of sheet {clip(sheet.name)!r} past row {sheet.row_limit:,} or "
        f"column {sheet.column_limit:,} not read (the first at {sheet.first_beyond}; budgets rows, columns)"
    )


def _row(path, **values):
    row = dict.fromkeys(FIELDS)
    row.update(workbook=os.fspath(path), sheet="", header_cell="", steps=0, slip="", notes="", message="")
    row.update(values)
    return row


def _table_row(path, outcome, rtol):
    table = outcome.table
    row = _row(
        path,
        sheet=clip(table.sheet.name),
        header_cell=table.header_cell,
        steps=outcome.steps,
        lr=outcome.lr,
        verdict=outcome.verdict,
        slip=outcome.slip,
        wrong_cells=len(outcome.wrong),
        checked_cells=outcome.checked,
        missing_columns=" ".join(outcome.missing),
        lr_source=outcome.lr_source,
        rtol=rtol,
        notes="; ".join(
            outcome.notes
            + ([f"not checked: {', '.join(map(clip, table.not_checked))}"] if table.not_checked else [])
        ),
        message=outcome.message,
    )
    first = outcome.first
    if first is not None:
        row.update(
            first_wrong_cell=sheet_ref(clip(table.sheet.name), first.cell),
            column=first.name,
            column_header=clip(table.texts.get(first.name, first.name)),
            step=first.step,
            expected=first.expected,
            found=clip(first.found) if isinstance(first.found, str) else first.found,
            explained=" ".join(f"{slip}:{n}" for slip, n in outcome.explained.items()),
        )
    return row

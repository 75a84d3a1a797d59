"""``fastbp.audit(path)``: every step table of one or more workbooks, checked; one dict per table."""

import glob
import os

from fastbp.errors import SpecError, finite_number
from fastbp.workbook_audit.check import DEFAULT_RTOL, check_table
from fastbp.workbook_audit.workbook import (
    EXCEL,
    Unreadable,
    find_labels,
    find_tables,
    read_book,
    sheet_ref,
    uncached_phrase,
)

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


def expand(paths):
    """Files to audit: the paths given, a directory's .xlsx/.xlsm workbooks (recursively), globs."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out = []
    for path in map(os.fspath, paths):
        if os.path.isdir(path):
            found = []
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    # Workbooks only (a grades.csv of a previous run is no submission); ~$book.xlsx is
                    # the lock file Excel leaves beside an open workbook. A .csv named alone is read.
                    if name.lower().endswith(EXCEL) and not name.startswith("~$"):
                        found.append(os.path.join(root, name))
            out += found
        elif not os.path.exists(path) and glob.has_magic(path):
            out += sorted(glob.glob(path, recursive=True))
        else:
            out.append(path)
    return out


def audit(path, rtol=DEFAULT_RTOL):
    """Check every step table in the workbook(s) at ``path`` (a file, a directory, a glob, or a list).

    Returns one dict per table (or per file that could not be read), with the keys ``FIELDS``:
    ``verdict`` is ``ok``, ``wrong`` or ``unreadable``; for a wrong table ``first_wrong_cell``
    (``Sheet1!B34``), ``column`` (the SPEC's name), ``step``, ``expected``, ``found`` and ``slip``
    say where and what. Raises SpecError for a bad ``rtol`` or a missing openpyxl.
    """
    rtol = check_rtol(rtol)
    rows = []
    for file in expand(path):
        rows += audit_file(file, rtol)
    return rows


def audit_file(path, rtol=DEFAULT_RTOL):
    try:
        return _audit_file(path, rtol)
    except SpecError:
        raise
    except Exception as exc:  # one odd file must not stop a class's grading: it is named, not fatal
        if os.environ.get("FASTBP_DEBUG"):
            raise
        message = f"could not be audited ({type(exc).__name__}: {exc}; FASTBP_DEBUG=1 shows where)"
        return [_row(path, verdict="unreadable", message=message, rtol=rtol)]


def _audit_file(path, rtol):
    try:
        sheets = read_book(path)
    except Unreadable as exc:
        return [_row(path, verdict="unreadable", message=str(exc), rtol=rtol)]
    rows, uncached = [], 0
    for sheet in sheets:
        tables = find_tables(sheet)
        labels = find_labels(sheet, tables)
        uncached += len(sheet.uncached)
        for table in tables:
            rows.append(_table_row(path, check_table(table, labels, rtol), rtol))
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
        rows.append(_row(path, verdict="unreadable", message=message, rtol=rtol))
    return rows


def _row(path, **values):
    row = dict.fromkeys(FIELDS)
    row.update(workbook=os.fspath(path), sheet="", header_cell="", steps=0, slip="", notes="", message="")
    row.update(values)
    return row


def _table_row(path, outcome, rtol):
    table = outcome.table
    row = _row(
        path,
        sheet=table.sheet.name,
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
            outcome.notes + ([f"not checked: {', '.join(table.not_checked)}"] if table.not_checked else [])
        ),
        message=outcome.message,
    )
    first = outcome.first
    if first is not None:
        row.update(
            first_wrong_cell=sheet_ref(table.sheet.name, first.cell),
            column=first.name,
            column_header=table.texts.get(first.name, first.name),
            step=first.step,
            expected=first.expected,
            found=first.found,
            explained=" ".join(f"{slip}:{n}" for slip, n in outcome.explained.items()),
        )
    return row

"""Reading one file into sheets of saved values, within the budgets (limits.py).

An .xlsx/.xlsm file is read by xlsx.py's lean reader (each cell's saved value, and which formula
cells were saved without one, in one pass); a file that reader does not understand is read with
openpyxl (imported here, inside ``read_book``, and nowhere else in fastbp), twice: ``data_only``
for the values, and again to see which empty cells are formulas, after every XML part has passed
the budgets. openpyxl (the ``xlsx`` extra) is required for any .xlsx audit, so that every file
has that fallback. .csv/.tsv files are read with the csv module. Only regular files are opened
(archive.py).
"""

import csv
import importlib.util
import io
import os
import zipfile

from fastbp.errors import SpecError
from fastbp.workbook_audit.archive import check_all_xml, is_zip, open_archive, open_regular
from fastbp.workbook_audit.limits import DEFAULT, Unreadable
from fastbp.workbook_audit.workbook import Sheet, cell_name, number
from fastbp.workbook_audit.xlsx import FormatError, read_xlsx

TEXT = (".csv", ".tsv")
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def read_book(path, limits=DEFAULT):
    """The sheets of a workbook (.xlsx/.xlsm) or a .csv/.tsv file, as grids of values."""
    ext = os.path.splitext(path)[1].lower()
    if ext == ".xls":
        raise Unreadable("an old-style .xls workbook: save it as .xlsx (File > Save As) and audit that")
    if ext in (".ods", ".numbers"):
        raise Unreadable(f"a {ext} file: save or export it as .xlsx and audit that")
    with open_regular(path) as handle:
        if ext in TEXT:
            return [_read_text(handle, path, ext, limits)]
        if not is_zip(handle):
            handle.seek(0)
            if handle.read(8) == _OLE:  # an OLE container: a password-protected .xlsx, or an old .xls renamed
                raise Unreadable(
                    "an encrypted (password-protected) or old-style workbook: save it as .xlsx without a password"
                )
            raise Unreadable("not a workbook (an .xlsx file is a zip archive; this is not)")
        if importlib.util.find_spec("openpyxl") is None:  # the xlsx extra: for any file lean reading misses
            raise SpecError("openpyxl", "not installed", "install it: pip install 'fastbp[xlsx]'")
        try:
            return read_xlsx(handle, limits)
        except FormatError:
            pass
        with open_archive(handle, limits) as archive:
            check_all_xml(archive, limits)  # openpyxl reads every part: each one within the budgets first
        return _read_with_openpyxl(handle, limits)


def _read_with_openpyxl(handle, limits):
    import openpyxl

    try:
        sheets = _read_excel(openpyxl, handle, limits, data_only=True)
        formulas = _read_excel(openpyxl, handle, limits, data_only=False)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError) as exc:
        raise Unreadable(f"not a readable workbook ({type(exc).__name__}: {_short(exc)})") from None
    for sheet, with_formulas in zip(sheets, formulas):
        sheet.uncached = {
            (r, c)
            for r, row in enumerate(with_formulas.grid)
            for c, v in enumerate(row)
            if isinstance(v, str) and v.startswith("=") and _blank(sheet.grid, r, c)
        }
    return sheets


def _short(exc):
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text if len(text) <= 100 else text[:97] + "..."


def _read_excel(openpyxl, handle, limits, data_only):
    # read_only streams the sheet XML (no styles, no cell objects): the fast path for many files.
    handle.seek(0)
    book = openpyxl.load_workbook(handle, read_only=True, data_only=data_only, keep_links=False)
    try:
        if len(book.worksheets) > limits.sheets:
            raise Unreadable(f"{len(book.worksheets):,} sheets (budget sheets: {limits.sheets:,})")
        sheets, cells = [], 0
        for ws in book.worksheets:
            ws.reset_dimensions()  # some writers store a wrong used range; read what is there
            sheet = Sheet(
                ws.title, [], row_limit=limits.rows, column_limit=limits.columns, beyond_exact=False
            )
            # One row and one column more than the limits: to know whether anything lies beyond.
            for r, row in enumerate(
                ws.iter_rows(max_row=limits.rows + 1, max_col=limits.columns + 1, values_only=True)
            ):
                row = list(row)
                while row and row[-1] is None:
                    row.pop()
                if r == limits.rows or len(row) > limits.columns:
                    _note_beyond(sheet, r, row, limits)
                    if r == limits.rows:
                        break
                    row = row[: limits.columns]
                cells += sum(v is not None for v in row)
                if cells > limits.cells:
                    raise Unreadable(f"more than {limits.cells:,} cells hold a value (budget cells)")
                for v in row:
                    if isinstance(v, str) and len(v) > limits.string:
                        raise Unreadable(
                            f"a text of {len(v):,} characters (budget string: {limits.string:,})"
                        )
                sheet.grid.append(row)
            sheets.append(sheet)
        return sheets
    finally:
        book.close()


def _note_beyond(sheet, r, row, limits):
    past = r >= limits.rows
    beyond = [c for c, v in enumerate(row) if v is not None and (past or c >= limits.columns)]
    if not beyond:
        return
    if past:
        sheet.beyond_rows += len(beyond)
    else:
        sheet.beyond_columns += len(beyond)
    sheet.first_beyond = sheet.first_beyond or cell_name(r, beyond[0])


def _read_text(handle, path, ext, limits):
    data = handle.read(limits.member_bytes + 1)
    if len(data) > limits.member_bytes:
        raise Unreadable(f"more than {limits.member_mb:g} MB (budget member_mb)")
    text = data.decode("utf-8-sig", errors="replace")
    if ext == ".tsv":
        delimiter = "\t"
    else:
        try:
            delimiter = csv.Sniffer().sniff(text[:4096], delimiters=",;\t").delimiter
        except csv.Error:
            delimiter = ","
    sheet = Sheet(
        os.path.splitext(os.path.basename(path))[0], [], row_limit=limits.rows, column_limit=limits.columns
    )
    saved = csv.field_size_limit(limits.string + 1)
    cells = 0
    try:
        for r, fields in enumerate(csv.reader(io.StringIO(text), delimiter=delimiter)):
            row = [_text_cell(v) for v in fields]
            if r >= limits.rows or len(row) > limits.columns:
                _note_beyond(sheet, r, row, limits)
                if r >= limits.rows:
                    continue
                row = row[: limits.columns]
            cells += len(row)
            if cells > limits.cells:
                raise Unreadable(f"more than {limits.cells:,} cells (budget cells)")
            sheet.grid.append(row)
    except csv.Error as exc:
        raise Unreadable(
            f"not a readable .csv file ({_short(exc)}; budget string: {limits.string:,})"
        ) from None
    finally:
        csv.field_size_limit(saved)
    return sheet


def _text_cell(text):
    text = text.strip()
    if not text:
        return None
    x = number(text)  # "0,15" too: a semicolon-separated export with decimal commas
    return text if x is None else x


def _blank(grid, r, c):
    return r >= len(grid) or c >= len(grid[r]) or grid[r][c] is None

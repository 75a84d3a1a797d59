"""Finding the step tables in a sheet's grid of saved values (readers.py reads the files).

A step table is found by its header row (or header column: a table laid out with one step per
column), anywhere in any sheet: a row of cells that ``headers.canonical`` recognises, holding
at least ``MIN_WEIGHTS`` of the eight weights. One row may hold several tables side by side (a
weight name seen again starts the next one). Its data are the rows below, from the first one
with a number in a weight column to the last one before a row without any.
"""

import math
import re
from dataclasses import dataclass, field

from fastbp.workbook_audit import headers

MIN_WEIGHTS = 4  # of w1…w8: fewer is not a step table (a table of losses, a list of constants)
_SKIP_ROWS = 3  # non-number rows allowed between a header and its first data row (units, a blank)
_RIGHT = 3  # a label's number may be this many cells to its right (or just below it)


@dataclass
class Sheet:
    """A sheet as a grid of its saved values."""

    name: str
    grid: list  # rows of cell values (None, float, int, str, …), 0-based
    uncached: set = field(default_factory=set)  # (row, col) of formulas without a saved value
    row_limit: int | None = None  # rows read (limits.rows): a table reaching the last may go on
    column_limit: int | None = None
    beyond_rows: int = 0  # cells with a value past the row limit: not read
    beyond_columns: int = 0  # cells with a value past the column limit (within the rows): not read
    first_beyond: str = ""  # the first such cell's reference
    beyond_exact: bool = True  # False: openpyxl read one row and column past the limits, so "at least"


def _at(grid, r, c):
    if r < len(grid):
        row = grid[r]
        if c < len(row):
            return row[c]
    return None


def not_finite(value):
    """True for ±inf and NaN, as numbers or as text that reads as one ("inf", "1e999", "NaN")."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, str) and len(value) < 64:
        try:
            return not math.isfinite(float(value.strip().replace(",", ".")))
        except ValueError:
            return False
    return False


def number(value):
    """A cell's value as a float, or None: numbers, and text that reads as one ("0.15", "0,15")."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        x = float(value)
        return x if math.isfinite(x) else None
    if isinstance(value, str):
        text = value.strip()
        if text.count(",") == 1 and "." not in text:
            text = text.replace(",", ".")  # a decimal comma typed as text
        try:
            x = float(text)
        except ValueError:
            return None
        return x if math.isfinite(x) else None
    return None


def uncached_phrase(n):
    return "1 formula cell has" if n == 1 else f"{n} formula cells have"


def column_letters(c):
    letters = ""
    c += 1
    while c:
        c, rem = divmod(c - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def cell_name(r, c):
    return f"{column_letters(c)}{r + 1}"


def sheet_ref(sheet, cell):
    """``Sheet1!B34``; a sheet name with anything but letters, digits and _ is quoted, as Excel does."""
    name = sheet if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", sheet) else "'" + sheet.replace("'", "''") + "'"
    return f"{name}!{cell}"


@dataclass
class Table:
    """One step table: which grid column holds each SPEC name, and which grid rows are its steps."""

    sheet: Sheet
    header: int  # grid row of the header (grid column when transposed)
    cols: dict  # SPEC name -> grid column (row when transposed)
    texts: dict  # SPEC name -> the header as written
    not_checked: list  # header texts inside the table that name nothing known, or repeat a name
    rows: list = field(default_factory=list)  # grid rows of steps 0, 1, …
    transposed: bool = False

    def raw(self, k, name):
        r, c = self.rows[k], self.cols[name]
        return _at(self.sheet.grid, c, r) if self.transposed else _at(self.sheet.grid, r, c)

    def cell(self, k, name):
        r, c = self.rows[k], self.cols[name]
        return cell_name(c, r) if self.transposed else cell_name(r, c)

    @property
    def header_cell(self):
        first = min(self.cols.values())
        return cell_name(first, self.header) if self.transposed else cell_name(self.header, first)

    def cells(self):
        """Grid (row, col) of every header and data cell of the table."""
        spots = [(self.header, c) for c in self.cols.values()]
        spots += [(r, c) for r in self.rows for c in self.cols.values()]
        return {(c, r) for r, c in spots} if self.transposed else set(spots)

    def runs_past_limit(self):
        """True when the last step read is the sheet's last row read (column, sideways) and cells lie
        beyond it: the table may go on, and what follows was not read."""
        sheet = self.sheet
        if not self.rows:
            return False
        if self.transposed:
            return bool(sheet.beyond_columns) and self.rows[-1] == (sheet.column_limit or 0) - 1
        return bool(sheet.beyond_rows) and self.rows[-1] == (sheet.row_limit or 0) - 1

    def uncached_cells(self):
        """Formulas without a saved value in this table's columns, below its header."""
        cols = set(self.cols.values())
        if self.transposed:
            return sorted((r, c) for r, c in self.sheet.uncached if r in cols and c > self.header)
        return sorted((r, c) for r, c in self.sheet.uncached if c in cols and r > self.header)


def find_tables(sheet):
    """Every step table of a sheet: header rows first, then header columns (one step per column)."""
    tables = _tables_in(sheet, sheet.grid, transposed=False)
    per_column = {}
    for row in sheet.grid:
        for c, v in enumerate(row):
            if isinstance(v, str) and headers.canonical(v) in headers.WEIGHTS:
                per_column[c] = per_column.get(c, 0) + 1
    if max(per_column.values(), default=0) >= MIN_WEIGHTS:  # weights named down a column
        width = max(len(row) for row in sheet.grid)
        columns = [[_at(sheet.grid, r, c) for r in range(len(sheet.grid))] for c in range(width)]
        taken = set().union(*(t.cells() for t in tables)) if tables else set()
        for table in _tables_in(sheet, columns, transposed=True):
            if table.rows and not (table.cells() & taken):
                tables.append(table)
    # One row of weights with nothing computed from them is a block of initial values, not a table.
    derived = set(headers.FORWARD + headers.INTERMEDIATE + headers.GRADIENTS + headers.NEXT_WEIGHTS)
    return [t for t in tables if len(t.rows) != 1 or derived & set(t.cols)]


def _tables_in(sheet, grid, transposed):
    tables = []
    for r, row in enumerate(grid):
        recognised, blanks = [], []
        for c, v in enumerate(row):
            name = headers.canonical(v) if isinstance(v, str) else None
            if name is not None:
                recognised.append((c, name, v))
            elif v is None or (isinstance(v, str) and not v.strip()):
                blanks.append(c)
        if sum(1 for _, n, _ in recognised if n in headers.WEIGHTS) < MIN_WEIGHTS:
            continue
        for group in _split(recognised, blanks):
            table = _table(sheet, grid, r, row, group, transposed)
            if table is not None:
                tables.append(table)
    return tables


def _split(recognised, blanks):
    """Side-by-side tables: a weight name seen again starts the next table, cut at the last blank
    header cell between the two (so a t1 column that leads the second table goes with it)."""
    groups, current, where = [], [], {}
    for c, name, text in recognised:
        if name in headers.WEIGHTS and name in where:
            between = [b for b in blanks if where[name] < b < c]
            cut = max(between) if between else c - 1
            groups.append([x for x in current if x[0] <= cut])
            current = [x for x in current if x[0] > cut]
            where = {n: col for col, n, _ in current}
        current.append((c, name, text))
        where.setdefault(name, c)
    groups.append(current)
    return groups


def _table(sheet, grid, r, row, group, transposed):
    renamed = headers.resolve_bias_names([name for _, name, _ in group])
    cols, texts, not_checked = {}, {}, []
    for c, name, text in group:
        name = renamed.get(name)
        if name is None or name in cols:
            not_checked.append(str(text))
            continue
        cols[name], texts[name] = c, str(text)
    weights = [cols[w] for w in headers.WEIGHTS if w in cols]
    if len(weights) < MIN_WEIGHTS:
        return None
    lo, hi = min(cols.values()), max(cols.values())
    used = set(cols.values())
    for c in range(lo, hi + 1):
        v = _at(grid, r, c)
        if c not in used and isinstance(v, str) and v.strip() and not headers.is_ignored(v):
            if headers.canonical(v) is None:
                not_checked.append(v)
    rows, k, skipped = [], r + 1, 0
    while k < len(grid):
        if any(number(_at(grid, k, c)) is not None for c in weights):
            rows.append(k)
        elif rows or skipped >= _SKIP_ROWS:
            break
        else:
            skipped += 1
        k += 1
    if rows:
        # A name in the header row with nothing under it ("lr" beside its number) is a label.
        for name, c in list(cols.items()):
            if name not in headers.WEIGHTS and all(_at(grid, k, c) in (None, "") for k in rows):
                del cols[name], texts[name]
    return Table(sheet, r, cols, texts, not_checked, rows, transposed)


@dataclass
class Label:
    name: str  # SPEC name: lr, i1, i2, t1, t2, b1, b2, b_h1, …
    value: float
    ref: str  # where the number is (a cell, or the sheet's name)
    at: tuple = (0, 0)  # its grid (row, col): the label nearest a table is that table's

    def distance(self, table):
        r, c = (
            (min(table.cols.values()), table.header)
            if table.transposed
            else (table.header, min(table.cols.values()))
        )
        return abs(self.at[0] - r) + abs(self.at[1] - c)


LABELLED = {"lr", "i1", "i2", "t1", "t2", "b1", "b2", "b_h1", "b_h2", "b_o1", "b_o2"}
_INLINE = re.compile(r"^\s*(.+?)\s*(?:[=:]|\s)\s*([-+]?(?:\d+[.,]?\d*|[.,]\d+)(?:[eE][-+]?\d+)?)\s*$")


def find_labels(sheet, tables):
    """Constant cells: a label (``lr``, ``η``, ``learning rate``, ``t1``, ``b1``, …) with a number to
    its right or just below it, or ``lr = 0.5`` in one cell; also ``lr=0.5`` as the sheet's name."""
    taken = set().union(*(t.cells() for t in tables)) if tables else set()
    labels = []
    inline = _inline(sheet.name)
    if inline is not None and inline[0] == "lr":
        labels.append(Label("lr", inline[1], f"the sheet's name {sheet.name!r}"))
    grid = sheet.grid
    for r, row in enumerate(grid):
        for c, v in enumerate(row):
            if not isinstance(v, str) or (r, c) in taken or len(v) > 40:
                continue
            found = _inline(v)
            if found is not None:
                labels.append(Label(found[0], found[1], cell_name(r, c), (r, c)))
                continue
            name = headers.canonical(v)
            name = {"b3": None, "b4": None}.get(name, name)
            if name not in LABELLED:
                continue
            spot = _number_beside(grid, r, c, taken)
            if spot is not None:
                labels.append(Label(name, spot[0], cell_name(*spot[1]), spot[1]))
    return labels


def _number_beside(grid, r, c, taken):
    """(value, (row, col)) of the first non-empty cell to the right of (r, c), if it is a number,
    else of the cell just below, if that is one."""
    for cc in range(c + 1, c + 1 + _RIGHT):
        value = _at(grid, r, cc)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        x = number(value)
        if x is not None and (r, cc) not in taken:
            return x, (r, cc)
        break  # something else stands to the right: look below instead
    x = number(_at(grid, r + 1, c))
    return (x, (r + 1, c)) if x is not None and (r + 1, c) not in taken else None


def _inline(text):
    m = _INLINE.match(text)
    if not m:
        return None
    name = headers.canonical(m.group(1))
    x = number(m.group(2))
    return (name, x) if name in LABELLED and x is not None else None

"""A lean reader of .xlsx worksheets: each cell's saved value, and the formulas saved without one.

Why not openpyxl for the cells: its read-only mode builds a cell object per cell, 40-65 ms for a
100-row table on this machine, most of the 10 s that 100 workbooks may take. The cells of a
worksheet are a flat list of ``<c r="B7" t="…"><f>…</f><v>…</v></c>`` in ``<sheetData>``; this
module reads them, and the shared strings, in one forward pass of ``bytes.find`` (``_elements``):
no pattern that can backtrack, so the time is linear in the XML whatever it holds (an unclosed
element is found once and the part refused). The workbook's small parts (sheet list,
relationships) are read with ElementTree once archive.py has refused any DOCTYPE in them.
Anything it does not understand raises ``FormatError``, and workbook.py reads that file with
openpyxl instead. The budgets (limits.py) are checked as the cells are read.
"""

import functools
import posixpath
import re
import xml.etree.ElementTree as ET
from html import unescape

from fastbp.workbook_audit.archive import open_archive, read_member
from fastbp.workbook_audit.limits import DEFAULT, Unreadable
from fastbp.workbook_audit.workbook import Sheet, cell_name


class FormatError(Exception):
    """This reader cannot read the file: fall back to openpyxl."""


_REF_TEXT = re.compile(rb"([A-Za-z]{1,3})(\d{1,9})")
_ROW_NUMBER = re.compile(rb'\sr\s*=\s*["\'](\d{1,9})["\']')
_REF = re.compile(rb'\sr\s*=\s*["\']([A-Za-z]{1,3})(\d{1,9})["\']')
_TYPE = re.compile(rb'\st\s*=\s*["\'](\w{1,20})["\']')
_WORKSHEET = "/worksheet"
_SHARED = "/sharedStrings"
_OFFICE = "/officeDocument"
_SMALL_PART = 4_000_000  # bytes of a part read into an ElementTree (a sheet list, relationships)


@functools.lru_cache(maxsize=64)
def _opening(name):
    # "<c" or "<x:c" followed by a space, "/" or ">": bounded work at each "<", so a linear search.
    return re.compile(rb"<((?:[A-Za-z_][\w.-]{0,30}:)?)" + name + rb"(?=[\s/>])")


def _elements(data, name, start=0, end=None):
    """(attributes, body, start, end) of each ``<name …>…</name>`` or ``<name …/>`` in data[start:end].

    One forward pass: every search starts where the last element ended, so the time is linear in
    the data; an element that is never closed ends the part (Unreadable), it is not retried.
    """
    opening = _opening(name)
    end = len(data) if end is None else end
    pos = start
    while (m := opening.search(data, pos, end)) is not None:
        gt = data.find(b">", m.end(), end)
        if gt < 0:
            raise Unreadable(f"malformed XML: a <{name.decode()}> tag that never ends")
        if data[gt - 1] == 0x2F:  # <c r="A1"/>
            yield data[m.end() : gt - 1], b"", m.start(), gt + 1
            pos = gt + 1
            continue
        close = b"</" + m.group(1) + name + b">"
        stop = data.find(close, gt + 1, end)
        if stop < 0:
            raise Unreadable(f"malformed XML: a <{name.decode()}> element that is never closed")
        pos = stop + len(close)
        yield data[m.end() : gt], data[gt + 1 : stop], m.start(), pos


def _text_of(body, limits):
    """The text of an ``<si>`` or ``<is>``: its ``<t>`` parts, without the phonetic guides (``<rPh>``)."""
    if b"<" not in body:
        return ""
    spans, pos = [], 0
    for _, _, first, after in _elements(body, b"rPh"):
        spans.append((pos, first))
        pos = after
    spans.append((pos, len(body)))
    parts = []
    for lo, hi in spans:
        parts += [text for _, text, _, _ in _elements(body, b"t", lo, hi)]
    text = unescape(b"".join(parts).decode("utf-8"))
    _check_string(text, limits)
    return text


def _check_string(text, limits):
    if len(text) > limits.string:
        raise Unreadable(f"a text of {len(text):,} characters (budget string: {limits.string:,})")


def _local(tag):
    return tag.rsplit("}", 1)[-1]


def _attr(element, name):
    for key, value in element.attrib.items():
        if _local(key) == name:
            return value
    return None


def _small_part(archive, part, limits):
    data = read_member(archive, part, limits)
    if len(data) > _SMALL_PART:
        raise Unreadable(f"{part} is {len(data):,} bytes (a workbook's is a few kB)")
    return ET.fromstring(data)


def _rels(archive, part, limits):
    """Id -> (type, target path) of a part's relationships."""
    rels_path = posixpath.join(posixpath.dirname(part), "_rels", posixpath.basename(part) + ".rels")
    try:
        root = _small_part(archive, rels_path, limits)
    except KeyError:
        return {}
    base = posixpath.dirname(part)
    out = {}
    for rel in root:
        target = rel.get("Target", "")
        if rel.get("TargetMode") == "External":
            continue
        path = (
            target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join(base, target))
        )
        out[rel.get("Id")] = (rel.get("Type", ""), path)
    return out


def read_xlsx(handle, limits=DEFAULT):
    """[Sheet] of the workbook's worksheets, in the workbook's order, read from an open file."""
    try:
        with open_archive(handle, limits) as archive:
            top = _rels(archive, "", limits)
            book = next((p for t, p in top.values() if t.endswith(_OFFICE)), "xl/workbook.xml")
            rels = _rels(archive, book, limits)
            shared = []
            for kind, part in rels.values():
                if kind.endswith(_SHARED):
                    shared = _shared_strings(read_member(archive, part, limits), limits)
            listed = [e for e in _small_part(archive, book, limits).iter() if _local(e.tag) == "sheet"]
            if len(listed) > limits.sheets:
                raise Unreadable(f"{len(listed):,} sheets (budget sheets: {limits.sheets:,})")
            sheets, cells = [], [0]  # cells: a count shared by the sheets (the budget is per workbook)
            for element in listed:
                kind, part = rels.get(_attr(element, "id"), ("", ""))
                if not kind.endswith(_WORKSHEET):
                    continue  # a chart sheet, a dialog sheet: no cells
                sheet = Sheet(element.get("name", ""), [], row_limit=limits.rows, column_limit=limits.columns)
                _check_string(sheet.name, limits)
                _cells(read_member(archive, part, limits), shared, sheet, limits, cells)
                sheets.append(sheet)
            return sheets
    except (KeyError, ET.ParseError, ValueError, IndexError, UnicodeDecodeError) as exc:
        raise FormatError(f"{type(exc).__name__}: {exc}") from None


def _shared_strings(xml, limits):
    return [_text_of(body, limits) for _, body, _, _ in _elements(xml, b"si")]


@functools.lru_cache(maxsize=65536)  # the same references recur in every workbook of a class
def _position(ref):
    """b"AB12" -> (11, 27), 0-based (row, column); None if it is not a cell reference."""
    m = _REF_TEXT.fullmatch(ref)
    if m is None:
        return None
    c = 0
    for ch in m.group(1).upper():
        c = c * 26 + (ch - 64)
    return int(m.group(2)) - 1, c - 1


def _cells(xml, shared, sheet, limits=DEFAULT, count=None):
    """Fill ``sheet`` (grid, uncached, cells beyond the limits) from a worksheet's XML."""
    found = next(_elements(xml, b"sheetData"), None)
    if found is None or not found[1]:
        return sheet
    store = _Store(sheet, shared, limits, [0] if count is None else count)
    try:
        _cells_by_reference(found[1], store)
    except _NoReference:
        store = _Store(sheet, shared, limits, store.start)
        _cells_by_position(found[1], store)
    sheet.grid = _grid(store.rows)
    return sheet


class _NoReference(Exception):
    pass


class _Store:
    """The cells read so far, within the budgets: cells past the row or column limit are counted."""

    def __init__(self, sheet, shared, limits, count):
        self.sheet, self.shared, self.limits, self.count = sheet, shared, limits, count
        self.start = list(count)  # to start again from here
        self.rows = {}
        sheet.uncached, sheet.beyond_rows, sheet.beyond_columns, sheet.first_beyond = set(), 0, 0, ""

    def put(self, where, attrs, body):
        r, c = where
        sheet = self.sheet
        if r >= self.limits.rows or c >= self.limits.columns:
            if r >= self.limits.rows:
                sheet.beyond_rows += 1
            else:
                sheet.beyond_columns += 1
            if not sheet.first_beyond:
                sheet.first_beyond = cell_name(r, c)
            return
        self.count[0] += 1
        if self.count[0] > self.limits.cells:
            raise Unreadable(f"more than {self.limits.cells:,} cells hold a value (budget cells)")
        _store(self.rows, sheet.uncached, where, attrs, body, self.shared, self.limits)


def _cells_by_reference(data, store):
    # The common case: every cell names its own reference (r="B7"); rows need not be parsed.
    for attrs, body, _, _ in _elements(data, b"c"):
        if not body:
            continue
        i = attrs.find(b'r="')
        if i < 0:
            raise _NoReference
        where = _position(attrs[i + 3 : attrs.find(b'"', i + 3)])
        if where is None:
            raise _NoReference
        store.put(where, attrs, body)


def _cells_by_position(data, store):
    # Cells (or rows) without a reference stand right after the one before them.
    r = -1
    for row_attrs, row_body, _, _ in _elements(data, b"row"):
        number = _ROW_NUMBER.search(row_attrs)
        r = int(number.group(1)) - 1 if number else r + 1
        c = -1
        for attrs, body, _, _ in _elements(row_body, b"c"):
            ref = _REF.search(attrs)
            c = _position(ref.group(1) + ref.group(2))[1] if ref else c + 1
            if body:
                store.put((r, c), attrs, body)


def _store(rows, uncached, where, attrs, body, shared, limits):
    i = body.find(b"<v>")
    if i >= 0:
        j = body.find(b"</v>", i)
        value, text = True, body[i + 3 : j if j >= 0 else len(body)]
    else:  # <x:v>, <v xml:space=…>, <v/>, or no value at all
        m = next(_elements(body, b"v"), None)
        value, text = m is not None, (m[1] if m else None)
    t = attrs.find(b't="')
    kind = attrs[t + 3 : attrs.find(b'"', t + 3)] if t >= 0 else (_kind(attrs) if b"t=" in attrs else b"n")
    if not text:
        if kind == b"str" and value:
            rows.setdefault(where[0], {})[where[1]] = ""  # a formula whose result is the empty text
        elif kind == b"inlineStr":
            inline = next(_elements(body, b"is"), None)
            rows.setdefault(where[0], {})[where[1]] = _text_of(inline[1] if inline else b"", limits)
        elif next(_elements(body, b"f"), None) is not None:
            uncached.add(where)
        return
    if kind == b"n":
        v = float(text)
    elif kind == b"s":
        v = shared[int(text)]
    elif kind == b"b":
        v = text.strip() in (b"1", b"true")
    else:  # str (a formula's text), e (an error such as #VALUE!), d (an ISO date)
        v = unescape(text.decode("utf-8"))
        _check_string(v, limits)
    rows.setdefault(where[0], {})[where[1]] = v


def _kind(attrs):
    m = _TYPE.search(attrs)
    return m.group(1) if m else b"n"


def _grid(rows):
    grid = []
    for k in range(max(rows, default=-1) + 1):
        cells = rows.get(k)
        if not cells:
            grid.append([])
            continue
        line = [None] * (max(cells) + 1)
        for c, v in cells.items():
            line[c] = v
        grid.append(line)
    return grid

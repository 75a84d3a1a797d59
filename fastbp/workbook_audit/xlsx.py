"""A lean reader of .xlsx worksheets: each cell's saved value, and the formulas saved without one.

Why not openpyxl for the cells: its read-only mode builds a cell object per cell, 40-65 ms for a
100-row table on this machine, most of the 10 s that 100 workbooks may take. The cells of a
worksheet are a flat list of ``<c r="B7" t="…"><f>…</f><v>…</v></c>`` in ``<sheetData>``;
this module reads them with a few regular expressions (the workbook's small parts, its sheet
list, relationships and shared strings, with ElementTree), in one pass that also sees which
formula cells have no saved value, so no second read is needed for that. Anything it does not
understand raises ``FormatError``, and workbook.py reads that file with openpyxl instead.
"""

import functools
import posixpath
import re
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from html import unescape


@dataclass
class Sheet:
    """A sheet as a grid of its saved values."""

    name: str
    grid: list  # rows of cell values (None, float, int, str, …), 0-based
    uncached: set = field(default_factory=set)  # (row, col) of formulas without a saved value


class FormatError(Exception):
    """This reader cannot read the file: fall back to openpyxl."""


_SHEET_DATA = re.compile(rb"<(?:\w+:)?sheetData\b[^>]*?(?:/>|>(.*?)</(?:\w+:)?sheetData>)", re.S)
_ROW = re.compile(rb"<(?:\w+:)?row\b([^>]*?)(?:/>|>(.*?)</(?:\w+:)?row>)", re.S)
_CELL = re.compile(rb"<(?:\w+:)?c\b([^>]*?)(?:/>|>(.*?)</(?:\w+:)?c>)", re.S)
_REF = re.compile(rb'\sr\s*=\s*["\']([A-Za-z]{1,3})(\d+)["\']')
_REF_TEXT = re.compile(rb"([A-Za-z]{1,3})(\d+)")
_ROW_NUMBER = re.compile(rb'\sr\s*=\s*["\'](\d+)["\']')
_TYPE = re.compile(rb'\st\s*=\s*["\'](\w+)["\']')
_VALUE = re.compile(rb"<(?:\w+:)?v\b[^>]*?(?:/>|>(.*?)</(?:\w+:)?v>)", re.S)
_FORMULA = re.compile(rb"<(?:\w+:)?f\b")
_TEXT = re.compile(rb"<(?:\w+:)?t\b[^>]*?(?:/>|>(.*?)</(?:\w+:)?t>)", re.S)
_PHONETIC = re.compile(rb"<(?:\w+:)?rPh\b.*?</(?:\w+:)?rPh>", re.S)
_WORKSHEET = "/worksheet"
_SHARED = "/sharedStrings"
_OFFICE = "/officeDocument"


def _local(tag):
    return tag.rsplit("}", 1)[-1]


def _attr(element, name):
    for key, value in element.attrib.items():
        if _local(key) == name:
            return value
    return None


def _rels(archive, part):
    """Id -> (type, target path) of a part's relationships."""
    rels_path = posixpath.join(posixpath.dirname(part), "_rels", posixpath.basename(part) + ".rels")
    try:
        root = ET.fromstring(archive.read(rels_path))
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


def read_xlsx(path, max_rows):
    """[(sheet name, grid, uncached cells)] of the workbook's worksheets, in the workbook's order."""

    try:
        with zipfile.ZipFile(path) as archive:
            top = _rels(archive, "")
            book = next((p for t, p in top.values() if t.endswith(_OFFICE)), "xl/workbook.xml")
            rels = _rels(archive, book)
            shared = []
            for kind, part in rels.values():
                if kind.endswith(_SHARED):
                    shared = _shared_strings(archive.read(part))
            sheets = []
            for element in ET.fromstring(archive.read(book)).iter():
                if _local(element.tag) != "sheet":
                    continue
                kind, part = rels.get(_attr(element, "id"), ("", ""))
                if not kind.endswith(_WORKSHEET):
                    continue  # a chart sheet, a dialog sheet: no cells
                grid, uncached = _cells(archive.read(part), shared, max_rows)
                sheets.append(Sheet(element.get("name", ""), grid, uncached))
            return sheets
    except (KeyError, ET.ParseError, ValueError, IndexError, UnicodeDecodeError) as exc:
        raise FormatError(f"{type(exc).__name__}: {exc}") from None


def _shared_strings(xml):
    out = []
    for si in ET.fromstring(xml):
        if _local(si.tag) != "si":
            continue
        parts = []
        for child in si:
            tag = _local(child.tag)
            if tag == "t":
                parts.append(child.text or "")
            elif tag == "r":  # a run of rich text; rPh (phonetic guides) are not part of the text
                parts += [t.text or "" for t in child if _local(t.tag) == "t"]
        out.append("".join(parts))
    return out


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


def _cells(xml, shared, max_rows):
    data = _SHEET_DATA.search(xml)
    if data is None or data.group(1) is None:
        return [], set()
    data = data.group(1)
    try:
        cells = _cells_by_reference(data, shared, max_rows)
    except _NoReference:
        cells = _cells_by_position(data, shared, max_rows)
    return _grid(cells[0]), cells[1]


class _NoReference(Exception):
    pass


def _cells_by_reference(data, shared, max_rows):
    # The common case: every cell names its own reference (r="B7"); rows need not be parsed.
    rows, uncached = {}, set()
    for cell in _CELL.finditer(data):
        attrs, body = cell.group(1, 2)
        if not body:
            continue
        i = attrs.find(b'r="')
        if i < 0:
            raise _NoReference
        where = _position(attrs[i + 3 : attrs.find(b'"', i + 3)])
        if where is None:
            raise _NoReference
        if where[0] >= max_rows:
            break
        _store(rows, uncached, where, attrs, body, shared)
    return rows, uncached


def _cells_by_position(data, shared, max_rows):
    # Cells (or rows) without a reference stand right after the one before them.
    rows, uncached = {}, set()
    r = -1
    for row in _ROW.finditer(data):
        number = _ROW_NUMBER.search(row.group(1))
        r = int(number.group(1)) - 1 if number else r + 1
        if r >= max_rows:
            break
        c = -1
        for cell in _CELL.finditer(row.group(2) or b""):
            attrs, body = cell.group(1, 2)
            ref = _REF.search(attrs)
            c = _position(ref.group(1) + ref.group(2))[1] if ref else c + 1
            if body:
                _store(rows, uncached, (r, c), attrs, body, shared)
    return rows, uncached


def _store(rows, uncached, where, attrs, body, shared):
    i = body.find(b"<v>")
    if i >= 0:
        value, text = True, body[i + 3 : body.find(b"</v>", i)]
    else:  # <x:v>, <v xml:space=…>, <v/>, or no value at all
        m = _VALUE.search(body)
        value, text = m is not None, (m.group(1) if m else None)
    t = attrs.find(b't="')
    kind = attrs[t + 3 : attrs.find(b'"', t + 3)] if t >= 0 else (_kind(attrs) if b"t=" in attrs else b"n")
    if not text:
        if kind == b"str" and value:
            rows.setdefault(where[0], {})[where[1]] = ""  # a formula whose result is the empty text
        elif kind == b"inlineStr":
            parts = _TEXT.findall(_PHONETIC.sub(b"", body))
            rows.setdefault(where[0], {})[where[1]] = unescape(
                b"".join(p or b"" for p in parts).decode("utf-8")
            )
        elif _FORMULA.search(body):
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

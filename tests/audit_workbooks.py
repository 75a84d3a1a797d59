"""Workbooks as students make them, for tests/test_audit.py: built with openpyxl in tmp_path.

``student_rows`` plays a student filling in the step table in a spreadsheet: plain float64 (math
only, nothing from fastbp), each row from the previous one, optionally with one of the known slips
planted from a given row, optionally computing the same formulas in another order or form
(``style=1``: σ as e^x/(1 + e^x), δ as −(t − a)·a·(1 − a), E_total in one formula …), and with every
number stored to 15 significant digits as LibreOffice and Google Sheets save them (``digits``).
``write_book`` lays such rows out under a header row of the names given, anywhere in a sheet.
"""

import math

import openpyxl

SPEC = (
    "t1 t2 i1 i2 w1 w2 w3 w4 h1 a_h1 h2 a_h2 w5 w6 w7 w8 o1 a_o1 o2 a_o2 E1 E2 E_total "
    "dE_dw1 dE_dw2 dE_dw3 dE_dw4 dE_dw5 dE_dw6 dE_dw7 dE_dw8"
).split()
WEIGHTS = [f"w{n}" for n in range(1, 9)]
# Column names as students write them (each one recognised by fastbp/workbook_audit/headers.py).
STUDENT_HEADERS = {
    "i1": "Input 1",
    "i2": "input_2",
    "t1": "Target o1",
    "t2": "target 2",
    "w1": "W1",
    "w2": "w_2",
    "w3": "w 3",
    "h1": "net_h1",
    "a_h1": "out_h1",
    "h2": "net h2",
    "a_h2": "a-h2",
    "o1": "net_o1",
    "a_o1": "out_o1",
    "o2": "Net O2",
    "a_o2": "ao2",
    "E1": "E_o1",
    "E2": "Error 2",
    "E_total": "E_Total",
    "dE_dw1": "∂E/∂w1",
    "dE_dw2": "dE/dw2",
    "dE_dw3": "∂E_total/∂w3",
    "dE_dw4": "dEtotal/dw4",
    "dE_dw5": "∂Etot/∂w5",
    "dE_dw6": "dE_total/dw6",
    "dE_dw7": "grad w7",
    "dE_dw8": "δE/δw8",
}

COURSE = dict(inputs=(0.05, 0.1), weights=(0.15, 0.2, 0.25, 0.3, 0.4, 0.45, 0.5, 0.55))


def sig15(x, digits=15):
    """x as a spreadsheet saves it: ``digits`` significant digits."""
    return float(f"{x:.{digits - 1}e}") if isinstance(x, float) and x != 0 and math.isfinite(x) else x


def _sigma(x, style):
    if style == 1:
        e = math.exp(x)
        return e / (1.0 + e) if x < 700 else 1.0
    return 1.0 / (1.0 + math.exp(-x))


def student_rows(
    lr,
    steps,
    targets=(0.5, 0.5),
    inputs=COURSE["inputs"],
    weights=COURSE["weights"],
    biases=None,
    trained=False,
    slip=None,
    at=0,
    style=0,
    digits=15,
    lr2=None,
):
    """Rows of {name: value}; ``slip`` planted in rows >= ``at`` (wrong_row: only in row ``at``).

    biases: None, (b1, b2) shared per layer, or {"b_h1": …, "b_h2": …, "b_o1": …, "b_o2": …}.
    """
    i1, i2 = inputs
    t1, t2 = targets
    w = list(weights)
    shared = isinstance(biases, tuple)
    if biases is None:
        b = {"b_h1": 0.0, "b_h2": 0.0, "b_o1": 0.0, "b_o2": 0.0}
    elif shared:
        b = {"b_h1": biases[0], "b_h2": biases[0], "b_o1": biases[1], "b_o2": biases[1]}
    else:
        b = dict(biases)
    rows, full = [], []
    for k in range(steps):
        on = slip is not None and k >= at
        w1, w2, w3, w4, w5, w6, w7, w8 = w
        if style == 1:
            h1, h2 = i1 * w1 + i2 * w2 + b["b_h1"], i1 * w3 + i2 * w4 + b["b_h2"]
        else:
            h1, h2 = w1 * i1 + w2 * i2 + b["b_h1"], w3 * i1 + w4 * i2 + b["b_h2"]
        a_h1, a_h2 = _sigma(h1, style), _sigma(h2, style)
        o1, o2 = w5 * a_h1 + w6 * a_h2 + b["b_o1"], w7 * a_h1 + w8 * a_h2 + b["b_o2"]
        a_o1, a_o2 = _sigma(o1, style), _sigma(o2, style)
        half = 1.0 if on and slip == "missing_half" else 0.5
        E1, E2 = half * (t1 - a_o1) ** 2, half * (t2 - a_o2) ** 2
        E_total = ((t1 - a_o1) ** 2 + (t2 - a_o2) ** 2) * half if style == 1 else E1 + E2
        if style == 1:
            d1, d2 = -(t1 - a_o1) * a_o1 * (1 - a_o1), -(t2 - a_o2) * a_o2 * (1 - a_o2)
        else:
            d1, d2 = (a_o1 - t1) * a_o1 * (1 - a_o1), (a_o2 - t2) * a_o2 * (1 - a_o2)
        g = {"dE_dw5": d1 * a_h1, "dE_dw6": d1 * a_h2, "dE_dw7": d2 * a_h1, "dE_dw8": d2 * a_h2}
        v5, v6, v7, v8 = w5, w6, w7, w8
        if on and slip == "updated_output_weights":
            v5, v6, v7, v8 = (w[4 + j] - lr * g[f"dE_dw{5 + j}"] for j in range(4))
        da1 = d1 * v5 + d2 * v7
        da2 = d1 * v6 + d2 * v8
        s1 = a_h1 * (1 - a_h1)
        s2 = a_h1 * (1 - a_h1) if on and slip == "a_h1_for_a_h2" else a_h2 * (1 - a_h2)
        dh1, dh2 = da1 * s1, da2 * s2
        if style == 1:
            g.update(dE_dw1=i1 * s1 * da1, dE_dw2=i2 * s1 * da1, dE_dw3=i1 * s2 * da2, dE_dw4=i2 * s2 * da2)
        else:
            g.update(dE_dw1=dh1 * i1, dE_dw2=dh1 * i2, dE_dw3=dh2 * i1, dE_dw4=dh2 * i2)
        row = dict(t1=t1, t2=t2, i1=i1, i2=i2, h1=h1, a_h1=a_h1, h2=h2, a_h2=a_h2, o1=o1, a_o1=a_o1)
        row.update(o2=o2, a_o2=a_o2, E1=E1, E2=E2, E_total=E_total, **g)
        row.update(zip(WEIGHTS, w))
        row.update(delta_o1=d1, delta_o2=d2, dE_da_h1=da1, dE_da_h2=da2, delta_h1=dh1, delta_h2=dh2)
        if shared:
            row.update(b1=b["b_h1"], b2=b["b_o1"], dE_db1=dh1 + dh2, dE_db2=d1 + d2)
        elif biases is not None:
            row.update(b, dE_db_h1=dh1, dE_db_h2=dh2, dE_db_o1=d1, dE_db_o2=d2)
        full.append(dict(row))
        rows.append({n: sig15(v, digits) for n, v in row.items()})
        # The spreadsheet computes the next row from this row's stored numbers (what it shows).
        cur = rows[-1] if digits < 15 else row
        rate = lr2 if (slip == "lr_changes" and k + 1 >= at) else lr
        sign = -1.0 if (slip == "wrong_sign" and k + 1 >= at) else 1.0
        src = cur
        if slip == "wrong_row" and k + 1 == at and k >= 1:
            src = full[k - 1] if digits >= 15 else rows[k - 1]  # row `at` refers two rows up
        w = [src[n] - sign * rate * src["dE_d" + n] for n in WEIGHTS]
        if trained and biases is not None:
            if shared:
                b = {
                    "b_h1": cur["b1"] - lr * cur["dE_db1"],
                    "b_h2": cur["b1"] - lr * cur["dE_db1"],
                    "b_o1": cur["b2"] - lr * cur["dE_db2"],
                    "b_o2": cur["b2"] - lr * cur["dE_db2"],
                }
            else:
                b = {u: cur[u] - lr * cur["dE_d" + u] for u in ("b_h1", "b_h2", "b_o1", "b_o2")}
    return rows


def write_book(path, tables, sheet="Sheet1"):
    """tables: [(rows, columns, headers, (top_row, left_col))] (1-based origin) into one sheet;
    ``headers`` maps a name to the text written above it (default: the name)."""
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = sheet
    for rows, columns, headers, (top, left) in tables:
        place(ws, rows, columns, headers, top, left)
    book.save(path)
    return path


def place(ws, rows, columns, headers=None, top=1, left=1):
    headers = headers or {}
    for j, name in enumerate(columns):
        ws.cell(row=top, column=left + j, value=headers.get(name, name))
        for k, row in enumerate(rows):
            ws.cell(row=top + 1 + k, column=left + j, value=row.get(name))


def cell(columns, name, step, top=1, left=1):
    """The cell (``B34``) where ``write_book`` puts ``name`` of ``step``."""
    from openpyxl.utils import get_column_letter

    return f"{get_column_letter(left + columns.index(name))}{top + 1 + step}"


def speed_main(argv=None):
    """Time ``fastbp audit`` on a folder of workbooks like a class's submissions (not a test).

    python tests/audit_workbooks.py DIR [--books 100] [--rows 100] [--repeat 3]
    """
    import argparse
    import os
    import random
    import subprocess
    import time

    parser = argparse.ArgumentParser(description=speed_main.__doc__)
    parser.add_argument("dir")
    parser.add_argument("--books", type=int, default=100)
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    os.makedirs(args.dir, exist_ok=True)
    rng = random.Random(15)
    slips = [None] * 6 + ["a_h1_for_a_h2", "missing_half", "wrong_sign", "updated_output_weights"]
    for n in range(args.books):
        rows = student_rows(
            rng.choice([0.1, 0.5, 1.0, 2.0]),
            args.rows,
            targets=rng.choice([(0.5, 0.5), (0.01, 0.99)]),
            slip=rng.choice(slips),
            at=rng.randrange(args.rows // 2),
        )
        origin = (rng.randrange(1, 5), rng.randrange(1, 4))
        write_book(os.path.join(args.dir, f"student{n:03d}.xlsx"), [(rows, SPEC, {}, origin)])
    out = os.path.join(os.path.dirname(os.path.abspath(args.dir)), "grades.csv")
    command = ["fastbp", "audit", args.dir, "--format", "csv", "--out", out]
    for _ in range(args.repeat):
        start = time.perf_counter()
        code = subprocess.run(command).returncode
        cpu = os.times()
        print(
            f"{args.books} workbooks x {args.rows} rows: {time.perf_counter() - start:.2f} s wall "
            f"(children's CPU so far {cpu.children_user + cpu.children_system:.2f} s), exit {code}"
        )


# --- workbooks written byte by byte (hostile files, and tables too long for openpyxl to write fast) ---

_CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
    b'content-types"><Default Extension="xml" ContentType="application/xml"/></Types>'
)
_NS = b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def column_letters(c):
    """0 -> A, 25 -> Z, 26 -> AA."""
    letters, c = "", c + 1
    while c:
        c, rem = divmod(c - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def sheet_xml(grid, top=1, left=1, before=b"", transposed=False):
    """A worksheet's XML for a grid of values: text as inline strings, numbers as <v> (repr, so inf
    and nan are written as such), bytes written as the <v> text as they are (b"1e999"). ``before``:
    raw cells put first in <sheetData> (a stray cell far away)."""
    cells = []
    for r, row in enumerate(grid):
        for c, v in enumerate(row):
            if v is None:
                continue
            rr, cc = (c, r) if transposed else (r, c)
            ref = f"{column_letters(left - 1 + cc)}{top + rr}".encode()
            if isinstance(v, str):
                text = v.replace("&", "&amp;").replace("<", "&lt;").encode()
                cells.append(b'<c r="%s" t="inlineStr"><is><t>%s</t></is></c>' % (ref, text))
            else:
                cells.append(
                    b'<c r="%s"><v>%s</v></c>' % (ref, v if isinstance(v, bytes) else repr(v).encode())
                )
    return b"<worksheet %s><sheetData>%s%s</sheetData></worksheet>" % (_NS, before, b"".join(cells))


def table_grid(rows, columns=SPEC):
    """The header row and one row per step of ``student_rows``."""
    return [list(columns)] + [[row.get(name) for name in columns] for row in rows]


def raw_book(path, sheets, shared=None, extra=(), compression=None, encrypted=False):
    """An .xlsx written with zipfile alone: ``sheets`` [(name, worksheet XML bytes)], ``shared`` the
    sharedStrings.xml bytes, ``extra`` more members [(name, bytes)]; ``encrypted``: every sheet
    member marked as encrypted (the flag zipfile refuses to read without a password)."""
    import zipfile
    from xml.sax.saxutils import quoteattr

    compression = zipfile.ZIP_DEFLATED if compression is None else compression
    listed = "".join(
        f'<sheet name={quoteattr(name)} sheetId="{k + 1}" r:id="rId{k + 1}"/>'
        for k, (name, _) in enumerate(sheets)
    )
    rels = "".join(
        f'<Relationship Id="rId{k + 1}" Type="{_REL}/worksheet" Target="worksheets/sheet{k + 1}.xml"/>'
        for k in range(len(sheets))
    )
    if shared is not None:
        rels += f'<Relationship Id="rIdS" Type="{_REL}/sharedStrings" Target="sharedStrings.xml"/>'
    pkg = "http://schemas.openxmlformats.org/package/2006/relationships"
    with zipfile.ZipFile(path, "w", compression) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr(
            "_rels/.rels",
            f'<Relationships xmlns="{pkg}"><Relationship Id="rId1" Type="{_REL}/officeDocument" '
            'Target="xl/workbook.xml"/></Relationships>',
        )
        archive.writestr(
            "xl/workbook.xml",
            f'<workbook {_NS.decode()} xmlns:r="{_REL}"><sheets>{listed}</sheets></workbook>',
        )
        archive.writestr("xl/_rels/workbook.xml.rels", f'<Relationships xmlns="{pkg}">{rels}</Relationships>')
        for k, (_, xml) in enumerate(sheets):
            archive.writestr(f"xl/worksheets/sheet{k + 1}.xml", xml)
        if shared is not None:
            archive.writestr("xl/sharedStrings.xml", shared)
        for name, data in extra:
            archive.writestr(name, data)
    if encrypted:
        _mark_encrypted(path, "xl/worksheets/")
    return path


def _mark_encrypted(path, prefix):
    # zipfile writes no encrypted member: set bit 0 of the flags in the local and central headers.
    import struct

    data = bytearray(open(path, "rb").read())
    at = 0
    while (at := data.find(b"PK\x01\x02", at)) >= 0:
        n = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + n].decode().startswith(prefix):
            data[at + 8] |= 1
            data[struct.unpack_from("<I", data, at + 42)[0] + 6] |= 1
        at += 46
    open(path, "wb").write(bytes(data))


if __name__ == "__main__":
    speed_main()

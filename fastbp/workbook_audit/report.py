"""The audit's rows as text (one block per table, for a student), csv, markdown or json."""

import csv
import io
import json
import math

from fastbp.workbook_audit.api import FIELDS
from fastbp.workbook_audit.slips import NAMES

FORMATS = ("text", "csv", "markdown", "json")

SLIP_TEXT = {
    "a_h1_for_a_h2": "∂E/∂w3 and ∂E/∂w4 use a_h1(1 − a_h1) where a_h2(1 − a_h2) belongs",
    "a_h2_for_a_h1": "∂E/∂w1 and ∂E/∂w2 use a_h2(1 − a_h2) where a_h1(1 − a_h1) belongs",
    "updated_output_weights": "the hidden-layer gradients use the already updated w5 … w8",
    "missing_half": "E1 and E2 are (t − a)², without the ½",
    "wrong_sign": "an update adds lr·∂E/∂w instead of subtracting it",
    "lr_changes": "the learning rate changes between rows",
    "not_updated": "the weights never change",
    "rounded_values": "numbers pasted rounded, right only to the digits they keep",
    "wrong_row": "a formula refers to the wrong row",
    "unexplained": "not one of the known slips",
}
assert set(SLIP_TEXT) == set(NAMES)


def render(rows, fmt):
    if fmt == "text":
        return "".join(_block(row) for row in rows)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _plain(row[k]) for k in FIELDS})
        return out.getvalue()
    if fmt == "markdown":
        cols = FIELDS[:12]
        lines = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
        for row in rows:
            lines.append("| " + " | ".join(_plain(row[k]).replace("|", "\\|") for k in cols) + " |")
        return "\n".join(lines) + "\n"
    return (
        json.dumps([{k: _json(row[k]) for k in FIELDS} for row in rows], indent=2, ensure_ascii=False) + "\n"
    )


def _plain(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back as the same float64
    return str(value)


def _json(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _num(value):
    return (
        "(nothing to compare with)"
        if value is None
        else (f"{value!r}" if isinstance(value, float) else repr(value))
    )


def _block(row):
    where = row["workbook"] + (
        f", sheet {row['sheet']!r}, table at {row['header_cell']}" if row["sheet"] else ""
    )
    if row["verdict"] == "unreadable":
        return f"{where}\n  UNREADABLE: {row['message']}\n\n"
    source = row["lr_source"]
    source = source if source.startswith("inferred") else f"from {source}"
    lr = "no update to infer lr from" if row["lr"] is None else f"lr {row['lr']:g} ({source})"
    lines = [f"{where}: {row['steps']} steps, {lr}"]
    if row["verdict"] == "ok":
        lines.append(f"  ok: all {row['checked_cells']} cells checked are right (rtol {row['rtol']:g})")
    else:
        column = row["column"]
        header = row["column_header"]
        named = column if header == column else f"{column} (header {header!r})"
        lines.append(f"  WRONG: first wrong cell {row['first_wrong_cell']}: {named}, step {row['step']}")
        lines.append(f"    expected {_num(row['expected'])}")
        lines.append(f"    found    {_num(row['found'])}{_relative(row)}")
        counts = dict(part.rsplit(":", 1) for part in row["explained"].split()) if row["explained"] else {}
        for slip in row["slip"].split("+"):
            n = counts.get(slip)
            lines.append(f"  slip: {slip}: {SLIP_TEXT.get(slip, '')}" + (f" ({n} cells)" if n else ""))
        lines.append(
            f"  {row['wrong_cells']} of {row['checked_cells']} cells checked are wrong (rtol {row['rtol']:g})"
        )
    if row["missing_columns"]:
        lines.append(f"  not in the table (not checked): {row['missing_columns']}")
    for note in filter(None, row["notes"].split("; ")):
        lines.append(f"  note: {note}")
    return "\n".join(lines) + "\n\n"


def _relative(row):
    e, f = row["expected"], row["found"]
    if isinstance(e, float) and isinstance(f, float) and e != 0:
        return f"  (off by {abs(f - e) / abs(e):.2g} relative)"
    return ""

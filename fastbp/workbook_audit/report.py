"""The audit's rows as text (one block per table, for a student), csv, markdown or json."""

import csv
import io
import json
import math

from fastbp.workbook_audit.api import FIELDS
from fastbp.workbook_audit.inert import inert, neutralise
from fastbp.workbook_audit.slips import NAMES

FORMATS = ("text", "csv", "markdown", "json")

SLIP_TEXT = {
    "not_finite": "a cell holds ±inf or NaN (1e999 reads as inf): not a finite number",
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
    """The report; every text in it is inert (inert.py): escaped, cut, and in csv/markdown no formula."""
    rows = [{k: inert(v) if isinstance(v, str) else v for k, v in row.items()} for row in rows]
    if fmt == "text":
        return "".join(_block(row) for row in rows)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _field(row[k]) for k in FIELDS})
        return out.getvalue()
    if fmt == "markdown":
        cols = FIELDS[:12]
        lines = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
        for row in rows:
            lines.append("| " + " | ".join(_field(row[k]).replace("|", "\\|") for k in cols) + " |")
        return "\n".join(lines) + "\n"
    return (
        json.dumps([{k: _json(row[k]) for k in FIELDS} for row in rows], indent=2, ensure_ascii=False) + "\n"
    )


def _field(value):
    """A csv/markdown field: numbers as the shortest text that reads back as the same float64."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return neutralise(value)
    return str(value)


def _json(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _num(value):
    if value is None:
        return "(nothing to compare with)"
    return f"'{value}'" if isinstance(value, str) else repr(value)  # a text is escaped already


def _block(row):
    where = row["workbook"] + (
        f", sheet '{row['sheet']}', table at {row['header_cell']}" if row["sheet"] else ""
    )
    if row["verdict"] == "unreadable":
        return f"{where}\n  UNREADABLE: {row['message']}\n\n"
    source = row["lr_source"]
    source = source if source.startswith("inferred") else f"from {source}"
    lr = "no update to infer lr from" if row["lr"] is None else f"lr {row['lr']:g} ({source})"
    lines = [f"{where}: {row['steps']} steps, {lr}"]
    if row["verdict"] == "ok":
        lines.append(f"  ok: all {row['checked_cells']} cells checked are right (rtol {row['rtol']:g})")
    elif row["verdict"] == "incomplete":
        lines.append(
            f"  INCOMPLETE: all {row['checked_cells']} cells checked are right, but {row['message']}"
        )
    else:
        column = row["column"]
        header = row["column_header"]
        named = column if header == column else f"{column} (header '{header}')"
        lines.append(f"  WRONG: first wrong cell {row['first_wrong_cell']}: {named}, step {row['step']}")
        lines.append(f"    expected {_num(row['expected'])}")
        found = row["found"]
        if "not_finite" in row["slip"].split("+") and row["step"] is not None and row["expected"] is None:
            lines.append(f"    found    {_num(found)}: not a finite number")
        else:
            lines.append(f"    found    {_num(found)}{_relative(row)}")
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

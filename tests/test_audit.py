"""fastbp audit (issue 15): every step table in a workbook checked cell by cell, the slip named.

The workbooks are built here with openpyxl (tests/audit_workbooks.py plays the student: a plain
float64 loop, values saved to 15 significant digits as LibreOffice and Google Sheets save them).
What must hold: no correct workbook is ever reported wrong (both target editions, lr 0.1 … 10,
long runs, random weights, formulas computed in another order, 15 or 17 digits); every planted
slip is found at the cell where it was planted, with its name.
"""

import json
import math
import os
import random
import subprocess
import sys

import pytest

openpyxl = pytest.importorskip("openpyxl")

import audit_workbooks as aw  # noqa: E402

import fastbp  # noqa: E402
from fastbp.workbook_audit.check import check_table  # noqa: E402
from fastbp.workbook_audit.headers import canonical  # noqa: E402
from fastbp.workbook_audit.workbook import Sheet, find_labels, find_tables  # noqa: E402

EDITIONS = ((0.5, 0.5), (0.01, 0.99))


def audit_grid(rows, columns=aw.SPEC, headers=None, rtol=1e-12):
    """The checker on an in-memory sheet (no file): for the long runs, where writing xlsx is slow."""
    headers = headers or {}
    grid = [[headers.get(c, c) for c in columns]] + [[r.get(c) for c in columns] for r in rows]
    sheet = Sheet("S", grid)
    tables = find_tables(sheet)
    return [check_table(t, find_labels(sheet, tables), rtol) for t in tables]


def book(tmp_path, rows, columns=aw.SPEC, headers=None, origin=(1, 1), name="book.xlsx"):
    return aw.write_book(tmp_path / name, [(rows, columns, headers or {}, origin)])


def only(rows):
    assert len(rows) == 1, rows
    return rows[0]


# --- correct workbooks are never wrong ----------------------------------------------------------


@pytest.mark.parametrize("targets", EDITIONS)
@pytest.mark.parametrize("lr", [0.1, 0.5, 2.0])
def test_correct_workbook_is_ok(tmp_path, targets, lr):
    path = book(tmp_path, aw.student_rows(lr, 30, targets=targets))
    row = only(fastbp.audit(path))
    assert row["verdict"] == "ok", row
    assert row["lr"] == lr and row["steps"] == 30 and row["header_cell"] == "A1"
    # 30 rows × 19 computed columns + 29 updates × 8 weights + 29 × 4 inputs/targets
    assert row["checked_cells"] == 30 * 19 + 29 * 8 + 29 * 4
    assert row["first_wrong_cell"] is None and row["slip"] == ""


@pytest.mark.parametrize("targets", EDITIONS)
@pytest.mark.parametrize("lr", [0.1, 1.0, 2.0, 5.0, 10.0])
def test_long_correct_runs_are_ok(targets, lr):
    # 1000 steps: at lr 2 the loss reaches ~1e-30 and every gradient is a cancellation.
    for style in (0, 1):
        for digits in (15, 17):
            rows = aw.student_rows(lr, 1000, targets=targets, style=style, digits=digits)
            (outcome,) = audit_grid(rows)
            assert outcome.verdict == "ok", (style, digits, outcome.first, outcome.slip)
    if targets == (0.5, 0.5) and lr >= 1.0:  # reachable targets: the loss falls to 1e-30 and to 0,
        assert rows[-1]["E_total"] < 1e-29  # every late gradient a cancellation: the hard rows


def test_random_correct_runs_are_ok():
    rng = random.Random(15)
    for _ in range(12):
        weights = tuple(rng.uniform(-2, 2) for _ in range(8))
        targets = (rng.random(), rng.random())
        lr = rng.choice([0.05, 0.3, 1.0, 4.0, 7.5])
        rows = aw.student_rows(lr, 300, targets=targets, weights=weights, style=rng.randrange(2))
        (outcome,) = audit_grid(rows)
        assert outcome.verdict == "ok", (weights, targets, lr, outcome.first)


def test_recomputation_matches_the_kernel():
    # The audit's plain float64 replay against fastbp.step_table (the Numba kernel): relative
    # 1e-12 with a floor at each column's scale (the kernel's fma rounds once where a spreadsheet
    # rounds twice; near a zero crossing only the column's scale is meaningful).
    from fastbp.workbook_audit.recompute import replay_row

    for targets in EDITIONS:
        kernel = fastbp.step_table(lr=2.0, steps=200, targets=targets).to_pydict()
        names = [n for n in kernel if n not in ("t1", "t2", "i1", "i2") and not n.startswith("w")]
        scale = {n: max(abs(v) for v in kernel[n]) for n in names}
        for k in range(200):
            roots = {n: (kernel[n][k], 0.0) for n in ["i1", "i2", "t1", "t2"] + aw.WEIGHTS}
            mine = replay_row(roots, None, lambda name, x: 0.0)
            for n in names:
                assert abs(mine[n][0] - kernel[n][k]) <= 1e-12 * (abs(kernel[n][k]) + scale[n]), (n, k)


# --- each slip, planted at a known cell, is found there by name -------------------------------

SLIPS = [
    # (slip, planted from row, extra args, first wrong column)
    ("a_h1_for_a_h2", 0, {}, "dE_dw3"),
    ("a_h1_for_a_h2", 6, {}, "dE_dw3"),
    ("updated_output_weights", 0, {}, "dE_dw1"),
    ("updated_output_weights", 4, {}, "dE_dw1"),
    ("missing_half", 0, {}, "E1"),
    ("missing_half", 9, {}, "E1"),
    ("wrong_sign", 1, {}, "w1"),
    ("wrong_sign", 7, {}, "w1"),
    ("lr_changes", 5, {"lr2": 0.25}, "w1"),
    ("lr_changes", 3, {"lr2": 0.0}, "w1"),
    ("wrong_row", 6, {}, "w1"),
    ("wrong_row", 2, {}, "w1"),
]


@pytest.mark.parametrize("slip, at, extra, column", SLIPS)
@pytest.mark.parametrize("targets", EDITIONS)
def test_slip_found_at_its_cell_by_name(tmp_path, slip, at, extra, column, targets):
    origin = (3, 2)  # the table starts at B3
    rows = aw.student_rows(0.5, 25, targets=targets, slip=slip, at=at, **extra)
    row = only(fastbp.audit(book(tmp_path, rows, origin=origin)))
    assert row["verdict"] == "wrong"
    assert row["slip"] == slip, row
    assert row["first_wrong_cell"] == "Sheet1!" + aw.cell(aw.SPEC, column, at, *origin)
    assert (row["column"], row["step"]) == (column, at)
    assert row["found"] == rows[at][column]
    assert row["explained"] == f"{slip}:{row['wrong_cells']}"  # every wrong cell, not just the first


def test_the_trap_is_caught_at_step_0_at_its_size():
    rows = aw.student_rows(2.0, 5, slip="a_h1_for_a_h2")
    right = aw.student_rows(2.0, 1)[0]
    (outcome,) = audit_grid(rows)
    first = outcome.first
    assert (first.name, first.step, first.expected) == (
        "dE_dw3",
        0,
        pytest.approx(right["dE_dw3"], rel=1e-12),
    )
    assert abs(first.found / first.expected - 1) == pytest.approx(2.6e-4, rel=0.05)  # the figure


@pytest.mark.parametrize("digits", [4, 6, 8, 10])
def test_rounded_values(tmp_path, digits):
    rows = aw.student_rows(0.5, 20, targets=(0.01, 0.99), digits=digits)
    row = only(fastbp.audit(book(tmp_path, rows)))
    assert row["verdict"] == "wrong" and row["slip"] == "rounded_values", row
    assert row["step"] == 0  # row 0's computed cells are already rounded


def test_a_slip_only_in_the_weights_when_gradients_are_not_shown(tmp_path):
    # No gradient columns: the trap shows in the updated w3, w4 and is still named.
    columns = [c for c in aw.SPEC if not c.startswith("dE_")]
    rows = aw.student_rows(1.0, 12, slip="a_h1_for_a_h2")
    row = only(fastbp.audit(book(tmp_path, rows, columns)))
    assert (row["verdict"], row["slip"], row["column"], row["step"]) == ("wrong", "a_h1_for_a_h2", "w3", 1)
    assert row["missing_columns"] == " ".join(f"dE_dw{n}" for n in range(1, 9))


def test_a_typo_is_unexplained_at_its_cell(tmp_path):
    rows = aw.student_rows(0.5, 15)
    rows[8]["a_o2"] = 0.7123  # typed over a formula
    row = only(fastbp.audit(book(tmp_path, rows)))
    assert row["verdict"] == "wrong" and row["slip"] == "unexplained"
    assert row["first_wrong_cell"] == "Sheet1!" + aw.cell(aw.SPEC, "a_o2", 8)
    assert row["wrong_cells"] == 1  # the local replay: rows after it are right from its numbers


def test_two_slips_are_both_named():
    rows = aw.student_rows(0.5, 20, slip="a_h1_for_a_h2")
    for row in rows:
        row["E1"] *= 2.0
    (outcome,) = audit_grid(rows)
    assert outcome.slip == "a_h1_for_a_h2+missing_half"


# --- finding the tables -------------------------------------------------------------------------


def test_header_variants_are_recognised():
    for name, text in aw.STUDENT_HEADERS.items():
        assert canonical(text) == name, text
    for text, name in [
        ("a_h1", "a_h1"),
        ("ah1", "a_h1"),
        ("σ(h1)", "a_h1"),
        ("E_tot", "E_total"),
        ("Etotal", "E_total"),
        ("∂E_total/∂out_o1", "dE_da_o1"),
        ("∂out_o1/∂net_o1", "da_o1_do1"),
        ("δ_o1", "delta_o1"),
        ("∂E/∂b1", "dE_db1"),
        ("w1 (i1→h1)", "w1"),
        ("new w1", "w1_next"),
        ("η", "lr"),
        ("Learning rate", "lr"),
        ("∂E1/∂w5", "dE_dw5"),
    ]:
        assert canonical(text) == name, text
    for text in ["∂E1/∂w7", "notes", "Δw1", "step", "x", ""]:
        assert canonical(text) is None, text


def test_student_headers_in_another_order_not_at_a1(tmp_path):
    rng = random.Random(3)
    columns = list(aw.SPEC)
    rng.shuffle(columns)
    columns = ["step"] + columns[:10] + ["comment"] + columns[10:]
    rows = aw.student_rows(2.0, 20, targets=(0.01, 0.99), slip="a_h1_for_a_h2", at=3)
    for k, row in enumerate(rows):
        row["step"], row["comment"] = k, "ok"
    row = only(fastbp.audit(book(tmp_path, rows, columns, aw.STUDENT_HEADERS, origin=(5, 3))))
    assert row["header_cell"] == "D5" and row["slip"] == "a_h1_for_a_h2"  # the first recognised header
    assert row["first_wrong_cell"] == "Sheet1!" + aw.cell(columns, "dE_dw3", 3, 5, 3)
    assert row["column_header"] == "∂E_total/∂w3"
    assert "comment" in row["notes"] and "step" not in row["notes"]  # listed as not checked


def test_two_tables_side_by_side_and_one_below(tmp_path):
    right = aw.student_rows(0.5, 10)
    wrong = aw.student_rows(2.0, 10, targets=(0.01, 0.99), slip="missing_half", at=2)
    third = aw.student_rows(1.0, 6, slip="wrong_sign", at=3)
    path = aw.write_book(
        tmp_path / "three.xlsx",
        [(right, aw.SPEC, {}, (1, 1)), (wrong, aw.SPEC, {}, (1, 33)), (third, aw.SPEC, {}, (14, 1))],
    )
    rows = fastbp.audit(path)
    assert [(r["header_cell"], r["verdict"], r["slip"], r["lr"]) for r in rows] == [
        ("A1", "ok", "", 0.5),
        ("AG1", "wrong", "missing_half", 2.0),
        ("A14", "wrong", "wrong_sign", 1.0),
    ]
    assert rows[1]["first_wrong_cell"] == "Sheet1!" + aw.cell(aw.SPEC, "E1", 2, 1, 33)


def test_targets_inputs_and_lr_from_labelled_cells(tmp_path):
    columns = [c for c in aw.SPEC if c not in ("t1", "t2", "i1", "i2")]
    rows = aw.student_rows(0.8, 10, targets=(0.01, 0.99))
    wb = openpyxl.Workbook()
    ws = wb.active
    for r, (label, value) in enumerate(
        [("i1", 0.05), ("i2", 0.1), ("t1", 0.01), ("t2", 0.99), ("η", 0.8)], 1
    ):
        ws.cell(r, 1, label), ws.cell(r, 2, value)
    aw.place(ws, rows, columns, top=8, left=1)
    wb.save(tmp_path / "labels.xlsx")
    row = only(fastbp.audit(tmp_path / "labels.xlsx"))
    assert row["verdict"] == "ok" and row["lr"] == 0.8 and row["lr_source"] == "cell B5"
    assert "t1 = 0.01 (B3)" in row["notes"]
    assert row["missing_columns"] == ""  # given as constants, not missing


def test_targets_not_in_the_sheet_are_the_edition_that_fits():
    columns = [c for c in aw.SPEC if c not in ("t1", "t2")]
    (outcome,) = audit_grid(aw.student_rows(0.5, 10, targets=(0.01, 0.99)), columns)
    assert outcome.verdict == "ok" and outcome.table is not None
    assert any("t1 = 0.01, t2 = 0.99" in n for n in outcome.notes)


def test_only_weights_and_loss(tmp_path):
    columns = ["E_total"] + aw.WEIGHTS
    row = only(fastbp.audit(book(tmp_path, aw.student_rows(2.0, 15), columns)))
    assert row["verdict"] == "ok" and row["lr"] == 2.0
    assert "a_h1" in row["missing_columns"].split() and "dE_dw1" in row["missing_columns"].split()
    bad = aw.student_rows(2.0, 15, slip="wrong_sign", at=4)
    row = only(fastbp.audit(book(tmp_path, bad, columns, name="bad.xlsx")))
    assert (row["slip"], row["column"], row["step"]) == ("wrong_sign", "w1", 4)


def test_one_step_per_column(tmp_path):
    # The table laid out sideways: names down column B, one step per column from C on.
    rows = aw.student_rows(0.5, 6, slip="a_h1_for_a_h2", at=2)
    wb = openpyxl.Workbook()
    ws = wb.active
    for j, name in enumerate(aw.SPEC):
        ws.cell(2 + j, 2, name)
        for k, row in enumerate(rows):
            ws.cell(2 + j, 3 + k, row[name])
    wb.save(tmp_path / "sideways.xlsx")
    row = only(fastbp.audit(tmp_path / "sideways.xlsx"))
    assert (row["header_cell"], row["steps"], row["slip"]) == ("B2", 6, "a_h1_for_a_h2")
    assert row["first_wrong_cell"] == f"{ws.title}!E{2 + aw.SPEC.index('dE_dw3')}"


def test_blocks_that_are_not_tables_beside_one(tmp_path):
    # Initial weights listed down a column, and a legend naming the weights: neither is a table.
    wb = openpyxl.Workbook()
    ws = wb.active
    for j, (name, value) in enumerate(zip(aw.WEIGHTS, aw.COURSE["weights"])):
        ws.cell(1 + j, 1, name), ws.cell(1 + j, 2, value)
    for j, name in enumerate(aw.WEIGHTS):
        ws.cell(1, 4 + j, name)  # the legend row: names, nothing under them
    aw.place(ws, aw.student_rows(0.5, 5), aw.SPEC, top=12, left=1)
    wb.save(tmp_path / "blocks.xlsx")
    row = only(fastbp.audit(tmp_path / "blocks.xlsx"))
    assert (row["header_cell"], row["verdict"], row["steps"]) == ("A12", "ok", 5)


def test_weights_numbered_by_input_first():
    # w2 = i1 → h2 and w3 = i2 → h1 (w6, w7 likewise): the same network, numbered the other way.
    swap = {"w2": "w3", "w3": "w2", "w6": "w7", "w7": "w6"}
    swap.update({f"dE_d{a}": f"dE_d{b}" for a, b in list(swap.items())})
    rows = [
        {swap.get(k, k): v for k, v in r.items()}
        for r in aw.student_rows(0.5, 15, slip="a_h1_for_a_h2", at=4)
    ]
    (outcome,) = audit_grid(rows)
    assert (outcome.slip, outcome.first.name, outcome.first.step) == ("a_h1_for_a_h2", "dE_dw3", 4)
    assert outcome.first.cell == aw.cell(aw.SPEC, "dE_dw2", 4)  # the student's ∂E/∂w2 column
    assert any("numbered by input first" in n for n in outcome.notes)
    (outcome,) = audit_grid(aw.student_rows(0.5, 15))
    assert outcome.verdict == "ok" and not outcome.notes  # the SPEC's numbering stays the first choice


def test_activation_written_as_o1(tmp_path):
    # "o1" holding σ(net) and no separate activation column: read as the activation.
    columns = [c for c in aw.SPEC if c not in ("o1", "o2", "h1", "h2")]
    headers = {"a_o1": "o1", "a_o2": "o2", "a_h1": "h1", "a_h2": "h2"}
    row = only(fastbp.audit(book(tmp_path, aw.student_rows(0.5, 8), columns, headers)))
    assert row["verdict"] == "ok", row
    assert "as a_o1" in row["notes"]


# --- biases ---------------------------------------------------------------------------------------


def test_walkthrough_biases_fixed(tmp_path):
    # The walk-through: shared b1 = 0.35, b2 = 0.6, never updated, targets 0.01, 0.99, lr 0.5.
    rows = aw.student_rows(0.5, 12, targets=(0.01, 0.99), biases=(0.35, 0.6))
    assert rows[0]["a_h1"] == pytest.approx(0.5932699921071872, rel=1e-14)  # the SPEC's figures
    assert rows[0]["E_total"] == pytest.approx(0.2983711087600027, rel=1e-14)
    columns = aw.SPEC[:8] + ["b1"] + aw.SPEC[8:16] + ["b2"] + aw.SPEC[16:]
    assert only(fastbp.audit(book(tmp_path, rows, columns)))["verdict"] == "ok"
    # Biases neither in the table nor labelled: inferred from h1 − w1·i1 − w2·i2, and said so.
    (outcome,) = audit_grid(rows)
    assert outcome.verdict == "ok" and any("b1 = 0.35, b2 = 0.6" in n for n in outcome.notes)


@pytest.mark.parametrize("biases", [(0.35, 0.6), {"b_h1": 0.1, "b_h2": -0.2, "b_o1": 0.3, "b_o2": 0.05}])
def test_trained_biases(biases):
    rows = aw.student_rows(1.0, 40, targets=(0.01, 0.99), biases=biases, trained=True)
    extra = ["b1", "b2", "dE_db1", "dE_db2"] if isinstance(biases, tuple) else list(biases)
    extra += [] if isinstance(biases, tuple) else ["dE_db_h1", "dE_db_h2", "dE_db_o1", "dE_db_o2"]
    (outcome,) = audit_grid(rows, aw.SPEC + extra)
    assert outcome.verdict == "ok" and rows[5][extra[0]] != rows[0][extra[0]]
    rows[7][extra[1]] += 1e-6  # an update of a bias gone wrong
    (outcome,) = audit_grid(rows, aw.SPEC + extra)
    assert (outcome.first.name, outcome.first.step) == (extra[1], 7)


# --- files that are not right, and the command line ---------------------------------------------


def test_lr_label_beside_the_header_new_weight_columns_and_a_last_row_of_weights(tmp_path):
    rows = aw.student_rows(0.5, 8)
    nexts = [f"{w}_next" for w in aw.WEIGHTS]
    for row in rows:
        row.update({f"{w}_next": row[w] - 0.5 * row["dE_d" + w] for w in aw.WEIGHTS})
    rows.append({w: rows[-1][f"{w}_next"] for w in aw.WEIGHTS})  # the final weights alone
    columns = aw.SPEC + nexts + ["gap", "lr", "rate"]
    rows[0].update(gap=None, rate=0.5)
    headers = {"gap": None, "rate": 0.5, **{n: f"new {n[:2]}" for n in nexts}}
    row = only(fastbp.audit(book(tmp_path, rows, columns, headers)))
    assert (row["verdict"], row["steps"], row["lr"]) == ("ok", 9, 0.5)
    assert row["lr_source"] == "cell AP1"  # the number beside the "lr" label (AO1), not a column
    rows[3]["w6_next"] += 1e-9
    row = only(fastbp.audit(book(tmp_path, rows, columns, headers, name="b.xlsx")))
    assert (row["column"], row["column_header"], row["step"]) == ("w6_next", "new w6", 3)


def test_lr_column_that_changes(tmp_path):
    rows = aw.student_rows(0.5, 12, slip="lr_changes", at=6, lr2=0.6)
    for k, row in enumerate(rows):
        row["lr"] = 0.5 if k < 5 else 0.6  # used for the update to the next row
    row = only(fastbp.audit(book(tmp_path, rows, ["lr"] + aw.SPEC, {"lr": "η"})))
    # The rate column is wrong from step 5 on (7 cells); the updates follow it, so they are right.
    assert (row["slip"], row["first_wrong_cell"], row["wrong_cells"]) == ("lr_changes", "Sheet1!A7", 7)


def test_semicolon_csv_with_decimal_commas(tmp_path):
    rows = aw.student_rows(0.5, 6)
    text = (
        ";".join(aw.SPEC)
        + "\n"
        + "".join(";".join(repr(r[c]).replace(".", ",") for c in aw.SPEC) + "\n" for r in rows)
    )
    (tmp_path / "export.csv").write_text(text)
    row = only(fastbp.audit(tmp_path / "export.csv"))
    assert (row["verdict"], row["steps"], row["lr"]) == ("ok", 6, 0.5)


def test_formulas_without_cached_values(tmp_path):
    # openpyxl writes formulas without their results: exactly such a file.
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(aw.SPEC)
    rows = aw.student_rows(0.5, 3)
    ws.append([rows[0][c] for c in aw.SPEC])
    ws.append(["=A2"] * 4 + [f"={c}2-0.5*X2" for c in "EFGH"] + ["=E3*C3+F3*D3"] * 23)
    wb.save(tmp_path / "formulas.xlsx")
    row = only(fastbp.audit(tmp_path / "formulas.xlsx"))
    assert row["verdict"] == "unreadable"
    assert "no saved value" in row["message"] and "save it" in row["message"]


def test_not_a_workbook(tmp_path):
    (tmp_path / "essay.xlsx").write_text("not a zip file")
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    assert only(fastbp.audit(tmp_path / "essay.xlsx"))["verdict"] == "unreadable"
    assert ".xlsx" in only(fastbp.audit(tmp_path / "old.xls"))["message"]
    empty = openpyxl.Workbook()
    empty.active["A1"] = "my answers"
    empty.save(tmp_path / "empty.xlsx")
    assert "no step table" in only(fastbp.audit(tmp_path / "empty.xlsx"))["message"]


def test_csv_file(tmp_path):
    rows = aw.student_rows(0.5, 10, slip="missing_half", at=4)
    with open(tmp_path / "t.csv", "w") as handle:
        handle.write(",".join(aw.SPEC) + "\n")
        handle.writelines(",".join(repr(r[c]) for c in aw.SPEC) + "\n" for r in rows)
    row = only(fastbp.audit(tmp_path / "t.csv"))
    assert (row["sheet"], row["slip"], row["first_wrong_cell"]) == ("t", "missing_half", "t!U6")


def test_audit_before_and_after_importing_the_package(tmp_path):
    path = book(tmp_path, aw.student_rows(0.5, 4))
    code = (
        "import fastbp, sys\n"
        f"a = fastbp.audit({str(path)!r})\n"
        "import fastbp.workbook_audit.cli\n"
        f"b = fastbp.audit({str(path)!r})\n"
        "assert a == b and a[0]['verdict'] == 'ok', (a, b)\n"
        "assert 'numba' not in sys.modules, 'the audit must not load numba'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def run_cli(*args):
    from fastbp.cli import main

    return main(["audit", *map(str, args)])


def test_cli_formats_and_exit_codes(tmp_path, capsys):
    good = book(tmp_path, aw.student_rows(0.5, 6), name="good.xlsx")
    bad = book(tmp_path, aw.student_rows(0.5, 6, slip="a_h1_for_a_h2"), name="bad.xlsx")
    (tmp_path / "junk.xlsx").write_text("junk")
    assert run_cli(good) == 0
    out = capsys.readouterr().out
    assert "ok: all" in out
    assert run_cli(good, bad) == 1
    out = capsys.readouterr().out
    assert "WRONG: first wrong cell Sheet1!Z2: dE_dw3, step 0" in out and "slip: a_h1_for_a_h2" in out
    assert run_cli(tmp_path, "--format", "json") == 2  # the junk file: unreadable, the others still checked
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert [(os.path.basename(r["workbook"]), r["verdict"]) for r in rows] == [
        ("bad.xlsx", "wrong"),
        ("good.xlsx", "ok"),
        ("junk.xlsx", "unreadable"),
    ]
    assert captured.err.count("\n") == 1 and "junk.xlsx" in captured.err and "Traceback" not in captured.err
    out = tmp_path / "grades.csv"
    assert run_cli(good, bad, "--format", "csv", "--out", out) == 1
    lines = out.read_text().splitlines()
    assert lines[0].startswith(
        "workbook,sheet,header_cell,steps,lr,verdict,first_wrong_cell,column,step,expected,found,slip"
    )
    assert len(lines) == 3 and ",a_h1_for_a_h2," in lines[2]
    assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]
    assert run_cli(good, "--format", "markdown") == 0
    assert capsys.readouterr().out.startswith("| workbook | sheet |")


def test_cli_bad_usage(tmp_path, capsys):
    good = book(tmp_path, aw.student_rows(0.5, 3))
    for args, field in [
        ((good, "--format", "xls"), "--format"),
        ((good, "--rtol", "0"), "--rtol"),
        ((good, "--rtol", "abc"), "--rtol"),
        ((tmp_path / "nothing*.xlsx",), "BOOK"),
        ((good, "--out", tmp_path / "no" / "such.csv"), "--out"),
    ]:
        assert run_cli(*args) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and field in err, err


def test_rtol_option_changes_what_passes(tmp_path):
    rows = aw.student_rows(0.5, 10, digits=8)  # rounded to 8 digits: wrong at the default
    path = book(tmp_path, rows)
    assert only(fastbp.audit(path))["verdict"] == "wrong"
    assert only(fastbp.audit(path, rtol=1e-7))["verdict"] == "ok"
    assert math.isclose(only(fastbp.audit(path, rtol=1e-7))["rtol"], 1e-7)


def test_lean_reader_cell_forms():
    # The forms a sheet's XML takes from different writers: prefixes, no r attributes, inline and
    # shared strings, formula text, errors, booleans, and formulas saved without a value.
    from fastbp.workbook_audit.xlsx import _cells

    xml = (
        b'<x:worksheet xmlns:x="main"><x:sheetData>'
        b'<x:row r="1"><x:c r="A1" t="s"><x:v>0</x:v></x:c><x:c r="C1" t="inlineStr"><x:is><x:t>w&amp;1</x:t>'
        b"</x:is></x:c></x:row>"
        b'<x:row r="3"><x:c><x:v>0.15</x:v></x:c><x:c t="str"><x:f>A1</x:f><x:v>ok</x:v></x:c>'
        b'<x:c t="e"><x:v>#VALUE!</x:v></x:c><x:c t="b"><x:v>1</x:v></x:c><x:c><x:f>A3*2</x:f><x:v/></x:c>'
        b'<x:c t="str"><x:f>""</x:f><x:v></x:v></x:c></x:row>'
        b"</x:sheetData></x:worksheet>"
    )
    sheet = _cells(xml, ["E_total"], Sheet("S", []))
    assert sheet.grid == [["E_total", None, "w&1"], [], [0.15, "ok", "#VALUE!", True, None, ""]]
    assert sheet.uncached == {(2, 4)}
    xml = b'<worksheet><sheetData><row r="2"><c r="B2" s="3"><v>1E-3</v></c><c r="C2" s="1"/></row></sheetData></worksheet>'
    sheet = _cells(xml, [], Sheet("S", []))
    assert (sheet.grid, sheet.uncached) == ([[], [None, 0.001]], set())


def test_sheet_names_with_spaces_and_several_sheets(tmp_path):
    wb = openpyxl.Workbook()
    wb.active.title = "Notes"
    wb.active["A1"] = "my answers are on the next sheets"
    ws = wb.create_sheet("lr 0.5")
    aw.place(ws, aw.student_rows(0.5, 6, slip="wrong_sign", at=2), aw.SPEC)
    ws = wb.create_sheet("lr=2")
    aw.place(ws, aw.student_rows(2.0, 6), aw.SPEC)
    wb.save(tmp_path / "sheets.xlsx")
    rows = fastbp.audit(tmp_path / "sheets.xlsx")
    assert [(r["sheet"], r["verdict"], r["lr_source"]) for r in rows] == [
        ("lr 0.5", "wrong", "the sheet's name 'lr 0.5'"),
        ("lr=2", "ok", "the sheet's name 'lr=2'"),
    ]
    assert rows[0]["first_wrong_cell"] == "'lr 0.5'!E4"


def test_a_whole_submission(tmp_path):
    # What a student hands in: a read-me sheet, one sheet per rate with the constants in labelled
    # cells (biases too), a step column, the final weights alone in the last row, a loss chart.
    from openpyxl.chart import LineChart, Reference

    wb = openpyxl.Workbook()
    wb.active.title = "Read me"
    wb.active["A1"] = "Backprop exercise"
    columns = ["step"] + [c for c in aw.SPEC if c not in ("t1", "t2", "i1", "i2")]
    for lr, slip in ((0.5, None), (2.0, "missing_half")):
        ws = wb.create_sheet(f"lr {lr:g}")
        constants = [("i1", 0.05), ("i2", 0.1), ("target o1", 0.01), ("target o2", 0.99)]
        for r, (label, value) in enumerate(constants + [("b1", 0.35), ("b2", 0.6), ("η", lr)], 1):
            ws.cell(r, 1, label), ws.cell(r, 2, value)
        rows = aw.student_rows(lr, 30, targets=(0.01, 0.99), biases=(0.35, 0.6), slip=slip, at=10)
        for k, row in enumerate(rows):
            row["step"] = k
        rows.append({"step": 30, **{w: rows[-1][w] - lr * rows[-1]["dE_d" + w] for w in aw.WEIGHTS}})
        aw.place(ws, rows, columns, aw.STUDENT_HEADERS, top=10, left=3)
        chart = LineChart()
        j = 3 + columns.index("E_total")
        chart.add_data(Reference(ws, min_col=j, min_row=10, max_row=40), titles_from_data=True)
        ws.add_chart(chart, "AH2")
    wb.save(tmp_path / "submission.xlsx")
    first, second = fastbp.audit(tmp_path / "submission.xlsx")
    assert (first["sheet"], first["verdict"], first["steps"], first["lr_source"]) == (
        "lr 0.5",
        "ok",
        31,
        "cell B7",
    )
    assert "b1 = 0.35 (B5)" in first["notes"]
    assert (second["verdict"], second["slip"], second["step"]) == ("wrong", "missing_half", 10)
    assert second["first_wrong_cell"] == "'lr 2'!" + aw.cell(columns, "E1", 10, 10, 3)

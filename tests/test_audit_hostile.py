"""fastbp audit on files a hostile student would hand in (issue 25): each one costs what the budgets say.

The files are made here: zip bombs by size and by ratio, entity expansion, external entities,
unclosed elements, cells far away, a sideways table stretched over thousands of columns, a FIFO,
a socket, a link to a device, symlink loops, encrypted, truncated and renamed archives. All of
them sit in one folder beside a correct workbook; ``fastbp audit`` runs once over it in a
subprocess under a memory limit (``resource.setrlimit``), and each file must come out as one
line naming it and the reason, the correct workbook still `ok`, within the time and memory
budgets. On the code before the budgets this run never ends (the FIFO, the unclosed elements).
"""

import os
import socket
import subprocess
import sys
import time
import zipfile

import pytest

pytest.importorskip("openpyxl")

import audit_workbooks as aw  # noqa: E402

import fastbp  # noqa: E402

pytestmark = pytest.mark.slow

MEMORY_CAP = 3_000_000_000  # address space of the whole run: the interpreter, openpyxl and each worker
RSS_BUDGET_KB = 500_000 + 150_000  # 500 MB per file, plus the interpreter itself


def _member_of_spaces(path, megabytes):
    """A workbook whose sheet inflates to ``megabytes`` MB of blanks (about 1000 times its size)."""
    members = _members(aw.raw_book(path, [("Sheet1", b"")]))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            if not name.endswith("sheet1.xml"):
                archive.writestr(name, data)
                continue
            with archive.open(name, "w", force_zip64=True) as sheet:
                sheet.write(b"<worksheet><sheetData>")
                for _ in range(megabytes):
                    sheet.write(b" " * 1_000_000)
                sheet.write(b"</sheetData></worksheet>")


def _members(path):
    with zipfile.ZipFile(path) as archive:
        return [(name, archive.read(name)) for name in archive.namelist()]


def _good(path, steps=8):
    return aw.raw_book(path, [("Sheet1", aw.sheet_xml(aw.table_grid(aw.student_rows(0.5, steps))))])


LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (k, (b"&lol%d;" % (k - 1) if k > 1 else b"&lol;") * 10)
        for k in range(1, 10)
    )
    + b']><sst xmlns="x"><si><t>&lol9;</t></si></sst>'
)
EXTERNAL = (
    b'<?xml version="1.0"?><!DOCTYPE w [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
    b'<worksheet><sheetData><c r="A1" t="inlineStr"><is><t>&e;</t></is></c></sheetData></worksheet>'
)


def build_folder(folder):
    """The hostile folder; returns {file name: words its line must hold}."""
    folder.mkdir()
    expect = {}
    _good(folder / "a_good.xlsx")
    _member_of_spaces(folder / "bomb_size.xlsx", 80)
    expect["bomb_size.xlsx"] = "inflates to more than 50 MB"
    _member_of_spaces(folder / "bomb_ratio.xlsx", 20)
    expect["bomb_ratio.xlsx"] = "times its compressed size"
    aw.raw_book(folder / "laughs.xlsx", [("Sheet1", aw.sheet_xml([["w1"]]))], shared=LAUGHS)
    expect["laughs.xlsx"] = "declares a DOCTYPE"
    aw.raw_book(folder / "external.xlsx", [("Sheet1", EXTERNAL)])
    expect["external.xlsx"] = "declares a DOCTYPE"
    cells = b"".join(b'<c r="A%d"><v>%d</v>' % (k, k * 7919) for k in range(1, 60_001))
    unclosed = b"<worksheet><sheetData>" + cells + b"</sheetData></worksheet>"
    aw.raw_book(folder / "unclosed.xlsx", [("Sheet1", unclosed)])
    expect["unclosed.xlsx"] = "never closed"
    far = b"".join(b'<c r="ZZZ%d"><v>1</v></c>' % r for r in range(1, 20_001))
    aw.raw_book(folder / "far_columns.xlsx", [("Sheet1", aw.sheet_xml([], before=far))])
    expect["far_columns.xlsx"] = "20,000 cells of sheet 'Sheet1' past row 5,000 or column 256 not read"
    # One step per column, stretched over 5,000 columns: what fits in 256 columns is read and checked.
    rows = aw.student_rows(0.5, 5_000)
    sideways = aw.sheet_xml(aw.table_grid(rows), transposed=True)
    aw.raw_book(folder / "sideways_giant.xlsx", [("Sheet1", sideways)])
    expect["sideways_giant.xlsx"] = "255 steps checked; the table goes on past column 256"
    os.mkfifo(folder / "fifo.xlsx")
    expect["fifo.xlsx"] = "a FIFO (named pipe), not a regular file"
    os.symlink("/dev/zero", folder / "device.xlsx")
    expect["device.xlsx"] = "a link leaving the folder (to /dev/zero)"
    os.symlink("loop.xlsx", folder / "loop.xlsx")
    expect["loop.xlsx"] = "a link that cannot be followed"
    os.symlink(".", folder / "again")
    expect["again"] = "a link to a folder already walked"
    aw.raw_book(folder / "encrypted.xlsx", [("Sheet1", aw.sheet_xml([["w1"]]))], encrypted=True)
    expect["encrypted.xlsx"] = "sheet1.xml is encrypted (a password-protected archive)"
    whole = (folder / "a_good.xlsx").read_bytes()
    (folder / "truncated.xlsx").write_bytes(whole[: len(whole) // 2])
    expect["truncated.xlsx"] = "truncated zip archive"
    (folder / "renamed.xlsx").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 4000)
    expect["renamed.xlsx"] = "old-style workbook"
    long_text = b'<sst xmlns="x"><si><t>' + b"x" * 40_000 + b"</t></si></sst>"
    aw.raw_book(folder / "long_text.xlsx", [("Sheet1", aw.sheet_xml([["w1"]]))], shared=long_text)
    expect["long_text.xlsx"] = "a text of 40,000 characters (budget string: 32,767)"
    return expect


RUN = """
import resource, subprocess, sys, time
resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
start = time.monotonic()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=240)
sys.stdout.write(done.stdout)
sys.stderr.write(done.stderr)
print(f"RUN {{done.returncode}} {{time.monotonic() - start:.2f}} "
      f"{{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}}", file=sys.stderr)
"""


def run_capped(*args, timeout=300):
    """``fastbp audit ARGS`` under the memory cap: (exit code, stdout, stderr lines, seconds, max RSS kB)."""
    command = [sys.executable, "-c", RUN.format(cap=MEMORY_CAP), sys.executable, "-m", "fastbp", "audit"]
    done = subprocess.run(command + [str(a) for a in args], capture_output=True, text=True, timeout=timeout)
    lines = done.stderr.splitlines()
    _, code, seconds, rss = lines[-1].split()
    return int(code), done.stdout, lines[:-1], float(seconds), int(rss)


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile") / "submissions"
    expect = build_folder(folder)
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(folder / "socket.xlsx"))
    expect["socket.xlsx"] = "a socket, not a regular file"
    try:
        code, out, err, seconds, rss = run_capped(
            folder, "--format", "csv", "--out", folder.parent / "grades.csv"
        )
    finally:
        server.close()
    return expect, code, (folder.parent / "grades.csv").read_text(), err, seconds, rss


def test_every_hostile_file_is_one_line_naming_it_and_why(hostile_run):
    expect, code, _, err, _, _ = hostile_run
    assert code == 2, err
    assert len(err) == len(expect), "\n".join(err)
    for name, words in expect.items():
        mine = [line for line in err if f"/{name}: " in line]
        assert len(mine) == 1 and words in mine[0], (name, words, mine)
        assert mine[0].startswith("fastbp audit: ") and "Traceback" not in mine[0]


def test_the_good_workbook_beside_them_is_still_audited(hostile_run):
    _, _, grades, _, _, _ = hostile_run
    good = [line for line in grades.splitlines() if "a_good.xlsx" in line]
    assert len(good) == 1 and ",ok," in good[0], good


def test_the_stretched_sideways_table_is_checked_as_far_as_it_is_read(hostile_run):
    _, _, grades, _, _, _ = hostile_run
    (line,) = [line for line in grades.splitlines() if "sideways_giant.xlsx" in line]
    assert ",255,0.5,incomplete," in line, line


def test_time_and_memory_within_the_budgets(hostile_run):
    # 17 files: each at most its 5 s timeout, in practice a fraction of a second; 500 MB per file.
    _, _, _, err, seconds, rss = hostile_run
    assert seconds < 60, seconds
    assert rss < RSS_BUDGET_KB, rss


def test_a_slow_file_is_stopped_at_its_timeout_and_the_run_goes_on(tmp_path):
    (tmp_path / "books").mkdir()
    _good(tmp_path / "books" / "a_small.xlsx")
    _good(tmp_path / "books" / "b_long.xlsx", steps=8_000)  # seconds to read and check: far past 0.5 s
    start = time.monotonic()
    code, out, err, _, _ = run_capped(tmp_path / "books", "--timeout", "0.5", "--format", "csv")
    assert time.monotonic() - start < 30
    assert code == 2
    assert err == [
        f"fastbp audit: {tmp_path / 'books' / 'b_long.xlsx'}: took longer than 0.5 s (budget timeout): not audited"
    ]
    assert ",ok," in [line for line in out.splitlines() if "a_small.xlsx" in line][0]


def test_a_device_named_on_the_command_line_is_not_read(tmp_path):
    (row,) = fastbp.audit("/dev/zero")
    assert (
        row["verdict"] == "unreadable" and row["message"] == "a character device, not a regular file: skipped"
    )


def test_a_file_over_a_memory_budget_is_unreadable_and_named(tmp_path):
    # 46 MB of shared strings (under the 50 MB of a part): the part, once in chunks and once whole,
    # and its 400,000 strings need well over 100 MB. (In a fresh process: a test process's freed
    # heap would be reused by its child without growing the address space the budget caps.)
    shared = b"<sst>" + b"".join(b"<si><t>%0100d</t></si>" % k for k in range(400_000)) + b"</sst>"
    path = aw.raw_book(tmp_path / "strings.xlsx", [("Sheet1", aw.sheet_xml([["w1"]]))], shared=shared)
    code, _, err, _, rss = run_capped(path, "--limit", "memory_mb=60", "--timeout", "60", "--format", "json")
    assert code == 2 and err == [f"fastbp audit: {path}: needed more than 60 MB of memory (budget memory_mb)"]
    code, _, err, _, rss = run_capped(path, "--timeout", "60", "--format", "json")
    assert code == 2 and err[0].endswith(
        "no step table found (a header row naming at least 4 of the weights w1 … w8)"
    )
    assert rss > 100_000  # it did need more than 60 MB (a fresh audit alone is ~50 MB), within 500 MB

"""`fastbp table` (fastbp.cli.main) against fastbp.step_table and the issue's contract:

    fastbp table --lr 2.0 --steps 88 [--inputs I1 I2] [--targets T1 T2] [--weights W1 ... W8]
                 [--format csv|markdown|parquet] [--out FILE]

Exit code 0 on success; 2 for usage errors / bad input, with ONE line on stderr (no
traceback) naming the option and the offending value.
"""

import csv
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from hostile import communicate_or_show, one_line, run_capped, start_capped
from reference import COLUMNS, COURSE_INPUTS, COURSE_TARGETS, COURSE_WEIGHTS

import fastbp  # noqa: E402
import fastbp.cli as cli  # noqa: E402

# A non-default scenario, to show the options reach the computation.
INPUTS = ("0.3", "-0.7")
TARGETS = ("0.2", "0.9")
WEIGHTS = ("0.1", "-0.2", "0.3", "-0.4", "0.5", "-0.6", "0.7", "-0.8")
SCENARIO_ARGS = ["--inputs", *INPUTS, "--targets", *TARGETS, "--weights", *WEIGHTS]


def run(argv):
    """fastbp.cli.main(argv) -> exit code (accepting SystemExit(code) as well)."""
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:  # argparse style
        code = exc.code
    return 0 if code is None else code


def expected_table(lr, steps, inputs=COURSE_INPUTS, targets=COURSE_TARGETS, weights=COURSE_WEIGHTS):
    return fastbp.step_table(
        lr=lr,
        steps=steps,
        inputs=tuple(map(float, inputs)),
        targets=tuple(map(float, targets)),
        weights=tuple(map(float, weights)),
    )


def parse_csv(text):
    rows = list(csv.reader(io.StringIO(text)))
    rows = [r for r in rows if r]  # tolerate a trailing blank line
    return rows[0], rows[1:]


def assert_csv_equals_table(text, table):
    header, data = parse_csv(text)
    assert header == list(COLUMNS)
    assert len(data) == table.num_rows
    for name_index, name in enumerate(COLUMNS):
        want = table.column(name).to_pylist()
        got = [float(row[name_index]) for row in data]
        # full float64 precision: the text parses back to the very same double
        mismatches = [(k, g, w) for k, (g, w) in enumerate(zip(got, want)) if g != w]
        assert not mismatches, f"{name}: rows (k, csv, table) {mismatches[:5]}"


# --------------------------------------------------------------------------------------------
# CSV


def test_csv_to_stdout_is_the_default_and_round_trips_exactly(capsys):
    code = run(["table", "--lr", "2.0", "--steps", "88"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert_csv_equals_table(out, expected_table(2.0, 88))


def test_csv_with_all_options_round_trips_exactly(capsys):
    code = run(["table", "--lr", "0.7", "--steps", "25", *SCENARIO_ARGS, "--format", "csv"])
    out, err = capsys.readouterr()
    assert code == 0, err
    table = expected_table(0.7, 25, INPUTS, TARGETS, WEIGHTS)
    assert_csv_equals_table(out, table)
    # and the options really took effect (not the course values)
    header, data = parse_csv(out)
    assert float(data[0][COLUMNS.index("i2")]) == -0.7
    assert float(data[0][COLUMNS.index("t2")]) == 0.9
    assert float(data[0][COLUMNS.index("w8")]) == -0.8


def test_csv_to_file(tmp_path, capsys):
    out_file = tmp_path / "table.csv"
    code = run(["table", "--lr", "1.5", "--steps", "12", *SCENARIO_ARGS, "--out", str(out_file)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out_file.exists()
    assert_csv_equals_table(out_file.read_text(), expected_table(1.5, 12, INPUTS, TARGETS, WEIGHTS))
    assert ",".join(COLUMNS) not in out  # the table went to the file, not to stdout


# --------------------------------------------------------------------------------------------
# Parquet


def test_parquet_to_file_equals_step_table(tmp_path, capsys):
    out_file = tmp_path / "table.parquet"
    code = run(
        [
            "table",
            "--lr",
            "2.0",
            "--steps",
            "88",
            *SCENARIO_ARGS,
            "--format",
            "parquet",
            "--out",
            str(out_file),
        ]
    )
    _, err = capsys.readouterr()
    assert code == 0, err
    got = pq.read_table(out_file)
    want = expected_table(2.0, 88, INPUTS, TARGETS, WEIGHTS)
    assert got.column_names == list(COLUMNS)
    assert got.num_rows == 88
    for name in COLUMNS:
        assert str(got.schema.field(name).type) == "double", name
        np.testing.assert_array_equal(got.column(name).to_numpy(), want.column(name).to_numpy(), err_msg=name)


# --------------------------------------------------------------------------------------------
# Markdown


def markdown_rows(text):
    lines = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("|")]
    return [[cell.strip() for cell in ln.strip("|").split("|")] for ln in lines]


def test_markdown_header_is_the_spec_columns(capsys):
    """docs/model.md "The step table": "31 columns, in this order ... In files and on the command line the names are ..."."""
    code = run(["table", "--lr", "2.0", "--steps", "3", "--format", "markdown"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert markdown_rows(out)[0] == list(COLUMNS)


@pytest.mark.parametrize("steps", [1, 9])
def test_markdown_rows(steps, capsys):
    code = run(["table", "--lr", "2.0", "--steps", str(steps), "--format", "markdown"])
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = markdown_rows(out)
    header = rows[0]
    # every column name, in the table's order (exactness of the header is the test above)
    assert [h for h in header if h in COLUMNS] == list(COLUMNS)
    # separator row: dashes (optionally with alignment colons)
    assert len(rows[1]) == len(header)
    assert all(set(c) <= set("-: ") and "-" in c for c in rows[1])
    data = rows[2:]
    assert len(data) == steps
    want = expected_table(2.0, steps)
    for k, row in enumerate(data):
        assert len(row) == len(header)
        for name in ("E_total", "w1", "w5", "dE_dw3"):
            value = float(row[header.index(name)])
            # the rows are the steps in order (E_total falls ~11% per step at lr 2); markdown
            # is for reading, so only a few significant digits are asked of it
            assert value == pytest.approx(want.column(name)[k].as_py(), rel=1e-4), (name, k)


# --------------------------------------------------------------------------------------------
# Refusals

BASE = ["table", "--lr", "1.0", "--steps", "3"]

REFUSALS = [
    # (argv, fragments the single stderr line must contain, case-insensitive)
    (["table", "--lr", "nan", "--steps", "3"], ["--lr", "nan"]),
    (["table", "--lr", "inf", "--steps", "3"], ["--lr", "inf"]),
    (["table", "--lr", "abc", "--steps", "3"], ["--lr", "abc"]),
    (["table", "--lr", "1.0", "--steps", "-1"], ["--steps", "-1"]),
    (BASE + ["--weights", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7"], ["--weights", "8", "0.7"]),
    (BASE + ["--inputs", "0.05"], ["--inputs", "2", "0.05"]),
    (["table", "--lr", "1.0", "--targets", "0.1", "0.2", "0.3", "--steps", "3"], ["--targets", "2", "0.3"]),
    (BASE + ["--format", "xml"], ["--format", "xml"]),
    # beyond the list, same contract: bad numbers anywhere are refused
    (["table", "--lr", "1.0", "--steps", "2.5"], ["--steps", "2.5"]),
    (["table", "--lr", "1.0", "--steps", "abc"], ["--steps", "abc"]),
    (BASE + ["--inputs", "inf", "0.1"], ["--inputs", "inf"]),
    (BASE + ["--targets", "0.1", "nan"], ["--targets", "nan"]),
    (BASE + ["--weights", "0.1", "0.2", "0.3", "nan", "0.5", "0.6", "0.7", "0.8"], ["--weights", "nan"]),
    (["table", "--steps", "3"], ["--lr"]),
    # what the sweep refuses, the table refuses (issue 25): a rate of 0 or below, or one that
    # float32 rounds to 0
    (["table", "--lr", "0", "--steps", "3"], ["--lr", "0.0", "> 0"]),
    (["table", "--lr", "-0.5", "--steps", "3"], ["--lr", "-0.5", "> 0"]),
    (["table", "--lr-hidden", "0", "--lr-output", "1", "--steps", "3"], ["--lr-hidden", "> 0"]),
    (["table", "--lr-hidden", "1", "--lr-output", "-1", "--steps", "3"], ["--lr-output", "> 0"]),
    (BASE[:2] + ["1e-50", "--steps", "3", "--dtype", "float32"], ["--lr", "1e-50", "float32"]),
]


def assert_refused(argv, fragments, capsys):
    code = run(argv)
    out, err = capsys.readouterr()
    assert code == 2, f"exit code {code} for {argv}; stderr: {err!r}"
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"stderr should be one line, got {len(lines)}: {err!r}"
    for fragment in fragments:
        assert fragment.lower() in lines[0].lower(), f"{fragment!r} not in {lines[0]!r}"
    assert out == "", f"refused command wrote to stdout: {out[:200]!r}"


@pytest.mark.parametrize("argv,fragments", REFUSALS, ids=[" ".join(a[1:]) for a, _ in REFUSALS])
def test_refusals(argv, fragments, capsys):
    assert_refused(argv, fragments, capsys)


@pytest.mark.parametrize("argv,fragments", REFUSALS, ids=[" ".join(a[1:]) for a, _ in REFUSALS])
def test_refusal_with_out_leaves_no_file(argv, fragments, tmp_path, capsys):
    out_file = tmp_path / "table.csv"
    assert_refused(argv + ["--out", str(out_file)], fragments, capsys)
    assert list(tmp_path.iterdir()) == []


def test_out_in_nonexistent_directory_is_refused(tmp_path, capsys):
    target = tmp_path / "no_such_dir" / "table.csv"
    # the message must name the option and the missing directory (the full --out value may be
    # shortened for display)
    assert_refused(BASE + ["--out", str(target)], ["--out", str(target.parent)], capsys)
    assert not target.parent.exists(), "the missing directory was created"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_out_to_a_directory_is_refused(fmt, tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("x")
    assert_refused(BASE + ["--format", fmt, "--out", str(tmp_path)], ["--out", str(tmp_path)], capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
    assert (tmp_path / "keep.txt").read_text() == "x"


# --------------------------------------------------------------------------------------------
# The installed console command


def test_console_script(tmp_path):
    exe = Path(sys.executable).parent / "fastbp"
    if not exe.exists():
        pytest.skip(f"console script not installed at {exe}")
    proc = subprocess.run(
        [str(exe), "table", "--lr", "1", "--steps", "3"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.returncode == 0, proc.stderr
    header, data = parse_csv(proc.stdout)
    assert header == list(COLUMNS)
    assert len(data) == 3
    assert_csv_equals_table(proc.stdout, expected_table(1.0, 3))


def test_console_script_refusal_exit_code(tmp_path):
    exe = Path(sys.executable).parent / "fastbp"
    if not exe.exists():
        pytest.skip(f"console script not installed at {exe}")
    proc = subprocess.run(
        [str(exe), "table", "--lr", "nan", "--steps", "3"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "--lr" in proc.stderr


# --------------------------------------------------------------------------------------------
# Issue 25 and 26: the table accepts what the sweep accepts, in bounded memory, and leaves no
# temporary file when it is stopped. Subprocesses under a memory cap (tests/hostile.py): the old
# table ran "--steps 99999999999999999999" until killed, and held a Parquet table whole.


@pytest.mark.slow
@pytest.mark.parametrize("steps", ["99999999999999999999", "2147483648"])
def test_steps_past_the_sweeps_limit_are_refused(steps, tmp_path):
    proc = run_capped(["table", "--lr", "1", "--steps", steps, "--out", tmp_path / "t.csv"], timeout=60)
    assert proc.returncode == 2, proc.stderr
    line = one_line(proc.stderr)
    assert "--steps" in line and steps in line and "from 0 to 2147483647" in line, line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_long_parquet_table_is_written_in_row_groups_within_the_memory_cap(tmp_path):
    """3,000,000 rows: 710 MiB as one array (the old table, then MemoryError under the cap)."""
    out = tmp_path / "long.parquet"
    steps = 3_000_000
    proc = run_capped(["table", "--lr", "2", "--steps", steps, "--format", "parquet", "--out", out])
    assert proc.returncode == 0, proc.stderr
    parquet = pq.ParquetFile(out)
    assert parquet.metadata.num_rows == steps and parquet.metadata.num_row_groups > 1
    first = parquet.read_row_group(0).slice(0, 200)
    want = expected_table(2.0, 200)
    for name in COLUMNS:
        np.testing.assert_array_equal(
            first.column(name).to_numpy(), want.column(name).to_numpy(), err_msg=name
        )
    assert [p.name for p in tmp_path.iterdir()] == ["long.parquet"]


@pytest.mark.slow
# Each signal and each format once (how the command stops and how a format writes are apart).
@pytest.mark.parametrize(
    ("fmt", "signal_", "code"), [("csv", signal.SIGTERM, 143), ("parquet", signal.SIGINT, 130)]
)
def test_a_stopped_table_leaves_no_temporary_file(fmt, signal_, code, tmp_path):
    out = tmp_path / f"out.{fmt}"
    proc = start_capped(["table", "--lr", "1", "--steps", "2000000000", "--format", fmt, "--out", out])
    try:
        deadline = time.monotonic() + 120
        while not any(p.stat().st_size > 0 for p in tmp_path.iterdir()):  # writing its first rows
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.05)
        proc.send_signal(signal_)
        err = communicate_or_show(proc, 60)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    assert "the table is incomplete" in one_line(err)
    assert list(tmp_path.iterdir()) == []

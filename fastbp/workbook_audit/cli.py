"""``fastbp audit BOOK.xlsx …``: the argument parsing and output of the audit command.

Exit codes: 0 every table found is right; 1 some table is wrong; 2 bad usage, or a file that could
not be audited, was skipped, or holds a table longer than the rows read (named on stderr in one
line each; every other file is still checked and reported).
"""

import os
import sys

from fastbp.errors import SpecError


def add_parser(commands):
    """Register ``audit`` on the ``fastbp`` command's subparsers."""
    audit = commands.add_parser(
        "audit",
        help="check a student's workbook cell by cell and name the slip",
        description=(
            "Find every step table in the workbooks (by their header rows), replay each row in float64 "
            "from the sheet's own numbers, and report the first wrong cell and the slip that explains it."
        ),
    )
    audit.add_argument(
        "paths", nargs="+", metavar="BOOK", help=".xlsx/.xlsm/.csv files, directories or glob patterns"
    )
    audit.add_argument("--format", default="text", help="text (default), csv, markdown or json")
    audit.add_argument("--out", help="write the report to this file (default: standard output)")
    audit.add_argument(
        "--rtol",
        default=None,
        help="relative precision assumed of every number in the sheet (default 1e-12; see docs/audit.md)",
    )
    audit.add_argument(
        "--timeout",
        default=None,
        metavar="SECONDS",
        help="wall-clock time allowed per file (default 5); past it the file is unreadable",
    )
    audit.add_argument(
        "--max-rows",
        default=None,
        metavar="N",
        help="sheet rows read (default 5000); a table running past them is incomplete, not ok",
    )
    audit.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="raise (or lower) one budget: rows, columns, cells, sheets, string, member_mb, ratio, "
        "members, timeout, memory_mb (docs/audit.md)",
    )
    audit.set_defaults(run=run)  # fastbp.cli.main dispatches with args.run(args)
    return audit


def run(args):
    from fastbp.workbook_audit.api import audit, check_rtol, expand
    from fastbp.workbook_audit.check import DEFAULT_RTOL
    from fastbp.workbook_audit.inert import inert
    from fastbp.workbook_audit.limits import parse_option
    from fastbp.workbook_audit.report import FORMATS, render

    if args.format not in FORMATS:
        raise SpecError("--format", args.format, "one of " + ", ".join(FORMATS))
    rtol = check_rtol(DEFAULT_RTOL if args.rtol is None else args.rtol, "--rtol")
    limits = parse_option(args.limit, timeout=args.timeout, max_rows=args.max_rows)
    if args.out is not None:
        _check_out(args.out)
    files = expand(args.paths)
    if not files:
        raise SpecError(
            "BOOK", " ".join(args.paths), "workbook files (.xlsx, .xlsm, .csv) or folders holding them"
        )
    rows = audit(files, rtol=rtol, limits=limits)
    text = render(rows, args.format)
    if args.out is None:
        sys.stdout.write(text)
    else:
        _write_atomically(args.out, text)
    unreadable = [row for row in rows if row["verdict"] in ("unreadable", "incomplete")]
    if args.out is not None or args.format != "text":
        for row in unreadable:  # the text report already says so, on the same screen
            print(f"fastbp audit: {inert(row['workbook'])}: {inert(row['message'])}", file=sys.stderr)
    if unreadable:
        return 2
    return 1 if any(row["verdict"] == "wrong" for row in rows) else 0


def _check_out(path):
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise SpecError("--out", path, "a file path (this is a directory)")
    if not os.path.isdir(directory):
        raise SpecError("--out", path, f"a file in an existing directory ({directory} does not exist)")


def _write_atomically(path, text):
    # A report is replaced whole or not at all: a grading script never reads half a file.
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)

"""One result row per implementation and workload, and the table that prints them."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field, fields


@dataclass
class Row:
    workload: str
    name: str
    dtype: str = ""
    threads: str = ""
    runs: int = 0  # timed runs
    steps: int = 0  # timed steps
    seconds: float = float("nan")
    rate: float = float("nan")  # run-steps per second
    extrapolated: bool = False
    baseline: str = ""  # "c" or "fastbp" when this row is a baseline
    check: str = ""  # validator verdict
    max_rel_err: float = float("nan")
    note: str = ""
    skipped: str = ""  # reason, when the row did not run
    extra: dict = field(default_factory=dict)


def fmt_rate(rate: float) -> str:
    """Run-steps per second in millions, with 3-4 significant digits."""
    if not math.isfinite(rate):
        return "-"
    m = rate / 1e6
    return f"{m:,.1f}" if m >= 10 else (f"{m:.2f}" if m >= 0.1 else f"{m:.4f}")


def fmt_ratio(x: float) -> str:
    if not math.isfinite(x):
        return "-"
    return f"{x:.2f}" if x >= 0.01 else f"{x:.1e}"


HEAD = [
    "implementation",
    "dtype",
    "thr",
    "timed runs x steps",
    "s",
    "M run-steps/s",
    "x C",
    "x fastbp",
    "max rel err",
    "check / note",
]
_RIGHT = {4, 5, 6, 7, 8}  # numeric columns


def _cells(r: Row, c_rate: dict, f_rate: dict) -> list[str]:
    if r.skipped:
        return [r.name, r.dtype, r.threads, "", "", "", "", "", "", f"SKIPPED: {r.skipped}"]
    rc = r.rate / c_rate[r.dtype] if r.dtype in c_rate else float("nan")
    rf = r.rate / f_rate[r.dtype] if r.dtype in f_rate else float("nan")
    return [
        r.name,
        r.dtype,
        r.threads,
        f"{r.runs:,} x {r.steps:,}",
        f"{r.seconds:.3f}",
        fmt_rate(r.rate) + ("*" if r.extrapolated else ""),
        fmt_ratio(rc),
        fmt_ratio(rf),
        f"{r.max_rel_err:.1e}" if math.isfinite(r.max_rel_err) else "-",
        "; ".join(x for x in (r.check, r.note) if x),
    ]


def print_table(title: str, rows: list[Row], out=sys.stdout):
    """Rows with their throughput relative to the C loop's and fastbp's kernel's (same dtype)."""
    c_rate = {r.dtype: r.rate for r in rows if r.baseline == "c" and not r.skipped}
    f_rate = {r.dtype: r.rate for r in rows if r.baseline == "fastbp" and not r.skipped}
    lines = [_cells(r, c_rate, f_rate) for r in rows]
    widths = [max(len(h), *(len(l[i]) for l in lines)) if lines else len(h) for i, h in enumerate(HEAD)]
    widths[-1] = len(HEAD[-1])  # the last column runs on: no padding

    def fmt(cells):
        return "  ".join(
            c.rjust(w) if i in _RIGHT else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    print(f"\n== {title}", file=out)
    print(fmt(HEAD), file=out)
    print(fmt(["-" * w for w in widths]), file=out)
    for l in lines:
        print(fmt(l), file=out)
    if any(r.extrapolated for r in rows if not r.skipped):
        print("  * timed on a subset of runs/steps (see 'timed'), run-steps/s extrapolated", file=out)
    out.flush()


def rows_json(rows: list[Row]) -> list[dict]:
    """The rows as JSON-ready dicts (NaN as None, `extra` left out)."""
    out = []
    for r in rows:
        d = {f.name: getattr(r, f.name) for f in fields(Row) if f.name != "extra"}
        out.append({k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()})
    return out

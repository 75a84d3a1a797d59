"""Workloads W2 (every step recorded to Parquet vs final only), W3 (scaling in runs and threads) and
``table`` (the step-table command's wall time)."""

from __future__ import annotations

import shutil

import numpy as np

from benchkit.command import CommandRunner, dir_bytes, spec_toml
from benchkit.problem import Sizes, make_problem
from benchkit.report import Row
from benchkit.timing import time_kernel
from benchkit.validate import dataset_check


def bench_table(args, runner: CommandRunner) -> list[Row]:
    row = Row("table", "fastbp table --lr 1 --steps 10", "float64", str(args.threads))
    try:
        argv = ["table", "--lr", "1", "--steps", "10"]
        runner.run(argv)  # warm
        walls = [runner.run(argv)[0] for _ in range(max(1, args.repeat))]
        row.seconds = min(walls)
        row.runs, row.steps = 1, 10
        row.note = f"wall time, warm cache (best of {len(walls)}: {', '.join(f'{w:.2f}' for w in walls)} s)"
    except Exception as exc:  # noqa: BLE001
        row.skipped = f"{exc.__class__.__name__}: {exc}"
    return [row]


def bench_w2(args, sizes: Sizes, runner: CommandRunner | None) -> list[Row]:
    runs, steps = sizes.w2_lrs * sizes.w2_inits, sizes.w2_steps
    print(
        f"\n[W2] {runs:,} runs x {steps:,} steps, float64: every step recorded to Parquet vs final only",
        flush=True,
    )
    rows = []
    prob = make_problem(n_lr=sizes.w2_lrs, n_init=sizes.w2_inits, steps=steps)
    for rec in (1, 0):
        row = Row(
            "W2",
            f"fastbp kernel record_every={rec}",
            "float64",
            str(args.threads),
            baseline="fastbp" if rec == 0 else "",
        )
        try:
            res, secs, n = time_kernel(prob, args.threads, args.repeat, record_every=rec)
            row.runs, row.steps, row.seconds, row.rate = runs, steps, secs, runs * steps / secs
            row.threads = str(n)
            row.note = f"in-memory loss array {np.asarray(res.loss).nbytes / 1e6:.0f} MB"
        except Exception as exc:  # noqa: BLE001
            row.skipped = f"{exc.__class__.__name__}: {exc}"
        rows.append(row)
    if runner is None:
        return rows
    for rec in (1, 0):
        row = Row("W2", f"fastbp sweep record_every={rec}", "float64", str(args.threads))
        try:
            toml = spec_toml(steps, sizes.w2_lrs, sizes.w2_inits, "float64", rec)
            wall, out = runner.sweep(toml, f"w2_rec{rec}", repeat=args.repeat)
            row.runs, row.steps, row.seconds = runs, steps, wall
            row.rate = runs * steps / wall
            nbytes = dir_bytes(out)
            row.note = f"wall, warm cache, best of {args.repeat}; Parquet dataset {nbytes / 1e6:.1f} MB"
            if rec:
                row.note += f", {runs * (steps // rec + 1) / wall / 1e6:.1f} M loss values/s"
            dataset_check(row, out, "float64", sizes.validate_runs, steps)
            shutil.rmtree(out, ignore_errors=True)
        except Exception as exc:  # noqa: BLE001
            row.skipped = f"{exc.__class__.__name__}: {exc}"
        rows.append(row)
    return rows


def bench_w3(args, sizes: Sizes, runner: CommandRunner | None) -> list[Row]:
    steps = sizes.w3_steps
    max_runs = args.w3_max_runs if args.w3_max_runs is not None else sizes.w3_max_runs
    run_sizes = [n for n in sizes.w3_sizes if n <= max_runs]
    print(
        f"\n[W3] scaling: {', '.join(f'{n:,}' for n in run_sizes)} runs x {steps:,} steps, "
        f"float64 (--w3-max-runs {max_runs:,})",
        flush=True,
    )
    rows = []
    n_lr = 10
    thread_counts = sorted({1, args.threads})
    warmed: set = set()
    for n in run_sizes:
        count = max(1, n // n_lr)
        prob = make_problem(n_lr=n_lr, n_init=count, steps=steps)
        for thr in thread_counts:
            row = Row("W3", f"kernel {prob.runs:>10,} runs", "float64", str(thr))
            try:
                _, secs, used = time_kernel(prob, thr, args.repeat if n <= 100_000 else 1)
                row.threads = str(used)
                row.runs, row.steps, row.seconds = prob.runs, steps, secs
                row.rate = prob.run_steps / secs
            except Exception as exc:  # noqa: BLE001
                row.skipped = f"{exc.__class__.__name__}: {exc}"
            rows.append(row)
        if runner is None:
            continue
        for rec in (0, 100):
            row = Row("W3", f"sweep  {prob.runs:>10,} runs rec={rec}", "float64", str(args.threads))
            try:
                toml = spec_toml(steps, n_lr, count, "float64", rec)
                if rec not in warmed:  # warm the Numba cache once per setting (smallest size)
                    runner.sweep(toml, f"w3_warm{rec}", warm=False)
                    warmed.add(rec)
                wall, out = runner.sweep(toml, f"w3_{n}_rec{rec}", warm=False)
                row.runs, row.steps, row.seconds = prob.runs, steps, wall
                row.rate = prob.run_steps / wall
                row.note = f"wall, warm cache; {dir_bytes(out) / 1e6:.1f} MB out"
                shutil.rmtree(out, ignore_errors=True)
            except Exception as exc:  # noqa: BLE001
                row.skipped = f"{exc.__class__.__name__}: {exc}"
            rows.append(row)
    return rows


def w3_summary(rows: list[Row]) -> None:
    """Kernel thread scaling per size: rate at the most threads / rate at 1 thread."""
    by: dict = {}
    for r in rows:
        if r.workload == "W3" and r.name.startswith("kernel") and not r.skipped:
            by.setdefault(r.runs, {})[r.threads] = r.rate
    for runs, d in by.items():
        if "1" in d and len(d) > 1:
            other = max(d, key=int)
            print(f"  kernel {runs:>10,} runs: {other} threads / 1 thread = {d[other] / d['1']:.2f}x")

"""Workloads W1 and W1-f32: fastbp's kernel and whole command beside every peer, on one problem."""

from __future__ import annotations

import os
import shutil
import traceback

import numpy as np
from peers import PeerUnavailable

from benchkit.command import CommandRunner, dir_bytes, spec_toml
from benchkit.problem import Problem, Sizes, make_problem
from benchkit.report import Row
from benchkit.timing import best_of, budget_timing, time_kernel, train_kernel
from benchkit.validate import LOSS_FLOOR, TOLERANCE, References, compare, dataset_check


def peer_row(
    workload: str,
    name: str,
    dtype: str,
    fn,
    full: Problem,
    valid: Problem,
    ref,
    *,
    repeat: int,
    threads: str,
    timing: Problem | None = None,
    budget: tuple | None = None,
    note: str = "",
    baseline: str = "",
) -> Row:
    """Time `fn(timing)` (best of `repeat`), validate `fn(valid)` against `ref`.

    With `budget` = (seconds, calib_steps) and no `timing`, the timed problem is
    `budget_timing(fn, full, ...)`: all runs, as many steps as fit in the budget.
    """
    row = Row(workload, name, dtype, threads, baseline=baseline)
    try:
        if timing is None:
            timing = budget_timing(fn, full, *budget)
        res = best_of(lambda: fn(timing), repeat)
        row.runs, row.steps, row.seconds = res.runs, res.steps, res.seconds
        row.rate = res.run_steps_per_s
        row.extrapolated = res.run_steps < full.run_steps
        vres = fn(valid) if valid is not timing else res
        v = compare(vres.final_loss, ref[0], valid.dtype, ref[1])
        row.max_rel_err = v.max_rel_err
        row.check = f"{'ok' if v.ok else 'FAIL'} vs {ref[1]} on {v.total} runs"
        row.note = note
        row.extra["result"] = res
    except PeerUnavailable as exc:
        row.skipped = str(exc)
    except Exception as exc:  # noqa: BLE001 - a row fails, the bench goes on
        row.skipped = f"{exc.__class__.__name__}: {exc}"
        if os.environ.get("BENCH_DEBUG"):
            traceback.print_exc()
    return row


def w1_problem(sizes: Sizes, dtype) -> Problem:
    return make_problem(n_lr=sizes.w1_lrs, n_init=sizes.w1_inits, steps=sizes.w1_steps, dtype=dtype)


def _kernel_row(wl, dtype, prob, valid, refs, threads, repeat) -> tuple[Row, np.ndarray | None]:
    """fastbp's kernel in-process, warm; also its final losses on every run, for the C loop."""
    row = Row(wl, "fastbp kernel (in-process)", dtype, str(threads), baseline="fastbp")
    try:
        res, secs, n = time_kernel(prob, threads, repeat)
        row.threads = str(n)
        row.runs, row.steps, row.seconds = prob.runs, prob.steps, secs
        row.rate = prob.run_steps / secs
        # the kernel is the reference for float64: check it against NumPy float64 instead
        vref = refs.get((wl, "valid"), valid, prefer_fastbp=(dtype != "float64"))
        v = compare(train_kernel(valid).final_loss, vref[0], prob.dtype, vref[1])
        row.max_rel_err = v.max_rel_err
        row.check = f"{'ok' if v.ok else 'FAIL'} vs {vref[1]} on {v.total} runs"
        row.note = "numba warm"
        return row, np.asarray(res.final_loss)
    except Exception as exc:  # noqa: BLE001
        row.skipped = f"{exc.__class__.__name__}: {exc}"
        return row, None


def _command_row(wl, dtype, prob, sizes, runner, repeat, threads) -> Row:
    row = Row(wl, "fastbp sweep (whole command)", dtype, str(threads))
    try:
        toml = spec_toml(prob.steps, sizes.w1_lrs, sizes.w1_inits, dtype, 0)
        wall, out = runner.sweep(toml, f"w1_{dtype}", repeat=repeat)
        row.runs, row.steps, row.seconds = prob.runs, prob.steps, wall
        row.rate = prob.run_steps / wall
        row.note = (
            f"wall time incl. start-up, warm cache, best of {repeat}; {dir_bytes(out) / 1e6:.1f} MB out"
        )
        dataset_check(row, out, dtype, sizes.validate_runs, prob.steps)
        shutil.rmtree(out, ignore_errors=True)
    except Exception as exc:  # noqa: BLE001
        row.skipped = f"{exc.__class__.__name__}: {exc}"
    return row


def _c_rows(wl, dtype, prob, valid, ref, threads, repeat, kernel_full) -> list[Row]:
    from peers import c_peer

    c_rows = [
        peer_row(
            wl,
            "C loop",
            dtype,
            lambda p: c_peer.run(p, threads),
            prob,
            valid,
            ref,
            repeat=repeat,
            threads=str(threads),
            timing=prob,
            baseline="c",
        )
    ]
    if threads != 1:
        c_rows.append(
            peer_row(
                wl,
                "C loop (1 thread)",
                dtype,
                lambda p: c_peer.run(p, 1),
                prob,
                valid,
                ref,
                repeat=repeat,
                threads="1",
                timing=prob,
            )
        )
    try:
        want = "expf" if dtype == "float32" else "exp"
        used = sorted(s for s in c_peer.build().vector_exp_symbols() if s.endswith("_" + want))
        c_rows[0].note = f"libmvec: {', '.join(used) or 'NONE (scalar exp)'}"
    except Exception:  # noqa: BLE001 - the note is optional, the row stands without it
        pass
    # cross-check the full timed outputs against the kernel's, when both ran
    if kernel_full is not None and "result" in c_rows[0].extra:
        v = compare(
            c_rows[0].extra["result"].final_loss, kernel_full.astype(np.float64), dtype, "fastbp kernel"
        )
        c_rows[0].note += f"; all {v.total:,} runs vs fastbp kernel: {v.max_rel_err:.1e}"
    return c_rows


def bench_w1(args, sizes: Sizes, dtype: str, refs: References, runner: CommandRunner | None) -> list[Row]:
    wl = "W1" if dtype == "float64" else "W1-f32"
    dt = np.dtype(dtype)
    T = args.threads
    prob = w1_problem(sizes, dt)
    valid = prob.subset(runs=min(prob.runs, sizes.validate_runs))
    ref = refs.get((wl, "valid"), valid)
    print(
        f"\n[{wl}] {prob.runs:,} runs ({sizes.w1_lrs} lrs x {sizes.w1_inits} inits) x "
        f"{prob.steps:,} steps, {dtype}; validator: final losses on {valid.runs} evenly "
        f"spaced runs vs {ref[1]} (tolerance: max |E - E_ref| / max(E_ref, "
        f"{LOSS_FLOOR[dt]:.0e}) <= {TOLERANCE[dt]:.0e})",
        flush=True,
    )
    budget = (args.budget, sizes.calib_steps)
    slow = dict(repeat=min(args.repeat, 2), budget=budget)  # peers timed on a step budget

    row, kernel_full = _kernel_row(wl, dtype, prob, valid, refs, T, args.repeat)
    rows = [row]
    if runner is not None:
        rows.append(_command_row(wl, dtype, prob, sizes, runner, args.repeat, T))

    if "c" in args.peers:
        rows += _c_rows(wl, dtype, prob, valid, ref, T, args.repeat, kernel_full)
    if "numpy" in args.peers:
        from peers import numpy_batch

        rows.append(
            peer_row(
                wl,
                "NumPy (vectorised over runs)",
                dtype,
                numpy_batch.run,
                prob,
                valid,
                ref,
                threads="1",
                **slow,
            )
        )
    if "python" in args.peers:
        from peers import python_loop

        sub = valid.subset(runs=min(valid.runs, sizes.python_runs)).astype(np.float64)
        rows.append(
            peer_row(
                wl,
                "Python loop (math.exp)",
                "float64",
                python_loop.run,
                prob,
                sub,
                refs.get((wl, "python"), sub),
                repeat=1,
                threads="1",
                timing=sub,
                note="always float64" if dtype != "float64" else "",
            )
        )
    if "jax" in args.peers:
        from peers import jax_peer

        rows.append(
            peer_row(
                wl,
                "JAX (jit+vmap+scan)",
                dtype,
                jax_peer.run,
                prob,
                valid,
                ref,
                threads="XLA",
                note="compile excluded",
                **slow,
            )
        )
    if "torch" in args.peers:
        from peers import torch_peer

        rows.append(
            peer_row(
                wl,
                "PyTorch (manual backward)",
                dtype,
                lambda p: torch_peer.run(p, T),
                prob,
                valid,
                ref,
                threads=str(T),
                **slow,
            )
        )
        vsub = valid.subset(runs=min(valid.runs, 256))
        rows.append(
            peer_row(
                wl,
                "PyTorch (autograd)",
                dtype,
                lambda p: torch_peer.run_autograd(p, T),
                prob,
                vsub,
                refs.get((wl, "torch-ag"), vsub),
                repeat=1,
                threads=str(T),
                budget=budget,
            )
        )
    return rows

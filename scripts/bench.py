#!/usr/bin/env python
"""fastbp benchmark: one problem, interchangeable implementations, one validator, one baseline.

The problem is the SPEC's 2-2-2 sigmoid network trained by plain gradient descent, R
independent runs (own initial weights, own learning rate) x N steps.  Implementations:
fastbp's kernel in-process (`fastbp.kernels.train`, warm), the whole `fastbp sweep`
command as a subprocess (warm Numba cache), and the peers in scripts/peers/ (C loop,
NumPy, plain Python, JAX, PyTorch).  Every implementation's final losses are checked by
one validator against a float64 reference (fastbp's kernel when it runs, else NumPy
float64); JIT compilation and start-up are kept out of every in-process timing.  The
baselines are the C loop (`-O3 -march=native -ffast-math -fopenmp`, libmvec exp) and
fastbp's kernel: every row shows its throughput relative to both.

Throughput is run-steps per second: runs x steps / seconds.  Slow peers (NumPy, Python,
JAX, PyTorch) may be timed on a subset of runs or steps and extrapolated; the table says so.

Workloads:
  W1      131,072 runs (64 lrs logspace(-2, 1) x 2,048 uniform(-1, 1) inits) x 5,000 steps,
          float64, record_every = 0
  W1-f32  the same in float32
  W2      8,192 runs x 2,000 steps, record_every = 1 to Parquet vs record_every = 0 (whole command)
  W3      scaling: 1,000 .. --w3-max-runs runs x 1,000 steps, record_every 0 and 100 (whole
          command), kernel 1 thread vs --threads
  table   `fastbp table --lr 1 --steps 10` wall time, warm cache (run with W1)

Usage:
  python scripts/bench.py --quick                       # smoke run, small sizes
  python scripts/bench.py --workload W1 --peers c,numpy
  python scripts/bench.py --workload all --json results/bench.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parent
for p in (str(SCRIPTS), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

import peers  # noqa: E402
from peers import PeerUnavailable, Problem, compare, make_problem  # noqa: E402

ALL_PEERS = ("numpy", "python", "c", "jax", "torch")


# --------------------------------------------------------------------------- sizes


@dataclass
class Sizes:
    w1_lrs: int = 64
    w1_inits: int = 2048
    w1_steps: int = 5000
    w2_lrs: int = 64
    w2_inits: int = 128
    w2_steps: int = 2000
    w3_steps: int = 1000
    w3_sizes: tuple = (1_000, 10_000, 100_000, 1_000_000, 10_000_000)
    w3_max_runs: int = 1_000_000
    validate_runs: int = 1024  # evenly spaced runs of the workload, full steps
    python_runs: int = 64  # python peer: this many runs (timed and validated)
    # slow peers (NumPy, JAX, PyTorch): timed on all runs, steps chosen from a short
    # calibration run so that one timed call takes about --budget seconds (never more
    # than the workload's steps, never fewer than calib_steps), then extrapolated
    calib_steps: int = 10


def quick_sizes() -> Sizes:
    return Sizes(
        w1_lrs=8,
        w1_inits=128,
        w1_steps=500,
        w2_lrs=8,
        w2_inits=64,
        w2_steps=200,
        w3_steps=200,
        w3_sizes=(1_000, 10_000),
        w3_max_runs=10_000,
        validate_runs=256,
        python_runs=16,
        calib_steps=5,
    )


# --------------------------------------------------------------------------- rows / table


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
    if not math.isfinite(rate):
        return "-"
    m = rate / 1e6
    return f"{m:,.1f}" if m >= 10 else (f"{m:.2f}" if m >= 0.1 else f"{m:.4f}")


def fmt_ratio(x: float) -> str:
    if not math.isfinite(x):
        return "-"
    return f"{x:.2f}" if x >= 0.01 else f"{x:.1e}"


def print_table(title: str, rows: list[Row], out=sys.stdout):
    c_rate = {r.dtype: r.rate for r in rows if r.baseline == "c" and not r.skipped}
    f_rate = {r.dtype: r.rate for r in rows if r.baseline == "fastbp" and not r.skipped}
    head = [
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
    lines = []
    for r in rows:
        if r.skipped:
            lines.append([r.name, r.dtype, r.threads, "", "", "", "", "", "", f"SKIPPED: {r.skipped}"])
            continue
        timed = f"{r.runs:,} x {r.steps:,}"
        rate = fmt_rate(r.rate) + ("*" if r.extrapolated else "")
        rc = r.rate / c_rate[r.dtype] if r.dtype in c_rate else float("nan")
        rf = r.rate / f_rate[r.dtype] if r.dtype in f_rate else float("nan")
        err = f"{r.max_rel_err:.1e}" if math.isfinite(r.max_rel_err) else "-"
        note = "; ".join(x for x in (r.check, r.note) if x)
        lines.append(
            [
                r.name,
                r.dtype,
                r.threads,
                timed,
                f"{r.seconds:.3f}",
                rate,
                fmt_ratio(rc),
                fmt_ratio(rf),
                err,
                note,
            ]
        )
    widths = [max(len(h), *(len(l[i]) for l in lines)) if lines else len(h) for i, h in enumerate(head)]
    widths[-1] = len(head[-1])
    right = {4, 5, 6, 7, 8}

    def fmt(cells):
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    print(f"\n== {title}", file=out)
    print(fmt(head), file=out)
    print(fmt(["-" * w for w in widths]), file=out)
    for l in lines:
        print(fmt(l), file=out)
    if any(r.extrapolated for r in rows if not r.skipped):
        print("  * timed on a subset of runs/steps (see 'timed'), run-steps/s extrapolated", file=out)
    out.flush()


# --------------------------------------------------------------------------- environment


def cpu_model() -> str:
    model, flags = "?", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, val = line.partition(":")
            key = key.strip()
            if key == "model name" and model == "?":
                model = val.strip()
            elif key == "flags" and not flags:
                flags = set(val.split())
    except OSError:
        pass
    simd = [f for f in ("avx512f", "avx2", "fma") if f in flags]
    return f"{model} ({', '.join(simd) or 'no avx'})"


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def load_note() -> str:
    try:
        l1, l5, _ = os.getloadavg()
    except OSError:
        return "?"
    note = f"load average {l1:.2f} (1 min), {l5:.2f} (5 min)"
    if l1 > 0.3 * available_cores():
        note += " -- other work is running: timings will be noisy"
    return note


def header(args) -> None:
    import numba

    print("fastbp benchmark")
    print(f"  cpu      : {cpu_model()}, {available_cores()} cores available")
    print(f"  python   : {platform.python_version()}  numpy {np.__version__}  numba {numba.__version__}")
    try:
        import fastbp

        ver = getattr(fastbp, "__version__", "?")
        print(f"  fastbp   : {ver} ({Path(fastbp.__file__).parent})")
    except Exception as exc:  # noqa: BLE001
        print(f"  fastbp   : not importable ({exc.__class__.__name__}: {exc})")
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc:
        v = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout
        print(f"  C        : {v.splitlines()[0] if v else cc}")
    print(
        f"  threads  : {args.threads} (--threads; fastbp kernel, C loop, torch, the command's "
        f"NUMBA_NUM_THREADS)"
    )
    print(
        f"  peers    : {', '.join(args.peers) or 'none'}; repeats: best of {args.repeat}"
        f"{'; QUICK sizes' if args.quick else ''}"
    )
    print(f"  load     : {load_note()}")
    for var in ("OPENBLAS_CORETYPE", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(var):
            print(f"  env      : {var}={os.environ[var]}")
    sys.stdout.flush()


# --------------------------------------------------------------------------- fastbp parts


def fastbp_kernel():
    from fastbp.kernels import train  # noqa: WPS433

    return train


def set_numba_threads(n: int) -> int:
    import numba

    n = max(1, min(int(n), numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(n)
    return n


def time_kernel(problem: Problem, threads: int, repeat: int, record_every: int = 0):
    """Warm fastbp.kernels.train (compile on a tiny problem), then best of `repeat`."""
    train = fastbp_kernel()
    n = set_numba_threads(threads)
    tiny = problem.subset(runs=min(problem.runs, 64), steps=min(problem.steps, 3))
    train(tiny.w_init, tiny.lr, tiny.inputs, tiny.targets, tiny.steps, record_every=record_every)
    best, res = float("inf"), None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        res = train(
            problem.w_init,
            problem.lr,
            problem.inputs,
            problem.targets,
            problem.steps,
            record_every=record_every,
        )
        best = min(best, time.perf_counter() - t0)
    return res, best, n


def fastbp_command() -> list[str]:
    exe = Path(sys.executable).with_name("fastbp")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "import sys; from fastbp.cli import main; sys.exit(main(sys.argv[1:]))"]


def spec_toml(
    steps: int, n_lr: int, count: int, dtype: str, record_every: int, seed: int = 0, lr_log10=(-2, 1)
) -> str:
    return (
        f"steps = {steps}\n"
        f"lr = {{logspace = [{lr_log10[0]}, {lr_log10[1]}], num = {n_lr}}}\n"
        f'dtype = "{dtype}"\n'
        f"seed = {seed}\n"
        f"record_every = {record_every}\n"
        "[[init]]\n"
        'kind = "uniform"\n'
        "low = -1.0\n"
        "high = 1.0\n"
        f"count = {count}\n"
    )


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


class CommandRunner:
    """Runs `fastbp ...` as a subprocess with NUMBA_NUM_THREADS = threads."""

    def __init__(self, threads: int, workdir: Path):
        self.cmd = fastbp_command()
        self.env = dict(os.environ, NUMBA_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
        self.workdir = workdir
        self._n = 0
        # the literal command `fastbp sweep SPEC --out DIR`; --threads added only when the
        # bench runs on fewer threads than the machine has (and the CLI knows the option)
        self.sweep_extra: list[str] = []
        if threads != available_cores():
            try:
                helptext = subprocess.run(
                    self.cmd + ["sweep", "--help"], capture_output=True, text=True, env=self.env, timeout=120
                ).stdout
            except Exception:  # noqa: BLE001
                helptext = ""
            if "--threads" in helptext:
                self.sweep_extra = ["--threads", str(threads)]

    def run(self, args: list[str], timeout: float = 3600) -> tuple[float, subprocess.CompletedProcess]:
        t0 = time.perf_counter()
        proc = subprocess.run(
            self.cmd + args,
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.workdir,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()
            raise RuntimeError(
                f"`fastbp {' '.join(args[:1])}` exit {proc.returncode}: "
                f"{tail[-1][:160] if tail else 'no output'}"
            )
        return wall, proc

    def fresh(self, stem: str) -> Path:
        self._n += 1
        return self.workdir / f"{stem}_{self._n}"

    def sweep(self, toml: str, stem: str, warm: bool = True, repeat: int = 1) -> tuple[float, Path]:
        """Best wall time of `repeat` runs of `fastbp sweep SPEC --out DIR` (after one warm-up
        run if `warm`), and the dataset of the best run."""
        spec = self.workdir / f"{stem}.toml"
        spec.write_text(toml)
        if warm:
            wdir = self.fresh(stem + "_warm")
            self.run(["sweep", str(spec), "--out", str(wdir), *self.sweep_extra])
            shutil.rmtree(wdir, ignore_errors=True)
        best: tuple[float, Path] | None = None
        for _ in range(max(1, repeat)):
            out = self.fresh(stem)
            wall, _ = self.run(["sweep", str(spec), "--out", str(out), *self.sweep_extra])
            if best is None or wall < best[0]:
                if best is not None:
                    shutil.rmtree(best[1], ignore_errors=True)
                best = (wall, out)
            else:
                shutil.rmtree(out, ignore_errors=True)
        return best


# --------------------------------------------------------------------------- helpers


def validate_dataset(out: Path, dtype: str, n_valid: int, steps: int, inputs=None, targets=None):
    """Check a sweep dataset's final losses on `n_valid` evenly spaced runs against NumPy
    float64 trained from the dataset's own initial weights and learning rates."""
    import pyarrow.parquet as pq

    cols = ["run", "lr", *(f"w{k}_init" for k in range(1, 9)), "final_loss"]
    tab = pq.read_table(str(out), columns=cols)
    order = np.argsort(tab.column("run").to_numpy())
    n = len(order)
    pick = order[np.unique(np.linspace(0, n - 1, min(n, n_valid)).round().astype(np.int64))]
    w = np.stack([tab.column(f"w{k}_init").to_numpy()[pick] for k in range(1, 9)])
    lr = tab.column("lr").to_numpy()[pick]
    got = tab.column("final_loss").to_numpy()[pick]
    dt = np.dtype(dtype)
    prob = Problem(
        w.astype(dt), lr.astype(dt), inputs or peers.DEFAULT_INPUTS, targets or peers.DEFAULT_TARGETS, steps
    )
    ref, name = peers.reference(prob, prefer_fastbp=False)
    return compare(got, ref, dt, name)


def dataset_check(row: Row, out: Path, dtype: str, n_valid: int, steps: int) -> None:
    try:
        v = validate_dataset(out, dtype, n_valid, steps)
        row.max_rel_err = v.max_rel_err
        row.check = f"{'ok' if v.ok else 'FAIL'} vs {v.reference} on {v.total} runs of the dataset"
    except Exception as exc:  # noqa: BLE001
        row.check = f"dataset not checked ({exc.__class__.__name__}: {exc})"


class References:
    """Float64 final losses of validation problems, computed once each."""

    def __init__(self):
        self.cache: dict = {}
        self.names: set = set()

    def get(self, key, problem: Problem, prefer_fastbp: bool = True):
        k = (key, prefer_fastbp)
        if k not in self.cache:
            self.cache[k] = peers.reference(problem, prefer_fastbp=prefer_fastbp)
            self.names.add(self.cache[k][1])
        return self.cache[k]


def best_of(fn, repeat: int):
    best = None
    for _ in range(max(1, repeat)):
        res = fn()
        if best is None or res.seconds < best.seconds:
            best = res
    return best


def budget_timing(fn, prob: Problem, budget: float, calib_steps: int) -> Problem:
    """All runs of `prob`, with as many steps as fit in about `budget` seconds of `fn`."""
    calib = prob.subset(steps=min(prob.steps, calib_steps))
    res = fn(calib)
    steps = int(budget * res.run_steps_per_s / prob.runs)
    return prob.subset(steps=max(calib.steps, min(prob.steps, steps)))


def peer_row(
    workload: str,
    name: str,
    dtype: str,
    fn,
    timing: Problem | None,
    full: Problem,
    valid: Problem | None,
    ref,
    repeat: int,
    threads: str,
    note: str = "",
    baseline: str = "",
    valid_fn=None,
    budget: tuple | None = None,
) -> Row:
    """Time `fn(timing)` (best of `repeat`), validate `fn(valid)` against `ref`.

    With `budget` = (seconds, calib_steps) and timing None, the timed problem is
    `budget_timing(fn, full, ...)`.
    """
    row = Row(workload, name, dtype, threads, baseline=baseline)
    try:
        if timing is None:
            timing = budget_timing(fn, full, *budget)
        res = best_of(lambda: fn(timing), repeat)
        row.runs, row.steps, row.seconds = res.runs, res.steps, res.seconds
        row.rate = res.run_steps_per_s
        row.extrapolated = res.run_steps < full.run_steps
        if valid is not None:
            vres = (valid_fn or fn)(valid) if valid is not timing else res
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


# --------------------------------------------------------------------------- W1


def bench_w1(args, sizes: Sizes, dtype: str, refs: References, runner: CommandRunner | None):
    wl = "W1" if dtype == "float64" else "W1-f32"
    dt = np.dtype(dtype)
    T = args.threads
    prob = make_problem(n_lr=sizes.w1_lrs, n_init=sizes.w1_inits, steps=sizes.w1_steps, dtype=dt)
    valid = prob.subset(runs=min(prob.runs, sizes.validate_runs))
    ref = refs.get((wl, "valid"), valid)
    print(
        f"\n[{wl}] {prob.runs:,} runs ({sizes.w1_lrs} lrs x {sizes.w1_inits} inits) x "
        f"{prob.steps:,} steps, {dtype}; validator: final losses on {valid.runs} evenly "
        f"spaced runs vs {ref[1]} (tolerance: max |E - E_ref| / max(E_ref, "
        f"{peers.LOSS_FLOOR[dt]:.0e}) <= {peers.TOLERANCE[dt]:.0e})",
        flush=True,
    )
    rows: list[Row] = []
    budget = (args.budget, sizes.calib_steps)
    slow_repeat = min(args.repeat, 2)

    # fastbp kernel, in-process, warm
    row = Row(wl, "fastbp kernel (in-process)", dtype, str(T), baseline="fastbp")
    kernel_full = None
    try:
        res, secs, n = time_kernel(prob, T, args.repeat)
        kernel_full = np.asarray(res.final_loss)
        row.threads = str(n)
        row.runs, row.steps, row.seconds = prob.runs, prob.steps, secs
        row.rate = prob.run_steps / secs
        vres = fastbp_kernel()(valid.w_init, valid.lr, valid.inputs, valid.targets, valid.steps)
        # the kernel is the reference for float64: check it against NumPy float64 instead
        vref = refs.get((wl, "valid"), valid, prefer_fastbp=(dtype != "float64"))
        v = compare(vres.final_loss, vref[0], dt, vref[1])
        row.max_rel_err = v.max_rel_err
        row.check = f"{'ok' if v.ok else 'FAIL'} vs {vref[1]} on {v.total} runs"
        row.note = "numba warm"
    except Exception as exc:  # noqa: BLE001
        row.skipped = f"{exc.__class__.__name__}: {exc}"
    rows.append(row)

    # the whole command
    if runner is not None:
        row = Row(wl, "fastbp sweep (whole command)", dtype, str(T))
        try:
            toml = spec_toml(prob.steps, sizes.w1_lrs, sizes.w1_inits, dtype, 0)
            wall, out = runner.sweep(toml, f"w1_{dtype}", repeat=args.repeat)
            row.runs, row.steps, row.seconds = prob.runs, prob.steps, wall
            row.rate = prob.run_steps / wall
            row.note = (
                f"wall time incl. start-up, warm cache, best of {args.repeat}; "
                f"{dir_bytes(out) / 1e6:.1f} MB out"
            )
            dataset_check(row, out, dtype, sizes.validate_runs, prob.steps)
            shutil.rmtree(out, ignore_errors=True)
        except Exception as exc:  # noqa: BLE001
            row.skipped = f"{exc.__class__.__name__}: {exc}"
        rows.append(row)

    # peers
    if "c" in args.peers:
        from peers import c_peer

        c_rows = []
        for nthr, base in ((T, "c"), (1, "")):
            if nthr == 1 and T == 1 and c_rows:
                break
            c_rows.append(
                peer_row(
                    wl,
                    "C loop" + (" (1 thread)" if base == "" else ""),
                    dtype,
                    lambda p, n=nthr: c_peer.run(p, n),
                    prob,
                    prob,
                    valid,
                    ref,
                    args.repeat,
                    str(nthr),
                    baseline=base,
                )
            )
        try:
            lib = c_peer.build()
            syms = lib.vector_exp_symbols()
            want = "expf" if dtype == "float32" else "exp"
            used = sorted(s for s in syms if s.endswith("_" + want))
            c_rows[0].note = f"libmvec: {', '.join(used) or 'NONE (scalar exp)'}"
        except Exception:  # noqa: BLE001
            pass
        # cross-check the full timed outputs against the kernel's, when both ran
        if kernel_full is not None and "result" in c_rows[0].extra:
            v = compare(
                c_rows[0].extra["result"].final_loss, kernel_full.astype(np.float64), dt, "fastbp kernel"
            )
            c_rows[0].note += f"; all {v.total:,} runs vs fastbp kernel: {v.max_rel_err:.1e}"
        rows += c_rows

    if "numpy" in args.peers:
        from peers import numpy_batch

        rows.append(
            peer_row(
                wl,
                "NumPy (vectorised over runs)",
                dtype,
                numpy_batch.run,
                None,
                prob,
                valid,
                ref,
                slow_repeat,
                "1",
                budget=budget,
            )
        )

    if "python" in args.peers:
        from peers import python_loop

        sub = valid.subset(runs=min(valid.runs, sizes.python_runs))
        sub = sub.astype(np.float64)
        sref = refs.get((wl, "python"), sub)
        rows.append(
            peer_row(
                wl,
                "Python loop (math.exp)",
                "float64",
                python_loop.run,
                sub,
                prob,
                sub,
                sref,
                1,
                "1",
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
                None,
                prob,
                valid,
                ref,
                slow_repeat,
                "XLA",
                note="compile excluded",
                budget=budget,
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
                None,
                prob,
                valid,
                ref,
                slow_repeat,
                str(T),
                budget=budget,
            )
        )
        vsub = valid.subset(runs=min(valid.runs, 256))
        vref = refs.get((wl, "torch-ag"), vsub)
        rows.append(
            peer_row(
                wl,
                "PyTorch (autograd)",
                dtype,
                lambda p: torch_peer.run_autograd(p, T),
                None,
                prob,
                vsub,
                vref,
                1,
                str(T),
                budget=budget,
            )
        )

    return rows


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


# --------------------------------------------------------------------------- W2


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
    if runner is not None:
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


# --------------------------------------------------------------------------- W3


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


# --------------------------------------------------------------------------- main


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--workload",
        default="W1",
        choices=["W1", "W1-f32", "W2", "W3", "table", "all"],
        help="which workload (default W1; 'all' = W1, W1-f32, table, W2, W3)",
    )
    ap.add_argument("--runs", type=int, help="W1 runs (rounded down to a multiple of the lr count)")
    ap.add_argument("--steps", type=int, help="W1 steps")
    ap.add_argument(
        "--threads",
        type=int,
        default=available_cores(),
        help="threads for fastbp, the C loop and torch (default: all cores)",
    )
    ap.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    ap.add_argument(
        "--peers",
        default=",".join(ALL_PEERS),
        help=f"comma-separated subset of {','.join(ALL_PEERS)} ('' for none)",
    )
    ap.add_argument(
        "--repeat", type=int, default=None, help="timed repetitions, best taken (default 3, 1 with --quick)"
    )
    ap.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds per timed call of a slow peer (NumPy, JAX, PyTorch), which "
        "then runs fewer steps and is extrapolated (default 3, 0.3 with --quick)",
    )
    ap.add_argument(
        "--w3-max-runs",
        type=int,
        default=None,
        help="largest W3 size (default 1,000,000; 10,000,000 takes minutes)",
    )
    ap.add_argument("--no-command", action="store_true", help="skip the whole-command (subprocess) rows")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    args.peers = [p.strip().lower() for p in args.peers.split(",") if p.strip()]
    bad = [p for p in args.peers if p not in ALL_PEERS]
    if bad:
        ap.error(f"unknown peer(s) {bad}; choose from {ALL_PEERS}")
    if args.budget is None:
        args.budget = 0.3 if args.quick else 3.0
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    sizes = quick_sizes() if args.quick else Sizes()
    if args.runs:
        sizes.w1_inits = max(1, args.runs // sizes.w1_lrs)
    if args.steps:
        sizes.w1_steps = args.steps
    header(args)
    workloads = ["W1", "W1-f32", "table", "W2", "W3"] if args.workload == "all" else [args.workload]
    refs = References()
    tmp = Path(tempfile.mkdtemp(prefix="fastbp_bench_"))
    runner = None if args.no_command else CommandRunner(args.threads, tmp)
    all_rows: list[Row] = []
    try:
        for wl in workloads:
            if wl in ("W1", "W1-f32"):
                rows = bench_w1(args, sizes, "float64" if wl == "W1" else "float32", refs, runner)
            elif wl == "table":
                if runner is None:
                    continue
                rows = bench_table(args, runner)
            elif wl == "W2":
                rows = bench_w2(args, sizes, runner)
            else:
                rows = bench_w3(args, sizes, runner)
            print_table(wl, rows)
            if wl == "W3":
                w3_summary(rows)
            all_rows += rows
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if "c" in args.peers and any(r.name.startswith("C loop") and not r.skipped for r in all_rows):
        from peers import c_peer

        lib = c_peer.build()
        syms = lib.vector_exp_symbols()
        print(
            f"\nC loop: {' '.join(lib.cmd)}\n  build: {lib.build_info}; libmvec calls "
            f"(objdump -d): {', '.join(f'{k} x{v}' for k, v in sorted(syms.items())) or 'none'}"
            "\n  (_ZGVe* = AVX-512 zmm variants used in the main loop, _ZGVd* = AVX2 ymm "
            "variants in the vectorised remainder loop)"
        )
    print(f"\nload at the end: {load_note()}")
    failed = [r for r in all_rows if r.check.startswith("FAIL")]
    if failed:
        print(f"\nVALIDATION FAILED: {', '.join(f'{r.workload}/{r.name}' for r in failed)}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        out = []
        for r in all_rows:
            d = {f.name: getattr(r, f.name) for f in fields(Row) if f.name != "extra"}
            d = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}
            out.append(d)
        args.json.write_text(
            json.dumps(
                {"cpu": cpu_model(), "threads": args.threads, "quick": args.quick, "rows": out}, indent=1
            )
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

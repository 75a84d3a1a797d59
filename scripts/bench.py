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
  W4      the 10-5-10 encoder (issue 22): trained biases, batch updates, float64, 64 lrs
          logspace(-1, 1) x 1,024 uniform(-1, 1) starts x 500 steps, against NumPy (batched
          matmul), JAX vmap and torch.func where installed: scripts/peers_w4.py's table (run
          alone: --workload W4; --quick for 16 x 256 x 100)

With --against REV, W1 and W1-f32 also run as an A/B against git revision REV, both trees
side by side in this one run (see scripts/benchkit/against.py); with --peers none that A/B
is all that runs.

Usage:
  python scripts/bench.py --quick                       # smoke run, small sizes
  python scripts/bench.py --workload W1 --peers c,numpy
  python scripts/bench.py --workload all --json results/bench.json
  python scripts/bench.py --workload W1 --against HEAD~1 --peers none --alternate 5

The code is the package scripts/benchkit/ (this file is its command line) and scripts/peers/.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from benchkit.against import run_against
from benchkit.command import CommandRunner
from benchkit.machine import available_cores, cpu_model, header, load_note
from benchkit.problem import Sizes, quick_sizes
from benchkit.report import Row, print_table, rows_json
from benchkit.scaling import bench_table, bench_w2, bench_w3, w3_summary
from benchkit.validate import References
from benchkit.w1 import bench_w1

ALL_PEERS = ("numpy", "python", "c", "jax", "torch")
WORKLOADS = ("W1", "W1-f32", "table", "W2", "W3")
AB_WORKLOADS = ("W1", "W1-f32")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--workload",
        default="W1",
        choices=[*WORKLOADS, "W4", "all"],
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
        help=f"comma-separated subset of {','.join(ALL_PEERS)} ('none' or '' for none)",
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
    ap.add_argument(
        "--against",
        metavar="REV",
        help="also time W1 / W1-f32 (kernel and whole command) against git revision REV, side by side",
    )
    ap.add_argument(
        "--alternate",
        type=int,
        default=3,
        metavar="N",
        help="with --against: rounds alternating between the two trees (default 3)",
    )
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    args.peers = [p.strip().lower() for p in args.peers.split(",") if p.strip() and p.strip() != "none"]
    bad = [p for p in args.peers if p not in ALL_PEERS]
    if bad:
        ap.error(f"unknown peer(s) {bad}; choose from {ALL_PEERS}")
    if args.against is not None and args.workload not in (*AB_WORKLOADS, "all"):
        ap.error(f"--against times {' and '.join(AB_WORKLOADS)} only, not --workload {args.workload}")
    if args.alternate < 1:
        ap.error(f"--alternate must be >= 1, not {args.alternate}")
    if args.budget is None:
        args.budget = 0.3 if args.quick else 3.0
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    return args


def run_workload(wl: str, args, sizes, refs: References, runner: CommandRunner | None) -> list[Row]:
    if wl in ("W1", "W1-f32"):
        return bench_w1(args, sizes, "float64" if wl == "W1" else "float32", refs, runner)
    if wl == "table":
        return bench_table(args, runner) if runner is not None else []
    if wl == "W2":
        return bench_w2(args, sizes, runner)
    return bench_w3(args, sizes, runner)


def print_c_build() -> None:
    """How the C loop was built and which libmvec variants its code calls."""
    from peers import c_peer

    lib = c_peer.build()
    syms = lib.vector_exp_symbols()
    print(
        f"\nC loop: {' '.join(lib.cmd)}\n  build: {lib.build_info}; libmvec calls "
        f"(objdump -d): {', '.join(f'{k} x{v}' for k, v in sorted(syms.items())) or 'none'}"
        "\n  (_ZGVe* = AVX-512 zmm variants used in the main loop, _ZGVd* = AVX2 ymm "
        "variants in the vectorised remainder loop)"
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.workload == "W4":  # another network and other peers: peers_w4.py's own table
        import peers_w4

        size = [] if args.quick else ["--full"]
        peers = [p for p in args.peers if p in peers_w4.available_peers()]
        command = [*size, "--threads", str(args.threads), "--repeats", str(args.repeat)]
        return peers_w4.main([*command, "--peers", ",".join([*peers, "fastbp"])])
    sizes = quick_sizes() if args.quick else Sizes()
    if args.runs:
        sizes.w1_inits = max(1, args.runs // sizes.w1_lrs)
    if args.steps:
        sizes.w1_steps = args.steps
    header(args)
    workloads = list(WORKLOADS) if args.workload == "all" else [args.workload]
    # with --against and no peers, the A/B holds every fastbp figure the tables would
    tables = workloads if args.against is None or args.peers else []
    refs = References()
    tmp = Path(tempfile.mkdtemp(prefix="fastbp_bench_"))
    runner = None if args.no_command or not tables else CommandRunner(args.threads, tmp)
    all_rows: list[Row] = []
    ab, ab_ok = [], True
    try:
        for wl in tables:
            rows = run_workload(wl, args, sizes, refs, runner)
            if not rows:
                continue
            print_table(wl, rows)
            if wl == "W3":
                w3_summary(rows)
            all_rows += rows
        if args.against is not None:
            ab, ab_ok = run_against(args, sizes, [w for w in workloads if w in AB_WORKLOADS], tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if "c" in args.peers and any(r.name.startswith("C loop") and not r.skipped for r in all_rows):
        print_c_build()
    print(f"\nload at the end: {load_note()}")
    failed = [r for r in all_rows if r.check.startswith("FAIL")]
    if failed:
        print(f"\nVALIDATION FAILED: {', '.join(f'{r.workload}/{r.name}' for r in failed)}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "cpu": cpu_model(),
            "threads": args.threads,
            "quick": args.quick,
            "rows": rows_json(all_rows),
        }
        if args.against is not None:
            report["against"] = {"rev": args.against, "workloads": ab}
        args.json.write_text(json.dumps(report, indent=1))
    return 1 if failed or not ab_ok else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""What slicing the training kernel costs: this tree's ``kernels.train`` against another one.

``kernels.train`` returns to Python between slices of steps (prompt Ctrl-C, live progress).
This times it, warm and in-process, on a W1-shaped problem (benchkit's ``make_problem``:
64 lrs x 2,048 inits, float64, record_every 0) against either

  --against REV     the kernel of git revision REV (default HEAD), loaded from
                    ``git show REV:fastbp/kernels.py`` as a separate module, or
  --against slices  this tree's kernel forced into one slice of all steps (no carried
                    state): the slicing overhead alone.

The two are timed in alternating order, ``--rounds`` times, best of ``--repeat`` calls each;
every round's ratio (this tree / other) is printed, then their median and spread, and the ratio
of the best times over all rounds (interference only ever adds time). On a shared machine the
spread, not one figure, is the result. The results are also checked bit for bit.

Usage:
  python scripts/slice_overhead.py                           # vs HEAD, 131,072 x 1,000 steps
  python scripts/slice_overhead.py --steps 5000 --rounds 7   # full W1
  python scripts/slice_overhead.py --against slices --clock cpu
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, Python puts scripts/ (this file's folder, holding benchkit/) first on sys.path,
# and fastbp is the installed (editable) package: no path to add.
import numba
import numpy as np
from benchkit.problem import make_problem

from fastbp import kernels

ROOT = Path(__file__).resolve().parent.parent


def kernels_at(rev: str):
    """fastbp/kernels.py of git revision ``rev`` as module ``fastbp._kernels_<sha>``.

    It imports model.py and fastmath.py from this tree (unchanged by slicing). The file is
    kept under the temp directory by commit, so Numba's cache of it is reused between runs.
    """
    sha = subprocess.run(
        ["git", "rev-parse", rev], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()
    source = subprocess.run(
        ["git", "show", f"{sha}:fastbp/kernels.py"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    folder = Path(tempfile.gettempdir()) / "fastbp_slice_overhead" / sha
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "kernels_prev.py"
    if not path.exists() or path.read_bytes() != source:
        path.write_bytes(source)
    name = f"fastbp._kernels_{sha[:12]}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module, sha[:12]


def best_seconds(call, repeat: int, clock):
    best, result = float("inf"), None
    for _ in range(repeat):
        started = clock()
        result = call()
        best = min(best, clock() - started)
    return best, result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--against", default="HEAD", help="a git revision, or 'slices' (default HEAD)")
    ap.add_argument("--inits", type=int, default=2048, help="inits per lr (64 lrs; default 2048)")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--slice-seconds", type=float, default=0.25)
    ap.add_argument(
        "--clock",
        default="wall",
        choices=["wall", "cpu"],
        help="wall: perf_counter (what W1 reports); cpu: process time of all threads, less "
        "sensitive to a busy machine (a thread waiting at a slice's end spins, so it counts)",
    )
    args = ap.parse_args(argv)

    numba.set_num_threads(max(1, min(args.threads, numba.config.NUMBA_NUM_THREADS)))
    problem = make_problem(n_init=args.inits, steps=args.steps, dtype=np.dtype(args.dtype))
    problem_args = (problem.w_init, problem.lr, problem.inputs, problem.targets, problem.steps)
    slices = []

    def sliced():
        slices.clear()
        return kernels.train(*problem_args, on_slice=slices.append, slice_seconds=args.slice_seconds)

    if args.against == "slices":
        label = "one slice"

        def other():
            return kernels.train(*problem_args, _slice_steps=problem.steps)
    else:
        previous, label = kernels_at(args.against)

        def other():
            return previous.train(*problem_args)

    for call in (sliced, other):  # compile (or load from cache) and warm up
        call()
    print(
        f"{problem.runs:,} runs x {problem.steps:,} steps, {args.dtype}, record_every 0, "
        f"{numba.get_num_threads()} threads, best of {args.repeat} ({args.clock} time); this tree vs {label}"
    )
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    ratios, ours_all, theirs_all = [], [], []
    for round_ in range(args.rounds):
        order = (sliced, other) if round_ % 2 == 0 else (other, sliced)
        timed = {call: best_seconds(call, args.repeat, clock) for call in order}
        (ours, ours_result), (theirs, their_result) = timed[sliced], timed[other]
        for field in ours_result._fields:
            if getattr(ours_result, field).tobytes() != getattr(their_result, field).tobytes():
                print(f"results differ in {field}", file=sys.stderr)
                return 1
        ratios.append(ours / theirs)
        ours_all.append(ours)
        theirs_all.append(theirs)
        print(
            f"round {round_ + 1}: this tree {ours:.3f} s ({len(slices)} slices), {label} {theirs:.3f} s, "
            f"ratio {ours / theirs:.4f}"
        )
    print(
        f"ratio this tree / {label}: median {statistics.median(ratios):.4f}, "
        f"min {min(ratios):.4f}, max {max(ratios):.4f}; best of all rounds "
        f"{min(ours_all):.3f} s / {min(theirs_all):.3f} s = {min(ours_all) / min(theirs_all):.4f} "
        "(results bit-identical)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

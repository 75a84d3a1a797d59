"""µs per run of ``kernels_sharpness.stability_numbers`` beside the numpy reference (fastbp.sharpness).

    .venv/bin/python scripts/sharpness_speed.py [--runs 65536] [--rounds 7] [--against OLD.py]

For n = 8, 10, 12 trained parameters, with and without per-layer rates: best of ``--rounds``
calls, with 1 thread (µs per run per core) and 2 threads (µs per run, wall clock), and numpy's
hessian + sharpness/stability on a slice of the runs (it is ~100x slower). The machine is shared:
rounds alternate between the thread counts, and the spread (worst/best) is printed beside the best.
``--against`` a copy of another version of kernels_sharpness.py (``git show REF:fastbp/...``):
both are timed with 1 thread in the same rounds, in CPU time (on a machine others share, wall
time is mostly their noise), and the last column is this one's time over that one's.
"""

import argparse
import importlib.util
import subprocess
import time

import numba
import numpy as np

from fastbp.kernels_sharpness import stability_numbers
from fastbp.sharpness import hessian, sharpness, stability

LAYOUTS = {8: (False, False), 10: (True, True), 12: (True, False)}  # n: (train_biases, shared_biases)


def cpu_name():
    for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def problem(n, R, rng):
    train, shared = LAYOUTS[n]
    weights = rng.normal(0.0, 2.0, (8, R))
    biases = rng.normal(0.0, 1.0, (4, R)) if train else None
    if shared:
        biases[1], biases[3] = biases[0], biases[2]
    lr_hidden, lr_output = rng.uniform(0.1, 10, R), rng.uniform(0.1, 10, R)
    return weights, lr_hidden, lr_output, (0.05, 0.1), (0.5, 0.5), biases, train, shared


def seconds(call, clock=time.perf_counter):
    started = clock()
    call()
    return clock() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2**16)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--numpy-runs", type=int, default=4096)
    parser.add_argument("--against", help="another kernels_sharpness.py, timed in the same rounds")
    args = parser.parse_args()
    other = None
    if args.against:
        spec = importlib.util.spec_from_file_location("kernels_sharpness_against", args.against)
        other = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(other)
    print(f"CPU: {cpu_name()}; R = {args.runs}; best of {args.rounds} (spread = worst/best)")
    extra = f" {'1 thread CPU µs':>15} {'against':>8} {'ratio':>6}" if other else ""
    print(
        f"{'n':>3} {'per_layer':>9} {'1 thread µs/run':>16} {'2 threads µs/run':>17} {'numpy µs/run':>13}{extra}"
    )
    ratios = []
    rng = np.random.default_rng(0)
    for n in LAYOUTS:
        for per_layer in (False, True):
            w, lh, lo, i, t, b, train, shared = problem(n, args.runs, rng)

            def compiled(w=w, lh=lh, lo=lo, i=i, t=t, b=b, train=train, shared=shared, per_layer=per_layer):
                stability_numbers(w, lh, lo, i, t, b, train, shared, per_layer)

            def against(w=w, lh=lh, lo=lo, i=i, t=t, b=b, train=train, shared=shared, per_layer=per_layer):
                other.stability_numbers(w, lh, lo, i, t, b, train, shared, per_layer)

            compiled()  # compile or load from the cache
            times = {1: [], 2: [], "cpu": [], "against": []}
            if other:
                against()
            for _ in range(args.rounds):
                for threads in (1, 2):
                    numba.set_num_threads(threads)
                    times[threads].append(seconds(compiled) / args.runs * 1e6)
                    if other and threads == 1:
                        times["cpu"].append(seconds(compiled, time.process_time) / args.runs * 1e6)
                        times["against"].append(seconds(against, time.process_time) / args.runs * 1e6)
            m = args.numpy_runs
            sb = None if b is None else b[:, :m]

            def reference(
                w=w[:, :m], lh=lh[:m], lo=lo[:m], sb=sb, i=i, t=t, train=train, shared=shared, pl=per_layer
            ):
                H = hessian(i, t, w, sb, train_biases=train, shared_biases=shared)
                sharpness(H)
                if pl:
                    stability(H, lh, lo)

            numpy_us = min(seconds(reference) for _ in range(3)) / m * 1e6
            cells = [f"{min(times[c]):.4f} ({max(times[c]) / min(times[c]):.2f})" for c in (1, 2)]
            extra = ""
            if other:
                cpu, old = min(times["cpu"]), min(times["against"])
                ratios.append(cpu / old)
                extra = f" {cpu:>15.4f} {old:>8.4f} {ratios[-1]:>6.3f}"
            print(f"{n:>3} {per_layer!s:>9} {cells[0]:>16} {cells[1]:>17} {numpy_us:>13.2f}{extra}")
    if ratios:
        print(f"this/against, 1 thread CPU time, geometric mean: {np.exp(np.mean(np.log(ratios))):.3f}")
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


if __name__ == "__main__":
    main()

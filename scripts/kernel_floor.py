#!/usr/bin/env python
"""How fast could fastbp's step go on this CPU? A lower bound from operation counts.

The sweep kernel is a straight line of floating-point operations per run and step, vectorised
over runs. Two kinds dominate its cost, and both run on a fixed number of units:

- multiplies and fused multiply-adds, which share the FMA pipes;
- divisions (four sigmoids, each 1 / (1 + exp(−x)), and float64's exp has a division of its
  own), which run on the divider and also take some issue slots from the FMA pipes.

This script counts both in the compiled step of one run (the LLVM IR of the same model
functions the kernel inlines; a test checks that this step gives the kernel's bits), measures what one of each costs per run on this CPU in
vectorised loops that are bound by nothing else, and prints the resulting lower bound beside
the kernel's measured speed. Nothing here is assumed about the CPU: costs are measured in
nanoseconds per run (per SIMD lane), so the vector width and clock speed cancel out. The bound
for several threads assumes each has a core of its own.

Usage:
  python scripts/kernel_floor.py                    # float64 and float32, 1 thread and all threads
  python scripts/kernel_floor.py --dtype float64

It imports bench.py's library (scripts/benchkit/, first on sys.path when this file runs as a
script) and the installed fastbp.
"""

from __future__ import annotations

import argparse
import re
import time
from collections import Counter

import numba
import numpy as np
from benchkit.machine import cpu_model
from benchkit.problem import DEFAULT_INPUTS, DEFAULT_TARGETS, make_problem
from benchkit.timing import time_kernel
from numba import njit

from fastbp.fastmath import fma, like
from fastbp.model import backward, hidden_layer, loss, output_layer, update


@njit(error_model="numpy")
def _one_run_step(w, lr, i1, i2, t1, t2, out):
    """The kernel's step for one run (the model functions it inlines), for counting operations."""
    _h1, a_h1, _h2, a_h2 = hidden_layer(i1, i2, w[0], w[1], w[2], w[3])
    _o1, a_o1, _o2, a_o2 = output_layer(w[4], w[5], w[6], w[7], a_h1, a_h2)
    g1, g2, g3, g4, g5, g6, g7, g8 = backward(i1, i2, t1, t2, w[4], w[5], w[6], w[7], a_h1, a_h2, a_o1, a_o2)
    new = update(w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], g1, g2, g3, g4, g5, g6, g7, g8, lr)
    for k in range(8):
        out[k] = new[k]
    out[8] = loss(t1, t2, a_o1, a_o2)[2]


# One operation of the IR: `%x = fmul double %a, %b`, `%v = fdiv <8 x double> ...`, or a call to
# llvm.fma; a vector operation counts once per lane.
_OPERATION = re.compile(
    r"= (?:tail )?(?:call (?:\w+ )*?(?P<call_type><\d+ x \w+>|double|float) @llvm\.fma\."
    r"|(?P<op>fmul|fdiv|fadd|fsub) (?:\w+ )*?(?P<type><\d+ x \w+>|double|float) )"
)


def count_operations(dtype):
    """Floating-point operations per run-step, by kind, from the optimised LLVM IR of one run's step."""
    t = np.dtype(dtype).type
    w, out = np.zeros(8, dtype), np.zeros(9, dtype)
    _one_run_step(w, t(0.5), *(t(v) for v in DEFAULT_INPUTS + DEFAULT_TARGETS), out)
    signature = next(s for s in _one_run_step.signatures if s[1] == numba.from_dtype(np.dtype(dtype)))
    ir = _one_run_step.inspect_llvm(signature)
    # the function itself (its mangled name holds the Python name), not the cpython/cfunc wrappers
    body = re.search(r"^define [^\n]*@_ZN(?!7cpython)[^\n]*_one_run_step.*?^}$", ir, re.S | re.M).group(0)
    counts = Counter()
    for m in _OPERATION.finditer(body):
        value_type = m.group("call_type") or m.group("type")
        lanes = int(value_type[1:].split(" x ")[0]) if value_type.startswith("<") else 1
        counts[m.group("op") or "fma"] += lanes
    return {
        "mul/fma": counts["fmul"] + counts["fma"],
        "div": counts["fdiv"],
        "add/sub": counts["fadd"] + counts["fsub"],
    }


# Throughput loops over an L1-resident array: every element is independent, so each loop is
# bound by the units it uses, not by latency. The cost of one multiply-add is the difference
# between a long and a short body, so loads, stores and loop overhead cancel.
@njit(inline="always")
def _seventeen_fmas(x, y):
    """17 multiply-adds in three independent chains."""
    p = fma(fma(fma(fma(fma(fma(x, y, y), y, x), x, y), y, x), x, y), y, x)
    q = fma(fma(fma(fma(fma(fma(y, x, x), y, y), x, y), y, x), x, y), y, x)
    u = fma(fma(fma(fma(x, x, y), y, x), x, y), y, x)
    return fma(p, q, u)


_FMAS_SHORT, _FMAS_LONG = 17, 34


@njit(error_model="numpy")
def _fmas_short(a, b, out, reps):
    for _ in range(reps):
        for i in range(a.shape[0]):
            out[i] = _seventeen_fmas(a[i], b[i])


@njit(error_model="numpy")
def _fmas_long(a, b, out, reps):
    for _ in range(reps):
        for i in range(a.shape[0]):
            y = b[i]
            out[i] = _seventeen_fmas(_seventeen_fmas(a[i], y), y)


@njit(error_model="numpy")
def _fmas_long_and_divs(a, b, out, reps):
    """_fmas_long plus two divisions, which leave the divider less busy than the FMA pipes."""
    for _ in range(reps):
        for i in range(a.shape[0]):
            x, y = a[i], b[i]
            out[i] = _seventeen_fmas(_seventeen_fmas(x, y), y) + (x / y - y / x)


@njit(error_model="numpy")
def _divs(a, b, out, reps):
    for _ in range(reps):
        for i in range(a.shape[0]):
            x, y = a[i], b[i]
            out[i] = x / y - y / x + like(x, 1.0) / (x + y)


def _ns_per_element(loop, dtype, reps):
    rng = np.random.default_rng(0)
    a, b = (rng.uniform(1.0, 2.0, 1024).astype(dtype) for _ in range(2))
    out = np.empty_like(a)
    loop(a, b, out, 1)
    best = np.inf
    for _ in range(5):
        start = time.perf_counter()
        loop(a, b, out, reps)
        best = min(best, time.perf_counter() - start)
    return best / (reps * a.size) * 1e9


def operation_costs(dtype, reps=20_000):
    """ns per run (SIMD lane), on one core: a multiply-add; a division on the divider; and the
    FMA-pipe time a division takes away from multiply-adds."""
    short = _ns_per_element(_fmas_short, dtype, reps)
    long = _ns_per_element(_fmas_long, dtype, reps)
    with_divs = _ns_per_element(_fmas_long_and_divs, dtype, reps)
    divs = _ns_per_element(_divs, dtype, reps)
    return {
        "fma": (long - short) / (_FMAS_LONG - _FMAS_SHORT),
        "div": divs / 3,
        "div_fma_share": max(with_divs - long, 0.0) / 2,
    }


def kernel_ns_per_run_step(dtype, threads, n_init=2_048, steps=2_000):
    """Wall time of fastbp.kernels.train per run-step on `threads` threads: bench.py's W1 runs
    (64 lrs x 2,048 inits) over 2,000 of its 5,000 steps, warm, best of 3. A call must last well
    beyond the first slice and the threads' start (W1/8 × 1,000 steps lasted ~16 ms, too short to
    keep two threads busy: float32 then read 42 % of the bound where bench.py's W1 reads ~994 M)."""
    problem = make_problem(n_init=n_init, steps=steps, dtype=dtype)
    _result, seconds, _threads = time_kernel(problem, threads, repeat=3)
    return seconds / problem.run_steps * 1e9


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dtype", choices=["float64", "float32", "both"], default="both")
    args = parser.parse_args(argv)
    threads = numba.config.NUMBA_NUM_THREADS
    print(f"CPU: {cpu_model()}; Numba {numba.__version__}; {threads} threads")
    for name in ["float64", "float32"] if args.dtype == "both" else [args.dtype]:
        dtype = np.dtype(name)
        ops = count_operations(dtype)
        cost = operation_costs(dtype)
        div_share = cost["div_fma_share"]
        fma_pipes = ops["mul/fma"] * cost["fma"] + ops["div"] * div_share
        divider = ops["div"] * cost["div"]
        floor = max(fma_pipes, divider)
        print(
            f"\n{name}: per run-step {ops['mul/fma']} multiplies/fmas, {ops['div']} divisions, "
            f"{ops['add/sub']} adds/subtracts (compiled step of one run)"
        )
        print(
            f"  measured per run, 1 core: multiply-add {cost['fma']:.3f} ns; division "
            f"{cost['div']:.3f} ns on the divider, {div_share:.3f} ns of FMA-pipe time"
        )
        print(
            f"  lower bound per run-step, 1 core: FMA pipes {fma_pipes:.2f} ns, divider {divider:.2f} ns "
            f"-> at most {1e3 / floor:.0f} M run-steps/s per core, {threads * 1e3 / floor:.0f} on {threads} cores"
        )
        for t in sorted({1, threads}):
            ns = kernel_ns_per_run_step(dtype, t)
            print(
                f"  kernel, {t} thread{'s' if t > 1 else ''}: {1e3 / ns:.0f} M run-steps/s "
                f"({floor / (ns * t):.0%} of the bound)"
            )


if __name__ == "__main__":
    main()

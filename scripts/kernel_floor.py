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

Any network (``--network``): the same bound for a network with one hidden layer, several
patterns, batch or online updates and trained biases. Its step is counted from the network's
shape (``network_operations``: docs/model.md's equations, term by term) with each unit's
activation and delta counted in the compiled IR of model.py's ``activate`` and ``unit_delta``;
on the exercise's network that count is the compiled step's exactly (a test checks it), and the
kernel's speed is timed on bench.py's W4 problem (a 10-5-10 encoder by default).

Usage:
  python scripts/kernel_floor.py                    # float64 and float32, 1 thread and all threads
  python scripts/kernel_floor.py --dtype float64
  python scripts/kernel_floor.py --network 10,5,10  # W4: encoder data, trained biases, batch
  python scripts/kernel_floor.py --network 2,2,1 --patterns 4 --update online --activation tanh

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

from fastbp.compile_time import ACTIVATIONS
from fastbp.fastmath import fma, like
from fastbp.model import activate, backward, hidden_layer, loss, output_layer, unit_delta, update


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
    return _ir_operations(_one_run_step, signature, "_one_run_step")


def _ir_operations(function, signature, name):
    """Floating-point operations, by kind, in the optimised LLVM IR of a compiled function."""
    ir = function.inspect_llvm(signature)
    # the function itself (its mangled name holds the Python name), not the cpython/cfunc wrappers
    body = re.search(rf"^define [^\n]*@_ZN(?!7cpython)[^\n]*{name}.*?^}}$", ir, re.S | re.M).group(0)
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


def _unit_operations(kind, dtype):
    """Operations of one unit's activation, and of its delta from its error (a − t or ∂E/∂a),
    as compiled: model.py's ``activate`` and ``unit_delta`` for activation ``kind``."""
    kind_index = ACTIVATIONS.index(kind)

    @njit(error_model="numpy")
    def _one_activation(x, out):
        out[0] = activate(x[0], kind_index)

    @njit(error_model="numpy")
    def _one_delta(x, out):
        out[0] = unit_delta(x[0], x[1], kind_index)

    x, out = np.ones(2, dtype), np.zeros(1, dtype)
    found = []
    for function, name in ((_one_activation, "_one_activation"), (_one_delta, "_one_delta")):
        function(x, out)
        found.append(_ir_operations(function, function.signatures[0], name))
    return found


def _plus(*terms):
    """Sum of (count, {kind: operations}) terms, as {kind: operations}."""
    total = Counter()
    for count, ops in terms:
        for kind, n in ops.items():
            total[kind] += count * n
    return {kind: total[kind] for kind in ("mul/fma", "div", "add/sub")}


def network_operations(layers, activation, output_activation, patterns, update, trained_biases, dtype):
    """Floating-point operations per run-step of a network's training step, term by term from
    docs/model.md's equations (what kernels_step computes for each run), the activations and
    deltas as compiled. On one pattern without biases this is the compiled 2-2-2 step's count."""
    n_in, n_hidden, n_out = layers
    n_weights = n_hidden * n_in + n_out * n_hidden
    n_units = n_hidden + n_out
    n_parameters = n_weights + (n_units if trained_biases else 0)
    act_h, delta_h = _unit_operations(activation, dtype)
    act_o, delta_o = _unit_operations(output_activation, dtype)
    MUL, ADD = {"mul/fma": 1}, {"add/sub": 1}
    forward = _plus((n_weights, MUL), (n_hidden, act_h), (n_out, act_o))  # sums, then activations
    # E: ½(t − a)² per output (a subtract, two multiplies), summed over the outputs
    pattern_loss = _plus((n_out, {"mul/fma": 2, "add/sub": 1}), (n_out - 1, ADD))
    backward = _plus(
        (n_out, ADD),  # a − t
        (n_out, delta_o),
        (n_hidden * n_out, MUL),  # ∂E/∂a_h: the output deltas back through the output weights
        (n_hidden, delta_h),
        (n_weights, MUL),  # each weight's gradient: δ · its sender
    )
    step = _plus((n_parameters, MUL))  # w ← w − lr · g, one fma each
    if patterns == 1:
        return _plus((1, forward), (1, pattern_loss), (1, backward), (1, step))
    if update == "batch":  # each pattern's E and gradients summed, one update per step
        summed = _plus((1, ADD), (n_parameters, ADD))
        return _plus(
            (patterns, forward), (patterns, pattern_loss), (patterns, backward), (patterns, summed), (1, step)
        )
    # online: E at the pass's start (a forward pass per pattern), then each pattern's own update
    return _plus(
        (2 * patterns, forward),
        (patterns, pattern_loss),
        (patterns, ADD),
        (patterns, backward),
        (patterns, step),
    )


def network_ns_per_run_step(args, dtype, threads):
    """fastbp.kernels.train on bench.py's W4 problem for ``args``' network, warm, best of 3."""
    from fastbp import kernels

    n_in, n_hidden, n_out = args.network
    rng = np.random.default_rng(0)
    runs, steps = 64 * 256, args.steps
    n_weights = n_hidden * n_in + n_out * n_hidden
    w = rng.uniform(-1, 1, (n_weights, runs))
    lr = np.repeat(np.logspace(-1, 1, 64), runs // 64)
    inputs = np.eye(n_in)[np.arange(args.patterns) % n_in]
    targets = np.eye(n_out)[np.arange(args.patterns) % n_out]
    options = dict(layers=args.network, activation=args.activation, output_activation=args.output_activation)
    options.update(update=args.update)
    if args.biases:
        options.update(biases=rng.uniform(-1, 1, (n_hidden + n_out, runs)), train_biases=True)
    w, lr = w.astype(dtype), lr.astype(dtype)
    if args.biases:
        options["biases"] = options["biases"].astype(dtype)
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        kernels.train(w, lr, inputs, targets, 1, **options)
        best = np.inf
        for _ in range(3):
            start = time.perf_counter()
            kernels.train(w, lr, inputs, targets, steps, **options)
            best = min(best, time.perf_counter() - start)
    finally:
        numba.set_num_threads(previous)
    return best / (runs * steps) * 1e9


def _bound(ops, cost):
    """ns per run-step on one core: the busier of the FMA pipes and the divider."""
    fma_pipes = ops["mul/fma"] * cost["fma"] + ops["div"] * cost["div_fma_share"]
    return max(fma_pipes, ops["div"] * cost["div"]), fma_pipes, ops["div"] * cost["div"]


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
    parser.add_argument("--network", type=_layers, help="n_in,n_hidden,n_out: another network (W4: 10,5,10)")
    parser.add_argument("--patterns", type=int, default=10, help="with --network: patterns (default 10)")
    parser.add_argument("--update", choices=["batch", "online"], default="batch")
    parser.add_argument("--activation", choices=ACTIVATIONS[:2], default="sigmoid")
    parser.add_argument("--output-activation", choices=ACTIVATIONS, default=None)
    parser.add_argument("--no-biases", dest="biases", action="store_false", help="without trained biases")
    parser.add_argument("--steps", type=int, default=100, help="with --network: steps timed (default 100)")
    args = parser.parse_args(argv)
    threads = numba.config.NUMBA_NUM_THREADS
    print(f"CPU: {cpu_model()}; Numba {numba.__version__}; {threads} threads")
    if args.network is not None:
        args.output_activation = args.output_activation or args.activation
        return network_main(args, ["float64", "float32"] if args.dtype == "both" else [args.dtype], threads)
    for name in ["float64", "float32"] if args.dtype == "both" else [args.dtype]:
        dtype = np.dtype(name)
        ops = count_operations(dtype)
        cost = operation_costs(dtype)
        div_share = cost["div_fma_share"]
        floor, fma_pipes, divider = _bound(ops, cost)
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


def _layers(text):
    layers = tuple(int(n) for n in text.split(","))
    if len(layers) != 3 or not all(1 <= n <= 64 for n in layers):
        raise argparse.ArgumentTypeError(f"{text!r}: three sizes n_in,n_hidden,n_out, each 1-64")
    return layers


def network_main(args, dtypes, threads):
    what = (
        f"{'-'.join(map(str, args.network))} network, {args.patterns} patterns, {args.update}, "
        f"{args.activation}/{args.output_activation}, {'trained biases' if args.biases else 'no biases'}"
    )
    print(what)
    for name in dtypes:
        dtype = np.dtype(name)
        ops = network_operations(
            args.network,
            args.activation,
            args.output_activation,
            args.patterns,
            args.update,
            args.biases,
            dtype,
        )
        cost = operation_costs(dtype)
        floor, fma_pipes, divider = _bound(ops, cost)
        print(
            f"\n{name}: per run-step {ops['mul/fma']} multiplies/fmas, {ops['div']} divisions, "
            f"{ops['add/sub']} adds/subtracts (counted from the network's shape)"
        )
        print(
            f"  lower bound per run-step, 1 core: FMA pipes {fma_pipes:.2f} ns, divider {divider:.2f} ns "
            f"-> at most {1e3 / floor:.2f} M run-steps/s per core, {threads * 1e3 / floor:.2f} on {threads} cores"
        )
        for t in sorted({1, threads}):
            ns = network_ns_per_run_step(args, dtype, t)
            print(
                f"  kernel, {t} thread{'s' if t > 1 else ''}: {1e3 / ns:.3f} M run-steps/s "
                f"({floor / (ns * t):.0%} of the bound)"
            )
    return 0


if __name__ == "__main__":
    main()
